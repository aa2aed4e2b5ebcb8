import Foundation
import Testing
import PrecisTrain
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a run leaves for people watching it, over real processes: trainer_state.json kept current
/// at every logging step and evaluation, and TensorBoard's event file.
extension RealProcesses {
@Suite struct LiveLogsTests {
    /// A run stopped with SIGTERM after a few logging steps leaves a trainer_state.json whose
    /// log_history has those steps (and the evaluation), and an event file with their scalars.
    @Test func aRunStoppedMidwayLeavesItsHistoryAndTensorBoardScalars() throws {
        let dir = TestData.tempDir("live")
        let model = try TestCluster.tinyModel(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 100_000, servers: 1, workers: 1, extraTraining: """
            save_steps: 100000
            eval_strategy: steps
            eval_steps: 3
            max_eval_samples: 4
            logging_dir: \(dir)/tb
            """)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 1)
        #expect(c.waitForStep(6, timeout: 180), "\(c.allLogs())")
        #expect(c.waitForLog("coordinator", "eval at step 3:", timeout: 120), "\(c.allLogs())")
        c.signal("coordinator", SIGTERM)
        #expect(c.wait("coordinator", timeout: 60) != nil, "the coordinator did not stop on SIGTERM")
        let logged = c.coordinatorStep()

        // trainer_state.json: every logged step up to the stop, each with its loss; the evaluation too.
        let state = try TrainerState.read(path: dir + "/out/trainer_state.json")
        let steps = state.logHistory.filter { $0["loss"] != nil }.compactMap { $0["step"].map(Int.init) }
        #expect(steps.count >= 6 && steps == Array(1...steps.count), "\(steps)")
        #expect(steps.count >= logged - 1, "logged \(logged), history has \(steps.count)")
        #expect(state.logHistory.filter { $0["loss"] != nil }.allSatisfy { $0["loss"]!.isFinite && $0["loss"]! > 0 && $0["learning_rate"] != nil })
        #expect(state.logHistory.contains { $0["eval_loss"] != nil && $0["step"] == 3 }, "\(state.logHistory)")
        #expect(state.globalStep >= 6)
        let leftovers = (try FileManager.default.contentsOfDirectory(atPath: dir + "/out")).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "\(leftovers)")

        // The event file in logging_dir: the file_version record, then every logged step's scalars.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/tb").filter { $0.hasPrefix("events.out.tfevents.") }
        #expect(files.count == 1, "\(files)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/tb/" + (files.first ?? "")))
        func count(_ tag: String) -> Int {
            let needle = Data(tag.utf8)
            var n = 0, from = bytes.startIndex
            while let r = bytes.range(of: needle, in: from..<bytes.endIndex) { n += 1; from = r.upperBound }
            return n
        }
        #expect(count("brain.Event:2") == 1)
        #expect(count("train/loss") >= 6 && count("train/loss") == steps.count, "\(count("train/loss")) vs \(steps.count)")
        for tag in ["train/learning_rate", "train/grad_norm", "train/epoch", "cluster/examples_per_second", "cluster/workers",
                    "cluster/gradient_compression_ratio", "cluster/compute_seconds_per_step", "eval/loss"] {
            #expect(count(tag) >= 1, "\(tag) missing")
        }
    }
}
}
