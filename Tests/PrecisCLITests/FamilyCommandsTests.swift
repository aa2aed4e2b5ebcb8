import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// Every model command of the `precis` executable, for each of the three families (BART, T5,
/// Pegasus), as a user runs them on a folder `precis init` wrote: `inspect loss-grad`, `summarize`
/// and `evaluate` (both with `--source-prefix`, as T5 is used) and `bench step`. The commands reach
/// the model through the registry; nothing here names an architecture but the preset.
@Suite struct FamilyCommandsTests {
    /// A tiny preset and a tokenizer whose special ids are the family's (BART: `<s>`=0, pad 1,
    /// `</s>`=2; T5 and Pegasus: pad 0, `</s>`=1, a SentencePiece Unigram tokenizer).
    static let families: [(preset: String, modelType: String, tokenizer: String)] = [
        ("bart-tiny", "bart", "Tests/Fixtures/tokenizer/samsum-bpe-8192.json"),
        ("t5-tiny", "t5", "Tests/Fixtures/tokenizer/unigram/t5.json"),
        ("pegasus-tiny", "pegasus", "Tests/Fixtures/tokenizer/unigram/t5.json"),
    ]

    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    @Test(arguments: families.map(\.preset))
    func initInspectSummarizeEvaluateAndBenchRunEveryFamily(_ preset: String) throws {
        let family = try #require(Self.families.first { $0.preset == preset })
        let dir = TestData.tempDir("cli"), model = dir + "/m"
        let initRun = try CLI.run(["init", "--config", preset, "--out", model, "--seed", "3"])
        #expect(initRun.status == 0, "\(initRun.stderr)")
        let config = try Self.json(model + "/config.json")
        #expect(config["model_type"] as? String == family.modelType)
        let vocab = try #require(config["vocab_size"] as? Int)
        try FileManager.default.copyItem(atPath: TestData.repo.appendingPathComponent(family.tokenizer).path, toPath: model + "/tokenizer.json")

        // inspect loss-grad: an untrained model's loss is about ln(vocab); a gradient for every parameter.
        var w = SafeTensorsWriter()
        let ids: [Int64] = (0..<2 * 12).map { Int64(5 + ($0 * 37) % 400) }
        var mask = [Int64](repeating: 1, count: 2 * 12)
        for j in 8..<12 { mask[12 + j] = 0 }
        w.add("input_ids", int64s: ids, shape: [2, 12])
        w.add("attention_mask", int64s: mask, shape: [2, 12])
        w.add("labels", int64s: (0..<2 * 6).map { Int64(7 + ($0 * 11) % 300) }, shape: [2, 6])
        try w.write(to: dir + "/batch.safetensors")
        let lg = try CLI.run(["inspect", "loss-grad", "--model", model, "--batch", dir + "/batch.safetensors",
                              "--out", dir + "/lg.safetensors", "--threads", "2"])
        #expect(lg.status == 0, "\(lg.stderr)")
        let out = try SafeTensorsFile(path: dir + "/lg.safetensors")
        let loss = try out.floats("loss")[0]
        #expect(loss.isFinite && abs(Double(loss) - log(Double(vocab))) < 1.0, "\(preset): loss \(loss)")
        #expect(try out.tensor("logits").shape == [2, 6, vocab])
        let grads = out.names.filter { $0.hasPrefix("grad.") }
        #expect(grads.count > 10)
        #expect(try grads.contains { try out.floats($0).contains { $0 != 0 } })

        // summarize and evaluate, with the source prefix T5 is trained with.
        let data = try TestData.samsum("validation")
        let lines = try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n").prefix(3)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/val.jsonl", atomically: true, encoding: .utf8)
        let summarize = ["summarize", "--model", model, "--input", dir + "/val.jsonl", "--max-new-tokens", "5",
                         "--source-prefix", "summarize: ", "--num-beams", "2"]
        let s = try CLI.run(summarize)
        #expect(s.status == 0, "\(s.stderr)")
        let summaries = s.stdout.split(separator: "\n")
        #expect(summaries.count == 3 && summaries.allSatisfy { $0.hasPrefix("{\"summary\":") }, "\(s.stdout)")
        #expect(try CLI.run(summarize).stdout == s.stdout)
        let evalOut = dir + "/eval"
        let e = try CLI.run(["evaluate", "--model", model, "--data", dir + "/val.jsonl", "--batch-size", "2",
                             "--max-new-tokens", "4", "--source-prefix", "summarize: ", "--out", evalOut])
        #expect(e.status == 0, "\(e.stderr)")
        let metrics = try Self.json(evalOut + "/metrics.json")
        for k in ["eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len"] {
            #expect((metrics[k] as? NSNumber)?.doubleValue.isFinite == true, "\(preset): \(k)")
        }
        let predictions = try String(contentsOfFile: evalOut + "/predictions.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(predictions.count == 3)

        // bench step on the preset.
        let bench = try CLI.run(["bench", "step", "--config", preset, "--batch", "2", "--source-len", "16", "--target-len", "8",
                                 "--steps", "1", "--warmup", "0", "--threads", "1", "--json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains(preset), "\(bench.stdout)")
        // It names the build of the row kernels it ran (the child sees this process's CPU and environment).
        let fields = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any]
        #expect(fields?["row_kernels"] as? String == CPUFeatures.vectorISA, "\(bench.stdout)")
    }

    /// The presets with the real checkpoints' shapes: `precis init --config t5-small` writes t5-small's
    /// 60.5M parameters (transformers' count, the tied head once) and the config it was given.
    @Test func initWritesTheRealT5SmallShape() throws {
        let dir = TestData.tempDir("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLI.run(["init", "--config", "t5-small", "--out", dir + "/m", "--seed", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let config = try Self.json(dir + "/m/config.json")
        #expect(config["model_type"] as? String == "t5" && config["d_model"] as? Int == 512 && config["num_layers"] as? Int == 6)
        let weights = try SafeTensorsFile(path: dir + "/m/model.safetensors")
        let count = try weights.names.reduce(0) { $0 + (try weights.tensor($1).count) }
        #expect(count == 60_506_624)
        #expect(try weights.tensor("shared.weight").shape == [32128, 512])
    }
}
