import Foundation
import Testing
import PrecisCore
import PrecisModels

/// Pegasus generation against transformers 5.24 `model.generate` (fixtures from
/// tools/golden/make_pegasus_generation_golden.py): greedy, beam search (length penalties 1, 2 and
/// 0.6, early stopping on and off), min length, max length, no-repeat n-grams, sampling with a seed
/// (top_k 1, whose tokens do not depend on the generator) and the folder's defaults — token-identical
/// sequences, beam scores within 1e-4. Beam search pads finished rows with eos (transformers'
/// `pad_token_id or eos_token_id[0]`, and Pegasus' pad id is 0); greedy pads with pad.
@Suite struct PegasusGenerationGoldenTests {
    static let cases = ["tiny"]
    static func dir(_ name: String) -> String { Fixtures.root.appendingPathComponent("pegasus/generation/\(name)").path }

    @Test(arguments: cases)
    func sequencesAreTokenIdenticalToTransformers(_ name: String) throws {
        let dir = Self.dir(name)
        let (m, report) = try ModelFolder.load(dir)
        #expect(report.unexpected.isEmpty)
        let model = try #require(m as? PegasusModel)
        let inputs = try SafeTensorsFile(path: dir + "/inputs.safetensors")
        let shape = try inputs.tensor("input_ids").shape
        let ids = try inputs.int64s("input_ids").map { Int32($0) }, mask = try inputs.int64s("attention_mask").map { Int32($0) }
        let runs = try GenerationGoldenTests.runs(dir)
        #expect(runs.count == 8)
        #expect(Set(runs.map(\.name)).isSuperset(of: ["greedy", "beam4", "sample_topk1_seed", "beam4_lp06_maxlen10",
                                                       "greedy_minlen8_norepeat2", "beam4_lp2_noearly_norepeat3_minlen5"]))
        #expect(Set(runs.map(\.name)).isSuperset(of: GenerationGoldenTests.commonRuns))
        for run in runs {
            var g = try GenerationSettings(json: run.effective, file: "\(name)/\(run.name)")
            #expect(g.doSample == run.name.hasPrefix("sample"), "\(name) \(run.name)")
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
        // A second generation reuses the cached decoder (same shape) and gives the same tokens.
        let greedy = try #require(runs.first { $0.name == "greedy" })
        let again = try Generator.generate(model: model, inputIds: ids, attentionMask: mask, batchSize: shape[0],
                                           sourceLength: shape[1], settings: try GenerationSettings(json: greedy.effective, file: "again"))
        #expect(again.sequences == greedy.sequences)
    }

    /// Without explicit settings, the folder's generation_config.json gives transformers' effective values.
    @Test func folderDefaultsMatchTheEffectiveSettings() throws {
        let dir = Self.dir("tiny")
        let run = try #require(try GenerationGoldenTests.runs(dir).first { $0.name == "defaults" })
        var g = try GenerationSettings.load(folder: dir)
        if let n = run.settings["max_new_tokens"] as? Int { g.maxNewTokens = n }
        let want = try GenerationSettings(json: run.effective, file: "effective")
        #expect(g.forcedBosTokenId == nil && g.forcedEosTokenId == want.forcedEosTokenId && want.forcedEosTokenId == 1)
        #expect(g.eosTokenIds == want.eosTokenIds && g.padTokenId == want.padTokenId && g.padTokenId == 0)
        #expect(g.decoderStartTokenId == want.decoderStartTokenId && g.decoderStartTokenId == 0 && g.numBeams == want.numBeams)
    }

    /// The incremental decoder's logits are those of the full training forward on the same prefix.
    @Test func incrementalLogitsMatchTheFullForward() throws {
        let dir = Self.dir("tiny")
        let (m, _) = try ModelFolder.load(dir)
        let inputs = try SafeTensorsFile(path: dir + "/inputs.safetensors")
        let shape = try inputs.tensor("input_ids").shape, b = shape[0], s = shape[1]
        let ids = try inputs.int64s("input_ids").map { Int32($0) }, mask = try inputs.int64s("attention_mask").map { Int32($0) }
        var prefix: [[Int32]] = []
        for r in 0..<b {
            var row: [Int32] = [0]
            for j in 0..<5 { row.append(Int32(2 + (r * 7 + j * 3) % 60)) }
            prefix.append(row)
        }
        let t = prefix[0].count, v = m.vocabSize
        // Training forward: labels = prefix shifted left (decoder input = [start] + labels[:-1] = prefix).
        var labels: [Int32] = []
        for row in prefix { labels += Array(row.dropFirst()); labels.append(1) }
        let batch = try Seq2SeqBatch(batchSize: b, sourceLength: s, targetLength: t, inputIds: ids, attentionMask: mask, labels: labels)
        var full = [Float](repeating: 0, count: b * t * v)
        _ = try full.withUnsafeMutableBufferPointer {
            try m.forward(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: $0.baseAddress)
        }
        let enc = try m.encoderHiddenStates(inputIds: ids, attentionMask: mask, batchSize: b, sourceLength: s)
        let dec = m.incrementalDecoder(encoderOutput: enc, attentionMask: mask, sources: b, sourceLength: s,
                                       rowSource: Array(0..<b), maxLength: t)
        for j in 0..<t {
            dec.step(prefix.map { $0[j] })
            for r in 0..<b {
                let got = Array(UnsafeBufferPointer(start: dec.logits + r * dec.logitsStride, count: v))
                let want = Array(full[(r * t + j) * v ..< (r * t + j + 1) * v])
                #expect(maxAbsDiff(got, want) <= 1e-4, "row \(r) position \(j)")
            }
        }
    }
}
