import Foundation
import Testing
import PrecisCore
import PrecisModels

/// Greedy and beam search against transformers 5.24 `model.generate` (fixtures from
/// tools/golden/make_generation_golden.py): token-identical sequences, beam scores within 1e-4.
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

    @Test(arguments: cases)
    func sequencesAreTokenIdenticalToTransformers(_ name: String) throws {
        let dir = Fixtures.root.appendingPathComponent("generation/\(name)").path
        let (m, _) = try ModelFolder.load(dir)
        let model = try #require(m as? BartModel)
        let inputs = try SafeTensorsFile(path: dir + "/inputs.safetensors")
        let shape = try inputs.tensor("input_ids").shape
        let ids = try inputs.int64s("input_ids").map { Int32($0) }, mask = try inputs.int64s("attention_mask").map { Int32($0) }
        let runs = try Self.runs(dir)
        #expect(runs.count >= 7)
        for run in runs {
            let g = try GenerationSettings(json: run.effective, file: "\(name)/\(run.name)")
            let out = try Generator.generate(model: model, inputIds: ids, attentionMask: mask, batchSize: shape[0],
                                             sourceLength: shape[1], settings: g)
            #expect(out.sequences == run.sequences, "\(name) \(run.name)")
            if let want = run.scores {
                let got = try #require(out.scores, "\(name) \(run.name): no scores")
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
