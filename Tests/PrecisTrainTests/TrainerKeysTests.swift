import Foundation
import Testing
import PrecisTrain

/// transformers 5's names, transformers 4's as aliases, Trainer keys Precis does not act on, and
/// every unknown key at once.
@Suite struct TrainerKeysTests {
    func parse(_ training: String) throws -> TrainingConfig {
        try TrainingConfig.parse("training:\n" + training, file: "c.yaml")
    }

    /// `hub_url` unset follows `HF_ENDPOINT` as transformers' `push_to_hub` does.
    @Test func theDefaultHubFollowsHFEndpoint() {
        #expect(TrainingArguments.defaultHubURL(environment: [:]) == "https://huggingface.co")
        #expect(TrainingArguments.defaultHubURL(environment: ["HF_ENDPOINT": ""]) == "https://huggingface.co")
        #expect(TrainingArguments.defaultHubURL(environment: ["HF_ENDPOINT": "http://127.0.0.1:8080/"]) == "http://127.0.0.1:8080")
        #expect(TrainingArguments.defaultHubURL(environment: ["HF_ENDPOINT": "https://hub.example.org/mirror"]) == "https://hub.example.org/mirror")
    }

    @Test func warmupStepsBelowOneIsARatioAsInTransformers5() throws {
        let ratio = try parse("  warmup_steps: 0.1\n")
        #expect(ratio.training.warmupRatio == 0.1 && ratio.training.warmupSteps == 0)
        #expect(try parse("  warmup_steps: 40\n").training.warmupSteps == 40)
        #expect(try parse("  warmup_steps: 40.0\n").training.warmupSteps == 40)
        #expect(try parse("  warmup_ratio: 0.25\n").training.warmupRatio == 0.25)
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "training.warmup_steps", reason: "2.5 must be a whole number of steps, or a ratio in [0, 1)")) {
            try parse("  warmup_steps: 2.5\n")
        }
        #expect(throws: ConfigError.self) { try parse("  warmup_steps: -0.5\n") }
        #expect(throws: ConfigError.self) { try parse("  warmup_ratio: 1.5\n") }
    }

    @Test func theSamplingStrategyAndItsTransformers4Name() throws {
        #expect(try parse("  train_sampling_strategy: group_by_length\n").training.groupByLength)
        #expect(try parse("  group_by_length: true\n").training.trainSamplingStrategy == "group_by_length")
        #expect(try parse("  train_sampling_strategy: sequential\n").training.trainSamplingStrategy == "sequential")
        #expect(try parse("").training.trainSamplingStrategy == "random")
        #expect(throws: ConfigError.self) { try parse("  train_sampling_strategy: batch_rebalance\n") }
        #expect(try parse("  evaluation_strategy: epoch\n").training.evalStrategy == "epoch")
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "training.group_by_length",
                                            reason: "is transformers 4's name for 'train_sampling_strategy': give one of them")) {
            try parse("  group_by_length: true\n  train_sampling_strategy: random\n")
        }
        #expect(throws: ConfigError.self) { try parse("  warmup_ratio: 0.1\n  warmup_steps: 10\n") }
    }

    @Test func harmlessTrainerKeysWarnOnceEachAndHarmfulOnesAreRefused() throws {
        let c = try parse("  fp16: false\n  run_name: x\n  dataloader_num_workers: 4\n  optim: adamw_torch\n")
        #expect(c.warnings.count == 4)
        #expect(c.warnings.contains { $0.contains("training.dataloader_num_workers") && $0.contains("ignored") })
        for (yaml, key) in [("  fp16: true\n", "training.fp16"), ("  bf16_full_eval: true\n", "training.bf16_full_eval"), ("  optim: adafactor\n", "training.optim"),
                            ("  data_seed: 7\n", "training.data_seed"), ("  dataloader_drop_last: true\n", "training.dataloader_drop_last"),
                            ("  sortish_sampler: true\n", "training.sortish_sampler"), ("  eval_delay: 2\n", "training.eval_delay")] {
            do {
                _ = try parse(yaml)
                Issue.record("\(yaml) was accepted")
            } catch let ConfigError.invalid(file, k, reason) {
                #expect(file == "c.yaml" && k == key && !reason.isEmpty)
            }
        }
    }

    /// YAML reads an unquoted `no` as false: a strategy written so gets an error that says to quote
    /// it; quoted, it is Trainer's "no".
    @Test func anUnquotedNoIsExplained() throws {
        for key in ["eval_strategy", "save_strategy", "evaluation_strategy"] {
            do {
                _ = try parse("  \(key): no\n")
                Issue.record("\(key): no was accepted")
            } catch {
                let message = "\(error)"
                #expect(message.contains("c.yaml") && message.contains("training.\(key)") && message.contains("quote it"), "\(message)")
            }
            #expect(throws: Never.self) { try parse("  \(key): \"no\"\n") }
        }
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "training.eval_strategy", expected: "a string")) {
            try parse("  eval_strategy: 3\n")
        }
    }

    @Test func reportToAndLoggingDirAreReadAsTrainerReadsThem() throws {
        let d = try parse("  learning_rate: 0.001\n")
        #expect(d.training.reportTo == ["tensorboard"] && d.training.reportsToTensorBoard && d.training.loggingDir == nil && d.warnings.isEmpty)
        let none = try parse("  report_to: none\n  logging_dir: logs/tb\n")
        #expect(none.training.reportTo == ["none"] && !none.training.reportsToTensorBoard && none.training.loggingDir == "logs/tb")
        #expect(none.warnings.isEmpty)
        let all = try parse("  report_to: all\n")
        #expect(all.training.reportsToTensorBoard && all.warnings.isEmpty)
        let list = try parse("  report_to: [wandb, tensorboard]\n")
        #expect(list.training.reportTo == ["wandb", "tensorboard"] && list.training.reportsToTensorBoard)
        #expect(list.warnings.count == 1 && list.warnings[0].contains("training.report_to: 'wandb' is not supported"))
        #expect(!(try parse("  report_to: [wandb]\n")).training.reportsToTensorBoard)
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "training.report_to", expected: "a string or a list of at most 64 strings")) {
            try parse("  report_to: [1, 2]\n")
        }
        #expect(throws: ConfigError.self) { try parse("  report_to: {a: 1}\n") }
        // The resolved config reads back to the same values.
        let back = try TrainingConfig.parse(list.resolvedYAML(), file: "r.yaml")
        #expect(back.training.reportTo == ["wandb", "tensorboard"] && back.training.loggingDir == nil)
    }

    @Test func everyUnknownKeyIsListedWithTheClosestName() throws {
        let yaml = "training:\n  learnig_rate: 0.1\n  num_epochs_train: 3\n  zzzzzzzz: 1\ncluster:\n  wrokers: 2\nclustr: {}\n"
        do {
            _ = try TrainingConfig.parse(yaml, file: "c.yaml")
            Issue.record("accepted")
        } catch let ConfigError.unknownKeys(file, keys) {
            #expect(file == "c.yaml")
            #expect(keys == [UnknownKey("clustr", suggestion: "cluster"), UnknownKey("cluster.wrokers", suggestion: "workers"),
                             UnknownKey("training.learnig_rate", suggestion: "learning_rate"),
                             UnknownKey("training.num_epochs_train", suggestion: nil), UnknownKey("training.zzzzzzzz", suggestion: nil)])
            let text = "\(ConfigError.unknownKeys(file: file, keys: keys))"
            #expect(text.contains("'training.learnig_rate' (did you mean 'learning_rate'?)") && text.hasPrefix("c.yaml: unknown keys "))
        }
    }

    @Test func theResolvedConfigReadsBackToTheSameConfigWithSecretsHidden() throws {
        let text = try String(contentsOfFile: "configs/train-samsum.yaml", encoding: .utf8)
            .replacingOccurrences(of: "training:\n", with: "training:\n  hub_token: hf_secret\n")
            .replacingOccurrences(of: "warmup_steps: 400", with: "warmup_steps: 0.05")
        let cfg = try TrainingConfig.parse(text, file: "configs/train-samsum.yaml")
        let resolved = cfg.resolvedYAML()
        #expect(!resolved.contains("hf_secret") && resolved.contains("hub_token: \"<redacted>\""))
        #expect(resolved.contains("  train_sampling_strategy: \"group_by_length\"\n") && resolved.contains("  warmup_steps: 0.05\n"))
        var back = try TrainingConfig.parse(resolved, file: "configs/train-samsum.yaml")
        back.training.hubToken = "hf_secret"
        var expected = cfg
        expected.warnings = []
        #expect(back == expected)
    }

    @Test func settingsOverrideKeysOfEitherSectionAndEitherName() throws {
        let base = "training:\n  learning_rate: 0.001\n  warmup_ratio: 0.1\ncluster:\n  workers: 2\n"
        let text = try TrainingConfig.applying(["learning_rate=3e-4", "cluster.workers=4", "warmup_steps=50", "training.seed=7"],
                                               to: base, file: "c.yaml")
        let cfg = try TrainingConfig.parse(text, file: "c.yaml")
        #expect(cfg.training.learningRate == 3e-4 && cfg.cluster.workers == 4 && cfg.training.warmupSteps == 50
                && cfg.training.warmupRatio == 0 && cfg.training.seed == 7)
        #expect(throws: ConfigError.unknownKeys(file: "--set", keys: [UnknownKey("learnig_rate", suggestion: "learning_rate")])) {
            try TrainingConfig.applying(["learnig_rate=1"], to: base, file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "--set", key: "learning_rate", reason: "must be KEY=VALUE")) {
            try TrainingConfig.applying(["learning_rate"], to: base, file: "c.yaml")
        }
    }
}
