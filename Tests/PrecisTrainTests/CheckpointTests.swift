import Foundation
import Testing
import PrecisCore
import PrecisTrain
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CheckpointTests {
    let dir: String
    let store: CheckpointStore

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-ckpt-\(UUID().uuidString)").path
        store = CheckpointStore(outputDir: dir + "/out")
    }

    func bytes(_ n: Int, seed: UInt8 = 1) -> Data { Data((0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }) }

    @discardableResult
    func save(_ step: Int) throws -> String {
        try store.save(step: step, files: [
            .data("config.json", Data("{\"step\": \(step)}".utf8)),
            .writer("model.safetensors") { path in try bytes(300_000, seed: UInt8(step % 200)).write(to: URL(fileURLWithPath: path)) },
        ])
    }

    func read(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func flipByte(_ path: String, at offset: Int) throws {
        var d = try read(path)
        d[offset] ^= 0xFF
        try d.write(to: URL(fileURLWithPath: path))
    }

    @Test func saveAndVerifyRoundTrip() throws {
        let p = try save(100)
        #expect(p == store.outputDir + "/checkpoint-100")
        try store.verify(p)
        #expect(try read(p + "/model.safetensors") == bytes(300_000, seed: 100))
        let m = try CheckpointStore.readManifest(p)
        #expect(m.format == "precis-checkpoint-1")
        #expect(m.step == 100)
        #expect(Set(m.files.keys) == ["config.json", "model.safetensors"])
        #expect(m.files["model.safetensors"] == .init(size: 300_000, sha256: Hashing.sha256Hex(bytes(300_000, seed: 100))))
        #expect(ISO8601DateFormatter().date(from: m.created) != nil)
        // No temporaries are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.outputDir) == ["checkpoint-100"])
        #expect(store.list().map(\.step) == [100])
        #expect(store.latest()?.path == p)
    }

    /// A checkpoint folder renamed to another step (a copy of step 100 as checkpoint-900) is not the
    /// newest: it does not verify, and the newest that does is taken, with the reason for the other.
    @Test func aFolderNamedForAnotherStepDoesNotVerify() throws {
        try save(100)
        try save(200)
        try FileManager.default.moveItem(atPath: store.outputDir + "/checkpoint-100", toPath: store.outputDir + "/checkpoint-900")
        var skipped: [String] = []
        #expect(store.latestValid { path, e in skipped.append("\(path): \(e)") }?.step == 200)
        #expect(skipped.count == 1 && skipped[0].contains("checkpoint-900") && skipped[0].contains("step 100, but the folder is named for step 900"),
                "\(skipped)")
    }

    @Test func savingTheSameStepAgainReplacesIt() throws {
        try save(7)
        let p = try store.save(step: 7, files: [.data("only.txt", Data("new".utf8))])
        try store.verify(p)
        #expect(try FileManager.default.contentsOfDirectory(atPath: p).sorted() == ["manifest.json", "only.txt"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.outputDir) == ["checkpoint-7"])
    }

    @Test func corruptByteIsNamed() throws {
        let p = try save(5)
        try flipByte(p + "/model.safetensors", at: 123_456)
        #expect(throws: CheckpointError.self) { try store.verify(p) }
        do { try store.verify(p) } catch let e as CheckpointError {
            guard case let .sha256Mismatch(c, f, _, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(c == p && f == "model.safetensors")
            #expect(e.description.contains("model.safetensors") && e.description.contains("corrupt"))
        }
    }

    @Test func truncatedAndMissingFilesAreNamed() throws {
        let p = try save(5)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p + "/model.safetensors"))
        try h.truncate(atOffset: 1000)
        try h.close()
        #expect(throws: CheckpointError.sizeMismatch(checkpoint: p, file: "model.safetensors", expected: 300_000, actual: 1000)) {
            try store.verify(p)
        }
        try FileManager.default.removeItem(atPath: p + "/config.json")
        #expect(throws: CheckpointError.missingFile(checkpoint: p, file: "config.json")) { try store.verify(p) }
    }

    @Test func missingManifestAndNonCheckpoints() throws {
        let p = try save(5)
        try FileManager.default.removeItem(atPath: p + "/manifest.json")
        #expect(throws: CheckpointError.missingManifest(checkpoint: p)) { try store.verify(p) }
        #expect(store.latest() == nil)
        #expect(throws: CheckpointError.notACheckpoint(path: dir + "/nope")) { try store.verify(dir + "/nope") }
        try Data("{\"format\": \"other\"}".utf8).write(to: URL(fileURLWithPath: p + "/manifest.json"))
        #expect(throws: CheckpointError.self) { try store.verify(p) }
    }

    /// A manifest or trainer state that is a link to /dev/zero or a FIFO is refused at once, by
    /// name: reading it whole would fill memory, or block for ever.
    @Test func manifestsAndStatesThatAreNotFilesAreRefused() throws {
        let p = try save(6)
        let fifo = dir + "/fifo.json"
        #expect(mkfifo(fifo, 0o600) == 0)
        for target in ["/dev/zero", fifo] {
            try FileManager.default.removeItem(atPath: p + "/manifest.json")
            try FileManager.default.createSymbolicLink(atPath: p + "/manifest.json", withDestinationPath: target)
            #expect(throws: CheckpointError.io(path: p + "/manifest.json", reason: "not a regular file")) { try store.verify(p) }
            #expect(throws: CheckpointError.io(path: target, reason: "not a regular file")) { try TrainerState.read(path: target) }
        }
    }

    @Test func badFileNamesAreRejected() throws {
        #expect(throws: CheckpointError.invalidFileName("sub/x.bin", reason: "checkpoint files are flat: no '/' in names")) {
            try store.save(step: 1, files: [.data("sub/x.bin", Data())])
        }
        #expect(throws: CheckpointError.self) { try store.save(step: 1, files: [.data("manifest.json", Data())]) }
        #expect(throws: CheckpointError.self) { try store.save(step: 1, files: [.data("a", Data()), .data("a", Data())]) }
        #expect(store.list().isEmpty)
    }

    struct WriterFailed: Error {}

    @Test func aFailingWriterLeavesNothing() throws {
        #expect(throws: WriterFailed.self) {
            try store.save(step: 3, files: [.data("a.txt", Data("a".utf8)), .writer("b.bin") { _ in throw WriterFailed() }])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.outputDir).isEmpty)
    }

    /// A crash leaves a temporary folder and (from an older writer) a checkpoint folder without a
    /// manifest; a later checkpoint is corrupt. Resuming picks the last good one.
    @Test func crashLeftoversAreSkippedAndCleaned() throws {
        let good = try save(10)
        let corrupt = try save(20)
        try flipByte(corrupt + "/config.json", at: 0)
        let half = store.outputDir + "/checkpoint-30"
        try FileManager.default.createDirectory(atPath: half, withIntermediateDirectories: true)
        try bytes(10).write(to: URL(fileURLWithPath: half + "/model.safetensors"))
        // A temporary folder of a process that no longer exists (pid above any pid_max).
        let tmp = store.outputDir + "/.tmp-checkpoint-40-2147483647"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        try bytes(10).write(to: URL(fileURLWithPath: tmp + "/model.safetensors"))
        // Not checkpoints at all.
        try FileManager.default.createDirectory(atPath: store.outputDir + "/checkpoint-best", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: store.outputDir + "/checkpoint-50"))

        #expect(store.list().map(\.step) == [10, 20, 30])
        #expect(store.latest()?.step == 20)
        var skipped: [(String, CheckpointError)] = []
        let resumed = store.latestValid { skipped.append(($0, $1)) }
        #expect(resumed?.path == good)
        #expect(skipped.map(\.0) == [half, corrupt])
        #expect(skipped.first?.1 == .missingManifest(checkpoint: half))
        if case .sha256Mismatch(_, "config.json", _, _)? = skipped.last?.1 {} else { Issue.record("\(skipped)") }

        #expect(try store.cleanTemporaries() == [tmp])
        #expect(!FileManager.default.fileExists(atPath: tmp))
        #expect(FileManager.default.fileExists(atPath: half))  // checkpoints are never touched by cleaning
    }

    @Test func rotationKeepsTheBestAndRespectsTheLimit() throws {
        for s in [100, 200, 300, 400, 500] { try save(s) }
        let best = store.path(step: 100)
        let deleted = try store.rotate(limit: 2, keep: [best, store.path(step: 500)])
        #expect(deleted == [200, 300, 400].map { store.path(step: $0) })
        #expect(store.list().map(\.step) == [100, 500])
        try store.verify(best)

        try save(600)
        // A relative or unnormalised spelling of the kept path still protects it.
        #expect(try store.rotate(limit: 2, keep: [store.outputDir + "/./checkpoint-100"]) == [store.path(step: 500)])
        #expect(store.list().map(\.step) == [100, 600])
        #expect(try store.rotate(limit: 1) == [store.path(step: 100)])
        #expect(store.list().map(\.step) == [600])
        #expect(throws: CheckpointError.invalidLimit(0)) { try store.rotate(limit: 0) }
        // Nothing but the survivor: rotation leaves no temporaries.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.outputDir) == ["checkpoint-600"])
    }

    /// A trainer_state.json as transformers writes it (4.5x), including keys Precis does not model.
    static let hfTrainerState = """
    {
      "best_global_step": 500,
      "best_metric": 42.1234,
      "best_model_checkpoint": "runs/bart-samsum/checkpoint-500",
      "epoch": 1.0,
      "eval_steps": 500,
      "global_step": 921,
      "is_hyper_param_search": false,
      "is_local_process_zero": true,
      "is_world_process_zero": true,
      "log_history": [
        {"epoch": 0.5429, "grad_norm": 3.2109, "learning_rate": 4.5e-05, "loss": 2.1834, "step": 500},
        {"epoch": 0.5429, "eval_gen_len": 18.27, "eval_loss": 1.6021, "eval_rouge1": 42.1234, "eval_rouge2": 18.9, "eval_rougeL": 34.5, "eval_rougeLsum": 38.7, "eval_runtime": 60.12, "eval_samples_per_second": 13.6, "eval_steps_per_second": 0.85, "step": 500},
        {"epoch": 1.0, "step": 921, "total_flos": 1.2e15, "train_loss": 2.01, "train_runtime": 1234.5, "train_samples_per_second": 11.93, "train_steps_per_second": 0.746}
      ],
      "logging_steps": 50,
      "max_steps": 921,
      "num_input_tokens_seen": 0,
      "num_train_epochs": 1,
      "save_steps": 500,
      "stateful_callbacks": {"TrainerControl": {"args": {"should_epoch_stop": false, "should_evaluate": false, "should_log": false, "should_save": true, "should_training_stop": true}, "attributes": {}}},
      "total_flos": 1234567890.0,
      "train_batch_size": 16,
      "trial_name": null,
      "trial_params": null
    }
    """

    @Test func trainerStateReadsHuggingFaceFilesAndUsesTheirKeys() throws {
        let s = try JSONDecoder().decode(TrainerState.self, from: Data(Self.hfTrainerState.utf8))
        #expect(s.globalStep == 921 && s.maxSteps == 921 && s.epoch == 1.0 && s.numTrainEpochs == 1)
        #expect(s.loggingSteps == 50 && s.evalSteps == 500 && s.saveSteps == 500 && s.trainBatchSize == 16)
        #expect(s.bestMetric == 42.1234 && s.bestModelCheckpoint == "runs/bart-samsum/checkpoint-500" && s.bestGlobalStep == 500)
        #expect(s.isLocalProcessZero && s.isWorldProcessZero && !s.isHyperParamSearch)
        #expect(s.totalFlos == 1234567890.0)
        #expect(s.logHistory.count == 3 && s.logHistory[1]["eval_rouge1"] == 42.1234 && s.logHistory[2]["total_flos"] == 1.2e15)

        // Every key Precis writes is one transformers writes, spelled the same; the only HF keys
        // left out are the ones Precis does not model.
        let hf = try JSONSerialization.jsonObject(with: Data(Self.hfTrainerState.utf8)) as! [String: Any]
        let ours = try JSONSerialization.jsonObject(with: try s.jsonData()) as! [String: Any]
        #expect(Set(ours.keys).isSubset(of: Set(hf.keys)))
        #expect(Set(hf.keys).subtracting(ours.keys) == ["num_input_tokens_seen", "stateful_callbacks", "trial_name", "trial_params"])
        #expect(Set(TrainerState.jsonKeys) == Set(ours.keys))
        // Absent optionals are written as null, as transformers does.
        var fresh = TrainerState()
        fresh.globalStep = 3
        let freshJSON = String(decoding: try fresh.jsonData(), as: UTF8.self)
        #expect(freshJSON.contains("\"best_metric\" : null") && freshJSON.contains("\"best_model_checkpoint\" : null"))
    }

    @Test func trainerStateWriteReadRoundTrip() throws {
        var s = TrainerState()
        s.globalStep = 1500; s.epoch = 2.25; s.maxSteps = 2000; s.numTrainEpochs = 3
        s.loggingSteps = 10; s.evalSteps = 500; s.saveSteps = 500; s.trainBatchSize = 16
        s.bestMetric = 41.5; s.bestModelCheckpoint = dir + "/out/checkpoint-1000"; s.bestGlobalStep = 1000
        s.totalFlos = 3.5e14
        s.logHistory = [["step": 10, "loss": 3.25, "learning_rate": 7e-4, "grad_norm": .nan],
                        ["step": 500, "eval_rouge1": 41.5, "eval_loss": 1.75]]
        let path = try save(1500) + "/trainer_state.json"
        try s.write(to: path)
        let back = try TrainerState.read(path: path)
        #expect(back.logHistory[0]["grad_norm"]!.isNaN)
        var a = s, b = back
        a.logHistory[0]["grad_norm"] = 0; b.logHistory[0]["grad_norm"] = 0
        #expect(a == b)
        let text = String(decoding: try read(path), as: UTF8.self)
        #expect(text.contains("\"global_step\" : 1500") && !text.contains("\\/"))
        // Sorted keys, pretty-printed: stable diffs.
        #expect(text.range(of: "\"best_global_step\"")!.lowerBound < text.range(of: "\"epoch\"")!.lowerBound)
        // No temporary file stays beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.path(step: 1500)).sorted()
                == ["config.json", "manifest.json", "model.safetensors", "trainer_state.json"])
    }

    @Test func trainerStateErrorsAreClear() throws {
        #expect(throws: CheckpointError.io(path: dir + "/missing.json", reason: "no such file")) {
            try TrainerState.read(path: dir + "/missing.json")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bad = dir + "/bad.json"
        try Data("{\"global_step\": \"ten\"}".utf8).write(to: URL(fileURLWithPath: bad))
        do {
            _ = try TrainerState.read(path: bad)
            Issue.record("expected an error")
        } catch let e as CheckpointError {
            #expect(e.description.contains("global_step") && e.description.contains(bad))
        }
    }
}
