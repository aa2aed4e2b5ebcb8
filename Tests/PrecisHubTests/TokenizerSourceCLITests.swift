import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// `training.tokenizer` and `precis tokenizer … --tokenizer` naming a folder of classic files or a
/// Hub repository without tokenizer.json (vocab.json + merges.txt, spiece.model): the built
/// executable, the loopback download hub (FakeDownloadHub), real fixture files.
@Suite struct TokenizerSourceCLITests {
    static let fixtures = TestData.repo.appendingPathComponent("Tests/Fixtures").path

    static func copy(_ from: String, _ to: String) throws {
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    static func contents(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    /// Dialogues to encode, with the characters byte-level BPE and SentencePiece treat specially.
    static func writeInputs(_ path: String) throws {
        let texts = ["Amanda: I baked cookies. Do you want some?\nJerry: Sure!", "Anna: Café at 12:30? 😀\nBen: Ja — gern.",
                     "  leading and trailing spaces  ", "ﬁne Ｔｅｓｔ"]
        let lines = try texts.map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func encode(_ tokenizer: String, _ input: String, env: [String: String] = [:]) throws -> HubDownloadCLITests.Result {
        try HubDownloadCLITests.run(["tokenizer", "encode", "--tokenizer", tokenizer, "--input", input], env: env)
    }

    static func trainConfig(_ dir: String, model: String, tokenizer: String, out: String, prefix: String = "") throws -> String {
        var lines = ""
        for i in 0..<8 {
            lines += "{\"dialogue\": \"Anna: Are we meeting at \(i)?\\nBen: Yes, see you then.\", \"summary\": \"Anna and Ben meet at \(i).\"}\n"
        }
        try Data(lines.utf8).write(to: URL(fileURLWithPath: dir + "/train.jsonl"))
        let yaml = """
            training:
              output_dir: \(out)
              model: \(model)
              tokenizer: \(tokenizer)
              train_file: \(dir)/train.jsonl
              source_prefix: "\(prefix)"
              max_source_length: 32
              max_target_length: 8
              per_device_train_batch_size: 4
              max_steps: 2
              logging_steps: 1
              report_to: none
            """
        let path = dir + "/\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Byte-level BPE as vocab.json + merges.txt: a local folder and a Hub repository tokenize as the
    /// tokenizer.json of the same BPE does; a run with either saves a tokenizer.json that does too.
    @Test func vocabAndMergesFolderAndHubRepository() throws {
        let dir = TestData.tempDir("tokfolder")
        let folder = dir + "/classic"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Self.copy(Self.fixtures + "/tokenizer/samsum-bpe-8192-vocab.json", folder + "/vocab.json")
        try Self.copy(Self.fixtures + "/tokenizer/samsum-bpe-8192-merges.txt", folder + "/merges.txt")
        let json = Self.fixtures + "/tokenizer/samsum-bpe-8192.json"
        let input = dir + "/in.jsonl"
        try Self.writeInputs(input)

        let reference = try Self.encode(json, input)
        #expect(reference.status == 0 && reference.stdout.contains("\"ids\""), "\(reference.stderr)")
        let fromFolder = try Self.encode(folder, input)
        #expect(fromFolder.status == 0 && fromFolder.stdout == reference.stdout, "\(fromFolder.stderr)\n\(fromFolder.stdout)")

        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        var files = try Self.contents(folder)
        files["README.md"] = Data("# a tokenizer\n".utf8)
        let commit = hub.publish("precis-test/bpe-classic", files: files)
        let env = ["HF_ENDPOINT": hub.hubURL, "HF_HOME": dir + "/hf", "HF_TOKEN_PATH": "/nonexistent"]
        let fromHub = try Self.encode("precis-test/bpe-classic", input, env: env)
        #expect(fromHub.status == 0 && fromHub.stdout == reference.stdout, "\(fromHub.stderr)")
        let snapshot = dir + "/hf/hub/models--precis-test--bpe-classic/snapshots/\(commit)"
        #expect(FileManager.default.fileExists(atPath: snapshot + "/merges.txt"))
        #expect(!FileManager.default.fileExists(atPath: snapshot + "/README.md"))

        // training.tokenizer: the folder, then the Hub repository (resolved by `precis train`).
        for (tag, tok) in [("folder", folder), ("hub", "precis-test/bpe-classic@main")] {
            let out = dir + "/out-" + tag
            let cfg = try Self.trainConfig(dir, model: "bart-tiny", tokenizer: tok, out: out)
            let r = try HubDownloadCLITests.run(["train", "--in-process", "--config", cfg, "--threads", "1"], env: env)
            #expect(r.status == 0, "\(tag): \(r.stdout)\n\(r.stderr)")
            let saved = try Self.encode(out + "/tokenizer.json", input)
            #expect(saved.status == 0 && saved.stdout == reference.stdout, "\(tag): \(saved.stderr)")
            // The saved model folder is itself a tokenizer folder.
            let savedFolder = try Self.encode(out, input)
            #expect(savedFolder.status == 0 && savedFolder.stdout == reference.stdout, "\(tag): \(savedFolder.stderr)")
        }
    }

    /// A SentencePiece `spiece.model` with `config.json` (model_type t5) and no tokenizer_config.json:
    /// the Hub download fetches config.json for the class, and the tokenizer is T5's.
    @Test func spieceHubRepository() throws {
        let dir = TestData.tempDir("tokspiece")
        let local = Self.fixtures + "/formats/t5-spiece"
        let input = dir + "/in.jsonl"
        try Self.writeInputs(input)
        let reference = try Self.encode(local, input)
        #expect(reference.status == 0 && reference.stdout.contains("\"ids\""), "\(reference.stderr)")

        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        hub.publish("precis-test/t5-spiece", files: try Self.contents(local))
        let env = ["HF_ENDPOINT": hub.hubURL, "HF_HOME": dir + "/hf", "HF_TOKEN_PATH": "/nonexistent"]
        let fromHub = try Self.encode("precis-test/t5-spiece", input, env: env)
        #expect(fromHub.status == 0 && fromHub.stdout == reference.stdout, "\(fromHub.stderr)")

        let out = dir + "/out"
        let cfg = try Self.trainConfig(dir, model: "t5-tiny", tokenizer: "precis-test/t5-spiece", out: out, prefix: "summarize: ")
        let r = try HubDownloadCLITests.run(["train", "--in-process", "--config", cfg, "--threads", "1"], env: env)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let saved = try Self.encode(out + "/tokenizer.json", input)
        #expect(saved.status == 0 && saved.stdout == reference.stdout, "\(saved.stderr)")
    }

    /// `precis summarize --ids`: each line's ids start with the decoder start token, and decoded
    /// (`precis tokenizer decode --skip-special-tokens`, stripped) they are the line's summary.
    @Test func summarizeIdsDecodeToTheSummary() throws {
        let dir = TestData.tempDir("sumids")
        let made = try HubDownloadCLITests.run(["init", "--config", "bart-tiny", "--out", dir + "/model", "--seed", "9"])
        #expect(made.status == 0, "\(made.stderr)")
        try Self.copy(Self.fixtures + "/tokenizer/samsum-bpe-8192-vocab.json", dir + "/model/vocab.json")
        try Self.copy(Self.fixtures + "/tokenizer/samsum-bpe-8192-merges.txt", dir + "/model/merges.txt")
        let input = dir + "/in.jsonl"
        try Self.writeInputs(input)
        let common = ["summarize", "--model", dir + "/model", "--input", input, "--text-column", "text",
                      "--max-new-tokens", "6", "--min-length", "5", "--batch-size", "3"]
        let plain = try HubDownloadCLITests.run(common)
        let withIds = try HubDownloadCLITests.run(common + ["--ids"])
        #expect(plain.status == 0 && withIds.status == 0, "\(plain.stderr)\n\(withIds.stderr)")
        let lines = withIds.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let plainLines = plain.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == 4 && plainLines.count == 4)
        try withIds.stdout.write(toFile: dir + "/ids.jsonl", atomically: true, encoding: .utf8)
        let decoded = try HubDownloadCLITests.run(["tokenizer", "decode", "--tokenizer", dir + "/model", "--input", dir + "/ids.jsonl",
                                                   "--skip-special-tokens"])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        let texts = decoded.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        for (i, line) in lines.enumerated() {
            let ids = line?["ids"] as? [Int] ?? []
            let summary = line?["summary"] as? String
            #expect(ids.first == 2 && ids.count >= 5, "\(ids)")
            #expect(summary == plainLines[i]?["summary"] as? String)
            let text = (texts.count > i ? texts[i]?["text"] as? String : nil)?.trimmingCharacters(in: .whitespacesAndNewlines)
            // (A random model may generate special tokens only: then both are empty.)
            #expect(text == summary, "\(String(describing: text)) vs \(String(describing: summary))")
        }
    }

    /// Folders that hold no usable tokenizer: one line naming the folder or file, exit status 1.
    @Test func unusableFoldersAreRefused() throws {
        let dir = TestData.tempDir("tokbad")
        let input = dir + "/in.jsonl"
        try Self.writeInputs(input)
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let r = try Self.encode(empty, input)
        #expect(r.status == 1 && r.stderr.contains("\(empty): no tokenizer"), "\(r.stderr)")

        let broken = dir + "/broken"
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
        try Data("{\"a\": 0,".utf8).write(to: URL(fileURLWithPath: broken + "/vocab.json"))
        try Self.copy(Self.fixtures + "/tokenizer/samsum-bpe-8192-merges.txt", broken + "/merges.txt")
        let b = try Self.encode(broken, input)
        #expect(b.status == 1 && b.stderr.contains("vocab.json"), "\(b.stderr)")

        let cfg = try Self.trainConfig(dir, model: "bart-tiny", tokenizer: empty, out: dir + "/out")
        let t = try HubDownloadCLITests.run(["train", "--in-process", "--config", cfg, "--threads", "1"])
        #expect(t.status == 1 && t.stderr.contains("\(empty): no tokenizer"), "\(t.stderr)")
        #expect(!t.stderr.contains("Fatal error"))
    }
}
