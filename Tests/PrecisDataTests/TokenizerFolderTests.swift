import Foundation
import Testing
import PrecisData
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Folders without `tokenizer.json` tokenize exactly as transformers 5 builds their tokenizer from the
/// classic files: BartTokenizerFast from vocab.json + merges.txt, T5TokenizerFast / PegasusTokenizerFast
/// from spiece.model (golden ids: tools/golden/make_formats_golden.py, Tests/Fixtures/formats).
@Suite struct TokenizerFolderTests {
    static let formats = TestData.repo.appendingPathComponent("Tests/Fixtures/formats")

    struct Golden { var set: String; var i: Int; var text: String?; var hash: [String: String]; var ids: [String: [Int32]] }

    static func golden() throws -> [Golden] {
        let text = try String(contentsOf: formats.appendingPathComponent("tokenizers-golden.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            var g = Golden(set: o["set"] as! String, i: o["i"] as! Int, text: o["text"] as? String, hash: [:], ids: [:])
            for fam in ["bart", "bart_cfg", "t5", "pegasus"] {
                g.hash[fam] = o[fam] as? String
                if let ids = o[fam + "_ids"] as? [Int] { g.ids[fam] = ids.map { Int32($0) } }
            }
            return g
        }
    }

    /// The SAMSum validation dialogues of the repo's corpus (`make data` unpacks it; `make test` does).
    static func validationDialogues() -> [String]? {
        let f = TestData.repo.appendingPathComponent("data/samsum/validation.jsonl")
        guard let text = try? String(contentsOf: f, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["dialogue"] as? String
        }
    }

    static func fnv(_ ids: [Int32]) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in ids.map(String.init).joined(separator: ",").utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// tools/golden/make_formats_golden.py's BART_CFG: the optional files that change the pair's tokenizer.
    static let bartConfigFiles = [
        "tokenizer_config.json": #"{"add_prefix_space": true, "tokenizer_class": "BartTokenizer"}"#,
        "special_tokens_map.json": #"{"mask_token": {"content": "<mask>", "lstrip": true, "normalized": false, "rstrip": false, "single_word": false, "special": true}}"#,
    ]

    static func bartFolder() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-bart-tok-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let tok = TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer").path
        try FileManager.default.copyItem(atPath: tok + "/samsum-bpe-8192-vocab.json", toPath: d + "/vocab.json")
        try FileManager.default.copyItem(atPath: tok + "/samsum-bpe-8192-merges.txt", toPath: d + "/merges.txt")
        return d
    }

    static func encoder(_ fam: String) throws -> TokenizerEncoder {
        switch fam {
        case "bart", "bart_cfg":
            // Read eagerly: the temporary folder can go once the encoder is built.
            let d = try bartFolder()
            defer { try? FileManager.default.removeItem(atPath: d) }
            if fam == "bart" { return try TokenizerEncoder(folder: d) }
            for (name, text) in bartConfigFiles { try Data(text.utf8).write(to: URL(fileURLWithPath: d + "/" + name)) }
            return try TokenizerEncoder(folder: d)
        case "t5": return try TokenizerEncoder(folder: formats.appendingPathComponent("t5-spiece").path)
        default: return try TokenizerEncoder(folder: formats.appendingPathComponent("pegasus-spiece").path)
        }
    }

    @Test(arguments: ["bart", "bart_cfg", "t5", "pegasus"])
    func classicFilesGiveTransformersIds(_ fam: String) throws {
        let enc = try Self.encoder(fam)
        let golden = try Self.golden()
        var full = 0
        for g in golden {
            guard let text = g.text, let want = g.ids[fam] else { continue }
            let got = try enc.encode(text, maxLength: nil)
            #expect(got == want, "\(fam) \(g.set)[\(g.i)]: \(text.prefix(60))")
            full += 1
        }
        #expect(full >= 50)
        // Every validation dialogue, by the hash of its ids.
        guard let dialogues = Self.validationDialogues() else {
            Issue.record("data/samsum/validation.jsonl is missing: `make data` unpacks the corpus")
            return
        }
        let hashes = golden.filter { $0.set == "validation" }
        #expect(hashes.count == dialogues.count)
        var wrong: [Int] = []
        for g in hashes where g.i < dialogues.count {
            if Self.fnv(try enc.encode(dialogues[g.i], maxLength: nil)) != g.hash[fam] { wrong.append(g.i) }
        }
        #expect(wrong.isEmpty, "\(fam): validation dialogues \(wrong.prefix(10)) differ from transformers")
    }

    @Test func folderChoiceAndRefusals() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-tokfolder-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: d) }
        #expect(throws: TokenizerFolder.Failure.noTokenizer(folder: d)) { _ = try TokenizerFolder.load(d) }
        // spiece.model with no way to tell T5 from Pegasus.
        try FileManager.default.copyItem(atPath: Self.formats.appendingPathComponent("t5-spiece/spiece.model").path, toPath: d + "/spiece.model")
        #expect(throws: TokenizerFolder.Failure.self) { _ = try TokenizerFolder.load(d) }
        // tokenizer_config.json names the class; extra_ids is honoured.
        try Data(#"{"tokenizer_class": "T5TokenizerFast", "extra_ids": 3}"#.utf8).write(to: URL(fileURLWithPath: d + "/tokenizer_config.json"))
        let t5 = try TokenizerFolder.load(d)
        #expect(t5.tokenizer.vocabSize == 803)
        #expect(t5.tokenizer.tokenToID("<extra_id_0>") == 802)
        // Special tokens other than the defaults are refused, naming the file and the token.
        try Data(#"{"tokenizer_class": "T5Tokenizer", "eos_token": "<eos>"}"#.utf8).write(to: URL(fileURLWithPath: d + "/tokenizer_config.json"))
        do {
            _ = try TokenizerFolder.load(d)
            Issue.record("custom eos_token accepted")
        } catch let e as TokenizerFolder.Failure {
            #expect(e.description.contains("eos_token '<eos>' differs from the default '</s>'"))
        }
        // A corrupt spiece.model is refused by name.
        try FileManager.default.removeItem(atPath: d + "/tokenizer_config.json")
        try Data(#"{"model_type": "pegasus"}"#.utf8).write(to: URL(fileURLWithPath: d + "/config.json"))
        let good = try Data(contentsOf: URL(fileURLWithPath: d + "/spiece.model"))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: d + "/spiece.model"))
        #expect(throws: (any Error).self) { _ = try TokenizerFolder.load(d) }
        // tokenizer.json wins over everything else.
        try FileManager.default.copyItem(atPath: TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path,
                                         toPath: d + "/tokenizer.json")
        #expect(try TokenizerFolder.load(d).files == [d + "/tokenizer.json"])
    }

    /// The folder's settings files (tokenizer_config.json, special_tokens_map.json, config.json), a
    /// file fingerprinted for the tokenized cache, and the cache file itself: a FIFO in a file's place
    /// is refused at once and a link to /dev/zero is not read (before, either one blocked or filled
    /// memory for ever); the error names the file.
    @Test func filesThatAreNotRegularAreRefusedNamingThem() throws {
        let d = try Self.bartFolder()
        defer { try? FileManager.default.removeItem(atPath: d) }
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            let path = d + "/" + name
            for special in ["fifo", "/dev/zero"] {
                if special == "fifo" { #expect(mkfifo(path, 0o600) == 0) }
                else { try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: special) }
                #expect(throws: TokenizerFolder.Failure.unsupported(file: path, detail: "not a regular file")) {
                    _ = try TokenizerFolder.load(d)
                }
                try FileManager.default.removeItem(atPath: path)
            }
        }
        let big = d + "/tokenizer_config.json"
        var bytes = Data(repeating: UInt8(ascii: " "), count: (16 << 20) + 1)
        bytes[12_345_678] = UInt8(ascii: "x")
        try bytes.write(to: URL(fileURLWithPath: big))
        do { _ = try TokenizerFolder.load(d); Issue.record("a 16 MiB tokenizer_config.json was read") } catch {
            #expect("\(error)".contains(big) && "\(error)".contains("larger than"), "\(error)")
        }
        // FNV.file reads a piece at a time (17 pieces here) and gives what hashing the whole bytes gives.
        #expect(try FNV.file(big) == String(format: "%016llx-%d", FNV.hash(bytes), bytes.count))
        try FileManager.default.removeItem(atPath: big)
        _ = try TokenizerFolder.load(d)

        let fifo = d + "/data.jsonl"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: DataError.cannotRead(file: fifo, reason: "\(fifo): not a regular file")) { _ = try FNV.file(fifo) }
        #expect(throws: DataError.badCache(file: fifo, reason: "not a regular file")) { _ = try TokenizedDataset(mapping: fifo) }
    }
}
