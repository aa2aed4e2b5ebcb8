import Foundation
import PrecisText
import Testing

/// The stages of SentencePiece-style tokenizers on small direct cases. Expected values are what
/// Python `tokenizers` 0.23.3 gives for the same calls (`normalize_str`, `pre_tokenize_str`,
/// `decode`).
@Suite("Unigram tokenizer stages")
struct UnigramStageTests {
    static var t5Charsmap: PrecompiledNormalizer {
        UnigramFixtures.tokenizers["t5.json"]!.normalizer as! PrecompiledNormalizer
    }

    static func words(_ p: any PreTokenizer, _ text: String) -> [String] { p.preTokenize(text) }

    @Test("Precompiled (nmt_nfkc): rules per grapheme cluster, the shortest key first")
    func precompiled() {
        let n = Self.t5Charsmap
        #expect(n.normalize("\u{FB01}ne") == "fine")
        #expect(n.normalize("\u{FF28}\u{FF45}\u{FF4C}\u{FF4C}\u{FF4F}") == "Hello")
        // The rule of the cluster's first scalar replaces the whole cluster: the accent is gone.
        #expect(n.normalize("\u{FF21}\u{301}x").sameScalars("Ax"))
        #expect(n.normalize("e\u{301}").sameScalars("\u{E9}"))
        // Clusters of 6 bytes or more go scalar by scalar.
        #expect(n.normalize("e\u{301}\u{301}\u{301}").sameScalars("e\u{301}\u{301}\u{301}"))
        #expect(n.normalize("\u{01}hello") == "hello")
        #expect(n.normalize("a\u{A0}b") == "a b")
        #expect(n.normalize("\u{2460}") == "1")
        #expect(n.normalize("\u{3000}x") == " x")
        #expect(n.normalize("\u{1F44D}\u{1F3FB}").sameScalars("\u{1F44D}\u{1F3FB}"))
        #expect(n.normalize("\u{200B}") == " ")
        #expect(n.normalize("\u{FF76}\u{FF9E}").sameScalars("\u{30AB}\u{3099}"))
        #expect(n.normalize("a\tb\nc") == "a b c")
        #expect(n.normalize("  x  ") == "  x  ")
        #expect(n.normalize("") == "")
    }

    @Test("Precompiled keeps tokenizers' origins: a removal at the very start is lost")
    func precompiledOrigins() {
        var text = NormalizedText("\u{01}hello")
        Self.t5Charsmap.normalize(&text)
        #expect(text.string == "hello")
        // `tokenizers` drops the removal of a first character, so "h" takes its origin (0).
        #expect(text.origins == [0, 1, 2, 3, 4])
        var nmt = NormalizedText("\u{01}hello")
        NmtNormalizer().normalize(&nmt)
        #expect(nmt.origins == [1, 2, 3, 4, 5])
        var fi = NormalizedText("x\u{FB01}y")
        Self.t5Charsmap.normalize(&fi)
        #expect(fi.string == "xfiy")
        #expect(fi.origins == [0, 1, 1, 4])
    }

    @Test("Nmt, Strip, Prepend, Lowercase")
    func smallNormalizers() {
        #expect(NmtNormalizer().normalize("a\u{01}b\tc\u{200B}d\u{FEFF}e\u{7F}\u{2581}") == "ab c d e ")
        #expect(StripNormalizer(left: true, right: false).normalize("  a b  ") == "a b  ")
        #expect(StripNormalizer(left: false, right: true).normalize(" \u{3000}a b \u{2003}") == " \u{3000}a b")
        #expect(StripNormalizer(left: true, right: true).normalize(" \n ") == "")
        var stripped = NormalizedText("  ab ")
        StripNormalizer(left: true, right: true).normalize(&stripped)
        #expect(stripped.origins == [2, 3])
        #expect(PrependNormalizer("\u{2581}").normalize("ab") == "\u{2581}ab")
        #expect(PrependNormalizer("\u{2581}").normalize("") == "")
        #expect(LowercaseNormalizer().normalize("\u{130}STANBUL \u{3A3}\u{391}\u{3A3}").sameScalars("i\u{307}stanbul \u{3C3}\u{3B1}\u{3C3}"))
        var lower = NormalizedText("\u{130}x")
        LowercaseNormalizer().normalize(&lower)
        #expect(lower.origins == [0, 0, 2])
    }

    @Test("Replace: literal and Oniguruma patterns, empty matches, the origins of replacements")
    func replace() throws {
        func replaced(_ pattern: ReplacePattern, _ content: String, _ text: String) -> String {
            ReplaceNormalizer(pattern: pattern, content: content).normalize(text)
        }
        #expect(replaced(.regex(try OnigRegex(" {2,}")), "\u{2581}", "a  b   c d") == "a\u{2581}b\u{2581}c d")
        #expect(replaced(.regex(try OnigRegex(#"\A +| +\z"#)), "", "  a  b  ") == "a  b")
        #expect(replaced(.string("ab"), "X", "aabab") == "aXX")
        #expect(replaced(.regex(try OnigRegex("x*")), "-", "axxb") == "-a-b-")
        #expect(replaced(.string(""), "-", "ab") == "-a-b-")
        #expect(replaced(.regex(try OnigRegex("^a|b$")), "_", "ab\nab") == "__\n__")
        #expect(replaced(.regex(try OnigRegex(#"[\s\d]+"#)), "#", "a 1\t2b") == "a#b")
        #expect(replaced(.regex(try OnigRegex(#"\p{L}+"#)), "L", "h\u{E9}llo, w\u{F6}rld 42") == "L, L 42")
        #expect(replaced(.regex(try OnigRegex("a|ab")), "X", "abab") == "XbXb")
        #expect(replaced(.regex(try OnigRegex("(?:ab)+?")), "X", "ababab") == "XXX")
        #expect(replaced(.string("x"), "y", "") == "")
        var text = NormalizedText("a  b")
        ReplaceNormalizer(pattern: .regex(try OnigRegex(" {2,}")), content: " ").normalize(&text)
        #expect(text.string == "a b")
        #expect(text.origins == [0, 2, 3])  // the new space takes the origin of the last one it replaces
        var leading = NormalizedText("  ab")
        ReplaceNormalizer(pattern: .regex(try OnigRegex(#"\A +"#)), content: "").normalize(&leading)
        #expect(leading.origins == [2, 3])
    }

    @Test("the regex engine: anchors, classes, quantifiers, and refusals")
    func regex() throws {
        func matches(_ pattern: String, _ text: String) throws -> [String] {
            let scalars = Array(text.unicodeScalars)
            return try OnigRegex(pattern).matches(in: scalars).map { r in
                var v = String.UnicodeScalarView()
                v.append(contentsOf: scalars[r])
                return String(v)
            }
        }
        #expect(try matches(#"\d+"#, "a12b\u{664}\u{665}") == ["12", "\u{664}\u{665}"])
        #expect(try matches(#"\w+"#, "caf\u{E9} n\u{303}_1!") == ["caf\u{E9}", "n\u{303}_1"])
        #expect(try matches(#"\s"#, "a\u{3000}b\u{A0}c") == ["\u{3000}", "\u{A0}"])
        #expect(try matches("[^a-c]+", "abxyzcd") == ["xyz", "d"])
        #expect(try matches("a{2}|b{1,2}?", "aaabbb") == ["aa", "b", "b", "b"])
        #expect(try matches(#"\bab\b"#, "ab xab ab") == ["ab", "ab"])
        #expect(try matches(#"x\Z"#, "x\n") == ["x"])
        #expect(try matches(#"x\z"#, "x\n") == [])
        #expect(try matches(".+", "ab\ncd") == ["ab", "cd"])
        #expect(try matches(#"\x{1F600}|\u00e9|\x41"#, "A\u{E9}\u{1F600}") == ["A", "\u{E9}", "\u{1F600}"])
        #expect(try matches("a{,2}", "aaa") == ["aa", "a"])
        #expect(try matches("{x}", "{x}") == ["{x}"])
        // Linear time: a pattern that backtracks exponentially elsewhere.
        let long = String(repeating: "a", count: 5000)
        #expect(try matches("(a*)*b", long) == [])
        for bad in [#"(a)\1"#, "(?=a)", "(?i)a", "a++", "[[:alpha:]]", "[a&&b]", "(a", "a)", "*", #"\p{Han}"#, "a{1001}"] {
            #expect(throws: OnigRegex.SyntaxError.self, "\(bad)") { try OnigRegex(bad) }
        }
    }

    @Test("Metaspace: replacement, prepend schemes, split")
    func metaspace() {
        for scheme in PrependScheme.allCases {
            let split = MetaspacePreTokenizer(prependScheme: scheme, split: true)
            let lead = scheme == .never ? "hello" : "\u{2581}hello"
            #expect(Self.words(split, "hello  world \u{2581}x") == [lead, "\u{2581}", "\u{2581}world", "\u{2581}", "\u{2581}x"])
            #expect(Self.words(split, "\u{2581}\u{2581}a") == ["\u{2581}", "\u{2581}a"])
            let whole = MetaspacePreTokenizer(prependScheme: scheme, split: false)
            #expect(Self.words(whole, "hello  world \u{2581}x") == [(scheme == .never ? "" : "\u{2581}") + "hello\u{2581}\u{2581}world\u{2581}\u{2581}x"])
            #expect(Self.words(whole, "") == [])
        }
        // `first` prepends only to a piece that starts the input.
        let first = MetaspacePreTokenizer(prependScheme: .first)
        var atStart: [String] = []
        first.forEachWord(in: NormalizedText("ab", offset: 0)) { atStart.append($0.string) }
        var later: [String] = []
        first.forEachWord(in: NormalizedText("ab", offset: 5)) { later.append($0.string) }
        #expect(atStart == ["\u{2581}ab"])
        #expect(later == ["ab"])
        #expect(first.needsOrigins)
        #expect(!MetaspacePreTokenizer(prependScheme: .always).needsOrigins)
    }

    @Test("WhitespaceSplit and Sequence (a later word is not at the start of the input)")
    func whitespaceAndSequence() {
        #expect(Self.words(WhitespaceSplitPreTokenizer(), " a\tb\u{3000}c  d ") == ["a", "b", "c", "d"])
        #expect(Self.words(WhitespaceSplitPreTokenizer(), "   ") == [])
        let seq = SequencePreTokenizer([WhitespaceSplitPreTokenizer(), MetaspacePreTokenizer(prependScheme: .first)])
        #expect(seq.needsOrigins)
        #expect(Self.words(seq, "hello big world") == ["\u{2581}hello", "big", "world"])
        #expect(Self.words(seq, " hello big world") == ["hello", "big", "world"])
        let always = SequencePreTokenizer([WhitespaceSplitPreTokenizer(), MetaspacePreTokenizer()])
        #expect(Self.words(always, " hello  big") == ["\u{2581}hello", "\u{2581}big"])
    }

    @Test("decoders: Metaspace, ByteFallback, Fuse, Strip, Replace")
    func decoders() throws {
        #expect(MetaspaceDecoder().decode(["\u{2581}\u{2581}hello", "\u{2581}world", "x\u{2581}y"]) == "hello worldx y")
        #expect(MetaspaceDecoder(prependScheme: .never).decode(["\u{2581}hello", "\u{2581}world"]) == " hello world")
        #expect(ByteFallbackDecoder().decode(["<0x41>", "<0xE2>", "<0x82>", "<0xAC>", "x", "<0xFF>", "<0x61>", "<0x+A>", "<0xg1>", "<0x0a>"])
                == "A\u{20AC}x\u{FFFD}\u{FFFD}\u{FFFD}<0xg1>\n")
        #expect(FuseDecoder().decodeChain(["a", "b"]) == ["ab"])
        #expect(StripDecoder(content: " ", start: 1, stop: 0).decode([" a", "  b"]) == "a b")
        #expect(StripDecoder(content: "x", start: 2, stop: 1).decode(["xxaxx", "xyx"]) == "axy")
        // tokenizers panics here ("slice index starts at 1 but ends at 0"); PrecisText gives "".
        #expect(StripDecoder(content: "x", start: 2, stop: 1).decode(["x"]) == "")
        #expect(ReplaceDecoder(pattern: .string("\u{2581}"), content: " ").decode(["\u{2581}a", "b\u{2581}\u{2581}"]) == " ab  ")
    }

    @Test("Unicode forms: tokenizers' results and alignments")
    func unicodeForms() {
        let nfkc = UnicodeNormalizer(.nfkc)
        #expect(nfkc.normalize("\u{FB01} \u{212B} \u{2460}\u{32FF} \u{EA}\u{323} \u{1112}\u{1161}\u{11AB}")
            .sameScalars("fi \u{C5} 1\u{32FF} \u{1EC7} \u{D55C}"))
        #expect(UnicodeNormalizer(.nfd).normalize("\u{1D6}").sameScalars("u\u{308}\u{304}"))
        #expect(UnicodeNormalizer(.nfc).normalize("A\u{30A}").sameScalars("\u{C5}"))
        var expanded = NormalizedText("\u{A8}a")
        nfkc.normalize(&expanded)
        #expect(expanded.string.sameScalars(" \u{308}a"))
        #expect(expanded.origins == [0, 0, 2])
        var composed = NormalizedText("xe\u{301}y")
        nfkc.normalize(&composed)
        #expect(composed.string.sameScalars("x\u{E9}y"))
        #expect(composed.origins == [0, 1, 4])
    }

    @Test("Unigram model: Viterbi, unknown characters fused, byte fallback, ties")
    func unigramModel() throws {
        let pieces: [(piece: String, score: Double)] = [
            ("<unk>", 0), ("a", -1), ("b", -1), ("c", -1), ("d", -1), ("cd", -0.5), ("ab", 0), ("abc", 5), ("abcd", 10),
        ]
        let model = try UnigramModel(pieces: pieces, unkID: 0)
        #expect(model.tokenize("abcdacdxx", byteLevel: false) == [8, 1, 5, 0])
        #expect(model.tokenize("xxaxyx", byteLevel: false) == [0, 1, 0])
        #expect(model.tokenize("", byteLevel: false) == [])
        // Equal scores: the first segmentation found wins ("a" + "bc" before "ab" + "c").
        let tie = try UnigramModel(pieces: [("<unk>", 0), ("a", -1), ("b", -1), ("c", -1), ("ab", -1), ("bc", -1)], unkID: 0)
        #expect(tie.tokenize("abc", byteLevel: false) == [1, 5])
        let bytes = try UnigramModel(pieces: [("<unk>", 0), ("a", -1)] + (0..<256).map { (String(format: "<0x%02X>", $0), -5.0) },
                                     unkID: 0, byteFallback: true)
        #expect(bytes.tokenize("a\u{E9}a", byteLevel: false) == [1, 2 + 0xC3, 2 + 0xA9, 1])
        // A piece listed twice keeps its last id and score.
        let twice = try UnigramModel(pieces: [("<unk>", 0), ("x", -1), ("x", -2)], unkID: 0)
        #expect(twice.tokenToID("x") == 2)
        #expect(twice.tokenize("xx", byteLevel: false) == [2, 2])
        // Without unk_id, `encode` refuses what `tokenize` leaves out.
        let noUnk = try UnigramModel(pieces: [("a", -1)], unkID: nil)
        #expect(noUnk.tokenize("aza", byteLevel: false) == [0, 0])
        var ids: [Int] = []
        #expect(throws: TokenizerError.self) {
            try Array("aza".utf8).withUnsafeBufferPointer { (b) throws(TokenizerError) in try noUnk.encode(word: b, byteLevel: false, into: &ids) }
        }
        #expect(throws: UnigramModel.Invalid.self) { try UnigramModel(pieces: [("a", 0)], unkID: 1) }
        #expect(throws: UnigramModel.Invalid.self) { try UnigramModel(pieces: [], unkID: 0) }
    }

    @Test("a 1 MB input encodes in linear time and gives the ids of its repeated unit")
    func longInputs() throws {
        let unit = "Hello my friend, how are you doing? I'm fine \u{1F600} \u{65E5}\u{672C}\n"
        let repeats = (1 << 20) / unit.utf8.count
        let text = String(repeating: unit, count: repeats)
        #expect(text.utf8.count > 1_000_000)
        for name in ["t5.json", "spm-byte-fallback.json", "native-first.json", "native-never.json"] {
            let tok = try #require(UnigramFixtures.tokenizers[name])
            // The first unit may differ (it starts the input); every later one encodes alike.
            let first = try tok.encode(unit, addSpecialTokens: false).ids.count
            let two = try tok.encode(unit + unit, addSpecialTokens: false).ids
            let later = two.count - first
            let all = try tok.encode(text, addSpecialTokens: false).ids
            #expect(later > 10, "\(name)")
            #expect(all.count == first + later * (repeats - 1), "\(name)")
            #expect(Array(all.suffix(later)) == Array(two.suffix(later)), "\(name)")
            #expect(Array(all.prefix(first + later)) == two, "\(name)")
        }
        // One 1 MB word without spaces, and 1 MB of spaces.
        let t5 = try #require(UnigramFixtures.tokenizers["t5.json"])
        let letters = try t5.encode(String(repeating: "ab", count: 1 << 19), addSpecialTokens: false).ids
        let short = try t5.encode(String(repeating: "ab", count: 64), addSpecialTokens: false).ids
        #expect(letters.count > 1000 && Array(letters.suffix(8)) == Array(short.suffix(8)))
        let bytes = try #require(UnigramFixtures.tokenizers["spm-byte-fallback.json"])
        // Leading spaces are removed and "x" no longer starts the input: no "▁" (prepend_scheme first).
        #expect(try bytes.encode(String(repeating: " ", count: 1 << 20) + "x", addSpecialTokens: false).ids
                == bytes.encode(" x", addSpecialTokens: false).ids)
    }
}
