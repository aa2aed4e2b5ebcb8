import Foundation
import Testing
import PrecisCore
import PrecisTrain
import PrecisTestSupport

extension RealProcesses {
/// T5 through the whole cluster: coordinator, parameter servers and workers as real processes.
@Suite struct T5ClusterTests {
    /// t5-tiny with the test tokenizer's special ids (pad 1, eos 2; T5 starts decoding from pad)
    /// and no dropout.
    static func tinyT5(in dir: String) throws -> String {
        let data = try Data(contentsOf: TestData.repo.appendingPathComponent("configs/t5-tiny.json"))
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        json["pad_token_id"] = 1; json["eos_token_id"] = 2; json["decoder_start_token_id"] = 1; json["dropout_rate"] = 0.0
        let path = dir + "/t5-tiny.json"
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// In sync mode 2 workers × batch 4 give the same T5 parameters after 20 steps as one process
    /// training batch 8 on the same examples in the same order (the shared position biases' and the
    /// tied embedding's gradients summed over workers like every other).
    @Test func syncTwoWorkersMatchOneProcessWithTheWholeBatch() throws {
        let dir = TestData.tempDir("t5-sync")
        let model = try Self.tinyT5(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 20, servers: 2, workers: 2)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 2, workers: 2)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 20/20"))
        for n in ["ps0", "ps1", "w0", "w1"] { #expect(c.wait(n, timeout: 20) == 0, "\(n) exit: \(c.allLogs())") }
        let got = try loadParameters(dir + "/out")
        #expect(got["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] != nil)
        let reference = try referenceRun(config: cfg, batch: 8, outputDir: dir + "/reference")
        let d = compareParameters(got, reference)
        #expect(d.global < 1e-6, "relative difference \(d.global)")
        #expect(d.worst < 1e-6, "\(d.worstName): relative difference \(d.worst)")
        let initial = try TestCluster.initialParameters(model: model)
        #expect(compareParameters(reference, initial).global > 1e-3, "training moved the parameters")
    }
}
}
