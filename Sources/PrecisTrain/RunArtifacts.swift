import Foundation
import PrecisCore
import PrecisHub

/// How a run ended, as the files left in `output_dir` report it.
public struct RunOutcome: Sendable {
    /// Steps trained.
    public var globalStep: Int
    public var epoch: Double
    public var seconds: Double
    /// Training examples processed.
    public var examples: Int
    /// Examples in the training set (run_summarization's `train_samples`).
    public var trainSamples: Int?
    /// Trainer's log_history (training and evaluation entries).
    public var history: [[String: Double]]
    /// The step of the model saved in output_dir: the best checkpoint's with `load_best_model_at_end`.
    public var savedStep: Int
    /// Workers the global batch is planned for (1 in process).
    public var plannedWorkers: Int
    public var warmupSteps: Int
    public var totalSteps: Int
    /// Trained on a cluster (the card then lists the cluster's settings too).
    public var onCluster: Bool

    public init(globalStep: Int, epoch: Double, seconds: Double, examples: Int, trainSamples: Int?, history: [[String: Double]],
                savedStep: Int, plannedWorkers: Int, warmupSteps: Int, totalSteps: Int, onCluster: Bool = false) {
        self.globalStep = globalStep; self.epoch = epoch; self.seconds = seconds; self.examples = examples
        self.trainSamples = trainSamples; self.history = history; self.savedStep = savedStep
        self.plannedWorkers = plannedWorkers; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
        self.onCluster = onCluster
    }
}

/// What a run leaves in `output_dir` beside the model folder, as Trainer and run_summarization do:
/// `train_results.json`, `eval_results.json` and `all_results.json` (`Trainer.save_metrics`: sorted
/// keys, indented by 4, raw numbers), `training_config.yaml` (the resolved config, secrets
/// redacted) and a `README.md` model card. Every file is written atomically.
public enum RunArtifacts {
    public static let configFileName = "training_config.yaml"

    /// Trainer's train metrics: runtime (rounded to 4 places), samples and steps per second (3),
    /// the mean training loss, the epoch, and run_summarization's `train_samples`. `total_flos` is
    /// left out (Precis does not count floating-point operations per example).
    public static func trainMetrics(_ o: RunOutcome) -> [String: Double] {
        var m: [String: Double] = ["epoch": o.epoch, "train_runtime": round(o.seconds, 4), "train_loss": meanTrainingLoss(o.history)]
        if o.seconds > 0 {
            m["train_samples_per_second"] = round(Double(o.examples) / o.seconds, 3)
            m["train_steps_per_second"] = round(Double(o.globalStep) / o.seconds, 3)
        }
        if let n = o.trainSamples { m["train_samples"] = Double(n) }
        return m
    }

    /// The evaluation of the saved model (the log_history entry at `savedStep` with `eval_*` keys),
    /// as Trainer's eval metrics (`eval_*`, runtime rounded to 4 places, rates to 3, the run's epoch);
    /// nil when the saved model was not evaluated.
    public static func evalMetrics(_ o: RunOutcome, evalBatchSize: Int) -> [String: Double]? {
        guard let e = evaluation(at: o.savedStep, in: o.history) else { return nil }
        var m = e.filter { $0.key.hasPrefix("eval_") }
        if let r = m["eval_runtime"] {
            m["eval_runtime"] = round(r, 4)
            if r > 0, let n = m["eval_samples"] {
                m["eval_samples_per_second"] = round(n / r, 3)
                m["eval_steps_per_second"] = round((n / Double(max(1, evalBatchSize))).rounded(.up) / r, 3)
            }
        }
        m["epoch"] = o.epoch
        return m
    }

    /// The last log_history entry of `step` holding evaluation metrics.
    public static func evaluation(at step: Int, in history: [[String: Double]]) -> [String: Double]? {
        history.last { $0["step"] == Double(step) && ($0["eval_loss"] != nil || $0["eval_rouge1"] != nil) }
    }

    /// The mean of the logged training losses, each weighted by the steps it covers (Trainer's
    /// `train_loss`, the mean loss per step, from what log_history keeps).
    static func meanTrainingLoss(_ history: [[String: Double]]) -> Double {
        var previous = 0.0, sum = 0.0, steps = 0.0
        for e in history {
            guard let loss = e["loss"], let step = e["step"], step > previous else { continue }
            sum += loss * (step - previous); steps += step - previous; previous = step
        }
        return steps > 0 ? sum / steps : 0
    }

    static func round(_ v: Double, _ places: Int) -> Double {
        let f = pow(10.0, Double(places))
        return (v * f).rounded() / f
    }

    static func json(_ m: [String: Double]) throws -> Data {
        // NaN and infinities (a run with stop_on_nonfinite: false) as Python's json writes them.
        // Counts are integers in Python's files; every other value is a float.
        let counts: Set<String> = ["train_samples", "eval_samples", "total_flos"]
        var text = "{\n"
        let keys = m.keys.sorted()
        for (i, k) in keys.enumerated() {
            let v = m[k]!
            let value: String
            if v.isNaN { value = "NaN" } else if v.isInfinite { value = v > 0 ? "Infinity" : "-Infinity" } else if counts.contains(k), v == v.rounded(), abs(v) < 1e15 {
                value = String(Int(v))
            } else {
                value = "\(v)"
            }
            let key = String(decoding: try JSONSerialization.data(withJSONObject: [k]), as: UTF8.self).dropFirst().dropLast()
            text += "    \(key): \(value)" + (i + 1 < keys.count ? "," : "") + "\n"
        }
        return Data((text + "}").utf8)
    }

    /// Writes the results, the resolved config and the model card into `dir`.
    public static func write(_ o: RunOutcome, config cfg: TrainingConfig, baseModel: String?, to dir: String) throws {
        let train = trainMetrics(o)
        try AtomicFile.write(try json(train), to: path(dir, "train_results.json"))
        var all = train
        let evalPath = path(dir, "eval_results.json")
        if let e = evalMetrics(o, evalBatchSize: cfg.training.perDeviceEvalBatchSize) {
            try AtomicFile.write(try json(e), to: evalPath)
            all.merge(e) { $1 }
        } else {
            // A stale file from an earlier run in this folder would describe another model.
            try? FileManager.default.removeItem(atPath: evalPath)
        }
        try AtomicFile.write(try json(all), to: path(dir, "all_results.json"))
        try AtomicFile.write(Data(cfg.resolvedYAML().utf8), to: path(dir, configFileName))
        try AtomicFile.write(Data(modelCard(o, config: cfg, step: o.savedStep, baseModel: baseModel).utf8), to: path(dir, "README.md"))
    }

    /// The model card of the model at `step` (the saved model, or a checkpoint being pushed).
    public static func modelCard(_ o: RunOutcome, config cfg: TrainingConfig, step: Int, baseModel: String?) -> String {
        let a = cfg.training
        var metrics: ModelCard.Metrics?
        if let e = evaluation(at: step, in: o.history), let r1 = e["eval_rouge1"] {
            metrics = ModelCard.Metrics(rouge1: r1, rouge2: e["eval_rouge2"] ?? .nan, rougeL: e["eval_rougeL"] ?? .nan,
                                        rougeLsum: e["eval_rougeLsum"] ?? .nan, genLen: e["eval_gen_len"], loss: e["eval_loss"])
        } else if let e = evaluation(at: step, in: o.history), let loss = e["eval_loss"] {
            metrics = ModelCard.Metrics(rouge1: .nan, rouge2: .nan, rougeL: .nan, rougeLsum: .nan, genLen: nil, loss: loss)
        }
        var hp: [(String, String)] = [
            ("model", HubCache.repoID(ofSnapshotFolder: a.model) ?? a.model), ("learning_rate", "\(a.learningRate)"), ("train_batch_size (per worker)", "\(a.perDeviceTrainBatchSize)"),
            ("gradient_accumulation_steps", "\(a.gradientAccumulationSteps)"), ("planned workers", "\(o.plannedWorkers)"),
            ("total_train_batch_size", "\(a.perDeviceTrainBatchSize * a.gradientAccumulationSteps * o.plannedWorkers)"),
            ("optimizer", "AdamW (betas \(a.adamBeta1), \(a.adamBeta2); eps \(a.adamEpsilon); weight_decay \(a.weightDecay))"),
            ("lr_scheduler_type", a.lrSchedulerType), ("warmup_steps", "\(o.warmupSteps)"), ("training_steps", "\(o.totalSteps)"),
            ("label_smoothing_factor", "\(a.labelSmoothingFactor)"), ("max_grad_norm", "\(a.maxGradNorm)"), ("seed", "\(a.seed)"),
        ]
        // Trainer's card says "mixed_precision_training: Native AMP" for bf16; this names what Precis does.
        if a.bf16 { hp.append(("mixed_precision_training", "bf16 matrix products, fp32 accumulation")) }
        if let objective = BaseRunRecipe.denoising(a) { hp.append(("objective", objective)) }
        if o.onCluster {
            hp += [("consistency", cfg.cluster.consistency), ("servers", "\(cfg.cluster.servers)"), ("gradient codec", cfg.cluster.codec)]
        }
        let name = a.hubModelId.map { String($0.split(separator: "/").last ?? Substring($0)) }
            ?? ((a.outputDir as NSString).lastPathComponent.isEmpty ? "precis-model" : (a.outputDir as NSString).lastPathComponent)
        let evals = o.history.filter { $0["eval_loss"] != nil || $0["eval_rouge1"] != nil }
        let dataset = DatasetCredit.name(for: cfg)
        let epoch = Double(step) / Double(max(1, o.globalStep)) * o.epoch
        // A local base folder written by an earlier Precis run (the pre-training stage of a two-stage
        // recipe) has its recipe carried into this card.
        let isLocal = baseModel != nil && HubCache.repoID(ofSnapshotFolder: a.model) == nil
        let baseTraining = isLocal ? BaseRunRecipe.read(modelFolder: a.model)?.rows ?? [] : []
        return ModelCard.render(modelName: name, repoID: a.hubModelId ?? a.outputDir, baseModel: baseModel,
                                baseModelIsLocal: isLocal, baseModelTraining: baseTraining,
                                license: DatasetCredit.license(for: cfg),
                                dataset: ModelCard.DatasetInfo(name: dataset, type: dataset, split: "validation"),
                                metrics: metrics, hyperparameters: hp, evalHistory: evals,
                                trainingSummary: "Trained with Precis (a Swift parameter-server cluster for CPU hosts) on \(a.trainFile).",
                                revision: ModelCard.Revision(step: step, epoch: epoch, totalSteps: o.totalSteps),
                                sourcePrefix: a.sourcePrefix)
    }

    static func path(_ dir: String, _ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
}

/// The dataset a run trained on and its licence, for the model card: the config's `dataset_name`
/// and `license`, else the training file's folder name and the licence its folder's notes state.
public enum DatasetCredit {
    /// Licence names as the notes write them, and the Hub's identifier; longest first, so that
    /// "CC BY-NC-ND 4.0" is not read as "CC BY 4.0".
    static let licences: [(String, String)] = [
        ("Attribution-NonCommercial-NoDerivatives 4.0", "cc-by-nc-nd-4.0"), ("Attribution-NonCommercial-ShareAlike 4.0", "cc-by-nc-sa-4.0"),
        ("Attribution-NonCommercial 4.0", "cc-by-nc-4.0"), ("Attribution-ShareAlike 4.0", "cc-by-sa-4.0"),
        ("CC BY-NC-ND 4.0", "cc-by-nc-nd-4.0"), ("CC BY-NC-SA 4.0", "cc-by-nc-sa-4.0"), ("CC BY-NC 4.0", "cc-by-nc-4.0"),
        ("CC BY-SA 4.0", "cc-by-sa-4.0"), ("CC BY 4.0", "cc-by-4.0"), ("CC0", "cc0-1.0"),
        ("Apache License, Version 2.0", "apache-2.0"), ("Apache License 2.0", "apache-2.0"), ("MIT License", "mit"),
    ]
    /// The notes read in the training file's folder, in this order; at most 64 KiB of each.
    static let noteFiles = ["licence.txt", "license.txt", "LICENSE", "LICENSE.txt", "LICENCE", "SOURCE.md", "NOTICE.md", "README.md"]

    public static func name(for cfg: TrainingConfig) -> String {
        if let n = cfg.training.datasetName, !n.isEmpty { return n }
        let folder = ((cfg.training.trainFile as NSString).deletingLastPathComponent as NSString).lastPathComponent
        return folder.isEmpty || folder == "." ? "custom" : folder
    }

    /// The config's `license`, else the licence the training data's notes name, else nil.
    public static func license(for cfg: TrainingConfig) -> String? {
        if let l = cfg.training.license, !l.isEmpty { return l }
        let folder = (cfg.training.trainFile as NSString).deletingLastPathComponent
        for f in noteFiles {
            // Regular files only (a FIFO named README.md would hold the read for ever), their first 64 KiB.
            guard let data = try? SmallFile.head(((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent(f), count: 65_536)
            else { continue }
            let text = String(decoding: data, as: UTF8.self)
            if let hit = licences.first(where: { text.contains($0.0) }) { return hit.1 }
        }
        return nil
    }
}
