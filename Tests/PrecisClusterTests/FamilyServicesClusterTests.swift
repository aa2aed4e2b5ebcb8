import Foundation
import Testing
import PrecisCore
import PrecisTrain
import PrecisTestSupport

extension RealProcesses {
/// T5 and Pegasus through the coordinator's services on a real cluster (BART's are in ServicesTests):
/// evaluation with generation spread over the workers during training, with T5's `source_prefix`,
/// and every save pushed to a directory hub with a model card.
@Suite struct FamilyServicesClusterTests {
    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// The tiny presets with a SentencePiece Unigram tokenizer whose special ids are theirs (pad 0, `</s>` 1).
    @Test(arguments: [("t5-tiny", "t5"), ("pegasus-tiny", "pegasus")])
    func evaluationOnTheWorkersAndHubPushes(_ preset: String, _ modelType: String) throws {
        let dir = TestData.tempDir("\(preset)-services")
        let tokenizer = TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/unigram/t5.json").path
        let cfg = try TestCluster.config(dir: dir, model: preset, batch: 4, steps: 8, servers: 1, workers: 2, extraTraining: """
            tokenizer: \(tokenizer)
            source_prefix: "summarize: "
            save_steps: 4
            eval_strategy: steps
            eval_steps: 4
            predict_with_generate: true
            generation_max_length: 10
            max_eval_samples: 8
            push_to_hub: true
            hub_model_id: team/\(preset)-samsum
            hub_url: file://\(dir)/hub
            """)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.wait("coordinator", timeout: 300) == 0, "\(c.allLogs())")
        let log = c.log("coordinator")
        #expect(log.contains("evaluating step 4: 8 validation examples over 2 worker(s), with generation"), "\(log)")
        #expect(log.contains("eval at step 8: loss"), "\(log)")
        #expect(c.log("w0").contains("evaluated 4 examples") && c.log("w1").contains("evaluated 4 examples"), "\(c.allLogs())")
        let state = try TrainerState.read(path: dir + "/out/trainer_state.json")
        let evals = state.logHistory.filter { $0["eval_loss"] != nil }
        #expect(evals.count == 2, "\(state.logHistory)")
        #expect(evals.allSatisfy { e in ["eval_loss", "eval_rouge1", "eval_rougeLsum", "eval_gen_len"].allSatisfy { e[$0]?.isFinite == true } })
        #expect(FileManager.default.fileExists(atPath: dir + "/out/eval_predictions-8.jsonl"))
        #expect(try Self.json(dir + "/out/config.json")["model_type"] as? String == modelType)
        // The hub: one revision per save and the final model, each a loadable folder of this family,
        // its card's usage snippet with the source prefix; the last one holds the trained parameters.
        let hub = dir + "/hub/team/\(preset)-samsum"
        let latest = try String(contentsOfFile: hub + "/main", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let folder = hub + "/revisions/\(latest)"
        #expect(try Self.json(folder + "/config.json")["model_type"] as? String == modelType)
        for f in ["model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            #expect(FileManager.default.fileExists(atPath: folder + "/" + f), "\(f)")
        }
        let card = try String(contentsOfFile: folder + "/README.md", encoding: .utf8)
        #expect(card.hasPrefix("---\n") && card.contains("model-index:") && card.contains("summarize: "), "\(card)")
        let revisions = try FileManager.default.contentsOfDirectory(atPath: hub + "/revisions")
        #expect(revisions.count >= 2, "\(revisions)")
        let d = compareParameters(try loadParameters(folder), try loadParameters(dir + "/out"))
        #expect(d.global == 0 && d.worst == 0, "hub's final revision vs output_dir: \(d)")
    }
}
}
