import Foundation
import Testing
import PrecisCore
import PrecisModels
import PrecisTrain
import PrecisTestSupport

extension RealProcesses {
/// stop_on_nonfinite with real processes: a learning rate of 1e30 makes step 1's update overflow
/// the model, so step 2's loss and gradient norm are NaN.
@Suite struct NonFiniteTests {
    static let overflowing = "learning_rate: 1.0e30\nwarmup_steps: 0\nsave_steps: 1"

    /// `precis train` (a local cluster, sync): the coordinator never has the servers apply step 2,
    /// stops with an error naming the step, tells every member to stop, and exits 1 (so does `precis
    /// train`); checkpoint-1 is complete and loads, with finite parameters; nothing later is saved.
    @Test func precisTrainStopsAtTheFirstNonFiniteStep() throws {
        let dir = TestData.tempDir("nonfinite")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 6, servers: 1, workers: 2,
                                         extraTraining: Self.overflowing)
        let r = try ClusterCommandTests.precis(["train", "--config", cfg], in: dir)
        #expect(r.status == 1, "\(r.output)")
        #expect(r.output.contains("error: step 2: the gradient norm is NaN, not a finite number: training stopped before applying this step")
                || r.output.contains("error: step 2: the loss is NaN, not a finite number"), "\(r.output)")
        #expect(r.output.contains("the latest checkpoint, \(dir)/out/checkpoint-1 (step 1), is kept"), "\(r.output)")
        let store = CheckpointStore(outputDir: dir + "/out")
        #expect(store.list().map(\.step) == [1], "\(store.list())")
        try store.verify(dir + "/out/checkpoint-1")
        let loaded = try ModelFolder.load(dir + "/out/checkpoint-1").model
        let params = UnsafeBufferPointer(start: loaded.params.pointer, count: loaded.table.count)
        #expect(params.allSatisfy { $0.isFinite })
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
        // Every member was told why and stopped.
        for name in ["ps0", "w0", "w1"] {
            let log = (try? String(contentsOfFile: "\(dir)/out/logs/\(name).log", encoding: .utf8)) ?? ""
            #expect(log.contains("shutting down: step 2: the "), "\(name): \(log)")
        }
    }

    /// async: updates are applied as they arrive, so the worker that computes a non-finite loss or
    /// norm does not push it; its report stops the run.
    @Test func asyncWorkersDoNotPushANonFiniteUpdate() throws {
        let dir = TestData.tempDir("nonfinite-async")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 8, servers: 1, workers: 2, consistency: "async",
                                         extraTraining: Self.overflowing)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.wait("coordinator") == 1, "\(c.allLogs())")
        for n in ["ps0", "w0", "w1"] { #expect(c.wait(n, timeout: 20) != nil, "\(n) still running: \(c.allLogs())") }
        let log = c.log("coordinator")
        #expect(log.contains("error: step ") && log.contains(", not a finite number: training stopped"), "\(log)")
        let withheld = c.log("w0") + c.log("w1")
        #expect(withheld.contains(": not pushed (stop_on_nonfinite)"), "\(c.allLogs())")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
    }

    /// stop_on_nonfinite: false keeps the old behaviour: the run goes on through its NaN steps.
    @Test func withTheStopOffTheClusterTrainsOn() throws {
        let dir = TestData.tempDir("nonfinite-off")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 3, servers: 1, workers: 2,
                                         extraTraining: Self.overflowing + "\nstop_on_nonfinite: false\nsave_strategy: \"no\"")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        _ = c.wait("coordinator")
        let log = c.log("coordinator")
        #expect(log.contains("step 3/3 epoch") && log.contains("loss nan"), "\(log)")
        #expect(!log.contains("not a finite number"), "\(log)")
    }
}
}
