import Foundation
import Testing
import PrecisCore
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

extension RealProcesses {
/// `model:` and `tokenizer:` naming a Hub repository in a cluster: only the process that starts
/// the run resolves them (here from a Hugging Face cache, offline); the workers are handed the
/// local paths in the config they receive and never look at the Hub or the cache themselves.
@Suite struct HubModelClusterTests {
    /// A Hugging Face cache holding `precis-test/tiny` at `main`, laid out as huggingface_hub
    /// leaves it (blobs by sha256, a snapshot of relative symlinks, refs/main), built from a
    /// model folder `precis init` wrote.
    static func cache(in dir: String) throws -> (cache: String, snapshot: String) {
        let model = try TestCluster.tiny(in: dir)
        let r = try ClusterCommandTests.precis(["init", "--config", model, "--out", dir + "/model", "--seed", "11"], in: dir)
        #expect(r.status == 0, "\(r.output)")
        try FileManager.default.copyItem(atPath: TestData.repo.path + "/Tests/Fixtures/tokenizer/samsum-bpe-8192.json",
                                         toPath: dir + "/model/tokenizer.json")
        let cache = dir + "/hf/hub", repo = cache + "/models--precis-test--tiny"
        let commit = "0123456789abcdef0123456789abcdef01234567"
        let snapshot = repo + "/snapshots/" + commit
        try FileManager.default.createDirectory(atPath: repo + "/blobs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: repo + "/refs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/model") {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/model/" + name))
            let etag = Hashing.sha256Hex(data)
            try data.write(to: URL(fileURLWithPath: repo + "/blobs/" + etag))
            #expect(symlink("../../blobs/" + etag, snapshot + "/" + name) == 0)
        }
        try Data(commit.utf8).write(to: URL(fileURLWithPath: repo + "/refs/main"))
        return (cache, snapshot)
    }

    @Test func theCoordinatorResolvesAndWorkersGetLocalPaths() throws {
        let dir = TestData.tempDir("hubmodel")
        let (cache, snapshot) = try Self.cache(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: "precis-test/tiny", batch: 4, steps: 3, servers: 1, workers: 1,
                                         extraTraining: "tokenizer: precis-test/tiny@main\npush_to_hub: true\nhub_model_id: team/tiny\nhub_url: file://\(dir)/hub")
        // precis-coordinator started by hand (as `precis cluster up` does): it resolves from the cache.
        let c = TestCluster(dir: dir, config: cfg)
        c.environment = ["HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1"]
        try c.startCoordinator()
        c.environment = ["HF_HUB_CACHE": dir + "/no-cache-here", "HF_HUB_OFFLINE": "1"]
        try c.startServer("ps0")
        try c.startWorker("w0")
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("precis-test/tiny → \(snapshot)"), "\(c.allLogs())")
        #expect(c.log("w0").contains("registered as w0"), "\(c.allLogs())")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
        // The model card names the repository the run started from, not the cache folder.
        let cards = (FileManager.default.enumerator(atPath: dir + "/hub")?.allObjects as? [String] ?? []).filter { $0.hasSuffix("README.md") }
        #expect(!cards.isEmpty, "\(c.allLogs())")
        for card in cards {
            let text = (try? String(contentsOfFile: dir + "/hub/" + card, encoding: .utf8)) ?? ""
            #expect(text.contains("base_model: precis-test/tiny") && !text.contains("snapshots"), "\(text)")
        }

        // `precis train`: resolved before anything is launched; every member gets the local paths.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestCluster.binDir + "/precis")
        p.arguments = ["train", "--config", cfg, "--output-dir", dir + "/out2"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = ProcessInfo.processInfo.environment.merging(["HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1"]) { $1 }
        let out = Pipe()
        p.standardOutput = out; p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("precis-test/tiny → \(snapshot)"), "\(text)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out2/model.safetensors"))
    }
}
}
