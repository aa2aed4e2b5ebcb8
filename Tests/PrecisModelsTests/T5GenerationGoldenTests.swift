import Foundation
import Testing
import PrecisCore
import PrecisModels

/// T5 greedy search, beam search and seeded sampling (top_k 1; temperature + top_p with min length,
/// n-gram blocking and 2 sequences per source) against transformers 5.24 `model.generate` (fixtures
/// from tools/golden/make_t5_generation_golden.py): token-identical sequences (beam outputs filled
/// with EOS, transformers' `pad_token_id or eos` with pad 0), beam scores within 1e-4.
@Suite struct T5GenerationGoldenTests {
    static let cases = ["t5_v1_0", "t5_v1_1"]

    @Test(arguments: cases)
    func sequencesAreTokenIdenticalToTransformers(_ name: String) throws {
        let dir = Fixtures.root.appendingPathComponent("generation/\(name)").path
        let (model, report) = try ModelFolder.load(dir)
        #expect(model.facts.modelType == "t5" && report.unexpected.isEmpty)
        let inputs = try SafeTensorsFile(path: dir + "/inputs.safetensors")
        let shape = try inputs.tensor("input_ids").shape
        let ids = try inputs.int64s("input_ids").map { Int32($0) }, mask = try inputs.int64s("attention_mask").map { Int32($0) }
        let runs = try GenerationGoldenTests.runs(dir)
        #expect(runs.count == 9)
        #expect(Set(runs.map(\.name)).isSuperset(of: GenerationGoldenTests.commonRuns.union(
            ["beam3_return2", "sample_temp07_topp001_minlen6_norepeat2_return2_seed"])))
        for run in runs {
            var g = try GenerationSettings(json: run.effective, file: "\(name)/\(run.name)")
            var out: GenerationOutput?
            for seed in GenerationGoldenTests.samplingSeeds(g, vocabSize: model.vocabSize, "\(name) \(run.name)") {
                g.seed = seed
                out = try Generator.generate(model: model, inputIds: ids, attentionMask: mask, batchSize: shape[0],
                                             sourceLength: shape[1], settings: g)
                #expect(out?.sequences == run.sequences, "\(name) \(run.name) seed \(seed)")
            }
            if let want = run.scores {
                let got = try #require(out?.scores, "\(name) \(run.name): no scores")
                #expect(got.count == want.count)
                for (a, b) in zip(got, want) { #expect(abs(a - b) <= 1e-4, "\(name) \(run.name): score \(a) vs \(b)") }
            }
        }
    }

    /// The incremental decoder's logits equal a full forward's over the same prefix (the cached keys
    /// and values, the position bias row of the new query, the cross-attention computed once).
    @Test(arguments: cases)
    func incrementalLogitsEqualTheFullForward(_ name: String) throws {
        let dir = Fixtures.root.appendingPathComponent("generation/\(name)").path
        let (model, _) = try ModelFolder.load(dir)
        let inputs = try SafeTensorsFile(path: dir + "/inputs.safetensors")
        let shape = try inputs.tensor("input_ids").shape, b = shape[0], s = shape[1]
        let ids = try inputs.int64s("input_ids").map { Int32($0) }, mask = try inputs.int64s("attention_mask").map { Int32($0) }
        var prefix: [[Int32]] = []
        for r in 0..<b {
            var row: [Int32] = [0]
            for j in 0..<6 { row.append(Int32(2 + (r * 7 + j * 5) % 40)) }
            prefix.append(row)
        }
        let t = prefix[0].count, v = model.vocabSize
        // Full forward: labels = prefix shifted left, so the decoder's inputs are the prefix.
        var labels = [Int32]()
        for r in 0..<b { labels += Array(prefix[r].dropFirst()) + [1] }
        let batch = try Seq2SeqBatch(batchSize: b, sourceLength: s, targetLength: t, inputIds: ids, attentionMask: mask, labels: labels)
        var full = [Float](repeating: 0, count: b * t * v)
        _ = try full.withUnsafeMutableBufferPointer {
            try model.forward(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: $0.baseAddress)
        }
        let enc = try model.encoderHiddenStates(inputIds: ids, attentionMask: mask, batchSize: b, sourceLength: s)
        let dec = model.incrementalDecoder(encoderOutput: enc, attentionMask: mask, sources: b, sourceLength: s,
                                           rowSource: Array(0..<b), maxLength: t)
        var worst: Float = 0
        for j in 0..<t {
            dec.step((0..<b).map { prefix[$0][j] })
            for r in 0..<b {
                for k in 0..<v { worst = max(worst, abs(dec.logits[r * dec.logitsStride + k] - full[(r * t + j) * v + k])) }
            }
        }
        #expect(worst <= 1e-4, "max |Δlogit| \(worst)")
    }
}
