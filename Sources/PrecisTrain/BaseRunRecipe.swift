import Foundation
import PrecisCore

/// How the model a run starts from was trained, when that model is the output folder of an earlier
/// Precis run: its `training_config.yaml` (the resolved config) and `trainer_state.json` (the steps
/// it took). The card of the new model then states the whole recipe — a fine-tuned model's card
/// otherwise names its start only as a local path. Anything missing, oversized or unreadable in
/// the folder means no recipe (the card is never the reason a run fails).
public struct BaseRunRecipe: Sendable {
    /// The base run's config.
    public let config: TrainingConfig
    /// Steps it trained (`trainer_state.json`'s `global_step`), if readable.
    public let steps: Int?

    /// The largest files read: a resolved config is a few KiB, a trainer state a few MiB at most.
    static let maxConfigBytes = 1 << 20
    static let maxStateBytes = 64 << 20

    /// The recipe of `folder`, or nil when it is not a Precis run's output folder.
    public static func read(modelFolder folder: String) -> BaseRunRecipe? {
        let configPath = (folder as NSString).appendingPathComponent(RunArtifacts.configFileName)
        guard let text = boundedText(configPath, limit: maxConfigBytes),
              let cfg = try? TrainingConfig.parse(text, file: configPath) else { return nil }
        var steps: Int?
        let statePath = (folder as NSString).appendingPathComponent("trainer_state.json")
        if let state = boundedText(statePath, limit: maxStateBytes),
           let object = (try? JSONSerialization.jsonObject(with: Data(state.utf8))) as? [String: Any],
           let step = object["global_step"] as? Int, step >= 0 {
            steps = step
        }
        return BaseRunRecipe(config: cfg, steps: steps)
    }

    static func boundedText(_ path: String, limit: Int) -> String? {
        guard let data = try? SmallFile.read(path, limit: limit) else { return nil }
        return String(data: data, encoding: .utf8)
    }

    /// The card's description of a denoising objective (nil for summarization).
    static func denoising(_ a: TrainingArguments) -> String? {
        guard a.objective == "denoising" else { return nil }
        let columns = a.denoisingColumns.isEmpty ? [a.textColumn] : a.denoisingColumns
        return "denoising (BART's pre-training) on \(columns.joined(separator: ", ")): mask_ratio \(a.maskRatio), "
            + "poisson_lambda \(a.poissonLambda), permute_sentence_ratio \(a.permuteSentenceRatio)"
    }

    /// The card's rows: what it started from, its objective and data, and its optimisation.
    public var rows: [(String, String)] {
        let a = config.training
        var rows: [(String, String)] = [("model", a.model)]
        rows.append(("objective", Self.denoising(a) ?? "\(a.objective) (\(a.textColumn) → \(a.summaryColumn))"))
        rows += [
            ("train_file", a.trainFile), ("max_source_length / max_target_length", "\(a.maxSourceLength) / \(a.maxTargetLength)"),
            ("learning_rate", "\(a.learningRate)"), ("train_batch_size (per worker)", "\(a.perDeviceTrainBatchSize)"),
            ("gradient_accumulation_steps", "\(a.gradientAccumulationSteps)"),
            ("optimizer", "AdamW (betas \(a.adamBeta1), \(a.adamBeta2); eps \(a.adamEpsilon); weight_decay \(a.weightDecay))"),
            ("lr_scheduler_type", a.lrSchedulerType),
            ("warmup", a.warmupSteps > 0 ? "\(a.warmupSteps) steps" : "ratio \(a.warmupRatio)"),
            ("training_steps", steps.map { "\($0)" } ?? (a.maxSteps > 0 ? "\(a.maxSteps)" : "\(a.numTrainEpochs) epochs")),
            ("label_smoothing_factor", "\(a.labelSmoothingFactor)"), ("max_grad_norm", "\(a.maxGradNorm)"), ("seed", "\(a.seed)"),
        ]
        if a.bf16 { rows.append(("mixed_precision_training", "bf16 matrix products, fp32 accumulation")) }
        return rows
    }
}
