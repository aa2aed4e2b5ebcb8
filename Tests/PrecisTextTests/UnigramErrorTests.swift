import Foundation
import PrecisText
import Testing

/// Hostile or broken Unigram `tokenizer.json` files: every problem is an error naming the file
/// and the field, never a crash.
@Suite("Unigram errors name the file and the field")
struct UnigramErrorTests {
    static let vocab = #"[["<unk>", 0.0], ["▁", -2.0], ["a", -3.0], ["b", -3.5], ["▁ab", -1.0]]"#

    static func model(_ vocab: String = vocab, unkID: String = "0", extra: String = "") -> String {
        #"{"type": "Unigram", "unk_id": \#(unkID), "vocab": \#(vocab)\#(extra)}"#
    }

    static func document(model: String = model(), normalizer: String = "null", preTokenizer: String = #"{"type": "Metaspace", "replacement": "▁"}"#,
                         decoder: String = "null") -> String {
        ErrorTests.document(model: model, normalizer: normalizer, preTokenizer: preTokenizer, decoder: decoder)
    }

    static func error(_ json: String) -> TokenizerError? { ErrorTests.error(json) }

    /// SentencePiece's nmt_nfkc charsmap, from the t5.json fixture.
    static var charsmap: [UInt8] {
        (UnigramFixtures.tokenizers["t5.json"]!.normalizer as! PrecompiledNormalizer).charsmap.bytes
    }

    static func precompiled(_ bytes: [UInt8]) -> String {
        #"{"type": "Precompiled", "precompiled_charsmap": "\#(Data(bytes).base64EncodedString())"}"#
    }

    @Test("a minimal Unigram document loads and encodes")
    func minimal() throws {
        let t = try Tokenizer(jsonString: Self.document(decoder: #"{"type": "Metaspace", "replacement": "▁"}"#))
        #expect(try t.encode("ab a").ids == [4, 1, 2])
        #expect(try t.encode("abc").ids == [4, 0])
        #expect(t.decode([4, 1, 2]) == "ab a")
        // Untagged models with a list vocabulary are Unigram.
        let untagged = try Tokenizer(jsonString: Self.document(model: #"{"unk_id": 0, "vocab": \#(Self.vocab)}"#))
        #expect(try untagged.encode("ab").ids == [4])
    }

    @Test("bad vocabularies, unk_id and scores")
    func badModels() {
        #expect(Self.error(Self.document(model: #"{"type": "Unigram", "unk_id": 0}"#)) == .missingField(file: "t.json", field: "model.vocab"))
        #expect(Self.error(Self.document(model: Self.model(#"{"a": 1}"#)))?.description == "t.json: field model.vocab: expected an array, found an object")
        #expect(Self.error(Self.document(model: Self.model(#"[["a", -1.0], ["b"]]"#)))?.description
                == #"t.json: field model.vocab[1]: expected a [piece, score] pair, found ["b"]"#)
        #expect(Self.error(Self.document(model: Self.model(#"[["a", "high"]]"#)))?.description.hasPrefix(
            "t.json: field model.vocab[0]: expected a [piece, score] pair") == true)
        #expect(Self.error(Self.document(model: Self.model(#"[["a", 1e999]]"#)))?.description
                == "t.json: field model.vocab[0]: the score is out of range")
        #expect(Self.error(Self.document(model: Self.model(#"[["a", -1e308], ["b", 1e-400]]"#))) == nil)
        #expect(Self.error(Self.document(model: Self.model(unkID: "5")))?.description
                == "t.json: field model.unk_id: 5 is outside the vocabulary (5 pieces)")
        #expect(Self.error(Self.document(model: Self.model(unkID: "-1")))?.description
                == "t.json: field model.unk_id: expected a non-negative integer or null, found -1")
        #expect(Self.error(Self.document(model: Self.model(unkID: "99999999999999999999999")))?.description.hasPrefix(
            "t.json: field model.unk_id: expected a non-negative integer or null") == true)
        #expect(Self.error(Self.document(model: Self.model(unkID: "1.5")))?.description.hasPrefix("t.json: field model.unk_id") == true)
        #expect(Self.error(Self.document(model: Self.model("[]")))?.description
                == "t.json: field model.vocab: the vocabulary is empty but unk_id is set")
        #expect(Self.error(Self.document(model: Self.model(extra: #", "byte_fallback": "yes""#)))?.description
                == "t.json: field model.byte_fallback: expected a boolean, found a string")
        // An empty vocabulary without unk_id loads (as in tokenizers) and encodes nothing but errors.
        #expect(Self.error(Self.document(model: Self.model("[]", unkID: "null"))) == nil)
    }

    @Test("scores are read as serde_json reads them (not always the closest double)")
    func scoresLikeSerde() throws {
        // Python tokenizers reads -12.458033897794039 as -12.45803389779404 and
        // -15.903871311313933 as -15.903871311313932 (tokenizer.to_str() shows it).
        let vocab = #"[["<unk>", 0.0], ["p", -12.458033897794039], ["q", -15.903871311313933], ["r", -0.5], ["s", 0]]"#
        let t = try Tokenizer(jsonString: Self.document(model: Self.model(vocab)))
        let model = try #require(t.model as? UnigramModel)
        #expect(model.pieces.map(\.score) == [0, -12.45803389779404, -15.903871311313932, -0.5, 0])
    }

    @Test("without unk_id, an unknown character is an encoding error (ids(of:) leaves it out)")
    func missingUnknown() throws {
        let t = try Tokenizer(jsonString: Self.document(model: Self.model(unkID: "null")))
        #expect(try t.encode("ab").ids == [4])
        #expect(throws: TokenizerError.encoding(message: #"the Unigram model has no unk_id for "z""#)) { try t.encode("abz") }
        #expect(t.ids(of: "abz") == [4])
    }

    @Test("truncated, corrupt or hostile charsmaps are errors naming the field")
    func corruptCharsmaps() throws {
        func error(_ bytes: [UInt8]) -> String? {
            Self.error(Self.document(normalizer: Self.precompiled(bytes)))?.description
        }
        let good = Self.charsmap
        #expect(error(good) == nil)
        #expect(error([]) == "t.json: field normalizer.precompiled_charsmap: corrupt charsmap: shorter than its 4-byte header")
        #expect(error([1, 2]) == "t.json: field normalizer.precompiled_charsmap: corrupt charsmap: shorter than its 4-byte header")
        #expect(error(Array(good.prefix(1000)))?.hasPrefix(
            "t.json: field normalizer.precompiled_charsmap: corrupt charsmap: the header announces a 179200-byte trie") == true)
        #expect(error([0, 0, 0, 0]) == "t.json: field normalizer.precompiled_charsmap: corrupt charsmap: the trie is empty")
        #expect(error([255, 255, 255, 255] + good.dropFirst(4))?.hasPrefix("t.json: field normalizer.precompiled_charsmap: corrupt charsmap") == true)
        // Replacement strings that are not UTF-8.
        #expect(error(good + [0xFF]) == "t.json: field normalizer.precompiled_charsmap: corrupt charsmap: the replacement strings are not valid UTF-8")
        // Leaves pointing past the strings (cut the strings off).
        let trieEnd = 4 + Int(PrecompiledCharsmapProbe.u32(good, 0))
        #expect(error(Array(good.prefix(trieEnd)))?.contains("a leaf points at byte") == true)
        #expect(Self.error(Self.document(normalizer: #"{"type": "Precompiled", "precompiled_charsmap": "%%%"}"#))?.description
                == "t.json: field normalizer.precompiled_charsmap: not valid base64")
        #expect(Self.error(Self.document(normalizer: #"{"type": "Precompiled"}"#)) == .missingField(file: "t.json", field: "normalizer.precompiled_charsmap"))
    }

    @Test("random damage to a charsmap is an error or a working normalizer, never a crash")
    func fuzzedCharsmaps() throws {
        let good = Self.charsmap
        var rng = SplitMix(seed: 20240914)
        var loaded = 0, refused = 0
        let sample = "Ｈｅｌｌｏ \u{FB01} caf\u{E9} \u{01}x\u{3000}y \u{1F600} \u{65E5}\u{672C} e\u{301}\u{301}"
        for round in 0..<60 {
            var bytes = good
            for _ in 0..<(1 + round % 8) {
                let i = 4 + Int(rng.next() % UInt64(bytes.count - 4))
                bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            if round % 10 == 9 { bytes = Array(bytes.prefix(4 + Int(rng.next() % UInt64(bytes.count)))) }
            do {
                let n = try PrecompiledNormalizer(bytes: bytes)
                _ = n.normalize(sample)
                loaded += 1
            } catch {
                refused += 1
                #expect(!error.message.isEmpty)
            }
        }
        #expect(loaded + refused == 60)
        #expect(loaded > 0 && refused > 0, "loaded \(loaded), refused \(refused)")
    }

    @Test("pre-tokenizers, normalizers and decoders: bad fields name their path")
    func badComponents() {
        func d(normalizer: String = "null", preTokenizer: String = #"{"type": "Metaspace", "replacement": "▁"}"#, decoder: String = "null") -> String? {
            Self.error(Self.document(normalizer: normalizer, preTokenizer: preTokenizer, decoder: decoder))?.description
        }
        #expect(d(preTokenizer: #"{"type": "Metaspace", "replacement": "ab"}"#)
                == #"t.json: field pre_tokenizer.replacement: expected one character, found "ab""#)
        #expect(d(preTokenizer: #"{"type": "Metaspace"}"#) == "t.json: missing field pre_tokenizer.replacement")
        #expect(d(preTokenizer: #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"}"#)
                == #"t.json: pre_tokenizer.prepend_scheme "sometimes" is not supported (supported: "always", "first", "never")"#)
        // tokenizers refuses add_prefix_space false unless the scheme is "never" (it defaults to "always").
        #expect(d(preTokenizer: #"{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}"#)
                == #"t.json: field pre_tokenizer.add_prefix_space: false does not match prepend_scheme "always""#)
        #expect(d(preTokenizer: #"{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false, "prepend_scheme": "never"}"#) == nil)
        #expect(d(preTokenizer: #"{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true, "str_rep": "▁"}"#) == nil)
        #expect(d(preTokenizer: #"{"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Punctuation"}]}"#)?.hasPrefix(
            #"t.json: pre_tokenizer.pretokenizers[1].type "Punctuation" is not supported"#) == true)
        #expect(d(preTokenizer: #"{"type": "Sequence"}"#) == "t.json: missing field pre_tokenizer.pretokenizers")
        #expect(d(normalizer: #"{"type": "Strip", "strip_left": true}"#) == "t.json: missing field normalizer.strip_right")
        #expect(d(normalizer: #"{"type": "Replace", "pattern": {"Regex": "(a"}, "content": ""}"#)?.hasPrefix(
            #"t.json: field normalizer.pattern.Regex: "(a": missing ')'"#) == true)
        #expect(d(normalizer: #"{"type": "Replace", "pattern": {"Regex": "(?<=a)b"}, "content": ""}"#)?.contains("is not supported") == true)
        #expect(d(normalizer: #"{"type": "Replace", "pattern": {"Glob": "*"}, "content": ""}"#)
                == #"t.json: field normalizer.pattern: expected {"String": ...} or {"Regex": ...}"#)
        #expect(d(normalizer: #"{"type": "Replace", "pattern": {"String": " "}}"#) == "t.json: missing field normalizer.content")
        #expect(d(normalizer: #"{"type": "Sequence", "normalizers": [{"type": "Nmt"}, {"type": "Replace", "pattern": {"Regex": "x{2000}"}, "content": ""}]}"#)?.hasPrefix(
            "t.json: field normalizer.normalizers[1].pattern.Regex") == true)
        #expect(d(decoder: #"{"type": "Strip", "content": " ", "start": -1, "stop": 0}"#) == "t.json: field decoder: start and stop must be non-negative")
        #expect(d(decoder: #"{"type": "Strip", "content": "", "start": 1, "stop": 0}"#) == #"t.json: field decoder.content: expected one character, found """#)
        #expect(d(decoder: #"{"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "CTC"}]}"#)?.hasPrefix(
            #"t.json: decoder.decoders[1].type "CTC" is not supported"#) == true)
    }

    @Test("a Unigram tokenizer saves and loads back with the same ids and the same components")
    func saveAndLoad() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-unigram-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let texts = ["Hello  world, I'm here!", "\u{01}x \u{FB01}ne </s> <pad>", " caf\u{E9}\t\u{1F600}", ""]
        for name in UnigramFixtures.names {
            let tok = try #require(UnigramFixtures.tokenizers[name])
            let path = dir.appendingPathComponent(name).path
            try tok.save(to: path)
            let back = try Tokenizer(contentsOfFile: path)
            #expect(back.toJSON() == tok.toJSON(), "\(name)")
            for text in texts {
                #expect(try back.encode(text).ids == tok.encode(text).ids, "\(name) \(text.preview)")
            }
        }
    }
}

/// A small deterministic generator for the fuzz test.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum PrecompiledCharsmapProbe {
    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}
