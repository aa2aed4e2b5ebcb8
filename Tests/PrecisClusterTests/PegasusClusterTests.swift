import Foundation
import Testing
import PrecisCore
import PrecisTrain
import PrecisTestSupport

extension RealProcesses {
/// Pegasus on a real cluster (coordinator, parameter servers and workers as processes over ZeroMQ):
/// the cluster reaches it through the registry like any model.
@Suite struct PegasusClusterTests {
    /// pegasus-tiny with dropout 0 and the test tokenizer's special ids: in sync mode 2 workers × batch 4 give the same parameters after
    /// 20 steps as one process training batch 8 on the same examples in the same order.
    @Test func syncTwoWorkersMatchOneProcessWithTheWholeBatch() throws {
        let dir = TestData.tempDir("pegasus-sync")
        // The test tokenizer's special ids (pad 1, eos 2; Pegasus starts decoding from pad).
        let data = try Data(contentsOf: TestData.repo.appendingPathComponent("configs/pegasus-tiny.json"))
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["model_type"] as? String == "pegasus")
        json["pad_token_id"] = 1; json["eos_token_id"] = 2; json["forced_eos_token_id"] = 2; json["decoder_start_token_id"] = 1
        json["dropout"] = 0.0
        let model = dir + "/pegasus-tiny.json"
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: URL(fileURLWithPath: model))
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 20, servers: 2, workers: 2)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 2, workers: 2)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 20/20"))
        for n in ["ps0", "ps1", "w0", "w1"] { #expect(c.wait(n, timeout: 20) == 0, "\(n) exit: \(c.allLogs())") }
        let got = try loadParameters(dir + "/out")
        #expect(got.keys.contains("model.encoder.embed_positions.weight"))
        #expect(got.keys.contains("model.encoder.layer_norm.weight") && got.keys.contains("model.decoder.layer_norm.weight"))
        let reference = try referenceRun(config: cfg, batch: 8, outputDir: dir + "/reference")
        let d = compareParameters(got, reference)
        #expect(d.global < 1e-6, "relative difference \(d.global)")
        // fp32 sums in another order (the server adds two workers' gradients; one process sums the
        // batch): a tensor may differ by a few ulp after 20 steps, a lost contribution by ~1e-2.
        #expect(d.worst < 5e-6, "\(d.worstName): relative difference \(d.worst)")
        #expect(d.keyBias < 1e-5, "key biases differ by \(d.keyBias)")
        let initial = try TestCluster.initialParameters(model: model)
        #expect(compareParameters(reference, initial).global > 1e-3, "training moved the parameters")
    }
}
}
