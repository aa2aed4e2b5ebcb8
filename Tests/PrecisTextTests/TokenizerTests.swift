import Foundation
import PrecisText
import Testing

@Suite("tokenizer behaviour")
struct TokenizerTests {
    var tok: Tokenizer { TokenizerFixtures.samsum }

    /// A deterministic generator for random texts.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func randomText(_ rng: inout SplitMix) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0..<60, using: &rng) {
            let v: UInt32
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: v = UInt32.random(in: 0..<0x20, using: &rng)
            case 1: v = UInt32.random(in: 0x20..<0x7F, using: &rng)
            case 2: v = 0x20
            case 3: v = UInt32.random(in: 0x80..<0x800, using: &rng)
            case 4: v = UInt32.random(in: 0x800..<0xD800, using: &rng)
            case 5: v = UInt32.random(in: 0xE000..<0x10000, using: &rng)
            case 6: v = UInt32.random(in: 0x1F300..<0x1FAFF, using: &rng)
            default: v = UInt32.random(in: 0x10000..<0x110000, using: &rng)
            }
            s.append(Unicode.Scalar(v)!)
        }
        return String(s)
    }

    @Test("decode(encode(x)) == x for any Unicode (without special tokens)")
    func roundTrip() throws {
        var rng = SplitMix(state: 42)
        let fixed = ["", " ", "\u{0}", "\r\n\r\n", "👨‍👩‍👧‍👦 🇵🇱 ❤️", "e\u{301}\u{302}\u{303}", "日本語のテキスト", "\u{10FFFF}\u{E000}\u{378}",
                     "\u{1B}[31m\u{7F}\u{85}\u{2028}", String(repeating: "ab", count: 700), String(repeating: "😀", count: 300),
                     "Amanda: I baked  cookies. Do you want some?\r\nJerry: Sure!"]
        for text in fixed + (0..<2000).map({ _ in Self.randomText(&rng) }) {
            let ids = try tok.encode(text, addSpecialTokens: false).ids
            #expect(tok.decode(ids) == text, "\(text.preview)")
            #expect(tok.decode(try tok.encode(text).ids, skipSpecialTokens: true) == text)
        }
    }

    @Test("special tokens: <s> … </s> added, found inside text, skipped on decode")
    func specialTokens() throws {
        let hello = try tok.encode("Hello", addSpecialTokens: false).ids
        #expect(try tok.encode("Hello").ids == [0] + hello + [2])
        #expect(try tok.encode("").ids == [0, 2])
        #expect(try tok.encode("<s>Hello</s>", addSpecialTokens: false).ids == [0] + hello + [2])
        // <mask> takes the space before it (lstrip).
        let a = try tok.encode("a", addSpecialTokens: false).ids
        let b = try tok.encode(" b", addSpecialTokens: false).ids
        #expect(try tok.encode("a <mask> b", addSpecialTokens: false).ids == a + [8191] + b)
        #expect(try tok.encode("a<mask> b", addSpecialTokens: false).ids == a + [8191] + b)
        #expect(tok.decode([0] + hello + [8191, 1, 2]) == "<s>Hello<mask><pad></s>")
        #expect(tok.decode([0] + hello + [8191, 1, 2], skipSpecialTokens: true) == "Hello")
        #expect(tok.decode([0, 99_999, 2] + hello) == "<s></s>Hello")
        #expect(tok.tokenToID("<mask>") == 8191)
        #expect(tok.idToToken(3) == "<unk>")
        #expect(tok.vocabSize == 8192)
    }

    @Test("added tokens: single_word, lstrip, rstrip, normalized, non-special")
    func addedTokenFlags() throws {
        var t = tok
        t.postProcessor = nil
        t.addTokens([AddedToken("cat", singleWord: true), AddedToken("[X]", rstrip: true),
                     AddedToken("[Y]", special: true, lstrip: true)])
        let cat = try #require(t.tokenToID("cat"))
        let x = try #require(t.tokenToID("[X]"))
        let y = try #require(t.tokenToID("[Y]"))
        #expect(cat == 8192 && x == 8193 && y == 8194)
        #expect(try t.encode("cat").ids == [cat])
        #expect(try t.encode("a cat!").ids.contains(cat))
        #expect(!(try t.encode("concatenate").ids.contains(cat)))
        #expect(try t.encode("[X]   z").ids == [x] + (try t.encode("z").ids))
        #expect(try t.encode("z   [Y]").ids == (try t.encode("z").ids) + [y])
        #expect(t.decode([x, y], skipSpecialTokens: true) == "[X]")
        #expect(t.decode([x, y]) == "[X][Y]")
    }

    @Test("truncation keeps room for the special tokens; left and right; pairs")
    func truncation() throws {
        var t = tok
        let full = try t.encode("one two three four five six seven", addSpecialTokens: false).ids
        t.truncation = Truncation(maxLength: 5)
        #expect(try t.encode("one two three four five six seven").ids == [0] + full.prefix(3) + [2])
        #expect(try t.encode("one two three four five six seven", addSpecialTokens: false).ids == Array(full.prefix(5)))
        t.truncation = Truncation(maxLength: 5, direction: .left)
        #expect(try t.encode("one two three four five six seven").ids == [0] + full.suffix(3) + [2])
        t.truncation = Truncation(maxLength: 1)  // below the 2 added tokens: no truncation, as in tokenizers
        #expect(try t.encode("one two three four five six seven").ids.count == full.count + 2)
        t.truncation = Truncation(maxLength: 8)
        let pair = try t.encode("one two three four five six seven", pair: "a b")
        #expect(pair.ids.count == 8)
        #expect(pair.ids.prefix(1) == [0] && pair.ids.suffix(1) == [2])
        t.truncation = Truncation(maxLength: 6, strategy: .onlySecond)
        #expect(throws: TokenizerError.self) { try t.encode("one two three four five six seven", pair: "a b") }
    }

    @Test("padding to a fixed length and to a multiple")
    func padding() throws {
        var t = tok
        t.padding = Padding(fixedLength: 10, padID: 1, padToken: "<pad>")
        let e = try t.encode("Hello")
        #expect(e.ids.count == 10)
        #expect(e.ids.suffix(3) == [1, 1, 1])
        #expect(e.attentionMask.suffix(3) == [0, 0, 0])
        t.padding = Padding(direction: .left, padToMultipleOf: 8, padID: 1)
        #expect(try t.encode("Hello").ids.first == 1)
        #expect(try t.encode("Hello").ids.count == 8)
    }

    @Test("merges as \"a b\" strings load like [\"a\", \"b\"] pairs; save/load round-trips")
    func mergesForms() throws {
        let text = try String(contentsOfFile: TokenizerFixtures.path("samsum-bpe-8192.json"), encoding: .utf8)
        var json = try JSONValue.parse(text)
        guard case var .object(root) = json, case var .object(model) = root["model"]!, case let .array(merges) = model["merges"]! else {
            Issue.record("unexpected layout")
            return
        }
        model["merges"] = .array(merges.map { m in .string(m.arrayValue!.map { $0.stringValue! }.joined(separator: " ")) })
        root["model"] = .object(model)
        json = .object(root)
        let legacy = try Tokenizer(json: json, source: "legacy")
        let samples = try TokenizerFixtures.lines("golden-sample.jsonl", as: GoldenText.self)
        for row in samples.prefix(100) {
            #expect(try legacy.encode(row.text).ids == row.ids)
        }
        // Saving gives back the document Python wrote.
        #expect(tok.toJSON() == (try JSONValue.parse(text)))
        #expect(tok.toJSON().prettyString() + "" == text.trimmingCharacters(in: .newlines))
    }

    @Test("vocab.json + merges.txt: the classic loader")
    func classicFiles() throws {
        let classic = try Tokenizer.roberta(vocabFile: TokenizerFixtures.path("samsum-bpe-8192-vocab.json"),
                                            mergesFile: TokenizerFixtures.path("samsum-bpe-8192-merges.txt"))
        #expect(classic.vocabSize == 8192)
        #expect(classic.tokenToID("<mask>") == 8191)
        let rows = try TokenizerFixtures.lines("golden-sample.jsonl", as: GoldenText.self)
        for row in rows where !row.text.contains("<mask>") {
            #expect(try classic.encode(row.text).ids == row.ids, "\(row.label)")
        }
        let bart = try Tokenizer.roberta(vocabFile: TokenizerFixtures.path("samsum-bpe-8192-vocab.json"),
                                         mergesFile: TokenizerFixtures.path("samsum-bpe-8192-merges.txt"), maskLStrip: true)
        for row in rows {
            #expect(try bart.encode(row.text).ids == row.ids, "\(row.label)")
        }
        let plain = try Tokenizer.byteLevelBPE(vocabFile: TokenizerFixtures.path("samsum-bpe-8192-vocab.json"),
                                               mergesFile: TokenizerFixtures.path("samsum-bpe-8192-merges.txt"))
        #expect(try plain.encode("Hello world").ids == (try tok.encode("Hello world", addSpecialTokens: false).ids))
    }

    @Test("the model, pre-tokenizer and decoder stages on their own")
    func stages() throws {
        let model = try #require(tok.model as? BPEModel)
        let pre = ByteLevelPreTokenizer()
        let words = pre.preTokenize("Hello world")
        #expect(words == ["Hello", "Ġworld"])
        let ids = model.tokenize(" world", byteLevel: true)
        #expect(ids == (try tok.encode(" world", addSpecialTokens: false).ids))
        #expect(ByteLevelDecoder().decode(ids.map { model.idToToken($0)! }) == " world")
        #expect(ByteLevelAlphabet.encode(Array(" \n".utf8)) == "ĠĊ")
        #expect(ByteLevelAlphabet.decode("ĠĊ") == [0x20, 0x0A])
        #expect(ByteLevelAlphabet.decode("<s> ") == nil)
        // A long word (no spaces) takes the heap-based merge path (golden-sample.jsonl checks
        // its ids against Python on 2000-3000 byte words).
        let long = String(repeating: "abcdefghij", count: 30)
        let longIDs = model.tokenize(long, byteLevel: true)
        #expect(ByteLevelDecoder().decode(longIDs.map { model.idToToken($0)! }) == long)
    }

    @Test("Lowercase maps scalar by scalar like tokenizers (no final sigma)")
    func lowercase() {
        let n = LowercaseNormalizer()
        #expect(n.normalize("HELLO Wörld") == "hello wörld")
        #expect(n.normalize("ΣΑΣ ΌΣΟΣ Σ") == "σασ όσοσ σ")
        #expect(n.normalize("İ") == "i\u{307}")
    }

    @Test("concurrent encoders agree (the word cache is shared safely)")
    func concurrent() async throws {
        let rows = try TokenizerFixtures.lines("golden-sample.jsonl", as: GoldenText.self)
        let t = try Tokenizer(contentsOfFile: TokenizerFixtures.path("samsum-bpe-8192.json"))
        let ok = await withTaskGroup(of: Bool.self) { group in
            for k in 0..<4 {
                group.addTask {
                    rows.enumerated().allSatisfy { i, row in i % 4 != k || (try? t.encode(row.text).ids) == row.ids }
                }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(ok)
    }
}
