import Foundation
import PrecisCore
import PrecisData
import PrecisHub
import PrecisModels
import PrecisText

/// Trains a model in this process: the data pipeline, the model's forward/backward, global-norm
/// clipping, the learning-rate schedule and AdamW, with Trainer's step accounting. The cluster roles
/// will split the same loop over processes; this is also the single-process reference they must match.
public enum LocalTrainer {
    public struct Progress: Sendable {
        public var step: Int
        public var totalSteps: Int
        public var epoch: Double
        public var loss: Double
        public var learningRate: Double
        public var examplesPerSecond: Double
        public var elapsed: Double
    }

    public struct Report: Sendable {
        public var steps: Int
        public var finalLoss: Double
        public var logHistory: [[String: Double]]
        public var seconds: Double
        public var outputDir: String
        /// The threads the run's products used (`threads` in the config, else every core).
        public var threads: Int
    }

    /// The model to train: an existing folder (config.json + model.safetensors) or a config to
    /// initialise from scratch with the run's seed.
    public static func loadModel(_ spec: String, seed: Int) throws -> any Seq2SeqModel {
        let folderConfig = (spec as NSString).appendingPathComponent("config.json")
        if FileManager.default.fileExists(atPath: folderConfig) {
            return try ModelFolder.load(spec).model
        }
        let m = try ModelPresets.model(spec)
        m.initializeWeights(seed: UInt64(seed))
        return m
    }

    /// The keys this loop does not act on that a config sets to something that would change what a
    /// run leaves behind: evaluation, checkpoints before the last step, the best model, hub pushes,
    /// resuming (the cluster does them). nil when there is none. Without the step counts (known once
    /// the data is loaded), only the keys that refuse whatever the run's length.
    public static func unsupported(_ cfg: TrainingConfig, totalSteps: Int?, stepsPerEpoch: Int?) -> ConfigError? {
        let a = cfg.training
        func refuse(_ key: String, _ why: String) -> ConfigError {
            .invalid(file: cfg.file, key: "training.\(key)", reason: why + "; train on a cluster (precis train without --in-process) for that")
        }
        if a.evalStrategy != "no" { return refuse("eval_strategy", "'\(a.evalStrategy)': training in process does not evaluate (set it to no)") }
        if a.loadBestModelAtEnd { return refuse("load_best_model_at_end", "training in process does not pick a best checkpoint (set it to false)") }
        if a.pushToHub { return refuse("push_to_hub", "training in process does not push to a hub (set it to false)") }
        if a.resumeFromCheckpoint != nil { return refuse("resume_from_checkpoint", "training in process does not resume (remove it)") }
        // The model folder written at the end is the last save; a save before it would be a checkpoint.
        guard let totalSteps, let stepsPerEpoch else { return nil }
        if a.saveStrategy == "steps", a.saveSteps < totalSteps {
            return refuse("save_strategy", "'steps' with save_steps \(a.saveSteps) < \(totalSteps) steps: training in process writes no checkpoints, only the final model (set save_strategy to no, or save_steps to \(totalSteps) or more)")
        }
        if a.saveStrategy == "epoch", stepsPerEpoch < totalSteps {
            return refuse("save_strategy", "'epoch' over \(totalSteps) steps of \(stepsPerEpoch) per epoch: training in process writes no checkpoints, only the final model (set save_strategy to no)")
        }
        return nil
    }

    /// - Parameter refuseUnsupported: throw `unsupported`'s error instead of training without those keys
    ///   (what `precis train --in-process` asks for; the reference runs of the tests do not).
    public static func run(_ cfg: TrainingConfig, refuseUnsupported: Bool = false, log: (String) -> Void = { _ in },
                           progress: (Progress) -> Void = { _ in }) throws -> Report {
        if refuseUnsupported, let e = unsupported(cfg, totalSteps: nil, stepsPerEpoch: nil) { throw e }
        // The run's thread count is its own (not the process's): another run or benchmark in the
        // same process cannot change it, or the run's bits, midway.
        return try Compute.withThreads(cfg.training.threads ?? Compute.availableCores) {
            try train(cfg, refuseUnsupported: refuseUnsupported, log: log, progress: progress)
        }
    }

    private static func train(_ cfg: TrainingConfig, refuseUnsupported: Bool, log: (String) -> Void,
                              progress: (Progress) -> Void) throws -> Report {
        let a = cfg.training
        let model = try loadModel(a.model, seed: a.seed)
        try BF16Setting.apply(cfg, to: model)
        let plan = try TrainingPlan(cfg, model: ModelShape(model.facts), plannedWorkers: 1)
        if refuseUnsupported, let e = unsupported(cfg, totalSteps: plan.totalSteps, stepsPerEpoch: plan.stepsPerEpoch) { throw e }
        log(plan.loadSummary)
        let ds = plan.dataset
        log("tokenized \(ds.count) examples\(plan.fromCache ? " (from the cache)" : "")")
        let totalSteps = plan.totalSteps
        let optimizer = OptimizerState(table: model.table,
                                       adamw: AdamW(beta1: a.adamBeta1, beta2: a.adamBeta2, eps: a.adamEpsilon, weightDecay: a.weightDecay),
                                       schedule: plan.schedule)
        log("\(model.table.count) parameters, \(ds.count) examples, \(plan.stepsPerEpoch) steps per epoch, \(totalSteps) steps, warmup \(plan.warmupSteps), \(Compute.threads) thread(s), products \(BF16Setting.describe(model))")

        let collator = plan.collator(padId: model.facts.padTokenId)
        let t0 = Date()
        var step = 0, epoch = 0, epochsDone = 0.0
        var windowLoss = 0.0, windowTokens = 0, lastLoss = 0.0, examples = 0
        var history: [[String: Double]] = []
        // Kept current at every logging step: trainer_state.json and, with report_to tensorboard, the event file.
        try FileManager.default.createDirectory(atPath: a.outputDir, withIntermediateDirectories: true)
        var tensorBoard: TensorBoardWriter?
        if a.reportsToTensorBoard {
            let w = try TensorBoardWriter(directory: a.loggingDir ?? TensorBoardWriter.defaultLoggingDir(outputDir: a.outputDir))
            log("TensorBoard: \(w.path)")
            tensorBoard = w
        }
        training: while step < totalSteps {
            let batches = plan.microBatches(epoch: epoch)
            var next = 0
            while next < batches.count {
                let group = Array(batches[next..<min(batches.count, next + a.gradientAccumulationSteps)])
                next += group.count
                // The loss (and so the gradient) is the mean over every label token of the update,
                // whatever the split into micro-batches.
                let micro = try group.map { try collator.batch($0, from: ds, step: step) }
                let tokens = micro.reduce(0) { $0 + $1.labels.filter { $0 != Seq2SeqBatch.ignoreIndex }.count }
                model.zeroGradients()
                var lossSum = 0.0
                for (i, b) in micro.enumerated() {
                    let r = try model.step(b, options: StepOptions(training: true, labelSmoothing: Float(a.labelSmoothingFactor),
                                                                   seed: plan.dropoutSeed(step: step, micro: i),
                                                                   lossNormalizer: max(1, tokens)), logitsOut: nil)
                    lossSum += r.lossSum
                }
                let norm = GradClip.norm(model.grads.pointer, count: model.grads.count)
                // Before the update: a NaN step never reaches the parameters, and nothing is saved.
                if a.stopOnNonfinite {
                    try NonFiniteStop.check(step: step + 1, loss: tokens > 0 ? lossSum / Double(tokens) : 0, gradientNorm: norm)
                }
                let lr = optimizer.currentLR
                optimizer.apply(params: model.params.pointer, grads: model.grads.pointer,
                                clipCoefficient: a.maxGradNorm > 0 ? GradClip.coefficient(totalNorm: norm, maxNorm: a.maxGradNorm) : 1)
                step += 1
                examples += group.reduce(0) { $0 + $1.count }
                windowLoss += lossSum; windowTokens += tokens
                let elapsed = Date().timeIntervalSince(t0)
                let ep = Double(epoch) + Double(next) / Double(batches.count)
                epochsDone = ep
                lastLoss = tokens > 0 ? lossSum / Double(tokens) : 0
                progress(Progress(step: step, totalSteps: totalSteps, epoch: ep, loss: lastLoss, learningRate: lr,
                                  examplesPerSecond: Double(examples) / max(elapsed, 1e-9), elapsed: elapsed))
                if step % a.loggingSteps == 0 || step == totalSteps {
                    let entry: [String: Double] = ["step": Double(step), "epoch": (ep * 100).rounded() / 100,
                                                   "loss": windowTokens > 0 ? windowLoss / Double(windowTokens) : 0,
                                                   "learning_rate": lr, "grad_norm": norm]
                    history.append(entry)
                    windowLoss = 0; windowTokens = 0
                    try writeState(to: a.outputDir, step: step, maxSteps: totalSteps, epochs: ep, history: history.map { $0 as [String: Any] })
                    try tensorBoard?.add(TensorBoardTags.scalars(from: entry)
                                         + [("train/examples_per_second", Double(examples) / max(elapsed, 1e-9))], step: step)
                }
                if step >= totalSteps { break training }
            }
            epoch += 1
        }
        let seconds = Date().timeIntervalSince(t0)
        try save(model: model, tokenizerFile: a.tokenizer, to: a.outputDir, step: step, epochs: epochsDone,
                 history: history, seconds: seconds, examples: examples, generation: plan.generationDefaults(for: model))
        let outcome = RunOutcome(globalStep: step, epoch: epochsDone, seconds: seconds, examples: examples, trainSamples: ds.count,
                                 history: history, savedStep: step, plannedWorkers: 1, warmupSteps: plan.warmupSteps, totalSteps: totalSteps)
        try RunArtifacts.write(outcome, config: cfg, baseModel: baseModel(a.model), to: a.outputDir)
        log("saved \(a.outputDir) after \(step) steps in \(String(format: "%.1f", seconds)) s")
        return Report(steps: step, finalLoss: lastLoss, logHistory: history, seconds: seconds, outputDir: a.outputDir,
                      threads: Compute.threads)
    }

    /// Writes the model folder Trainer's `save_model` would: weights, config, generation config,
    /// tokenizer (tokenizer.json and tokenizer_config.json), and `trainer_state.json` with the log history. Every file is written atomically.
    /// `generation`: generation_config.json's values (nil: the model's defaults).
    public static func save(model: any Seq2SeqModel, tokenizerFile: String, to dir: String, step: Int, epochs: Double,
                     history: [[String: Double]], seconds: Double, examples: Int, generation: [String: Any]? = nil) throws {
        try ModelFolder.save(model, to: dir, generation: generation)
        // tokenizerFile may be a folder of classic files: saved as tokenizer.json (TokenizerFolder.tokenizerJSON).
        for (name, bytes) in try ModelFolder.tokenizerFiles(for: model, tokenizerJSON: TokenizerFolder.tokenizerJSON(path: tokenizerFile),
                                                            file: tokenizerFile) {
            try AtomicFile.write(bytes, to: (dir as NSString).appendingPathComponent(name))
        }
        var log = history.map { $0 as [String: Any] }
        log.append(["step": step, "train_runtime": seconds, "train_samples_per_second": Double(examples) / max(seconds, 1e-9)])
        try writeState(to: dir, step: step, maxSteps: step, epochs: epochs, history: log)
    }

    /// The model fine-tuned, for the card: its Hub repository when `model` was resolved to a Hub
    /// cache snapshot, else `model` when it is a model folder (nil: trained from scratch).
    public static func baseModel(_ model: String) -> String? {
        HubCache.repoID(ofSnapshotFolder: model)
            ?? (FileManager.default.fileExists(atPath: (model as NSString).appendingPathComponent("config.json")) ? model : nil)
    }

    /// `dir/trainer_state.json` with `history` as its log_history, written atomically.
    static func writeState(to dir: String, step: Int, maxSteps: Int, epochs: Double, history: [[String: Any]]) throws {
        // A NaN loss (stop_on_nonfinite: false) is written as TrainerState.jsonData writes it: "NaN", "Infinity".
        func finite(_ v: Any) -> Any {
            guard let d = v as? Double, !d.isFinite else { return v }
            return d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity")
        }
        let log = history.map { $0.mapValues(finite) }
        let state: [String: Any] = ["global_step": step, "epoch": finite(epochs), "max_steps": maxSteps, "log_history": log,
                                    "best_metric": NSNull(), "best_model_checkpoint": NSNull()]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: state, options: [.prettyPrinted, .sortedKeys]),
                             to: (dir as NSString).appendingPathComponent("trainer_state.json"))
    }
}
