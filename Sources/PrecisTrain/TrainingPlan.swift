import Foundation
import PrecisCore
import PrecisData
import PrecisModels
import PrecisText

/// What every process of a run agrees on: the tokenized training set, the order each epoch visits
/// it, how examples group into micro-batches and steps, and the learning-rate schedule. The single
/// process (LocalTrainer), the coordinator and the workers all build it the same way from the
/// config, so the coordinator can hand out dataset indices and the workers read the same examples.
public struct TrainingPlan {
    public let config: TrainingConfig
    public let dataset: TokenizedDataset
    public let loadSummary: String
    public let fromCache: Bool
    public let perDevice: Int
    /// Micro-batches per step: gradient_accumulation_steps × the workers the run is planned for
    /// (1 for a single process).
    public let microPerStep: Int
    public let stepsPerEpoch: Int
    /// Micro-batches of `perDevice` examples in one epoch (the last may be short).
    public var microBatchesPerEpoch: Int { Self.microBatches(examples: dataset.count, perDevice: perDevice) }
    static func microBatches(examples: Int, perDevice: Int) -> Int { (examples + perDevice - 1) / perDevice }
    public let totalSteps: Int
    public let warmupSteps: Int
    public let schedule: LRSchedule
    /// The denoising objective's noise (nil: summarization).
    public let noise: DenoisingNoise?
    /// The longest source the model takes.
    public let maxSourceLength: Int
    /// The `generation_config` file's values ([:] without one), laid over the model's generation
    /// defaults in every folder the run writes (`generationDefaults(for:)`).
    public let generationOverrides: [String: Any]

    /// Loads and tokenizes the training data (or maps the cache) and derives the step schedule.
    /// `plannedWorkers` is 1 for a single process, `cluster.workers` on a cluster.
    public init(_ cfg: TrainingConfig, model: ModelShape, plannedWorkers: Int, asyncUpdates: Bool = false) throws {
        let a = cfg.training
        config = cfg
        guard FileManager.default.fileExists(atPath: a.tokenizer) else {
            throw ConfigError.invalid(file: cfg.file, key: "training.tokenizer",
                                      reason: "\(a.tokenizer) does not exist (a tokenizer.json, a folder with tokenizer.json, vocab.json + merges.txt or spiece.model, or a Hub repository; make one with `precis tokenizer train`)")
        }
        let encoder = try TokenizerEncoder(file: a.tokenizer)
        guard encoder.tokenizer.vocabSize <= model.vocabSize else {
            throw ConfigError.invalid(file: cfg.file, key: "training.model",
                                      reason: "the tokenizer has \(encoder.tokenizer.vocabSize) ids but the model's vocab_size is \(model.vocabSize)")
        }
        if let why = model.mismatch(with: encoder.tokenizer, file: a.tokenizer) {
            throw ConfigError.invalid(file: cfg.file, key: "training.tokenizer", reason: why)
        }
        let loaded = try DatasetLoader.load(a.trainFile, options: DatasetOptions(textColumn: a.textColumn, summaryColumn: a.summaryColumn,
                                                                                skipBadRecords: a.skipBadRecords))
        loadSummary = loaded.summary
        let records = a.maxTrainSamples.map { Array(loaded.records.prefix($0)) } ?? loaded.records
        // Nothing to train on would make every epoch empty (the loop would spin, the servers wait).
        guard !records.isEmpty else {
            throw ConfigError.invalid(file: cfg.file, key: "training.train_file",
                                      reason: "\(a.trainFile) has no usable example (\(loaded.summary)); its records need the "
                                        + "text_column '\(a.textColumn)' and summary_column '\(a.summaryColumn)'")
        }
        let maxSource = min(a.maxSourceLength, model.maxSourcePositions ?? .max)
        var tokOptions = TokenizationOptions(maxSourceLength: maxSource,
                                             maxTargetLength: min(a.maxTargetLength, model.maxTargetPositions ?? .max),
                                             sourcePrefix: a.sourcePrefix)
        var examples = records
        var fingerprint = try FNV.file(a.trainFile) + "-\(records.count)"
        if a.objective == "denoising" {
            // Each text of the chosen columns is an example whose target is itself, both cut to the
            // shorter of the two lengths, so the target is the whole source.
            let columns = a.denoisingColumns.isEmpty ? [a.textColumn] : a.denoisingColumns
            examples = columns.flatMap { c in
                records.map { r in
                    let text = c == a.textColumn ? r.source : r.target
                    return SummarizationRecord(source: text, target: text)
                }
            }
            let length = min(tokOptions.maxSourceLength, tokOptions.maxTargetLength)
            tokOptions = TokenizationOptions(maxSourceLength: length, maxTargetLength: length, sourcePrefix: "")
            fingerprint += "-denoising-" + columns.joined(separator: ",")
            guard let mask = encoder.tokenizer.tokenToID(a.maskToken), mask < model.vocabSize else {
                throw ConfigError.invalid(file: cfg.file, key: "training.mask_token",
                                          reason: "\(a.tokenizer) has no token '\(a.maskToken)' inside the model's vocabulary (the denoising objective replaces masked spans by it)")
            }
            noise = DenoisingNoise(maskId: Int32(mask), maskRatio: a.maskRatio, poissonLambda: a.poissonLambda,
                                   permuteSentenceRatio: a.permuteSentenceRatio, classes: TokenClasses(tokenizer: encoder.tokenizer))
        } else {
            noise = nil
        }
        maxSourceLength = maxSource
        (dataset, fromCache) = try TokenizedDataset.build(records: examples, dataFingerprint: fingerprint,
                                                          encoder: encoder, options: tokOptions,
                                                          cacheDir: (a.outputDir as NSString).appendingPathComponent("cache"))
        // Read once: a bad generation_config stops every process here, not when the first folder is
        // saved, and a file changed during the run changes no later save.
        generationOverrides = try GenerationConfigFile.load(cfg)
        perDevice = a.perDeviceTrainBatchSize
        // async/ssp: each worker's contribution is an update of its own (gradient_accumulation_steps micro-batches).
        microPerStep = a.gradientAccumulationSteps * (asyncUpdates ? 1 : max(1, plannedWorkers))
        let microPerEpoch = Self.microBatches(examples: dataset.count, perDevice: perDevice)
        stepsPerEpoch = max(1, (microPerEpoch + microPerStep - 1) / microPerStep)
        if a.maxSteps > 0 {
            totalSteps = a.maxSteps
        } else {
            // The same bound as max_steps': a huge num_train_epochs is refused, not turned into an Int trap.
            let steps = (a.numTrainEpochs * Double(stepsPerEpoch)).rounded(.up)
            guard steps <= Double(TrainingArguments.maxStepsLimit) else {
                throw ConfigError.invalid(file: cfg.file, key: "training.num_train_epochs",
                                          reason: "\(a.numTrainEpochs) epochs of \(stepsPerEpoch) steps are more than \(TrainingArguments.maxStepsLimit) steps")
            }
            totalSteps = Int(steps)
        }
        warmupSteps = a.warmupSteps > 0 ? a.warmupSteps : LRSchedule.warmupSteps(ratio: a.warmupRatio, totalSteps: totalSteps)
        schedule = LRSchedule(kind: LRSchedule.Kind(rawValue: a.lrSchedulerType)!, baseLR: a.learningRate,
                              warmupSteps: warmupSteps, totalSteps: totalSteps)
    }

    /// What the run's folders hold as generation_config.json: `model`'s defaults with the
    /// `generation_config` file's values over them.
    public func generationDefaults(for model: any Seq2SeqModel) -> [String: Any] {
        GenerationConfigFile.defaults(for: model, overrides: generationOverrides)
    }

    /// The collator every process batches this run's examples with: padding to the model's `padId`,
    /// and the objective's noise seeded by the run's seed.
    public func collator(padId: Int) -> Collator {
        Collator(padId: Int32(padId), noise: noise, seed: UInt64(config.training.seed), maxSourceLength: maxSourceLength)
    }

    /// The micro-batches of an epoch, in order (dataset indices), as `train_sampling_strategy` says:
    /// shuffled each epoch, in file order, or grouped by length — by the step's whole batch
    /// (per_device × micro-batches per step), as Trainer groups by train_batch_size ×
    /// gradient_accumulation_steps.
    public func microBatches(epoch: Int) -> [[Int]] {
        let a = config.training
        let order: [Int]
        switch a.trainSamplingStrategy {
        case "group_by_length":
            order = Sampler.lengthGrouped(lengths: dataset.sourceLengths, batchSize: perDevice * microPerStep, seed: UInt64(a.seed), epoch: epoch)
        case "sequential": order = Array(0..<dataset.count)
        default: order = Sampler.shuffled(count: dataset.count, seed: UInt64(a.seed), epoch: epoch)
        }
        return Sampler.batches(order, batchSize: perDevice)
    }

    /// The micro-batches of step `step` (0-based) given the epoch's micro-batches.
    public func stepMicroBatches(step: Int, epochBatches: [[Int]]) -> ArraySlice<[Int]> {
        let inEpoch = step % stepsPerEpoch
        let lo = min(epochBatches.count, inEpoch * microPerStep)
        return epochBatches[lo..<min(epochBatches.count, lo + microPerStep)]
    }

    /// Label tokens of a set of examples (what the loss of a step is averaged over).
    public func labelTokens<S: Sequence>(_ indices: S) -> Int where S.Element == Int {
        indices.reduce(0) { $0 + dataset.targetLength($1) }
    }

    /// The dropout seed of micro-batch `micro` of step `step` (the same in every process).
    public func dropoutSeed(step: Int, micro: Int) -> UInt64 {
        UInt64(step) &* 1_000_003 &+ UInt64(micro) &+ UInt64(config.training.seed) << 32
    }

    /// Identifies the tokenized data: a worker that computes another digest has other data.
    public var digest: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<dataset.count {
            for v in [dataset.sourceLength(i), dataset.targetLength(i)] { h = (h ^ UInt64(v)) &* 0x100_0000_01b3 }
        }
        return "\(dataset.count)-" + String(h, radix: 16) + "-" + String(FNV.hash(dataset.key), radix: 16)
    }
}

/// The model dimensions the data side needs: the vocabulary, and the longest source and target
/// the model's positions allow (nil: no limit).
public struct ModelShape: Sendable {
    public var vocabSize: Int
    public var maxSourcePositions: Int?
    public var maxTargetPositions: Int?
    /// The model's end-of-sequence and padding ids (nil: not checked against the tokenizer's).
    public var eosTokenId: Int?
    public var padTokenId: Int?
    public init(vocabSize: Int, maxSourcePositions: Int?, maxTargetPositions: Int?, eosTokenId: Int? = nil, padTokenId: Int? = nil) {
        self.vocabSize = vocabSize; self.maxSourcePositions = maxSourcePositions; self.maxTargetPositions = maxTargetPositions
        self.eosTokenId = eosTokenId; self.padTokenId = padTokenId
    }
    public init(vocabSize: Int, maxPositions: Int) {
        self.init(vocabSize: vocabSize, maxSourcePositions: maxPositions, maxTargetPositions: maxPositions)
    }
    public init(_ f: Seq2SeqFacts) {
        self.init(vocabSize: f.vocabSize, maxSourcePositions: f.maxSourcePositions, maxTargetPositions: f.maxTargetPositions,
                  eosTokenId: f.eosTokenId, padTokenId: f.padTokenId)
    }

    /// Why `tokenizer` cannot feed this model, or nil. Labels end with the tokenizer's closing special
    /// token: were it not the model's `eos_token_id`, the model would learn to end with a token
    /// generation does not stop at (every summary would run to the length limit). A `<pad>` token at
    /// another id than `pad_token_id` means the two were made for different vocabularies.
    public func mismatch(with tokenizer: Tokenizer, file: String) -> String? {
        if let eos = eosTokenId, let e = try? tokenizer.encode("a"), let last = e.ids.last, e.specialTokensMask.last == true, last != eos {
            return "\(file) ends every sequence with \(tokenizer.idToToken(last) ?? "?") (id \(last)) but the model's eos_token_id is "
                + "\(eos)\(tokenizer.idToToken(eos).map { " (\($0) in this tokenizer)" } ?? ""): the tokenizer was not made for this model"
        }
        if let pad = padTokenId, let p = tokenizer.tokenToID("<pad>"), p != pad {
            return "\(file) has <pad> at id \(p) but the model's pad_token_id is \(pad): the tokenizer was not made for this model"
        }
        return nil
    }
}

/// What an evaluation during training reads: the validation records (`validation_file`, the first
/// `max_eval_samples`), how they are tokenized, the generation settings (the model's defaults with
/// `generation_max_length` / `generation_num_beams`), the batch size. The coordinator and every
/// worker build it the same way, so an eval task can name examples by index.
public struct EvaluationPlan {
    public let records: [SummarizationRecord]
    public let options: TokenizationOptions
    public let generation: GenerationSettings
    public let batchSize: Int
    public let generate: Bool

    public init(_ cfg: TrainingConfig, model: any Seq2SeqModel) throws {
        let a = cfg.training
        let loaded = try DatasetLoader.load(a.validationFile, options: DatasetOptions(textColumn: a.textColumn, summaryColumn: a.summaryColumn,
                                                                                     skipBadRecords: a.skipBadRecords))
        records = a.maxEvalSamples.map { Array(loaded.records.prefix($0)) } ?? loaded.records
        guard !records.isEmpty else {
            throw ConfigError.invalid(file: cfg.file, key: "training.validation_file",
                                      reason: "\(a.validationFile) has no usable example (\(loaded.summary)); its records need the "
                                        + "text_column '\(a.textColumn)' and summary_column '\(a.summaryColumn)'")
        }
        options = TokenizationOptions(maxSourceLength: a.maxSourceLength, maxTargetLength: a.maxTargetLength, sourcePrefix: a.sourcePrefix)
        var g = try GenerationSettings(json: GenerationConfigFile.defaults(for: model, overrides: try GenerationConfigFile.load(cfg)),
                                       file: "generation defaults of \(a.model)")
        if let m = a.generationMaxLength { g.maxLength = m; g.maxNewTokens = nil }
        if let b = a.generationNumBeams { g.numBeams = b }
        generation = g
        batchSize = a.perDeviceEvalBatchSize
        generate = a.predictWithGenerate
    }

    /// Whether the step that just finished (1-based `global`) ends with an evaluation.
    public static func isEvalStep(_ global: Int, _ cfg: TrainingConfig, stepsPerEpoch: Int) -> Bool {
        switch cfg.training.evalStrategy {
        case "steps": return global % (cfg.training.evalSteps ?? cfg.training.loggingSteps) == 0
        case "epoch": return global % stepsPerEpoch == 0
        default: return false
        }
    }
}
