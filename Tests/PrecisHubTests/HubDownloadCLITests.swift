import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// `precis summarize --model org/name` as a user runs it: the built executable, HF_ENDPOINT at the
/// loopback hub, a fresh Hugging Face cache.
@Suite struct HubDownloadCLITests {
    static var binary: String {
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("precis").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return TestData.repo.appendingPathComponent(".build/release/precis").path
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String], env: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for k in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE"] { e[k] = nil }
        p.environment = e.merging(env) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), x = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: x, as: UTF8.self))
    }

    @Test func summarizeWithAHubModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-hubcli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let initialised = try Self.run(["init", "--config", "bart-tiny", "--out", dir + "/model", "--seed", "3"])
        #expect(initialised.status == 0, "\(initialised.stderr)")
        try FileManager.default.copyItem(atPath: TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path,
                                         toPath: dir + "/model/tokenizer.json")
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/model") {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/model/" + name))
        }
        files["README.md"] = Data("# tiny\n".utf8)
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        let commit = hub.publish("precis-test/bart-tiny", files: files)
        try Data("{\"dialogue\": \"Amanda: I baked cookies. Do you want some?\\nJerry: Sure!\"}\n".utf8)
            .write(to: URL(fileURLWithPath: dir + "/in.jsonl"))
        let common = ["--input", dir + "/in.jsonl", "--max-new-tokens", "4"]
        let env = ["HF_ENDPOINT": hub.hubURL, "HF_HOME": dir + "/hf", "HF_TOKEN_PATH": "/nonexistent"]

        let local = try Self.run(["summarize", "--model", dir + "/model"] + common)
        #expect(local.status == 0, "\(local.stderr)")
        let fromHub = try Self.run(["summarize", "--model", "precis-test/bart-tiny"] + common, env: env)
        #expect(fromHub.status == 0, "\(fromHub.stderr)")
        #expect(fromHub.stdout == local.stdout && !local.stdout.isEmpty)
        #expect(fromHub.stderr.contains("downloading precis-test/bart-tiny/model.safetensors"))
        #expect(FileManager.default.fileExists(atPath: dir + "/hf/hub/models--precis-test--bart-tiny/snapshots/\(commit)/model.safetensors"))

        // Offline, from the cache: the same answer and no request at all.
        hub.clearLog()
        let offline = try Self.run(["summarize", "--model", "precis-test/bart-tiny@main"] + common, env: env.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(offline.stdout == local.stdout && hub.requests.isEmpty)

        // `precis tokenizer encode --tokenizer org/name`: the repository's tokenizer.json, from the cache.
        let encodeArgs = ["--input", dir + "/in.jsonl", "--field", "dialogue"]
        let encodedLocal = try Self.run(["tokenizer", "encode", "--tokenizer", dir + "/model/tokenizer.json"] + encodeArgs)
        let encodedHub = try Self.run(["tokenizer", "encode", "--tokenizer", "precis-test/bart-tiny"] + encodeArgs,
                                      env: env.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        #expect(encodedHub.status == 0 && encodedHub.stdout == encodedLocal.stdout && encodedLocal.stdout.contains("ids"), "\(encodedHub.stderr)")

        // Neither a folder nor a repository: one line, exit status 1.
        let missing = try Self.run(["summarize", "--model", "precis-test/absent"] + common, env: env)
        #expect(missing.status == 1 && missing.stderr.contains("no local folder 'precis-test/absent'"), "\(missing.stderr)")
        let offlineMissing = try Self.run(["summarize", "--model", "precis-test/absent"] + common, env: env.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        #expect(offlineMissing.status == 1 && offlineMissing.stderr.contains("HF_HUB_OFFLINE"), "\(offlineMissing.stderr)")
    }

    /// `precis train --in-process` with `model:` and `tokenizer:` naming a Hub repository: both are
    /// downloaded before training, and the run trains from the downloaded weights.
    @Test func trainFromAHubModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-hubtrain-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(try Self.run(["init", "--config", "bart-tiny", "--out", dir + "/model", "--seed", "5"]).status == 0)
        try FileManager.default.copyItem(atPath: TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path,
                                         toPath: dir + "/model/tokenizer.json")
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/model") {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/model/" + name))
        }
        let hub = try FakeDownloadHub(token: "hf_trainTOKEN123456789")
        defer { hub.stop() }
        let commit = hub.publish("precis-test/bart-tiny", files: files, gated: true)
        var lines = ""
        for i in 0..<8 {
            lines += "{\"dialogue\": \"Anna: Are we meeting at \(i)?\\nBen: Yes, see you then.\", \"summary\": \"Anna and Ben meet at \(i).\"}\n"
        }
        try Data(lines.utf8).write(to: URL(fileURLWithPath: dir + "/train.jsonl"))
        let yaml = """
            training:
              output_dir: \(dir)/out
              model: precis-test/bart-tiny
              tokenizer: precis-test/bart-tiny@main
              train_file: \(dir)/train.jsonl
              max_source_length: 32
              max_target_length: 8
              per_device_train_batch_size: 4
              max_steps: 2
              logging_steps: 1
              report_to: none
            """
        try yaml.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let env = ["HF_ENDPOINT": hub.hubURL, "HF_HOME": dir + "/hf", "HF_TOKEN": "hf_trainTOKEN123456789"]
        let r = try Self.run(["train", "--in-process", "--config", dir + "/c.yaml", "--threads", "1"], env: env)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("precis-test/bart-tiny → \(dir)/hf/hub/models--precis-test--bart-tiny/snapshots/\(commit)"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
        // The gated repository without the token: the error says what to do.
        let gated = try Self.run(["train", "--in-process", "--config", dir + "/c.yaml"],
                                 env: ["HF_ENDPOINT": hub.hubURL, "HF_HOME": dir + "/hf2", "HF_TOKEN_PATH": "/nonexistent"])
        #expect(gated.status == 1 && gated.stderr.contains("set HF_TOKEN"), "\(gated.stderr)")
    }
}
