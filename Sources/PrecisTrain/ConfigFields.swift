import Foundation
import Yams

// The keys of each config section, in the order `precis config check` prints them: one table drives
// reading (`TrainingConfig.parse`) and printing (`TrainingConfig.resolvedYAML`). Keys that need more
// than a type (warmup_steps, resume_from_checkpoint and transformers 4's names) are read in
// `TrainingConfig.readTraining`.

extension TrainingArguments {
    static let fields: [(key: String, field: ConfigField<TrainingArguments>)] = [
        ("output_dir", .string(\.outputDir)),
        ("model", .string(\.model)),
        ("tokenizer", .string(\.tokenizer)),
        ("tokenizer_model", .optionalString(\.tokenizerModel)),
        ("tokenizer_vocab_size", .int(\.tokenizerVocabSize)),
        ("train_file", .string(\.trainFile)),
        ("text_column", .string(\.textColumn)),
        ("summary_column", .string(\.summaryColumn)),
        ("max_source_length", .int(\.maxSourceLength)),
        ("max_target_length", .int(\.maxTargetLength)),
        ("source_prefix", .string(\.sourcePrefix)),
        ("max_train_samples", .optionalInt(\.maxTrainSamples)),
        ("skip_bad_records", .bool(\.skipBadRecords)),
        ("per_device_train_batch_size", .int(\.perDeviceTrainBatchSize)),
        ("gradient_accumulation_steps", .int(\.gradientAccumulationSteps)),
        ("learning_rate", .double(\.learningRate)),
        ("weight_decay", .double(\.weightDecay)),
        ("adam_beta1", .double(\.adamBeta1)),
        ("adam_beta2", .double(\.adamBeta2)),
        ("adam_epsilon", .double(\.adamEpsilon)),
        ("num_train_epochs", .double(\.numTrainEpochs)),
        ("max_steps", .int(\.maxSteps)),
        ("lr_scheduler_type", .string(\.lrSchedulerType)),
        ("max_grad_norm", .double(\.maxGradNorm)),
        ("stop_on_nonfinite", .bool(\.stopOnNonfinite)),
        ("label_smoothing_factor", .double(\.labelSmoothingFactor)),
        ("bf16", .bool(\.bf16)),
        ("logging_steps", .int(\.loggingSteps)),
        ("logging_dir", .optionalString(\.loggingDir)),
        ("report_to", .stringList(\.reportTo)),
        ("seed", .int(\.seed)),
        ("train_sampling_strategy", .string(\.trainSamplingStrategy)),
        ("threads", .optionalInt(\.threads)),
        ("objective", .string(\.objective)),
        ("denoising_columns", .stringList(\.denoisingColumns)),
        ("mask_ratio", .double(\.maskRatio)),
        ("poisson_lambda", .double(\.poissonLambda)),
        ("permute_sentence_ratio", .double(\.permuteSentenceRatio)),
        ("mask_token", .string(\.maskToken)),
        ("save_strategy", .string(\.saveStrategy)),
        ("save_steps", .int(\.saveSteps)),
        ("save_total_limit", .optionalInt(\.saveTotalLimit)),
        ("load_best_model_at_end", .bool(\.loadBestModelAtEnd)),
        ("metric_for_best_model", .optionalString(\.metricForBestModel)),
        ("greater_is_better", .optionalBool(\.greaterIsBetter)),
        ("eval_strategy", .string(\.evalStrategy)),
        ("eval_steps", .optionalInt(\.evalSteps)),
        ("validation_file", .string(\.validationFile)),
        ("per_device_eval_batch_size", .int(\.perDeviceEvalBatchSize)),
        ("predict_with_generate", .bool(\.predictWithGenerate)),
        ("generation_max_length", .optionalInt(\.generationMaxLength)),
        ("generation_num_beams", .optionalInt(\.generationNumBeams)),
        ("generation_config", .optionalString(\.generationConfig)),
        ("max_eval_samples", .optionalInt(\.maxEvalSamples)),
        ("push_to_hub", .bool(\.pushToHub)),
        ("hub_model_id", .optionalString(\.hubModelId)),
        ("hub_strategy", .string(\.hubStrategy)),
        ("hub_private_repo", .bool(\.hubPrivateRepo)),
        ("hub_token", .optionalString(\.hubToken)),
        ("hub_url", .string(\.hubURL)),
        ("license", .optionalString(\.license)),
        ("dataset_name", .optionalString(\.datasetName)),
    ]
}

extension ClusterSettings {
    static let fields: [(key: String, field: ConfigField<ClusterSettings>)] = [
        ("coordinator", .string(\.coordinator)),
        ("servers", .int(\.servers)),
        ("workers", .int(\.workers)),
        ("consistency", .string(\.consistency)),
        ("staleness", .int(\.staleness)),
        ("codec", .string(\.codec)),
        ("pull_codec", .string(\.pullCodec)),
        ("overlap_pull", .bool(\.overlapPull)),
        ("threads_per_worker", .optionalInt(\.threadsPerWorker)),
        ("heartbeat_interval", .double(\.heartbeatInterval)),
        ("heartbeat_timeout", .double(\.heartbeatTimeout)),
        ("partition_bytes", .int(\.partitionBytes)),
        ("start_timeout", .double(\.startTimeout)),
        ("metrics_port", .optionalInt(\.metricsPort)),
        ("metrics_bind", .string(\.metricsBind)),
    ]
}

extension TrainingConfig {
    /// The configuration as Precis will run it, every key with its value (defaults included, in
    /// transformers 5's names, secrets shown as `<redacted>`), as YAML that `parse` reads back.
    public func resolvedYAML() -> String {
        var lines = ["# \(file), resolved: every key with the value Precis uses", "training:"]
        let secret = Set(Self.secretKeys.filter { $0.0 == "training" }.map(\.1))
        for (key, field) in TrainingArguments.fields {
            guard let v = field.yaml(training) else { lines.append("  \(key): null"); continue }
            lines.append("  \(key): \(secret.contains(key) ? "\"<redacted>\"" : v)")
            if key == "max_steps" {
                lines.append("  warmup_steps: \(training.warmupRatio > 0 && training.warmupSteps == 0 ? "\(training.warmupRatio)" : "\(training.warmupSteps)")")
            }
            if key == "greater_is_better" {
                lines.append("  resume_from_checkpoint: \(training.resumeFromCheckpoint.map(ConfigField<TrainingArguments>.quoted) ?? "null")")
            }
        }
        lines.append("cluster:")
        for (key, field) in ClusterSettings.fields { lines.append("  \(key): \(field.yaml(cluster) ?? "null")") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension TrainingConfig {
    /// `text` with `key=value` settings applied (`precis train --set`): `key` is `training.KEY`,
    /// `cluster.KEY` or a bare key of either section; `value` is read as YAML (`0.1`, `true`, `text`).
    /// Names the setting that is not `key=value` or names no key.
    public static func applying(_ settings: [String], to text: String, file: String) throws -> String {
        guard !settings.isEmpty else { return text }
        var top: Node.Mapping
        switch try YAMLTree.compose(text, file: file) {
        case .mapping(let m)?: top = m
        case nil: top = Node.Mapping([])
        default: throw ConfigError.unreadable(file: file, reason: "the top level must be a mapping with 'training' and 'cluster'")
        }
        let trainingKeys = Set(TrainingArguments.fields.map(\.key) + TrainerKeys.aliases.keys + TrainerKeys.ignored.keys
                                + ["warmup_steps", "resume_from_checkpoint"])
        let clusterKeys = Set(ClusterSettings.fields.map(\.key))
        for setting in settings {
            guard let eq = setting.firstIndex(of: "="), eq != setting.startIndex else {
                throw ConfigError.invalid(file: "--set", key: setting, reason: "must be KEY=VALUE")
            }
            var key = String(setting[..<eq])
            let valueText = String(setting[setting.index(after: eq)...])
            var section: String
            if key.hasPrefix("training.") || key.hasPrefix("cluster.") {
                section = String(key.prefix { $0 != "." }); key = String(key.dropFirst(section.count + 1))
            } else if trainingKeys.contains(key) {
                section = "training"
            } else if clusterKeys.contains(key) {
                section = "cluster"
            } else {
                throw ConfigError.unknownKeys(file: "--set", keys: [UnknownKey(key, suggestion: TrainerKeys.closest(to: key, in: Array(trainingKeys.union(clusterKeys))))])
            }
            let value: Node
            do { value = try YAMLTree.compose(valueText, file: "--set") ?? Node("", Tag(.null)) } catch {
                throw ConfigError.invalid(file: "--set", key: "\(section).\(key)", reason: "'\(valueText)' is not a YAML value")
            }
            var m: Node.Mapping
            switch top[section] {
            case .mapping(let existing)?: m = existing
            case nil: m = Node.Mapping([])
            default: throw ConfigError.wrongType(file: file, key: section, expected: "a mapping")
            }
            // A setting replaces the key under either of its names (transformers 4's or 5's).
            for (old, new) in TrainerKeys.aliases where key == old || key == new { m[old] = nil; m[new] = nil }
            m[key] = value
            top[section] = .mapping(m)
        }
        return try Yams.serialize(node: .mapping(top))
    }
}
