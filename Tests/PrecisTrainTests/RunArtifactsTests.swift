import Foundation
import Testing
import PrecisCore
import PrecisTrain
import PrecisTestSupport

/// What a run leaves in output_dir beside the model: Trainer's results files, the resolved config,
/// the model card (checked here without Python; tools/golden/check_artifacts.sh runs the card's
/// snippet and loads the folders in transformers).
@Suite struct RunArtifactsTests {
    /// 8 steps, evaluations at 4 and 8; the best (lowest loss) is step 4.
    static let history: [[String: Double]] = [
        ["step": 2, "epoch": 0.5, "loss": 4.0, "learning_rate": 1e-3, "grad_norm": 2],
        ["step": 4, "epoch": 1, "loss": 3.0, "learning_rate": 1e-3, "grad_norm": 2],
        ["step": 4, "epoch": 1, "eval_loss": 2.5, "eval_rouge1": 30.5, "eval_rouge2": 10.25, "eval_rougeL": 25, "eval_rougeLsum": 27,
         "eval_gen_len": 12.5, "eval_runtime": 2.123456, "eval_samples": 10, "eval_samples_per_second": 4.7],
        ["step": 8, "epoch": 2, "loss": 2.0, "learning_rate": 5e-4, "grad_norm": 1],
        ["step": 8, "epoch": 2, "eval_loss": 2.9, "eval_rouge1": 28, "eval_rouge2": 9, "eval_rougeL": 24, "eval_rougeLsum": 26,
         "eval_gen_len": 13, "eval_runtime": 2, "eval_samples": 10],
    ]

    static func outcome(savedStep: Int) -> RunOutcome {
        RunOutcome(globalStep: 8, epoch: 2, seconds: 16, examples: 64, trainSamples: 32, history: history, savedStep: savedStep,
                   plannedWorkers: 2, warmupSteps: 1, totalSteps: 8)
    }

    static func config(out: String) -> TrainingConfig {
        var c = TrainingConfig()
        c.training.outputDir = out
        c.training.trainFile = TestData.repo.appendingPathComponent("data/samsum/train.jsonl").path
        c.training.perDeviceEvalBatchSize = 4
        c.training.hubToken = "hf_secret_token"
        return c
    }

    @Test func trainAndEvalMetricsAreTrainers() throws {
        let t = RunArtifacts.trainMetrics(Self.outcome(savedStep: 8))
        #expect(t == ["epoch": 2, "train_runtime": 16, "train_samples_per_second": 4, "train_steps_per_second": 0.5,
                      "train_loss": 2.75, "train_samples": 32])  // (4·2 + 3·2 + 2·4) / 8: each logged loss weighted by its steps
        // The saved model is the best (step 4): its evaluation, not the last one.
        let e = try #require(RunArtifacts.evalMetrics(Self.outcome(savedStep: 4), evalBatchSize: 4))
        #expect(e["eval_loss"] == 2.5 && e["eval_rouge1"] == 30.5 && e["eval_samples"] == 10)
        #expect(e["eval_runtime"] == 2.1235 && e["eval_samples_per_second"] == 4.709 && e["eval_steps_per_second"] == 1.413)
        #expect(e["epoch"] == 2 && e["step"] == nil)
        // A model saved at a step without an evaluation has no eval metrics.
        #expect(RunArtifacts.evalMetrics(Self.outcome(savedStep: 6), evalBatchSize: 4) == nil)
    }

    @Test func filesInOutputDir() throws {
        let dir = TestData.tempDir("train")
        try RunArtifacts.write(Self.outcome(savedStep: 4), config: Self.config(out: dir), baseModel: nil, to: dir)
        func object(_ name: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))) as! [String: Any]
        }
        let train = try object("train_results.json"), eval = try object("eval_results.json"), all = try object("all_results.json")
        #expect(Set(train.keys) == ["epoch", "train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "train_samples"])
        #expect(eval["eval_loss"] as? Double == 2.5)
        #expect(Set(all.keys) == Set(train.keys).union(eval.keys))
        // As Trainer.save_metrics writes them: sorted keys, 4-space indents, counts as integers.
        let text = try String(contentsOfFile: dir + "/train_results.json", encoding: .utf8)
        #expect(text.hasPrefix("{\n    \"epoch\": 2.0,\n    \"train_loss\": 2.75,\n") && text.contains("\"train_samples\": 32,"), "\(text)")
        // The resolved config, read back the same, the token redacted.
        let yaml = try String(contentsOfFile: dir + "/" + RunArtifacts.configFileName, encoding: .utf8)
        #expect(!yaml.contains("hf_secret_token") && yaml.contains("hub_token: \"<redacted>\""))
        let back = try TrainingConfig.parse(yaml, file: "training_config.yaml")
        #expect(back.training.perDeviceEvalBatchSize == 4 && back.training.outputDir == dir)
        // A run without an evaluation of the saved model leaves no stale eval_results.json.
        try RunArtifacts.write(Self.outcome(savedStep: 6), config: Self.config(out: dir), baseModel: nil, to: dir)
        #expect(!FileManager.default.fileExists(atPath: dir + "/eval_results.json"))
        #expect(try object("all_results.json")["eval_loss"] == nil)
    }

    @Test func modelCardOfTheSavedModel() throws {
        let cfg = Self.config(out: "runs/my-model")
        let best = RunArtifacts.modelCard(Self.outcome(savedStep: 4), config: cfg, step: 4, baseModel: nil)
        // SAMSum's licence from data/samsum's notes; the dataset from the folder name.
        #expect(best.contains("license: cc-by-nc-nd-4.0\n") && best.contains("datasets:\n- samsum\n"))
        #expect(best.contains("- name: my-model") && best.contains("model at step 4 of 8"))
        #expect(!best.contains("| consistency |"))
        var clustered = Self.outcome(savedStep: 4)
        clustered.onCluster = true
        #expect(RunArtifacts.modelCard(clustered, config: cfg, step: 4, baseModel: nil).contains("| consistency | sync |\n| servers | 1 |"))
        #expect(best.contains("      value: 30.5\n") && best.contains("- Loss: 2.5\n") && !best.contains("value: 28.0"))
        #expect(!best.contains("pipeline(") && best.contains("AutoModelForSeq2SeqLM.from_pretrained(model_id)"))
        #expect(best.contains("model_id = \"runs/my-model\"\n") && best.contains("truncation=True"))
        #expect(!best.lowercased().contains("| samples") && !best.contains("runtime"))
        // Another revision, another card; a step without evaluation has no model-index results.
        let last = RunArtifacts.modelCard(Self.outcome(savedStep: 8), config: cfg, step: 8, baseModel: nil)
        #expect(last != best && last.contains("model at step 8 of 8") && last.contains("value: 28.0"))
        let unevaluated = RunArtifacts.modelCard(Self.outcome(savedStep: 6), config: cfg, step: 6, baseModel: nil)
        #expect(unevaluated.contains("  results: []") && unevaluated.contains("not evaluated at its step"))
        // The config's keys win; the T5 prefix goes into the snippet; a hub id is what it loads.
        var t5 = cfg
        t5.training.license = "apache-2.0"; t5.training.datasetName = "my-dialogues"
        t5.training.sourcePrefix = "summarize: "; t5.training.hubModelId = "team/t5-dialogues"
        let card = RunArtifacts.modelCard(Self.outcome(savedStep: 8), config: t5, step: 8, baseModel: "models/t5-small")
        #expect(card.contains("license: apache-2.0\n") && card.contains("- my-dialogues\n") && card.contains("- name: t5-dialogues"))
        #expect(card.contains("tokenizer(\"summarize: \" + dialogue, truncation=True") && card.contains("model_id = \"team/t5-dialogues\""))
        // No licence anywhere: no licence claimed.
        var unknown = cfg
        unknown.training.trainFile = TestData.tempDir("train") + "/train.jsonl"
        #expect(!RunArtifacts.modelCard(Self.outcome(savedStep: 8), config: unknown, step: 8, baseModel: nil).contains("license:"))
        // A note file that is a FIFO is passed over at once (reading it would wait for a writer for
        // ever); the licence a regular note names after it is still found.
        let noted = TestData.tempDir("train")
        #expect(mkfifo(noted + "/licence.txt", 0o600) == 0)
        try "Released under CC BY-NC-ND 4.0.".write(toFile: noted + "/README.md", atomically: true, encoding: .utf8)
        unknown.training.trainFile = noted + "/train.jsonl"
        #expect(DatasetCredit.license(for: unknown) == "cc-by-nc-nd-4.0", "\(DatasetCredit.license(for: unknown) ?? "none")")
        // A run without any evaluation says so, and has no results table.
        var quiet = Self.outcome(savedStep: 8)
        quiet.history = quiet.history.filter { $0["eval_loss"] == nil }
        let plain = RunArtifacts.modelCard(quiet, config: cfg, step: 8, baseModel: nil)
        #expect(plain.contains("It was not evaluated during training.") && !plain.contains("### Evaluation results"))
    }

    @Test func inProcessRefusesWhatItDoesNotDo() throws {
        func refusal(_ edit: (inout TrainingConfig) -> Void) -> String? {
            var c = TrainingConfig()
            c.file = "c.yaml"
            edit(&c)
            guard let e = LocalTrainer.unsupported(c, totalSteps: 100, stepsPerEpoch: 50) else { return nil }
            return "\(e)"
        }
        #expect(refusal { $0.training.saveStrategy = "no" } == nil)
        #expect(refusal { $0.training.saveSteps = 500 } == nil)  // the default: the only save is the final model
        #expect(refusal { $0.training.evalStrategy = "steps" }?.contains("c.yaml: key 'training.eval_strategy'") == true)
        #expect(refusal { $0.training.saveSteps = 10 }?.contains("training.save_strategy") == true)
        #expect(refusal { $0.training.saveStrategy = "epoch" }?.contains("training.save_strategy") == true)
        #expect(refusal { $0.training.loadBestModelAtEnd = true }?.contains("training.load_best_model_at_end") == true)
        #expect(refusal { $0.training.pushToHub = true; $0.training.hubModelId = "a/b" }?.contains("training.push_to_hub") == true)
        #expect(refusal { $0.training.resumeFromCheckpoint = "latest" }?.contains("training.resume_from_checkpoint") == true)
        // Before the data is loaded (no step counts): the keys refused whatever the length, not the saves.
        var early = TrainingConfig()
        early.training.saveSteps = 10
        #expect(LocalTrainer.unsupported(early, totalSteps: nil, stepsPerEpoch: nil) == nil)
        early.training.evalStrategy = "epoch"
        #expect(LocalTrainer.unsupported(early, totalSteps: nil, stepsPerEpoch: nil) != nil)
    }
}
