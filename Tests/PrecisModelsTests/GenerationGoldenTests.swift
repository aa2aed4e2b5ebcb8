import Foundation
import Testing
import PrecisCore
import PrecisModels

/// Greedy search, beam search and seeded sampling against transformers 5.24 `model.generate` (fixtures
/// from tools/golden/make_generation_golden.py): token-identical sequences, beam scores within 1e-4.
@Suite struct GenerationGoldenTests {
    struct Run {
        var name: String
        var settings: [String: Any]
        var effective: [String: Any]
        var sequences: [[Int32]]
        var scores: [Double]?
    }

    static func runs(_ dir: String) throws -> [Run] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json"))
        let list = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        return list.map { r in
            Run(name: r["name"] as! String, settings: r["settings"] as! [String: Any],
                effective: r["effective_settings"] as! [String: Any],
                sequences: (r["sequences"] as! [[Int]]).map { $0.map(Int32.init) },
                scores: (r["scores"] as? [NSNumber])?.map(\.doubleValue))
        }
    }

    static let cases = ["tiny", "tiny-scaled"]

    /// The runs every family's fixtures hold (the BART, T5 and Pegasus generation scripts).
    static let commonRuns: Set<String> = ["greedy", "greedy_minlen8_norepeat2", "beam4", "beam4_lp2_noearly_norepeat3_minlen5",
                                          "greedy_maxlen10", "sample_topk1_seed", "defaults"]

    /// The sampled runs (`do_sample` under a seed) keep one candidate token per step: top_k 1, or top_p
    /// below 1/vocab (the least the most likely token can have). So their tokens do not depend on the
    /// random generator: each is generated under two seeds, both must match transformers.
    static func samplingSeeds(_ g: GenerationSettings, vocabSize: Int, _ what: String) -> [UInt64] {
        guard g.doSample else { return [0] }
        #expect(g.topK == 1 || g.topP < 1 / Double(vocabSize), "\(what): a sampled golden run must keep one candidate")
        return [1234, 987_654_321]
    }

    @Test(arguments: cases)
    func sequencesAreTokenIdenticalToTransformers(_ name: String) throws {
        let dir = Fixtures.root.appendingPathComponent("generation/\(name)").path
        let (m, _) = try ModelFolder.load(dir)
        let model = try #require(m as? BartModel)
        let inputs = try SafeTensorsFile(path: dir + "/inputs.safetensors")
        let shape = try inputs.tensor("input_ids").shape
        let ids = try inputs.int64s("input_ids").map { Int32($0) }, mask = try inputs.int64s("attention_mask").map { Int32($0) }
        let runs = try Self.runs(dir)
        #expect(runs.count == 9)
        #expect(Set(runs.map(\.name)).isSuperset(of: Self.commonRuns.union(["beam3_return2",
                                                                           "sample_temp07_topp001_minlen6_norepeat2_return2_seed"])))
        for run in runs {
            var g = try GenerationSettings(json: run.effective, file: "\(name)/\(run.name)")
            var out: GenerationOutput?
            for seed in Self.samplingSeeds(g, vocabSize: model.vocabSize, "\(name) \(run.name)") {
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

    /// Without explicit settings, the folder's generation_config.json gives transformers' effective values.
    @Test(arguments: cases)
    func folderDefaultsMatchTheEffectiveSettings(_ name: String) throws {
        let dir = Fixtures.root.appendingPathComponent("generation/\(name)").path
        let run = try #require(try Self.runs(dir).last)
        var g = try GenerationSettings.load(folder: dir)
        if let n = run.settings["max_new_tokens"] as? Int { g.maxNewTokens = n }
        let want = try GenerationSettings(json: run.effective, file: "effective")
        #expect(g.forcedBosTokenId == want.forcedBosTokenId && g.forcedEosTokenId == want.forcedEosTokenId)
        #expect(g.eosTokenIds == want.eosTokenIds && g.padTokenId == want.padTokenId)
        #expect(g.decoderStartTokenId == want.decoderStartTokenId && g.numBeams == want.numBeams)
    }
}
