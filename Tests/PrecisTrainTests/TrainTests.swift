import Foundation
import Testing
import PrecisCore
import PrecisModels
import PrecisTrain
import PrecisData
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// 64 SAMSum validation examples as JSON Lines (from the bundled corpus).
func smallData() throws -> String {
    try TestData.samsumPrefix("validation", count: 64, to: TestData.tempDir("train") + "/val64.jsonl")
}

@Suite struct TrainingConfigTests {
    @Test func shippedConfigsParse() throws {
        let main = try TrainingConfig.load(TestData.repo.appendingPathComponent("configs/train-samsum.yaml").path)
        // 8 per worker × 2 workers: the batch of 16 per step the PyTorch reference run used.
        #expect(main.training.model == "bart-small" && main.training.perDeviceTrainBatchSize == 8 && main.cluster.workers == 2)
        #expect(main.cluster.servers == 1 && main.cluster.consistency == "sync" && main.cluster.coordinator == "tcp://127.0.0.1:5555")
        #expect(main.training.evalStrategy == "epoch" && main.training.predictWithGenerate && main.training.bestMetric?.key == "eval_rougeL")
        #expect(main.training.bestMetric?.greaterIsBetter == true)
        #expect(main.training.learningRate == 7e-4 && main.training.labelSmoothingFactor == 0.1 && main.training.groupByLength)
        // make train's two stages and make train-best's: denoising, then fine-tuning from its folder.
        for (pre, tune) in [("pretrain-samsum", "train-samsum-finetune"), ("pretrain-samsum-best", "train-samsum-best")] {
            let p = try TrainingConfig.load(TestData.repo.appendingPathComponent("configs/\(pre).yaml").path)
            let t = try TrainingConfig.load(TestData.repo.appendingPathComponent("configs/\(tune).yaml").path)
            #expect(p.training.objective == "denoising" && p.training.denoisingColumns == ["dialogue", "summary"] && p.training.model == "bart-small")
            #expect(t.training.objective == "summarization" && t.training.model == p.training.outputDir, "\(tune) does not start from \(pre)")
            #expect(t.training.generationConfig == "configs/generation-samsum.json")
            #expect(try GenerationConfigFile.load(t)["length_penalty"] as? Double == 1.2)
        }
        let smoke = try TrainingConfig.load(TestData.repo.appendingPathComponent("configs/train-smoke.yaml").path)
        #expect(smoke.training.maxSteps == 6 && smoke.training.gradientAccumulationSteps == 2)
    }

    @Test func sourcePrefixIsReadAndChecked() throws {
        let cfg = try TrainingConfig.parse("training:\n  source_prefix: \"summarize: \"\n", file: "p.yaml")
        #expect(cfg.training.sourcePrefix == "summarize: ")
        #expect(try TrainingConfig.parse("training:\n  model: bart-small\n", file: "p.yaml").training.sourcePrefix == "")
        #expect(throws: ConfigError.wrongType(file: "p.yaml", key: "training.source_prefix", expected: "a string")) {
            try TrainingConfig.parse("training:\n  source_prefix: [1]\n", file: "p.yaml")
        }
        #expect(TrainingArguments.sourcePrefixProblem("summarize: ") == nil)
        #expect(TrainingArguments.sourcePrefixProblem("x\u{7}") == "holds the control character U+7")
    }

    @Test func clusterAndServiceKeysAreCheckedAndNamed() throws {
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "cluster.consistency", reason: "'bsp' is not one of sync, ssp, async")) {
            try TrainingConfig.parse("cluster:\n  consistency: bsp\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "cluster.servers", expected: "an integer")) {
            try TrainingConfig.parse("cluster:\n  servers: two\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "cluster.codec", reason: "'zstd' is not one of none, fp32, bf16")) {
            try TrainingConfig.parse("cluster:\n  codec: zstd\n", file: "c.yaml")
        }
        // bf16-delta is a parameter codec only (deltas against the copy a worker holds).
        #expect(try TrainingConfig.parse("cluster:\n  pull_codec: bf16-delta\n", file: "c.yaml").cluster.pullCodec == "bf16-delta")
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "cluster.codec", reason: "'bf16-delta' is not one of none, fp32, bf16")) {
            try TrainingConfig.parse("cluster:\n  codec: bf16-delta\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "cluster.pull_codec", reason: "'bf8' is not one of none, fp32, bf16, bf16-delta")) {
            try TrainingConfig.parse("cluster:\n  pull_codec: bf8\n", file: "c.yaml")
        }
        // overlap_pull: on unless turned off; a boolean, nothing else.
        #expect(try TrainingConfig.parse("cluster:\n  servers: 1\n", file: "c.yaml").cluster.overlapPull)
        #expect(try !TrainingConfig.parse("cluster:\n  overlap_pull: false\n", file: "c.yaml").cluster.overlapPull)
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("cluster:\n  overlap_pull: sometimes\n", file: "c.yaml") }
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("training:\n  push_to_hub: true\n", file: "c.yaml") }
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("training:\n  save_strategy: sometimes\n", file: "c.yaml") }
        let r = try TrainingConfig.parse("training:\n  resume_from_checkpoint: true\n  metric_for_best_model: loss\n", file: "c.yaml")
        #expect(r.training.resumeFromCheckpoint == "latest" && r.training.bestMetric?.key == "eval_loss" && r.training.bestMetric?.greaterIsBetter == false)
    }

    @Test func unknownKeysAndWrongTypesNameTheKey() throws {
        #expect(throws: ConfigError.unknownKeys(file: "c.yaml", keys: [UnknownKey("training.learnig_rate", suggestion: "learning_rate")])) {
            try TrainingConfig.parse("training:\n  learnig_rate: 0.1\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "training.per_device_train_batch_size", expected: "an integer")) {
            try TrainingConfig.parse("training:\n  per_device_train_batch_size: lots\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.unknownKeys(file: "c.yaml", keys: [UnknownKey("trainng", suggestion: "training")])) {
            try TrainingConfig.parse("trainng: {}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.unknownKeys(file: "c.yaml", keys: [UnknownKey("cluster.wrokers", suggestion: "workers")])) {
            try TrainingConfig.parse("cluster:\n  wrokers: 2\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("training:\n  lr_scheduler_type: polynomial\n", file: "c.yaml") }
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("training: [1, 2\n", file: "c.yaml") }
        // Integers are accepted for float keys, as YAML writes them.
        #expect(try TrainingConfig.parse("training:\n  learning_rate: 1\n", file: "c.yaml").training.learningRate == 1)
    }

    @Test func stopOnNonfiniteIsOnByDefaultAndChecked() throws {
        #expect(try TrainingConfig.parse("training: {}\n", file: "c.yaml").training.stopOnNonfinite)
        #expect(try !TrainingConfig.parse("training:\n  stop_on_nonfinite: false\n", file: "c.yaml").training.stopOnNonfinite)
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "training.stop_on_nonfinite", expected: "true or false")) {
            try TrainingConfig.parse("training:\n  stop_on_nonfinite: 1\n", file: "c.yaml")
        }
    }
}

/// Hostile or careless configs: every one is a ConfigError naming the file and the key, before
/// anything starts (never a crash, a spin or a run into NaN).
@Suite struct HostileConfigTests {
    func invalidKey(_ yaml: String) -> String? {
        do {
            _ = try TrainingConfig.parse(yaml, file: "h.yaml")
            return nil
        } catch let ConfigError.invalid(file, key, _) {
            #expect(file == "h.yaml")
            return key
        } catch {
            Issue.record("\(yaml): \(error) is not ConfigError.invalid")
            return nil
        }
    }

    @Test(arguments: [
        ("training:\n  max_train_samples: -3\n", "training.max_train_samples"),
        ("training:\n  max_train_samples: 0\n", "training.max_train_samples"),
        ("training:\n  max_eval_samples: -1\n", "training.max_eval_samples"),
        ("training:\n  warmup_steps: -5\n", "training.warmup_steps"),
        ("training:\n  adam_beta1: 1.5\n", "training.adam_beta1"),
        ("training:\n  adam_beta2: -0.1\n", "training.adam_beta2"),
        ("training:\n  adam_epsilon: 0\n", "training.adam_epsilon"),
        ("training:\n  adam_epsilon: 1.0e-50\n", "training.adam_epsilon"),   // 0 in fp32: 0 / 0 for every zero gradient
        ("training:\n  weight_decay: -0.5\n", "training.weight_decay"),
        ("training:\n  learning_rate: .inf\n", "training.learning_rate"),
        ("training:\n  learning_rate: .nan\n", "training.learning_rate"),
        ("training:\n  max_grad_norm: .inf\n", "training.max_grad_norm"),
        ("training:\n  num_train_epochs: .inf\n", "training.num_train_epochs"),
        ("training:\n  max_steps: 0\n", "training.max_steps"),
        ("training:\n  seed: -1\n", "training.seed"),
        ("training:\n  generation_num_beams: 0\n", "training.generation_num_beams"),
        ("training:\n  generation_max_length: 0\n", "training.generation_max_length"),
        ("training:\n  threads: 0\n", "training.threads"),
        ("training:\n  per_device_train_batch_size: 1000000000\n", "training.per_device_train_batch_size"),
        ("training:\n  max_source_length: 100000000000\n", "training.max_source_length"),
        ("cluster:\n  threads_per_worker: 0\n", "cluster.threads_per_worker"),
        ("cluster:\n  workers: 5000\n", "cluster.workers"),
        ("cluster:\n  heartbeat_timeout: .inf\n", "cluster.heartbeat_timeout"),
        ("cluster:\n  partition_bytes: 100000000000\n", "cluster.partition_bytes"),
        ("cluster:\n  metrics_port: 65536\n", "cluster.metrics_port"),
        ("cluster:\n  metrics_port: -1\n", "cluster.metrics_port"),
        ("cluster:\n  metrics_bind: \"\"\n", "cluster.metrics_bind"),
        ("cluster:\n  metrics_bind: \"127.0.0.1 9100\"\n", "cluster.metrics_bind"),
        ("training:\n  source_prefix: \"a\\u0001b\"\n", "training.source_prefix"),
        ("training:\n  source_prefix: \"\(String(repeating: "x", count: 1025))\"\n", "training.source_prefix"),
    ])
    func outOfRangeValuesNameTheKey(yaml: String, key: String) {
        #expect(invalidKey(yaml) == key, "\(yaml)")
    }

    /// `cluster.metrics_port`: absent is no listener, 0 any free port; the bind defaults to loopback.
    @Test func metricsPortAndBind() throws {
        let none = try TrainingConfig.parse("cluster:\n  workers: 1\n", file: "m.yaml")
        #expect(none.cluster.metricsPort == nil && none.cluster.metricsBind == "127.0.0.1")
        let set = try TrainingConfig.parse("cluster:\n  metrics_port: 9100\n  metrics_bind: 0.0.0.0\n", file: "m.yaml")
        #expect(set.cluster.metricsPort == 9100 && set.cluster.metricsBind == "0.0.0.0")
        #expect(try TrainingConfig.parse("cluster:\n  metrics_port: 0\n", file: "m.yaml").cluster.metricsPort == 0)
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("cluster:\n  metrics_port: \"9100\"\n", file: "m.yaml") }
        // Printed resolved and read back.
        let again = try TrainingConfig.parse(set.resolvedYAML(), file: "r.yaml")
        #expect(again.cluster == set.cluster)
        #expect(none.resolvedYAML().contains("  metrics_port: null\n"))
    }

    @Test func duplicateKeysAreRefusedWithTheirLine() {
        let yaml = "training:\n  learning_rate: 0.1\n  seed: 3\n  learning_rate: 0.2\n"
        #expect(invalidKey(yaml) == "training.learning_rate")
        do { _ = try TrainingConfig.parse(yaml, file: "h.yaml") } catch {
            #expect("\(error)".contains("line 4"), "\(error)")
        }
        #expect(invalidKey("training: {}\ntraining: {}\n") == "training")
    }

    /// Found by the trainconfig fuzzer (tools/fuzz/corpus/trainconfig/regression-*): a key that is a
    /// list or a mapping made Yams trap (a force unwrap in its mapping constructor), in release too.
    @Test func aKeyThatIsNotAScalarIsAnErrorNotATrap() throws {
        #expect(invalidKey("training:\n  ? [a, b]\n  : 1\n") == "training")
        #expect(invalidKey("{[a]: 1}\n") == "(top level)")
        #expect(invalidKey("training: {{x: 1}: 2}\n") == "training")
        do { _ = try TrainingConfig.parse("cluster:\n  ? {a: 1}\n  : 2\n", file: "k.yaml") } catch {
            #expect("\(error)" == "k.yaml: key 'cluster': a key must be a plain name, not a list or mapping (line 2)")
        }
        let dir = TestData.repo.appendingPathComponent("tools/fuzz/corpus/trainconfig").path
        let found = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("regression-") }
        #expect(!found.isEmpty)
        for name in found {
            #expect(throws: ConfigError.self, "\(name)") { try TrainingConfig.load(dir + "/" + name) }
        }
    }

    /// What the coordinator sends its members: the same config, less the hub token.
    @Test func theRedactedConfigKeepsEverythingButTheSecrets() throws {
        let text = """
            training:
              learning_rate: 0.002
              push_to_hub: true
              hub_model_id: team/model
              hub_token: hf_SECRET_VALUE
            cluster:
              workers: 3
            """
        let full = try TrainingConfig.parse(text, file: "c.yaml")
        let redacted = try TrainingConfig.redacted(text)
        #expect(!redacted.contains("hf_SECRET_VALUE") && !redacted.contains("hub_token"))
        var expected = full
        expected.training.hubToken = nil
        #expect(try TrainingConfig.parse(redacted, file: "c.yaml") == expected)
        let plain = "training:\n  learning_rate: 0.002\n"
        #expect(try TrainingConfig.redacted(plain) == plain)
    }

    /// Nine levels of ten aliases each would be 10⁹ values: refused after `maxNodes`, at once.
    @Test func anAliasBombIsRefused() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        do {
            _ = try TrainingConfig.parse(yaml, file: "bomb.yaml")
            Issue.record("an alias bomb was accepted")
        } catch let ConfigError.unreadable(file, reason) {
            #expect(file == "bomb.yaml")
            #expect(reason.contains("alias"), "\(reason)")
        } catch {
            Issue.record("\(error)")
        }
        // A config's own few aliases are fine.
        let ok = "training:\n  per_device_train_batch_size: &b 4\n  per_device_eval_batch_size: *b\n"
        #expect((try? TrainingConfig.parse(ok, file: "ok.yaml"))?.training.perDeviceEvalBatchSize == 4)
    }

    /// Nesting deep enough to overflow the stack of Yams' recursive composer (`- - - … x`, or
    /// `[[[…]]]`, a few thousand levels: a segmentation fault before), flow nesting that makes
    /// libyaml slow (its time grows with the square of it) and texts too large are refused with the
    /// file named, quickly, on any thread; so is a chain of aliases nested past the depth limit.
    @Test func deeplyNestedOrOversizedYAMLIsRefused() {
        func refusal(_ yaml: String) -> String? {
            do {
                _ = try TrainingConfig.parse(yaml, file: "deep.yaml")
                return nil
            } catch let ConfigError.unreadable(file, reason) {
                #expect(file == "deep.yaml")
                return reason
            } catch {
                return "\(error)"
            }
        }
        let levels = 20_000
        let block = "training:\n" + String(repeating: "- ", count: levels) + "x\n"
        #expect(refusal(block)?.contains("nested more than \(YAMLTree.maxDepth) levels deep (line 2") == true, "\(refusal(block) ?? "accepted")")
        let flow = "training: " + String(repeating: "[", count: 3_000) + String(repeating: "]", count: 3_000) + "\n"
        #expect(refusal(flow)?.contains("nested more than \(YAMLTree.maxDepth) levels deep") == true, "\(refusal(flow) ?? "accepted")")
        let openers = "training: " + String(repeating: "[", count: YAMLTree.maxFlowOpeners + 1)
        #expect(refusal(openers)?.contains("'[' and '{' characters: more than the \(YAMLTree.maxFlowOpeners)") == true)
        let large = "training:\n  source_prefix: '" + String(repeating: "x", count: YAMLTree.maxBytes) + "'\n"
        #expect(refusal(large)?.contains("more than the \(YAMLTree.maxBytes) a YAML file may have") == true)
        var chain = "a0: &a0 x\n"
        for i in 1...100 { chain += "a\(i): &a\(i) [*a\(i - 1)]\n" }
        #expect(refusal(chain)?.contains("nested more than") == true, "\(refusal(chain) ?? "accepted")")
        // Nesting at the limit parses (as a config it is then refused for its content, not its shape).
        let atLimit = "a: " + String(repeating: "[", count: YAMLTree.maxDepth) + String(repeating: "]", count: YAMLTree.maxDepth) + "\n"
        #expect(throws: ConfigError.self) { _ = try TrainingConfig.parse(atLimit, file: "ok.yaml") }
        #expect(refusal(atLimit)?.contains("nested") != true)
        // A cluster file goes through the same door.
        #expect(throws: ConfigError.self) { _ = try ClusterFile.parse(block, file: "deep.yaml") }
    }

    /// A config path that is a FIFO is refused at once (reading it would wait for a writer for ever),
    /// and so is a file larger than a YAML file may be; both name the file.
    @Test func aConfigThatIsNotASmallRegularFileIsRefused() throws {
        let dir = TestData.tempDir("train")
        let fifo = dir + "/fifo.yaml", big = dir + "/big.yaml"
        #expect(mkfifo(fifo, 0o600) == 0)
        try Data(repeating: UInt8(ascii: "#"), count: YAMLTree.maxBytes + 1).write(to: URL(fileURLWithPath: big))
        for (path, reason) in [(fifo, "not a regular file"), (big, "larger than the \(YAMLTree.maxBytes) bytes")] {
            for load in [{ _ = try TrainingConfig.load(path) }, { _ = try ClusterFile.load(path) }] as [() throws -> Void] {
                do {
                    try load()
                    Issue.record("\(path) was accepted")
                } catch let ConfigError.unreadable(file, why) {
                    #expect(file == path && why.contains(reason), "\(why)")
                }
            }
        }
    }

    @Test func plausibleValuesStillParse() throws {
        let c = try TrainingConfig.parse("""
            training:
              max_train_samples: 1
              warmup_steps: 0
              adam_beta1: 0
              weight_decay: 0
              max_grad_norm: 0
              max_steps: -1
              seed: 4294967295
              generation_num_beams: 1
            cluster:
              threads_per_worker: 1
              workers: 4096
            """, file: "ok.yaml")
        #expect(c.training.seed == 4_294_967_295 && c.cluster.workers == 4096)
    }
}

@Suite struct LocalTrainerTests {
    func config(_ data: String, out: String, batch: Int, accumulation: Int, steps: Int, model: String = "bart-tiny") -> TrainingConfig {
        var c = TrainingConfig()
        c.training.outputDir = out
        c.training.model = model
        c.training.tokenizer = TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path
        c.training.trainFile = data
        c.training.maxSourceLength = 96
        c.training.maxTargetLength = 24
        c.training.perDeviceTrainBatchSize = batch
        c.training.gradientAccumulationSteps = accumulation
        c.training.learningRate = 2e-3
        c.training.weightDecay = 0.01
        c.training.warmupSteps = 1
        c.training.maxSteps = steps
        c.training.labelSmoothingFactor = 0.1
        c.training.loggingSteps = 1
        c.training.seed = 3
        c.training.threads = 2
        return c
    }

    /// A wrong column (every record skipped) or no records at all leaves nothing to train on: an error
    /// naming the file and the columns, not a loop over empty epochs.
    @Test func noUsableExampleIsAnErrorNamingTheFile() throws {
        let data = try smallData()
        var c = config(data, out: TestData.tempDir("train"), batch: 2, accumulation: 1, steps: 2)
        c.training.textColumn = "conversation"
        do {
            _ = try TrainingPlan(c, model: ModelShape(vocabSize: 8192, maxPositions: 1024), plannedWorkers: 1)
            Issue.record("a training set with no usable example was accepted")
        } catch let ConfigError.invalid(_, key, reason) {
            #expect(key == "training.train_file")
            #expect(reason.contains(data) && reason.contains("'conversation'"), "\(reason)")
        }
    }

    /// num_train_epochs so large that its steps pass max_steps' bound (1e300 once trapped converting
    /// the step count to Int) is an error naming the key; the bound itself still plans.
    @Test func tooManyEpochsAreAnErrorNamingTheKey() throws {
        let data = try smallData()
        var c = config(data, out: TestData.tempDir("train"), batch: 2, accumulation: 1, steps: 2)
        c.training.maxSteps = -1
        let shape = ModelShape(vocabSize: 8192, maxPositions: 1024)
        for epochs in [1e300, 1e15] {
            c.training.numTrainEpochs = epochs
            do {
                _ = try TrainingPlan(c, model: shape, plannedWorkers: 1)
                Issue.record("num_train_epochs \(epochs) was accepted")
            } catch let ConfigError.invalid(_, key, reason) {
                #expect(key == "training.num_train_epochs")
                #expect(reason.contains("more than \(TrainingArguments.maxStepsLimit) steps"), "\(reason)")
            }
        }
        c.training.numTrainEpochs = 2
        let plan = try TrainingPlan(c, model: shape, plannedWorkers: 1)
        #expect(plan.totalSteps == 2 * plan.stepsPerEpoch)
    }

    /// A tokenizer made for another model family (the test tokenizer ends with `</s>` = 2 and pads
    /// with 1, as BART; T5 and Pegasus use eos 1, pad 0) is refused before anything is tokenized: the
    /// model would learn to end summaries with a token generation does not stop at.
    @Test func aTokenizerWithOtherSpecialIdsThanTheModelIsRefused() throws {
        let data = try smallData()
        let c = config(data, out: TestData.tempDir("train"), batch: 2, accumulation: 1, steps: 2)
        for (eos, pad, field) in [(1, 0, "eos_token_id is 1"), (2, 0, "pad_token_id is 0")] {
            do {
                _ = try TrainingPlan(c, model: ModelShape(vocabSize: 8192, maxSourcePositions: nil, maxTargetPositions: nil,
                                                          eosTokenId: eos, padTokenId: pad), plannedWorkers: 1)
                Issue.record("a tokenizer with other special ids than the model (eos \(eos), pad \(pad)) was accepted")
            } catch let ConfigError.invalid(_, key, reason) {
                #expect(key == "training.tokenizer")
                #expect(reason.contains(c.training.tokenizer) && reason.contains(field), "\(reason)")
            }
        }
        // The ids the tokenizer was made with pass.
        _ = try TrainingPlan(c, model: ModelShape(vocabSize: 8192, maxSourcePositions: nil, maxTargetPositions: nil,
                                                  eosTokenId: 2, padTokenId: 1), plannedWorkers: 1)
    }

    /// Same seed → bitwise the same model; the loss falls; the folder is a complete model folder.
    @Test func trainingIsReproducibleAndLearns() throws {
        let data = try smallData()
        let a = TestData.tempDir("train"), b = TestData.tempDir("train")
        // trainer_state.json is kept current during the run: at step 6's progress report it holds steps 1 to 5.
        var midway: [Int] = []
        let ra = try LocalTrainer.run(config(data, out: a, batch: 8, accumulation: 1, steps: 12), progress: { p in
            guard p.step == 6, let d = FileManager.default.contents(atPath: a + "/trainer_state.json"),
                  let s = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
                  let h = s["log_history"] as? [[String: Any]] else { return }
            midway = h.compactMap { $0["step"] as? Int }
        })
        #expect(midway == Array(1...5), "\(midway)")
        var quiet = config(data, out: b, batch: 8, accumulation: 1, steps: 12)
        quiet.training.reportTo = ["none"]
        #expect(try LocalTrainer.run(quiet).steps == 12)
        #expect(!FileManager.default.fileExists(atPath: b + "/runs"), "report_to: none wrote event files")
        #expect(ra.steps == 12)
        let wa = try Data(contentsOf: URL(fileURLWithPath: a + "/model.safetensors"))
        let wb = try Data(contentsOf: URL(fileURLWithPath: b + "/model.safetensors"))
        let fa = try SafeTensorsFile(path: a + "/model.safetensors"), fb = try SafeTensorsFile(path: b + "/model.safetensors")
        #expect(wa.count == wb.count)
        for name in fa.names { #expect(try fa.floats(name) == fb.floats(name), "\(name)") }
        let losses = ra.logHistory.map { $0["loss"]! }
        #expect(losses.last! < losses.first! - 0.05, "losses \(losses)")
        for f in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"] {
            #expect(FileManager.default.fileExists(atPath: a + "/" + f), "\(f)")
        }
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: a + "/trainer_state.json"))) as! [String: Any]
        #expect(state["global_step"] as? Int == 12)
        #expect((state["log_history"] as? [Any])?.count == 13)
        // report_to tensorboard (the default): one event file under output_dir/runs/<date>_<host>/ with every logged step.
        let runs = try FileManager.default.contentsOfDirectory(atPath: a + "/runs")
        #expect(runs.count == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: a + "/runs/" + runs[0])
        #expect(files.count == 1 && files[0].hasPrefix("events.out.tfevents."), "\(files)")
        let events = try EventFileReader.read(a + "/runs/" + runs[0] + "/" + files[0])
        #expect(events.count == 13 && events[0].fileVersion == "brain.Event:2")
        #expect(events.dropFirst().map(\.step) == Array(1...12))
        #expect(events.dropFirst().map { $0.scalars["train/loss"] } == ra.logHistory.map { Float($0["loss"]!) })
        #expect(events.dropFirst().allSatisfy { $0.scalars.keys.sorted() == ["train/epoch", "train/examples_per_second", "train/grad_norm",
                                                                               "train/learning_rate", "train/loss"] })
        #expect(try ModelFolder.load(a).model.table.count == 724_992)
    }

    /// A run's thread count is its own: a run with 2 threads gives the same bits while another run
    /// with 1 thread trains beside it in the same process (the thread count was once process-wide,
    /// and the second run's start changed the first one's chunking midway).
    @Test func aRunKeepsItsThreadCountWhileAnotherRunsBeside() throws {
        let data = try smallData()
        var alone = config(data, out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 6)
        alone.training.threads = 2
        alone.training.reportTo = ["none"]
        _ = try LocalTrainer.run(alone)
        var beside = alone
        beside.training.outputDir = TestData.tempDir("train")
        var other = alone
        other.training.outputDir = TestData.tempDir("train")
        other.training.threads = 1
        // The other run starts after this one's second step, and this one goes on only once the
        // other has made its first step: the two overlap for certain.
        let otherStarted = DispatchSemaphore(value: 0), otherDone = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var otherError: Error?
        nonisolated(unsafe) var otherThreads = 0
        let otherConfig = other
        let besideReport = try LocalTrainer.run(beside, progress: { p in
            guard p.step == 2 else { return }
            Thread {
                defer { otherDone.signal() }
                do {
                    otherThreads = try LocalTrainer.run(otherConfig, progress: { if $0.step == 1 { otherStarted.signal() } }).threads
                } catch { otherError = error; otherStarted.signal() }
            }.start()
            otherStarted.wait()
        })
        otherDone.wait()
        #expect(otherError == nil, "\(String(describing: otherError))")
        #expect(besideReport.threads == 2 && otherThreads == 1, "each report names its own run's threads: \(besideReport.threads), \(otherThreads)")
        let a = try SafeTensorsFile(path: alone.training.outputDir + "/model.safetensors")
        let b = try SafeTensorsFile(path: beside.training.outputDir + "/model.safetensors")
        #expect(a.names == b.names && !a.names.isEmpty)
        for name in a.names { #expect(try a.floats(name) == b.floats(name), "\(name)") }
    }

    /// Gradient accumulation: 2 micro-batches of 8 make the same update as one batch of 16 on the same
    /// examples (the loss is averaged over all label tokens of the update), without dropout.
    /// `k_proj.bias` is left out: its gradient is analytically zero (softmax ignores a constant added
    /// to every score), so what it holds is float rounding, which AdamW scales up to eps-sized steps
    /// that depend on the summation order; the golden tests check it against an absolute bound.
    @Test func accumulationEqualsTheLargeBatch() throws {
        let data = try smallData()
        let dir = TestData.tempDir("train")
        var cfg = try #require(try JSONSerialization.jsonObject(with: Data(ModelPresets.all["bart-tiny"]!.utf8)) as? [String: Any])
        cfg["dropout"] = 0
        let cfgPath = dir + "/nodrop.json"
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: cfgPath))
        let big = try LocalTrainer.run(config(data, out: dir + "/big", batch: 16, accumulation: 1, steps: 2, model: cfgPath))
        let acc = try LocalTrainer.run(config(data, out: dir + "/acc", batch: 8, accumulation: 2, steps: 2, model: cfgPath))
        #expect(abs(big.logHistory[0]["loss"]! - acc.logHistory[0]["loss"]!) < 1e-5)
        let fa = try SafeTensorsFile(path: dir + "/big/model.safetensors"), fb = try SafeTensorsFile(path: dir + "/acc/model.safetensors")
        var compared = 0
        for name in fa.names where !name.hasSuffix("k_proj.bias") {
            compared += 1
            let x = try fa.floats(name), y = try fb.floats(name)
            var d = 0.0, n = 0.0
            for i in 0..<x.count { d += Double(x[i] - y[i]) * Double(x[i] - y[i]); n += Double(x[i]) * Double(x[i]) }
            #expect(d.squareRoot() <= 1e-5 * max(n.squareRoot(), 1e-3), "\(name)")
        }
        #expect(compared > 40)
    }

    /// stop_on_nonfinite (on by default): a learning rate of 1e30 makes the first step's update
    /// overflow the model, and the next step's loss or gradient norm is not finite: the run stops at
    /// that step with an error naming it, before its update, and saves nothing.
    @Test func aNonFiniteStepStopsTheRunAndSavesNothing() throws {
        var c = config(try smallData(), out: TestData.tempDir("train") + "/out", batch: 4, accumulation: 1, steps: 4)
        c.training.learningRate = 1e30
        c.training.warmupSteps = 0
        #expect(c.training.stopOnNonfinite)
        var seen: [Int] = []
        do {
            _ = try LocalTrainer.run(c, progress: { seen.append($0.step) })
            Issue.record("a run with a non-finite step finished")
        } catch let e as NonFiniteStop {
            #expect(e.step == 2, "\(e)")
            #expect(!e.value.isFinite)
            #expect("\(e)".hasPrefix("step 2: the \(e.quantity.rawValue) is ") && "\(e)".contains("stop_on_nonfinite"), "\(e)")
        }
        #expect(seen == [1], "steps reported: \(seen)")
        #expect(!FileManager.default.fileExists(atPath: c.training.outputDir + "/model.safetensors"))
    }

    /// With stop_on_nonfinite: false the old behaviour: every step runs on NaN values.
    @Test func withTheStopOffANonFiniteRunTrainsOn() throws {
        var c = config(try smallData(), out: TestData.tempDir("train") + "/out", batch: 4, accumulation: 1, steps: 3)
        c.training.learningRate = 1e30
        c.training.warmupSteps = 0
        c.training.stopOnNonfinite = false
        var losses: [Int: Double] = [:]
        do { _ = try LocalTrainer.run(c, progress: { losses[$0.step] = $0.loss }) } catch is NonFiniteStop {
            Issue.record("stopped with stop_on_nonfinite: false")
        } catch {
            // The old ending: the NaN loss reaches trainer_state.json's JSON writer.
        }
        #expect(losses.keys.sorted() == [1, 2, 3], "\(losses)")
        #expect(losses[1]!.isFinite && !losses[3]!.isFinite, "\(losses)")
    }

    /// The denoising objective (BART's pre-training): each text of the chosen columns is an example
    /// whose labels are the text itself; the sources the steps see are noisy (masks, sentences
    /// moved), the run is reproducible, and the loss falls. Its model folder then starts a
    /// summarization run, as a pre-train → fine-tune recipe does.
    @Test func denoisingTrainsOnNoisyTextsAndFeedsFineTuning() throws {
        let data = try smallData()
        func denoise(_ out: String) -> TrainingConfig {
            var c = config(data, out: out, batch: 8, accumulation: 1, steps: 10)
            c.training.objective = "denoising"
            c.training.denoisingColumns = ["dialogue", "summary"]
            c.training.reportTo = ["none"]
            return c
        }
        let a = TestData.tempDir("train"), b = TestData.tempDir("train")
        let plan = try TrainingPlan(denoise(a), model: ModelShape(vocabSize: 8192, maxPositions: 1024), plannedWorkers: 1)
        // 64 records, two columns: 128 examples, each cut to the shorter length (24) on both sides.
        #expect(plan.dataset.count == 128)
        for i in [0, 63, 64, 127] {
            #expect(Array(plan.dataset.source(i)) == Array(plan.dataset.target(i)))
            #expect(plan.dataset.sourceLength(i) <= 24)
        }
        let batch = try plan.collator(padId: 1).batch(Array(0..<8), from: plan.dataset, step: 0)
        #expect(batch.inputIds.contains(8191), "no <mask> in the noisy sources")
        let ra = try LocalTrainer.run(denoise(a)), rb = try LocalTrainer.run(denoise(b))
        let fa = try SafeTensorsFile(path: a + "/model.safetensors"), fb = try SafeTensorsFile(path: b + "/model.safetensors")
        for name in fa.names { #expect(try fa.floats(name) == fb.floats(name), "\(name)") }
        let losses = ra.logHistory.map { $0["loss"]! }
        #expect(losses == rb.logHistory.map { $0["loss"]! })
        #expect(losses.last! < losses.first! - 0.05, "losses \(losses)")
        let card = try String(contentsOfFile: a + "/README.md", encoding: .utf8)
        #expect(card.contains("denoising (BART's pre-training) on dialogue, summary: mask_ratio 0.3"), "\(card)")
        // Fine-tuning from the pre-trained folder.
        var tune = config(data, out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 2, model: a)
        tune.training.reportTo = ["none"]
        let first = try LocalTrainer.run(tune).logHistory[0]["loss"]!
        var scratch = config(data, out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 2)
        scratch.training.reportTo = ["none"]
        #expect(try first < LocalTrainer.run(scratch).logHistory[0]["loss"]!, "pre-training did not help the first summarization step")
        // The fine-tuned model's card carries the pre-training's recipe (from the base folder), and
        // names its start as a local folder, not as a Hub link.
        let tuned = try String(contentsOfFile: tune.training.outputDir + "/README.md", encoding: .utf8)
        #expect(tuned.contains("fine-tuned version of the local model `\(a)`") && !tuned.contains("huggingface.co/\(a)"), "\(tuned)")
        let base = try #require(tuned.range(of: "### How the base model was trained"), "\(tuned)")
        let section = String(tuned[base.upperBound...])
        for row in ["| objective | denoising (BART's pre-training) on dialogue, summary: mask_ratio 0.3", "| training_steps | 10 |",
                    "| train_batch_size (per worker) | 8 |", "| model | bart-tiny |"] {
            #expect(section.contains(row), "\(row) not in:\n\(section)")
        }
        // A base folder whose recipe files are damaged gives a card without the section, never an error.
        try "training: [".write(toFile: a + "/training_config.yaml", atomically: true, encoding: .utf8)
        #expect(BaseRunRecipe.read(modelFolder: a) == nil)
        #expect(BaseRunRecipe.read(modelFolder: b)?.steps == 10)
        #expect(BaseRunRecipe.read(modelFolder: TestData.tempDir("train")) == nil)
    }

    /// A tokenizer without the mask token, or a column that is not one of the two, is a config error naming the key.
    @Test func denoisingSettingsAreChecked() throws {
        var c = config(try smallData(), out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 1)
        c.training.objective = "denoising"
        c.training.maskToken = "<nomask>"
        do {
            _ = try TrainingPlan(c, model: ModelShape(vocabSize: 8192, maxPositions: 1024), plannedWorkers: 1)
            Issue.record("no error")
        } catch let e as ConfigError {
            #expect("\(e)".contains("training.mask_token") && "\(e)".contains("<nomask>"), "\(e)")
        }
        for (yaml, key) in [("objective: pretraining", "objective"), ("mask_ratio: 1.5", "mask_ratio"), ("mask_ratio: .nan", "mask_ratio"),
                            ("poisson_lambda: 0", "poisson_lambda"), ("permute_sentence_ratio: -1", "permute_sentence_ratio"),
                            ("denoising_columns: [id]", "denoising_columns")] {
            #expect(throws: ConfigError.self, "\(yaml)") { try TrainingConfig.parse("training:\n  \(yaml)\n", file: "d.yaml") }
            do { _ = try TrainingConfig.parse("training:\n  \(yaml)\n", file: "d.yaml") } catch {
                #expect("\(error)".contains(key), "\(error)")
            }
        }
        let ok = try TrainingConfig.parse("training:\n  objective: denoising\n  denoising_columns: [dialogue, summary]\n  mask_ratio: 0.3\n", file: "d.yaml")
        #expect(ok.training.objective == "denoising" && ok.training.denoisingColumns == ["dialogue", "summary"])
    }

    /// `generation_config` (Seq2SeqTrainingArguments' name): the file's values replace the model's
    /// generation defaults in the folder the run writes, so evaluation decodes with them without
    /// flags; a folder holding one is read too; a missing, malformed or invalid file is refused
    /// before the first step with the key and the file named.
    @Test func generationConfigGoesIntoTheSavedFolder() throws {
        let dir = TestData.tempDir("train")
        let gen = dir + "/generation_config.json"
        try Data(#"{"num_beams": 4, "length_penalty": 1.2, "no_repeat_ngram_size": 3, "max_new_tokens": 64}"#.utf8).write(to: URL(fileURLWithPath: gen))
        for value in [gen, dir] {
            var c = config(try smallData(), out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 1)
            c.training.generationConfig = value
            c.training.reportTo = ["none"]
            _ = try LocalTrainer.run(c)
            let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: c.training.outputDir + "/generation_config.json"))) as! [String: Any]
            #expect(saved["num_beams"] as? Int == 4 && saved["length_penalty"] as? Double == 1.2 && saved["no_repeat_ngram_size"] as? Int == 3)
            #expect(saved["max_new_tokens"] as? Int == 64)
            // The model's own values stay where the file says nothing.
            #expect(saved["decoder_start_token_id"] as? Int == 2 && saved["eos_token_id"] as? Int == 2, "\(saved)")
            let g = try GenerationSettings.load(folder: c.training.outputDir)
            #expect(g.numBeams == 4 && g.lengthPenalty == 1.2 && g.noRepeatNgramSize == 3 && g.maxNewTokens == 64)
        }
        // Read once, when the run starts: removing the file during the run changes nothing saved.
        let gone = TestData.tempDir("train") + "/generation_config.json"
        try FileManager.default.copyItem(atPath: gen, toPath: gone)
        var once = config(try smallData(), out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 2)
        once.training.generationConfig = gone
        once.training.reportTo = ["none"]
        _ = try LocalTrainer.run(once, progress: { p in if p.step == 1 { try? FileManager.default.removeItem(atPath: gone) } })
        #expect(!FileManager.default.fileExists(atPath: gone))
        #expect(try GenerationSettings.load(folder: once.training.outputDir).lengthPenalty == 1.2)
        // A FIFO or a link to /dev/zero is refused at once (not waited on, not read for ever).
        let fifo = "(fifo)", zero = "(/dev/zero)", huge = String(repeating: " ", count: 1 << 20) + "{}"
        for (content, why) in [(nil, "no such file"), ("[1, 2]", "not a JSON object"), (#"{"num_beams": 0}"#, "num_beams"),
                               (#"{"num_beams": "four"}"#, "num_beams"), (fifo, "not a regular file"),
                               (zero, "not a regular file"), (huge, "larger than 1 MiB")] {
            let bad = TestData.tempDir("train") + "/gen.json"
            switch content {
            case fifo: #expect(mkfifo(bad, 0o600) == 0)
            case zero: try FileManager.default.createSymbolicLink(atPath: bad, withDestinationPath: "/dev/zero")
            case let content?: try Data(content.utf8).write(to: URL(fileURLWithPath: bad))
            case nil: break
            }
            var c = config(try smallData(), out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 1)
            c.training.generationConfig = bad
            do {
                _ = try LocalTrainer.run(c)
                Issue.record("\(why): no error")
            } catch let e as ConfigError {
                #expect("\(e)".contains("training.generation_config") && "\(e)".contains(bad) && "\(e)".contains(why), "\(e)")
            }
            #expect(!FileManager.default.fileExists(atPath: c.training.outputDir + "/model.safetensors"))
        }
    }

    @Test func aMissingTokenizerIsAClearError() throws {
        var c = config(try smallData(), out: TestData.tempDir("train"), batch: 8, accumulation: 1, steps: 1)
        c.training.tokenizer = "/nonexistent/tokenizer.json"
        do { _ = try LocalTrainer.run(c); Issue.record("no error") } catch let e as ConfigError {
            #expect("\(e)".contains("training.tokenizer") && "\(e)".contains("precis tokenizer train"))
        }
    }
}
