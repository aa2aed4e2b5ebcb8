import Foundation
import PrecisText
import Testing

@Suite("errors name the file and the field")
struct ErrorTests {
    static let minimalModel = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}"#

    static func document(model: String = minimalModel, normalizer: String = "null", preTokenizer: String = "null",
                         postProcessor: String = "null", decoder: String = "null", extra: String = "") -> String {
        #"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": \#(normalizer), "pre_tokenizer": \#(preTokenizer), "post_processor": \#(postProcessor), "decoder": \#(decoder), \#(extra)"model": \#(model)}"#
    }

    static func error(_ json: String, source: String = "t.json") -> TokenizerError? {
        do {
            _ = try Tokenizer(jsonString: json, source: source)
            return nil
        } catch {
            return error
        }
    }

    @Test("a minimal document loads")
    func minimal() throws {
        let t = try Tokenizer(jsonString: Self.document())
        #expect(try t.encode("abab").ids == [2, 2])
        #expect(try t.encode("ba").ids == [1, 0])
        #expect(t.decode([2, 0]) == "ab a")  // no decoder: tokens joined by spaces
    }

    @Test("ids a file states must be the vocabulary's: post-processor ids and added-token ids")
    func statedIDsMustExist() throws {
        let template = { (ids: String) in
            #"{"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}], "pair": [], "special_tokens": {"</s>": {"id": "</s>", "ids": \#(ids), "tokens": ["</s>"]}}}"#
        }
        for bad in ["[999999]", "[-4]"] {
            guard case .invalidField(let file, let field, let message)? = Self.error(Self.document(postProcessor: template(bad))) else {
                Issue.record("post-processor id \(bad) accepted"); continue
            }
            #expect(file == "t.json" && field == #"post_processor.special_tokens["</s>"].ids"#, "\(field)")
            #expect(message.contains("names no token"), "\(message)")
        }
        #expect(Self.error(Self.document(postProcessor: template("[2]"))) == nil)
        let roberta = #"{"type": "RobertaProcessing", "sep": ["</s>", 7], "cls": ["<s>", 0], "trim_offsets": true, "add_prefix_space": false}"#
        guard case .invalidField(_, let field, _)? = Self.error(Self.document(postProcessor: roberta)) else {
            Issue.record("RobertaProcessing's sep id 7 accepted"); return
        }
        #expect(field == "post_processor.sep")
        // An added token's stated id is the id it gets (the first after the model's 3), or an error.
        let added = { (id: String) in Self.document().replacingOccurrences(of: #""added_tokens": []"#, with:
            #""added_tokens": [{"id": \#(id), "content": "<x>", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}]"#) }
        #expect(Self.error(added("3")) == nil)
        guard case .invalidField(_, let addedField, let addedMessage)? = Self.error(added("1000000000000")) else {
            Issue.record("an added token with id 10^12 was accepted"); return
        }
        #expect(addedField == "added_tokens[0].id" && addedMessage.contains("gives '<x>' the id 3"), "\(addedMessage)")
    }

    @Test("unsupported components name their JSON field")
    func unsupported() {
        let wordPiece = Self.error(Self.document(model: #"{"type": "WordPiece", "vocab": {}, "unk_token": "[UNK]"}"#))
        #expect(wordPiece == .unsupported(file: "t.json", field: "model.type", value: "\"WordPiece\"", supported: ["BPE", "Unigram"]))
        #expect(wordPiece?.description == "t.json: model.type \"WordPiece\" is not supported (supported: BPE, Unigram)")

        let bertNorm = Self.error(Self.document(normalizer: #"{"type": "BertNormalizer", "lowercase": true}"#))
        #expect(bertNorm?.description.hasPrefix("t.json: normalizer.type \"BertNormalizer\" is not supported") == true)

        let nested = Self.error(Self.document(normalizer: #"{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "StripAccents"}]}"#))
        #expect(nested?.description.hasPrefix("t.json: normalizer.normalizers[1].type \"StripAccents\" is not supported") == true)

        let whitespace = Self.error(Self.document(preTokenizer: #"{"type": "Whitespace"}"#))
        #expect(whitespace?.description.hasPrefix(
            "t.json: pre_tokenizer.type \"Whitespace\" is not supported (supported: ByteLevel, Metaspace, Sequence, WhitespaceSplit)") == true)

        let wpDecoder = Self.error(Self.document(decoder: ###"{"type": "WordPiece", "prefix": "##"}"###))
        #expect(wpDecoder?.description.hasPrefix("t.json: decoder.type \"WordPiece\"") == true)

        let proc = Self.error(Self.document(postProcessor: #"{"type": "Fancy"}"#))
        #expect(proc?.description.hasPrefix("t.json: post_processor.type \"Fancy\"") == true)

        let dropout = Self.error(Self.document(model: #"{"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}"#))
        #expect(dropout?.description == "t.json: model.dropout 0.1 is not supported (supported: null, 0)")

        let version = Self.error(#"{"version": "2.0", "model": \#(Self.minimalModel)}"#)
        #expect(version?.description.hasPrefix("t.json: version \"2.0\" is not supported") == true)
    }

    @Test("bad models: missing fields, wrong types, merges outside the vocabulary")
    func badModels() {
        #expect(Self.error(#"{"version": "1.0"}"#) == .missingField(file: "t.json", field: "model"))
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "merges": []}"#)) == .missingField(file: "t.json", field: "model.vocab"))
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {"a": 0}}"#)) == .missingField(file: "t.json", field: "model.merges"))
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {"a": "zero"}, "merges": []}"#))?.description
                == #"t.json: field model.vocab["a"]: expected a non-negative integer id, found "zero""#)
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}"#))
                == .unknownToken(file: "t.json", field: "model.merges[0]", token: "ab"))
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]}"#))?.description
                == #"t.json: model.merges[0]: token "c" is not in the vocabulary"#)
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}"#))?.description.hasPrefix(
            "t.json: field model.merges[0]: expected \"left right\"") == true)
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": [42]}"#))?.description.hasPrefix(
            "t.json: field model.merges[0]: expected") == true)
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {}, "merges": [], "fuse_unk": "yes"}"#))?.description
                == "t.json: field model.fuse_unk: expected a boolean, found a string")
        #expect(Self.error(Self.document(postProcessor: #"{"type": "RobertaProcessing", "sep": ["</s>"], "cls": ["<s>", 0]}"#))?.description
                == #"t.json: field post_processor.sep: expected [token, id], found ["</s>"]"#)
        #expect(Self.error(Self.document(postProcessor: #"{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}], "pair": [], "special_tokens": {}}"#))
                == .unknownToken(file: "t.json", field: "post_processor.special_tokens", token: "[CLS]"))
        #expect(Self.error(Self.document(extra: #""added_tokens": [{"id": 5}], "#))?.description
                == "t.json: missing field added_tokens[0].content")
    }

    /// Found by the tokenizer fuzzer: a byte-level character's id above Int32.max (ids are u32, as in
    /// `tokenizers`) trapped in a conversion while the model was built.
    @Test("ids up to UInt32.max load and encode; ids outside it are refused by name, from a file or from memory")
    func idsUpToUInt32Max() throws {
        let big = Int(UInt32.max)
        let byteLevel = Self.document(model: #"{"type": "BPE", "vocab": {"a": 3000000000, "b": \#(big), "ab": 7}, "merges": [["a", "b"]]}"#,
                                      preTokenizer: #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#)
        let t = try Tokenizer(jsonString: byteLevel)
        #expect(try t.encode("ab").ids == [7])
        #expect(try t.encode("ba").ids == [big, 3_000_000_000])
        #expect(Self.error(Self.document(model: #"{"type": "BPE", "vocab": {"a": 4294967296}, "merges": []}"#))?.description
                == #"t.json: field model.vocab["a"]: expected a non-negative integer id, found 4294967296"#)
        #expect(throws: TokenizerError.invalidField(file: "<memory>", field: #"vocab["a"]"#, message: "expected an id in 0...4294967295, found -1")) {
            try BPEModel(vocab: ["a": -1], merges: [])
        }
        #expect(throws: TokenizerError.invalidField(file: "<memory>", field: #"vocab["b"]"#, message: "expected an id in 0...4294967295, found 4294967296")) {
            try BPEModel(vocab: ["b": big + 1], merges: [])
        }
    }

    @Test("invalid JSON and invalid UTF-8 give the position")
    func invalidDocuments() throws {
        let e = Self.error("{\n  \"version\": \"1.0\",\n  \"model\": {\"type\": \"BPE\",}\n}")
        #expect(e?.description == "t.json: invalid JSON: expected a string key, found '}' at line 3, column 27")
        #expect(Self.error("[1, 2")?.description == "t.json: invalid JSON: unterminated array at line 1, column 6")
        #expect(Self.error("")?.description == "t.json: invalid JSON: unexpected end of input at line 1, column 1")
        #expect(Self.error(#"{"a": "\ud800"}"#)?.description.contains("unpaired surrogate escape") == true)
        #expect(Self.error("{} x")?.description.contains("unexpected data after the JSON value") == true)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-text-errors-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.json").path
        try Data([0x7B, 0x0A, 0x22, 0xFF, 0x22, 0x7D]).write(to: URL(fileURLWithPath: bad))
        #expect(throws: TokenizerError.invalidUTF8(file: bad, line: 2)) { try Tokenizer(contentsOfFile: bad) }
        let missing = dir.appendingPathComponent("missing.json").path
        #expect(throws: TokenizerError.unreadableFile(file: missing, reason: "no such file")) { try Tokenizer(contentsOfFile: missing) }
        // A FIFO is refused at once (opening it for reading used to wait for a writer for ever), and
        // so is a folder.
        let fifo = dir.appendingPathComponent("fifo.json").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: TokenizerError.unreadableFile(file: fifo, reason: "not a regular file")) { try Tokenizer(contentsOfFile: fifo) }
        #expect(throws: TokenizerError.unreadableFile(file: dir.path, reason: "not a regular file")) { try Tokenizer(contentsOfFile: dir.path) }
    }

    @Test("vocab.json + merges.txt errors name the file and line")
    func classicErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-text-classic-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocab = dir.appendingPathComponent("vocab.json").path
        let merges = dir.appendingPathComponent("merges.txt").path
        try #"{"a": 0, "b": 1, "ab": 2, "Ġ": 3}"#.write(toFile: vocab, atomically: true, encoding: .utf8)
        try "#version: 0.2\na b\n".write(toFile: merges, atomically: true, encoding: .utf8)
        let ok = try Tokenizer.byteLevelBPE(vocabFile: vocab, mergesFile: merges)
        #expect(try ok.encode("ab ab").ids == [2, 3, 2])
        try "#version: 0.2\na b\nab\n".write(toFile: merges, atomically: true, encoding: .utf8)
        #expect(throws: TokenizerError.invalidMerges(file: merges, line: 3, message: #"expected two tokens separated by one space, found "ab""#)) {
            try Tokenizer.byteLevelBPE(vocabFile: vocab, mergesFile: merges)
        }
        try "#version: 0.2\na b\nb a\n".write(toFile: merges, atomically: true, encoding: .utf8)
        #expect(throws: TokenizerError.unknownToken(file: merges, field: "line 3", token: "ba")) {
            try Tokenizer.byteLevelBPE(vocabFile: vocab, mergesFile: merges)
        }
        try "[1, 2]".write(toFile: vocab, atomically: true, encoding: .utf8)
        #expect(throws: TokenizerError.self) { try Tokenizer.byteLevelBPE(vocabFile: vocab, mergesFile: merges) }
    }

    @Test("JSON reader and writer")
    func json() throws {
        let text = #"{"a": [1, -2.5, 3e2, true, false, null], "b": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u0001", "c": {}}"#
        let v = try JSONValue.parse(text)
        #expect(v["a"] == .array([.int(1), .double(-2.5), .double(300), .bool(true), .bool(false), .null]))
        #expect(v["b"]?.stringValue == "x\"\\/\u{8}\u{c}\n\r\té😀\u{1}")
        #expect(v.compactString() == #"{"a":[1,-2.5,300.0,true,false,null],"b":"x\"\\/\b\f\n\r\té😀\u0001","c":{}}"#)
        #expect(try JSONValue.parse(v.prettyString()) == v)
        #expect(JSONValue.array([]).prettyString() == "[]")
        #expect(JSONValue.object(["k": .array([.int(1)])]).prettyString() == "{\n  \"k\": [\n    1\n  ]\n}")
    }
}

@Suite("JSON Lines input and output")
struct JSONLinesTests {
    static func records(_ bytes: [UInt8]) -> Result<[String], TokenizerError> {
        Result { () throws(TokenizerError) -> [String] in
            var out: [String] = []
            try JSONLines.forEachRecord(in: bytes, file: "in.jsonl") { (record, line) throws(TokenizerError) in
                out.append(try JSONLines.string(record, "text", file: "in.jsonl", line: line))
            }
            return out
        }
    }

    @Test("records, CRLF line ends, a last line without LF")
    func reading() throws {
        #expect(try Self.records(Array("{\"text\": \"a\"}\r\n{\"text\": \"b\\r\\n\"}\n{\"text\": \"c\"}".utf8)).get() == ["a", "b\r\n", "c"])
        #expect(try Self.records([]).get() == [])
        var lines: [String] = []
        try JSONLines.forEachTextLine(in: Array("x\r\n\ny".utf8), file: "p.txt") { (text, _) throws(TokenizerError) in lines.append(text) }
        #expect(lines == ["x", "", "y"])
    }

    @Test("invalid UTF-8, invalid JSON, missing or mistyped fields name the file and line")
    func errors() {
        let badUTF8: [UInt8] = Array("{\"text\": \"a\"}\n{\"text\": \"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)
        #expect(throws: TokenizerError.invalidUTF8(file: "in.jsonl", line: 2)) { try Self.records(badUTF8).get() }
        let overlong: [UInt8] = [0xC0, 0xAF, 0x0A]
        #expect(throws: TokenizerError.invalidUTF8(file: "in.jsonl", line: 1)) { try Self.records(overlong).get() }
        let surrogate: [UInt8] = Array("{\"text\": \"a\"}\n{\"text\": \"b\"}\n\"".utf8) + [0xED, 0xA0, 0x80, 0x22]
        #expect(throws: TokenizerError.invalidUTF8(file: "in.jsonl", line: 3)) { try Self.records(surrogate).get() }
        #expect(throws: TokenizerError.invalidJSON(file: "in.jsonl", line: 2, message: "unexpected end of input at column 10")) {
            try Self.records(Array("{\"text\": \"a\"}\n{\"text\": ".utf8)).get()
        }
        #expect(throws: TokenizerError.invalidJSON(file: "in.jsonl", line: 2, message: "unexpected end of input at column 1")) {
            try Self.records(Array("{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n".utf8)).get()
        }
        #expect(throws: TokenizerError.missingField(file: "in.jsonl:1", field: "text")) { try Self.records(Array("{\"txt\": 1}".utf8)).get() }
        let wrong = Self.records(Array("[1]\n".utf8))
        #expect(wrong.errorDescription == "in.jsonl:1: field text: expected a JSON object per line, found an array")
        let number = Self.records(Array("{\"text\": 5}".utf8))
        #expect(number.errorDescription == "in.jsonl:1: field text: expected a string, found a number")
    }

    @Test("ids lines and text lines")
    func writing() throws {
        var out: [UInt8] = []
        JSONLines.appendIDsLine([0, 42, 8191, 2], to: &out)
        JSONLines.appendIDsLine([], to: &out)
        JSONLines.appendTextLine("a\"b\\\n\u{1}é😀", to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "{\"ids\":[0,42,8191,2]}\n{\"ids\":[]}\n{\"text\":\"a\\\"b\\\\\\n\\u0001é😀\"}\n")
        var ids: [[Int]] = []
        try JSONLines.forEachRecord(in: out, file: "o") { (record, line) throws(TokenizerError) in
            if line <= 2 { ids.append(try JSONLines.ids(record, "ids", file: "o", line: line)) }
        }
        #expect(ids == [[0, 42, 8191, 2], []])
    }
}

extension Result where Failure == TokenizerError {
    var errorDescription: String? {
        if case let .failure(e) = self { return e.description }
        return nil
    }
}
