import Foundation
import Testing
import PrecisCore
import PrecisTrain
import PrecisWire
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Coordinator services over real processes: checkpoints, resuming, recovery from a lost server
/// or coordinator, evaluation spread over the workers, hub pushes.
extension RealProcesses {
@Suite struct ServicesTests {
    static func bytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

    /// Train 20 steps saving at 10; resume from checkpoint-10 and train to 20: the same bits. With a
    /// different number of workers, the same parameters to 1e-6.
    @Test func resumingFromACheckpointContinuesExactly() throws {
        let dir = TestData.tempDir("resume")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 20, servers: 2, workers: 2,
                                         extraTraining: "save_steps: 10")
        let a = try TestCluster.up(dir: dir, config: cfg, servers: 2, workers: 2)
        #expect(a.wait("coordinator") == 0, "\(a.allLogs())")
        let ckpt = dir + "/out/checkpoint-10"
        for f in ["model.safetensors", "optimizer.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                  "trainer_state.json", "training_state.json", "manifest.json"] {
            #expect(FileManager.default.fileExists(atPath: ckpt + "/" + f), "\(f)")
        }
        try CheckpointStore(outputDir: dir + "/out").verify(ckpt)
        let state = try TrainerState.read(path: ckpt + "/trainer_state.json")
        #expect(state.globalStep == 10 && state.logHistory.count == 10)
        try FileManager.default.copyItem(atPath: ckpt, toPath: dir + "/saved-10")
        let uninterrupted = Self.bytes(dir + "/out/model.safetensors")

        for workers in [2, 1] {
            let sub = dir + "/resume-\(workers)"
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            let rcfg = try TestCluster.config(dir: sub, model: model, batch: 4, steps: 20, servers: 2, workers: 2,
                                              extraTraining: "save_steps: 10\nresume_from_checkpoint: \(dir)/saved-10",
                                              extraCluster: "start_timeout: 1")
            let b = try TestCluster.up(dir: sub, config: rcfg, servers: 2, workers: workers)
            #expect(b.wait("coordinator") == 0, "\(b.allLogs())")
            #expect(b.log("coordinator").contains("resuming from \(dir)/saved-10 at step 10"))
            #expect(!b.log("coordinator").contains("step 5/20"), "steps before the checkpoint are not run again")
            if workers == 2 {
                #expect(Self.bytes(sub + "/out/model.safetensors") == uninterrupted, "resumed run differs from the uninterrupted one")
            } else {
                let d = compareParameters(try loadParameters(sub + "/out"), try loadParameters(dir + "/out"))
                #expect(d.global < 1e-6 && d.worst < 1e-6, "\(d)")
            }
        }
        // A training_state.json edited by hand (its manifest digest made to match) is refused, naming
        // the field, before anything starts: a negative or overflowing step trapped the coordinator.
        // So is a checkpoint past the run's last step (the coordinator waited a minute, then failed).
        // A sync checkpoint resumed under async would restart the data at epoch 0 (its cursor is
        // the step's only in sync), and an examples count near Int.max overflowed the next report.
        let cases: [(String, Any, String)] = [("global_step", -5, "global_step -5 is not in 0…"),
                                              ("global_step", Int.max, "global_step \(Int.max) is not in 0…"),
                                              ("cursor_offset", -7, "cursor_offset -7 is not in 0…"),
                                              ("examples_seen", -1, "examples_seen -1 is not in 0…"),
                                              ("examples_seen", Int.max, "examples_seen \(Int.max) is not in 0…"),
                                              ("consistency", "async", "the checkpoint was trained with consistency async, this run's is sync"),
                                              ("global_step", 10, "the checkpoint is at step 10, past this run's last step (8)")]
        /// A copy of saved-10 with one JSON file's keys changed, its manifest entry made to match.
        func tamper(_ name: String, _ edits: [String: Any]) throws -> String {
            let tampered = dir + "/tampered"
            try? FileManager.default.removeItem(atPath: tampered)
            try FileManager.default.copyItem(atPath: dir + "/saved-10", toPath: tampered)
            var state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tampered + "/" + name))) as! [String: Any]
            state.merge(edits) { $1 }
            let bytes = try JSONSerialization.data(withJSONObject: state)
            try bytes.write(to: URL(fileURLWithPath: tampered + "/" + name))
            var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tampered + "/manifest.json"))) as! [String: Any]
            var files = manifest["files"] as! [String: Any]
            files[name] = ["sha256": Hashing.sha256Hex(bytes), "size": bytes.count]
            manifest["files"] = files
            try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: tampered + "/manifest.json"))
            return tampered
        }
        for (edit, value, reason) in cases {
            let steps = value as? Int
            let tampered = try tamper("training_state.json", [edit: value])
            let sub = dir + "/tampered-run"
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            let tcfg = try TestCluster.config(dir: sub, model: model, batch: 4, steps: edit == "global_step" && steps == 10 ? 8 : 20,
                                              servers: 2, workers: 2, extraTraining: "resume_from_checkpoint: \(tampered)")
            let t = TestCluster(dir: sub, config: tcfg)
            try t.start("precis-coordinator", "coordinator", ["--config", tcfg, "--bind", "tcp://127.0.0.1:*"])
            #expect(t.wait("coordinator", timeout: 60) == 1, "\(t.log("coordinator"))")
            #expect(t.log("coordinator").contains(tampered + "/training_state.json: " + reason), "\(t.log("coordinator"))")
        }
        // A best checkpoint outside the run's output_dir (load_best_model_at_end would load it as the
        // final model) or a best metric that is not a number is passed over with a line; the run goes on.
        for (edits, line) in [(["best_metric": 1.5, "best_model_checkpoint": "/etc"] as [String: Any], "best_model_checkpoint '/etc' is not a checkpoint of"),
                              (["best_metric": "NaN"], "best_metric nan is not a finite number: passed over")] {
            let tampered = try tamper("trainer_state.json", edits)
            let sub = dir + "/odd-best"
            try? FileManager.default.removeItem(atPath: sub)
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            let ocfg = try TestCluster.config(dir: sub, model: model, batch: 4, steps: 12, servers: 2, workers: 2,
                                              extraTraining: "resume_from_checkpoint: \(tampered)")
            let o = try TestCluster.up(dir: sub, config: ocfg, servers: 2, workers: 2)
            #expect(o.wait("coordinator") == 0, "\(o.allLogs())")
            #expect(o.log("coordinator").contains(line), "\(o.log("coordinator"))")
        }

        // A corrupted newest checkpoint is skipped with its reason; the one before is used.
        var w = Self.bytes(dir + "/out/checkpoint-10/model.safetensors")
        w[w.count / 2] ^= 0x55
        try w.write(to: URL(fileURLWithPath: dir + "/out/checkpoint-10/model.safetensors"))
        #expect(throws: CheckpointError.self) { try CheckpointStore(outputDir: dir + "/out").verify(dir + "/out/checkpoint-10") }
    }

    /// The step of the first "<prefix>N (R step(s) to repeat)" line in `log`, and R.
    static func rollback(in log: String, after prefix: String) -> (step: Int, repeated: Int)? {
        guard let rest = log.components(separatedBy: prefix).dropFirst().first else { return nil }
        let step = rest.prefix { $0.isNumber }
        let tail = rest.dropFirst(step.count)
        guard let s = Int(step), tail.hasPrefix(" (") else { return nil }
        if tail.hasPrefix(" (nothing to repeat)") { return (s, 0) }
        guard let repeated = Int(tail.dropFirst(2).prefix { $0.isNumber }) else { return nil }
        return (s, repeated)
    }

    /// kill -9 a parameter server mid-run and start it again; then kill -9 the coordinator and start
    /// it again with --resume. Both runs finish with exactly the parameters of an undisturbed run
    /// (sync mode replays the repeated steps bit for bit), repeating at most save_steps steps.
    @Test func runsSurviveALostServerAndALostCoordinator() throws {
        let dir = TestData.tempDir("recover")
        let model = try TestCluster.tiny(in: dir)
        func config(_ name: String, port: Int) throws -> String {
            let sub = dir + "/" + name
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            let path = try TestCluster.config(dir: sub, model: model, batch: 4, steps: 40, servers: 2, workers: 2,
                                              extraTraining: "save_steps: 8\nmax_train_samples: 160")
            var text = try String(contentsOfFile: path, encoding: .utf8)
            text = text.replacingOccurrences(of: "coordinator: tcp://127.0.0.1:*", with: "coordinator: tcp://127.0.0.1:\(port)")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        // Undisturbed.
        let base = try config("undisturbed", port: try FixedPorts.take())
        let u = try TestCluster.up(dir: dir + "/undisturbed", config: base, servers: 2, workers: 2)
        #expect(u.wait("coordinator") == 0, "\(u.allLogs())")
        let reference = Self.bytes(dir + "/undisturbed/out/model.safetensors")

        // A server lost and started again.
        let sc = try config("server", port: try FixedPorts.take())
        let s = try TestCluster.up(dir: dir + "/server", config: sc, servers: 2, workers: 2)
        #expect(s.waitForStep(13), "\(s.allLogs())")
        s.signal("ps1", SIGKILL)
        #expect(s.waitForLog("coordinator", "paused: waiting for a parameter server", timeout: 20), "\(s.allLogs())")
        try s.startServer("ps1-again")
        // Step 8's checkpoint, or 16's where the kill came late on a loaded machine.
        #expect(s.waitForLog("coordinator", "rolling back to step "), "\(s.allLogs())")
        #expect(s.wait("coordinator") == 0, "\(s.allLogs())")
        let back = try #require(Self.rollback(in: s.log("coordinator"), after: "rolling back to step "), "\(s.allLogs())")
        #expect(back.step >= 8 && back.step % 8 == 0 && back.repeated <= 8, "\(back)")
        #expect(Self.bytes(dir + "/server/out/model.safetensors") == reference, "differs from the undisturbed run")

        // The coordinator lost and started again on the same address.
        let cc = try config("coordinator", port: try FixedPorts.take())
        let c = try TestCluster.up(dir: dir + "/coordinator", config: cc, servers: 2, workers: 2)
        #expect(c.waitForStep(19), "\(c.allLogs())")
        // Checkpoints are written in the background: the one to resume from must be on disk first
        // (an unoptimised build can still be writing step 8's at step 19).
        #expect(c.waitForLog("coordinator", "saved \(dir)/coordinator/out/checkpoint-8 ("), "\(c.allLogs())")
        c.signal("coordinator", SIGKILL)
        _ = c.wait("coordinator", timeout: 10)
        try c.start("precis-coordinator", "coordinator2", ["--config", cc, "--resume"])
        #expect(c.wait("coordinator2") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator2").contains("resuming from"), "\(c.log("coordinator2"))")
        for n in ["ps0", "ps1", "w0", "w1"] {
            #expect(c.wait(n, timeout: 20) == 0, "\(n): \(c.log(n))")
            #expect(c.log(n).contains("registering again"), "\(n) reconnected by itself")
        }
        #expect(Self.bytes(dir + "/coordinator/out/model.safetensors") == reference, "differs from the undisturbed run")

        // --reshard: the lost server's partitions go to the survivor instead of waiting.
        let rc = try config("reshard", port: try FixedPorts.take())
        let r = TestCluster(dir: dir + "/reshard", config: rc)
        try r.start("precis-coordinator", "coordinator", ["--config", rc, "--reshard"])
        Thread.sleep(forTimeInterval: 0.3)
        r.setEndpoint(try String(contentsOfFile: rc, encoding: .utf8).components(separatedBy: "coordinator: ").last!
                      .prefix { !$0.isWhitespace }.description)
        for n in ["ps0", "ps1"] { try r.startServer(n) }
        for n in ["w0", "w1"] { try r.startWorker(n) }
        #expect(r.waitForStep(13), "\(r.allLogs())")
        // The survivor must change its server index (the lost one held index 0, with the first
        // partitions), so the workers' connections are re-keyed, whichever server registered first.
        let first = r.log("ps0").contains("owns partitions 0...") ? "ps0" : "ps1"
        r.signal(first, SIGKILL)
        #expect(r.waitForLog("coordinator", "resharding over the 1 remaining server(s): rolling back to step ", timeout: 20), "\(r.allLogs())")
        #expect(r.wait("coordinator") == 0, "\(r.allLogs())")
        let reshardedFrom = Self.rollback(in: r.log("coordinator"), after: "resharding over the 1 remaining server(s): rolling back to step ")
        #expect(reshardedFrom.map { $0.step >= 8 && $0.step % 8 == 0 && $0.repeated <= 8 } == true, "\(String(describing: reshardedFrom))")
        let d = compareParameters(try loadParameters(dir + "/reshard/out"), try loadParameters(dir + "/undisturbed/out"))
        #expect(d.global < 1e-6 && d.worst < 1e-6, "\(d)")
    }

    /// Evaluation during training on the workers (loss, ROUGE, gen_len in log_history), the best
    /// checkpoint kept through rotation and loaded at the end, every save pushed to a directory hub
    /// with a model card.
    @Test func evaluationBestCheckpointAndHubPushes() throws {
        let dir = TestData.tempDir("eval")
        let model = try TestCluster.tiny(in: dir)
        try Data(#"{"num_beams": 2, "no_repeat_ngram_size": 3}"#.utf8).write(to: URL(fileURLWithPath: dir + "/gen.json"))
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 16, servers: 1, workers: 2, extraTraining: """
            generation_config: \(dir)/gen.json
            save_steps: 4
            save_total_limit: 1
            eval_strategy: steps
            eval_steps: 4
            predict_with_generate: true
            generation_max_length: 16
            max_eval_samples: 12
            metric_for_best_model: loss
            load_best_model_at_end: true
            push_to_hub: true
            hub_model_id: team/tiny-samsum
            hub_strategy: checkpoint
            hub_url: file://\(dir)/hub
            """)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        let log = c.log("coordinator")
        #expect(log.contains("evaluating step 4: 12 validation examples over 2 worker(s), with generation"))
        #expect(log.contains("eval at step 16: loss"))
        #expect(c.log("w0").contains("evaluated 6 examples") && c.log("w1").contains("evaluated 6 examples"))
        let state = try TrainerState.read(path: dir + "/out/trainer_state.json")
        let evals = state.logHistory.filter { $0["eval_loss"] != nil }
        #expect(evals.count == 4)
        #expect(evals.allSatisfy { $0["eval_rouge1"] != nil && $0["eval_rougeLsum"] != nil && $0["eval_gen_len"] != nil })
        let bestLoss = evals.map { $0["eval_loss"]! }.min()!
        #expect(state.bestMetric == bestLoss)
        let bestStep = Int(evals.first { $0["eval_loss"] == bestLoss }!["step"]!)
        // Rotation keeps the newest and the best.
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir + "/out").filter { $0.hasPrefix("checkpoint-") }.sorted()
        #expect(kept.contains("checkpoint-\(bestStep)"), "\(kept)")
        #expect(kept.count <= 2, "\(kept)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/eval_predictions-16.jsonl"))
        // What the run leaves: the saved (best) model's evaluation, not the last one; the results, the
        // resolved config, the card of that step; tokenizer_config.json in the model and the checkpoints.
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/eval_results.json"))) as! [String: Any]
        #expect(results["eval_loss"] as? Double == bestLoss, "\(results)")
        for f in ["train_results.json", "all_results.json", "training_config.yaml", "README.md", "tokenizer_config.json",
                  "checkpoint-\(bestStep)/tokenizer_config.json"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/out/" + f), "\(f)")
        }
        // generation_config's values are in the model folder and every checkpoint, over the model's defaults.
        for folder in ["out", "out/checkpoint-\(bestStep)"] {
            let g = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/\(folder)/generation_config.json"))) as! [String: Any]
            #expect(g["num_beams"] as? Int == 2 && g["no_repeat_ngram_size"] as? Int == 3 && g["eos_token_id"] as? Int == 2, "\(folder): \(g)")
        }
        #expect(log.contains("with generation"))
        let outCard = try String(contentsOfFile: dir + "/out/README.md", encoding: .utf8)
        #expect(outCard.contains("model at step \(bestStep) of 16") && !outCard.contains("pipeline("), "\(outCard)")
        // The hub got one revision per save (skipped ones aside) and the final model, with a card.
        let hub = dir + "/hub/team/tiny-samsum"
        let latest = try String(contentsOfFile: hub + "/main", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let card = try String(contentsOfFile: hub + "/revisions/\(latest)/README.md", encoding: .utf8)
        #expect(card.hasPrefix("---\n") && card.contains("model-index:") && card.contains("rouge1"))
        #expect(FileManager.default.fileExists(atPath: hub + "/revisions/\(latest)/model.safetensors"))
        #expect(log.contains("pushed") || c.log("coordinator").contains("hub: pushed"))
        let revisions = try FileManager.default.contentsOfDirectory(atPath: hub + "/revisions")
        #expect(revisions.count >= 2, "\(revisions)")
        #expect(revisions.contains { FileManager.default.fileExists(atPath: hub + "/revisions/\($0)/last-checkpoint/optimizer.safetensors") })
    }

    /// A cluster of 1 server and 2 workers training `steps` steps, with its checkpoint of step 10
    /// copied to DIR/ckpt once it is saved.
    static func clusterWithCheckpoint(_ tag: String, steps: Int) throws -> (c: TestCluster, dir: String, config: String) {
        let dir = TestData.tempDir(tag)
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: steps, servers: 1, workers: 2,
                                         extraTraining: "save_steps: 10\ngeneration_max_length: 12")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.waitForLog("coordinator", "saved \(dir)/out/checkpoint-10 ("), "\(c.allLogs())")
        try FileManager.default.copyItem(atPath: dir + "/out/checkpoint-10", toPath: dir + "/ckpt")
        return (c, dir, cfg)
    }

    /// A worker lost in the middle of a checkpoint evaluation: its share goes to the survivor and
    /// the client still gets every example's result (not a timeout).
    @Test func aCheckpointEvaluationSurvivesALostWorker() throws {
        let (c, dir, cfg) = try Self.clusterWithCheckpoint("evallost", steps: 60)
        // w1 freezes (no heartbeats, no answers) just before the request: the coordinator still counts
        // it alive when it deals the shares, then loses it after heartbeat_timeout (3 s).
        c.signal("w1", SIGSTOP)
        try c.start("precis-coordinator", "evaluate", ["evaluate", "--checkpoint", dir + "/ckpt", "--data", try TestData.samsum("validation"),
                                                       "--max-samples", "8", "--config", cfg, "--coordinator", c.endpoint])
        #expect(c.wait("evaluate", timeout: 120) == 0, "\(c.allLogs())")
        let coordinator = c.log("coordinator")
        #expect(coordinator.contains("worker w1") && coordinator.contains("lost: no heartbeat"), "\(coordinator)")
        #expect(coordinator.range(of: #"evaluation share \d of \S+/ckpt handed to w0"#, options: .regularExpression) != nil, "\(coordinator)")
        let results = dir + "/ckpt/eval-validation/eval_results.json"
        let metrics = try JSONSerialization.jsonObject(with: Self.bytes(results)) as! [String: Any]
        #expect(metrics["eval_samples"] as? Double == 8)
        c.signal("w1", SIGKILL)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
    }

    /// `precis-coordinator evaluate` on a running cluster: the workers evaluate the checkpoint and the
    /// predictions and metrics land beside it; with no cluster up it evaluates in-process.
    @Test func evaluatingACheckpointOnTheRunningClusterOrLocally() throws {
        let (c, dir, cfg) = try Self.clusterWithCheckpoint("evalckpt", steps: 80)
        try c.start("precis-coordinator", "evaluate", ["evaluate", "--checkpoint", dir + "/ckpt", "--data", try TestData.samsum("validation"),
                                                       "--max-samples", "8", "--config", cfg, "--coordinator", c.endpoint])
        #expect(c.wait("evaluate", timeout: 120) == 0, "\(c.allLogs())")
        #expect(c.log("evaluate").contains("on the cluster at \(c.endpoint)"), "\(c.log("evaluate"))")
        #expect(c.log("w0").contains("evaluated 4 examples of") && c.log("w1").contains("evaluated 4 examples of"))
        let results = dir + "/ckpt/eval-validation/eval_results.json"
        let clusterMetrics = try JSONSerialization.jsonObject(with: Self.bytes(results)) as! [String: Any]
        #expect(clusterMetrics["eval_samples"] as? Double == 8)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        // No cluster now: the same evaluation in-process gives the same loss and ROUGE.
        try c.start("precis-coordinator", "evaluate-local", ["evaluate", "--checkpoint", dir + "/ckpt", "--data", try TestData.samsum("validation"),
                                                             "--max-samples", "8", "--config", cfg, "--coordinator", c.endpoint])
        #expect(c.wait("evaluate-local", timeout: 120) == 0, "\(c.log("evaluate-local"))")
        #expect(c.log("evaluate-local").contains("evaluating here"))
        let localMetrics = try JSONSerialization.jsonObject(with: Self.bytes(results)) as! [String: Any]
        for k in ["eval_rouge1", "eval_rougeL", "eval_gen_len"] {
            let a = clusterMetrics[k] as? Double ?? -1, b = localMetrics[k] as? Double ?? -2
            #expect(abs(a - b) < 1e-4, "\(k): cluster \(a), local \(b)")
        }
        // The loss is Trainer's mean of batch means weighted by batch size: other batches, slightly other numbers.
        let la = clusterMetrics["eval_loss"] as? Double ?? -1, lb = localMetrics["eval_loss"] as? Double ?? -2
        #expect(abs(la - lb) < 0.02 * abs(lb), "eval_loss: cluster \(la), local \(lb)")
        #expect(FileManager.default.fileExists(atPath: dir + "/ckpt/eval-validation/predictions.jsonl"))
    }
}
}
