import Foundation
import PrecisCore
import Yams
import PrecisWire

/// Errors in a training config file; each names the file and the key.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case unknownKey(file: String, key: String)
    /// Every unknown key of a file at once, each with the closest valid name when one is close.
    case unknownKeys(file: String, keys: [UnknownKey])
    case wrongType(file: String, key: String, expected: String)
    case invalid(file: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(f, r): return "\(f): \(r)"
        case let .unknownKey(f, k): return "\(f): unknown key '\(k)'"
        case let .unknownKeys(f, keys):
            let list = keys.map { k in "'\(k.key)'" + (k.suggestion.map { " (did you mean '\($0)'?)" } ?? "") }
            return "\(f): unknown key\(keys.count == 1 ? "" : "s") \(list.joined(separator: ", "))"
        case let .wrongType(f, k, e): return "\(f): key '\(k)' must be \(e)"
        case let .invalid(f, k, r): return "\(f): key '\(k)': \(r)"
        }
    }
}

extension ConfigError {
    /// What a string-valued key expects, naming YAML's trap when the value read as a boolean (an
    /// unquoted `no`, `yes`, `off` or `on`, as in `eval_strategy: no`).
    static func expectedString(_ value: Any) -> String {
        value is Bool ? "a string (YAML reads an unquoted no, yes, off or on as false or true: quote it, e.g. \"no\")" : "a string"
    }
}

/// A key no reader knows, and the valid key closest to it.
public struct UnknownKey: Equatable, Sendable {
    public var key: String
    public var suggestion: String?
    public init(_ key: String, suggestion: String? = nil) { self.key = key; self.suggestion = suggestion }
}

/// The `training:` section, named as transformers' `Seq2SeqTrainingArguments` (plus the data and
/// model keys of `run_summarization.py`).
public struct TrainingArguments: Sendable, Equatable {
    public var outputDir = "runs/precis"
    /// A model folder to start from, or a config (preset name or config.json) to initialise from scratch.
    public var model = "bart-small"
    /// A tokenizer.json, a folder holding tokenizer.json, vocab.json + merges.txt or spiece.model
    /// (PrecisData's TokenizerFolder), or a Hub repository `org/name[@revision]` (ModelSource).
    public var tokenizer = "runs/tokenizer.json"
    /// When set (`bpe` or `unigram`), `precis train` trains the tokenizer at `tokenizer` on the
    /// text and summary columns of `train_file` if that file does not exist yet.
    public var tokenizerModel: String? = nil
    /// The vocabulary size of a tokenizer trained for `tokenizer_model`.
    public var tokenizerVocabSize = 8192
    public var trainFile = "data/samsum/train.jsonl"
    public var textColumn = "dialogue"
    public var summaryColumn = "summary"
    public var maxSourceLength = 512
    public var maxTargetLength = 128
    public var sourcePrefix = ""
    public var maxTrainSamples: Int? = nil
    public var skipBadRecords = true
    public var perDeviceTrainBatchSize = 8
    public var gradientAccumulationSteps = 1
    public var learningRate = 5e-5
    public var weightDecay = 0.0
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    public var numTrainEpochs = 3.0
    public var maxSteps = -1
    /// The most steps a run may have (max_steps, warmup_steps, or num_train_epochs × steps per epoch):
    /// far beyond any real run, small enough that step counts never overflow.
    public static let maxStepsLimit = 1 << 40
    /// `warmup_steps` given as a whole number of steps (transformers 5 also takes a ratio there: `warmupRatio`).
    public var warmupSteps = 0
    /// `warmup_steps` below 1 (transformers 5), or transformers 4's `warmup_ratio`: a fraction of the total steps.
    public var warmupRatio = 0.0
    public var lrSchedulerType = "linear"
    public var maxGradNorm = 1.0
    /// A non-finite loss or gradient norm stops the run at that step, before its update (`NonFiniteStop`).
    public var stopOnNonfinite = true
    public var labelSmoothingFactor = 0.0
    /// Trainer's `bf16`: the matrix products of training, evaluation and generation take bf16
    /// operands and accumulate in fp32 (`MatmulPrecision.bf16`), as `torch.autocast` does on CPU;
    /// parameters, optimizer state, LayerNorm, softmax, the loss and gradient sums stay fp32.
    /// Needs a CPU with AMX or AVX-512-BF16 (`BF16Setting`).
    public var bf16 = false
    public var loggingSteps = 50
    /// Where the TensorBoard event files go (nil: Trainer's default, `output_dir/runs/<date>_<host>`).
    public var loggingDir: String? = nil
    /// `tensorboard` (the default), `none`, `all`, or a list; other integrations are warned about and ignored.
    public var reportTo: [String] = ["tensorboard"]
    public var seed = 42
    /// `random` (shuffled each epoch), `sequential` or `group_by_length` (transformers 5's
    /// `train_sampling_strategy`; transformers 4's `group_by_length: true` is the third).
    public var trainSamplingStrategy = "random"
    public var threads: Int? = nil

    // The objective: `summarization` (text → summary) or `denoising`, BART's pre-training (a text with
    // its sentences permuted and spans of words masked → the text), with the noise's names from
    // transformers' run_bart_dlm_flax.py.
    public var objective = "summarization"
    /// The columns whose texts the denoising objective reconstructs, each text one example (empty:
    /// `text_column`); each is `text_column` or `summary_column`.
    public var denoisingColumns: [String] = []
    public var maskRatio = 0.3
    public var poissonLambda = 3.0
    public var permuteSentenceRatio = 1.0
    /// The tokenizer's token a masked span becomes.
    public var maskToken = "<mask>"

    // Checkpoints (Trainer's names).
    public var saveStrategy = "steps"
    public var saveSteps = 500
    public var saveTotalLimit: Int? = nil
    public var loadBestModelAtEnd = false
    public var metricForBestModel: String? = nil
    public var greaterIsBetter: Bool? = nil
    /// nil: start fresh; "true"/"latest": the latest checkpoint in output_dir; otherwise a checkpoint folder.
    public var resumeFromCheckpoint: String? = nil

    // Evaluation.
    public var evalStrategy = "no"
    public var evalSteps: Int? = nil
    public var validationFile = "data/samsum/validation.jsonl"
    public var perDeviceEvalBatchSize = 8
    public var predictWithGenerate = false
    public var generationMaxLength: Int? = nil
    public var generationNumBeams: Int? = nil
    /// A generation_config.json (or a folder with one) whose values replace the model's generation
    /// defaults, in evaluation and in the folders the run writes (`GenerationConfigFile`).
    public var generationConfig: String? = nil
    public var maxEvalSamples: Int? = nil

    // Hub.
    public var pushToHub = false
    public var hubModelId: String? = nil
    public var hubStrategy = "every_save"
    public var hubPrivateRepo = false
    public var hubToken: String? = nil
    /// `hub_url`; unset, `HF_ENDPOINT` of the coordinator's environment (as transformers' `push_to_hub`
    /// follows it), else https://huggingface.co.
    public var hubURL = TrainingArguments.defaultHubURL(environment: ProcessInfo.processInfo.environment)

    /// The hub pushes go to when the config names none: `HF_ENDPOINT` (without a trailing slash) when
    /// set and not empty, else https://huggingface.co.
    public static func defaultHubURL(environment: [String: String]) -> String {
        var e = environment["HF_ENDPOINT"]?.trimmingCharacters(in: .whitespaces) ?? ""
        while e.hasSuffix("/") { e.removeLast() }
        return e.isEmpty ? "https://huggingface.co" : e
    }

    // The model card (README.md in output_dir and in hub pushes).
    /// The model's licence as a Hub identifier (nil: the licence the training data's notes state, if any).
    public var license: String? = nil
    /// The dataset's name on the card (nil: the training file's folder name).
    public var datasetName: String? = nil

    public init() {}

    /// Whether the run writes TensorBoard event files (`report_to` names `tensorboard` or `all`).
    public var reportsToTensorBoard: Bool { reportTo.contains("tensorboard") || reportTo.contains("all") }

    /// Whether batches group examples of similar length (`train_sampling_strategy: group_by_length`).
    public var groupByLength: Bool {
        get { trainSamplingStrategy == "group_by_length" }
        set { trainSamplingStrategy = newValue ? "group_by_length" : "random" }
    }

    /// The longest `source_prefix` accepted (run_summarization's are a few words, "summarize: ").
    public static let maxSourcePrefixLength = 1024

    /// Why `prefix` cannot be a source prefix (too long, or holding a control character other
    /// than tab and newline), or nil.
    public static func sourcePrefixProblem(_ prefix: String) -> String? {
        let n = prefix.unicodeScalars.count
        if n > maxSourcePrefixLength { return "has \(n) characters, more than \(maxSourcePrefixLength)" }
        if let c = prefix.unicodeScalars.first(where: { $0.properties.generalCategory == .control && $0 != "\t" && $0 != "\n" }) {
            return "holds the control character U+\(String(c.value, radix: 16, uppercase: true))"
        }
        return nil
    }

    /// The metric that picks the best checkpoint (`eval_` prefixed, as Trainer stores it) and its direction.
    public var bestMetric: (key: String, greaterIsBetter: Bool)? {
        guard loadBestModelAtEnd || metricForBestModel != nil else { return nil }
        var m = metricForBestModel ?? "loss"
        if !m.hasPrefix("eval_") { m = "eval_" + m }
        return (m, greaterIsBetter ?? !(m == "eval_loss" || m.hasSuffix("_loss")))
    }
}

/// The `cluster:` section: how many servers and workers, how they agree, how shards travel.
public struct ClusterSettings: Sendable, Equatable {
    /// Where the coordinator listens (`tcp://HOST:PORT`; port `*` picks a free one).
    public var coordinator = "tcp://127.0.0.1:*"
    public var servers = 1
    /// Workers the run is planned for: each step's global batch is per_device_train_batch_size ×
    /// gradient_accumulation_steps × workers, whatever the number of workers alive at the time.
    public var workers = 2
    /// `sync` (default), `ssp` or `async`.
    public var consistency = "sync"
    /// ssp: how many steps a worker may run ahead of the slowest.
    public var staleness = 2
    /// Gradients (worker → server): `fp32` (shuffle + LZ4, lossless), `bf16` (with error feedback) or `none`.
    public var codec = "fp32"
    /// Parameters (server → worker): `fp32`, `none`, `bf16` (the parameters rounded: lossy), or
    /// `bf16-delta` (bf16 deltas against the worker's copy, error feedback on the server: the copy
    /// stays within one delta's bf16 rounding of the fp32 master, `PullDelta`).
    public var pullCodec = "fp32"
    /// Sync: a worker starts forward once the embeddings' partitions of the pull are in and waits
    /// for each layer's as forward reaches it, so the rest of the pull travels during forward.
    public var overlapPull = true
    public var threadsPerWorker: Int? = nil
    public var heartbeatInterval = 1.0
    public var heartbeatTimeout = 10.0
    public var partitionBytes = 4_096_000
    /// How long the coordinator waits for the planned workers before starting with those present.
    public var startTimeout = 30.0
    /// The TCP port of the coordinator's Prometheus `/metrics` listener (0: any free port, logged;
    /// nil: no listener). Servers and workers take theirs on the command line (`--metrics-port`).
    public var metricsPort: Int? = nil
    /// The address the coordinator's metrics listener binds (loopback unless set).
    public var metricsBind = "127.0.0.1"

    public init() {}
}

/// A training config file: `training:` (above) and `cluster:` (above).
public struct TrainingConfig: Sendable, Equatable {
    public var training = TrainingArguments()
    public var cluster = ClusterSettings()
    public var file = "(defaults)"
    /// One line per key that was accepted but is not acted on (see `TrainerKeys`), for the user.
    public var warnings: [String] = []

    public init() {}

    public static func load(_ path: String) throws -> TrainingConfig {
        try parse(try readText(path), file: path)
    }

    /// The text of a YAML file (a config, a cluster file): a regular file of at most
    /// `YAMLTree.maxBytes`, in UTF-8.
    public static func readText(_ path: String) throws(ConfigError) -> String {
        let data: Data
        do { data = try SmallFile.read(path, limit: YAMLTree.maxBytes) } catch {
            throw ConfigError.unreadable(file: path, reason: "\(error)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError.unreadable(file: path, reason: "not UTF-8") }
        return text
    }

    /// YAML text as values (a config file, a cluster file), checked first (`YAMLTree.compose`).
    static func loadYAML(_ text: String, file: String) throws -> Any? {
        // The checked tree is shallow and small: made into values here (what Yams.load does after
        // composing), not parsed a second time.
        try YAMLTree.compose(text, file: file)?.any
    }

    public static func parse(_ text: String, file: String) throws -> TrainingConfig {
        let root = try loadYAML(text, file: file)
        var cfg = TrainingConfig()
        cfg.file = file
        guard let top = root as? [String: Any] else {
            if root == nil { return cfg }
            throw ConfigError.unreadable(file: file, reason: "the top level must be a mapping with 'training' and 'cluster'")
        }
        var unknown: [UnknownKey] = top.keys.filter { $0 != "training" && $0 != "cluster" }.sorted().map {
            UnknownKey($0, suggestion: TrainerKeys.closest(to: $0, in: ["training", "cluster"]))
        }
        if let c = top["cluster"], !(c is NSNull) {
            guard let cluster = c as? [String: Any] else { throw ConfigError.wrongType(file: file, key: "cluster", expected: "a mapping") }
            var r = Reader(dict: cluster, file: file, section: "cluster")
            for (key, field) in ClusterSettings.fields { try r.read(key, field, into: &cfg.cluster) }
            unknown += r.unused.sorted().map { UnknownKey("cluster.\($0)", suggestion: TrainerKeys.closest(to: $0, in: ClusterSettings.fields.map(\.key))) }
        }
        var refused: ConfigError?
        if let t = top["training"], !(t is NSNull) {
            guard let tr = t as? [String: Any] else { throw ConfigError.wrongType(file: file, key: "training", expected: "a mapping") }
            let read = try readTraining(tr, into: &cfg, file: file)
            unknown += read.unknown
            refused = read.refused
        }
        // Unknown keys first (a typo is the likelier mistake), then a key refused for its value.
        if !unknown.isEmpty { throw ConfigError.unknownKeys(file: file, keys: unknown) }
        if let refused { throw refused }
        try cfg.validate()
        return cfg
    }

    /// Reads the `training:` mapping into `cfg` (warnings included); returns the keys nobody knows
    /// and the first Trainer key refused for its value.
    private static func readTraining(_ tr: [String: Any], into cfg: inout TrainingConfig, file: String) throws
        -> (unknown: [UnknownKey], refused: ConfigError?) {
        for (old, new) in TrainerKeys.aliases.sorted(by: { $0.key < $1.key }) where tr[old] != nil && tr[new] != nil {
            throw ConfigError.invalid(file: file, key: "training.\(old)", reason: "is transformers 4's name for '\(new)': give one of them")
        }
        var a = TrainingArguments()
        var r = Reader(dict: tr, file: file)
        for (key, field) in TrainingArguments.fields { try r.read(key, field, into: &a) }
        if let v = r.take("evaluation_strategy") {
            guard let s = v as? String else { throw ConfigError.wrongType(file: file, key: "training.evaluation_strategy", expected: ConfigError.expectedString(v)) }
            a.evalStrategy = s
        }
        if let v = r.take("warmup_steps") {
            // transformers 5: a whole number of steps, or a float in [0, 1) that is a ratio of the total.
            if let i = v as? Int {
                a.warmupSteps = i
            } else if let d = v as? Double, d.isFinite, d >= 0 {
                if d < 1 { a.warmupRatio = d } else if d == d.rounded(), d <= Double(TrainingArguments.maxStepsLimit) { a.warmupSteps = Int(d) } else {
                    throw ConfigError.invalid(file: file, key: "training.warmup_steps", reason: "\(d) must be a whole number of steps, or a ratio in [0, 1)")
                }
            } else {
                throw ConfigError.wrongType(file: file, key: "training.warmup_steps", expected: "a number of steps or a ratio in [0, 1)")
            }
        }
        if let v = r.take("warmup_ratio") {
            guard let d = (v as? Double) ?? (v as? Int).map(Double.init) else {
                throw ConfigError.wrongType(file: file, key: "training.warmup_ratio", expected: "a number")
            }
            a.warmupRatio = d
        }
        if let v = r.take("group_by_length") {
            guard let b = v as? Bool else { throw ConfigError.wrongType(file: file, key: "training.group_by_length", expected: "true or false") }
            a.groupByLength = b
        }
        if let v = r.take("resume_from_checkpoint") {
            if let b = v as? Bool { a.resumeFromCheckpoint = b ? "latest" : nil } else if let s = v as? String { a.resumeFromCheckpoint = s } else {
                throw ConfigError.wrongType(file: file, key: "training.resume_from_checkpoint", expected: "true, false or a checkpoint folder")
            }
        }
        // report_to: Precis writes TensorBoard's event files; other integrations are not there.
        for name in a.reportTo where !["tensorboard", "none", "all"].contains(name) {
            cfg.warnings.append("\(file): training.report_to: '\(name)' is not supported by Precis (tensorboard, none or all): ignored")
        }
        var unknown: [UnknownKey] = []
        var refused: ConfigError?
        let known = TrainingArguments.fields.map(\.key) + TrainerKeys.aliases.keys.sorted()
            + ["warmup_steps", "resume_from_checkpoint"]
        for key in r.unused.sorted() {
            guard let verdict = TrainerKeys.ignored[key] else {
                unknown.append(UnknownKey("training.\(key)", suggestion: TrainerKeys.closest(to: key, in: known)))
                continue
            }
            let value = tr[key] ?? NSNull()
            if let why = verdict(value) {
                if refused == nil { refused = ConfigError.invalid(file: file, key: "training.\(key)", reason: why) }
                continue
            }
            cfg.warnings.append(TrainerKeys.warning(file: file, key: key, value: value))
        }
        cfg.training = a
        return (unknown, refused)
    }

    /// Keys that hold secrets (section, key): they never leave the process that read the file.
    public static let secretKeys = [("training", "hub_token")]

    /// `text` without its secret keys, as YAML: what the coordinator sends its members (they
    /// parse it to the same config, less the secrets, which only the coordinator uses).
    public static func redacted(_ text: String) throws -> String {
        guard let root = try YAMLTree.compose(text, file: "config"), case .mapping(var top) = root else { return text }
        var changed = false
        for (section, key) in secretKeys {
            guard case .mapping(var m)? = top[section], m[key] != nil else { continue }
            m[key] = nil
            top[section] = .mapping(m)
            changed = true
        }
        return changed ? try Yams.serialize(node: .mapping(top)) : text
    }

    public func validate() throws {
        let t = training
        func check(_ ok: Bool, _ key: String, _ reason: String) throws {
            if !ok { throw ConfigError.invalid(file: file, key: "training.\(key)", reason: reason) }
        }
        /// Counts that size allocations: a bound far above any real run, below what would exhaust memory.
        let maxCount = 1 << 20
        func inRange(_ v: Int, _ key: String, _ lo: Int, _ hi: Int = maxCount) throws {
            try check(v >= lo && v <= hi, key, "\(v) is out of range (\(lo)…\(hi))")
        }
        func finite(_ v: Double, _ key: String, atLeast lo: Double, below hi: Double? = nil, orEqual: Bool = true) throws {
            let ok = v.isFinite && (orEqual ? v >= lo : v > lo) && hi.map { v < $0 } != false
            let range = "\(orEqual ? "≥" : ">") \(lo)\(hi.map { " and < \($0)" } ?? "")"
            try check(ok, key, "\(v) must be a finite number \(range)")
        }
        try inRange(t.perDeviceTrainBatchSize, "per_device_train_batch_size", 1, 65_536)
        try inRange(t.gradientAccumulationSteps, "gradient_accumulation_steps", 1, 65_536)
        try finite(t.learningRate, "learning_rate", atLeast: 0)
        try finite(t.weightDecay, "weight_decay", atLeast: 0)
        try finite(t.adamBeta1, "adam_beta1", atLeast: 0, below: 1)
        try finite(t.adamBeta2, "adam_beta2", atLeast: 0, below: 1)
        try finite(t.adamEpsilon, "adam_epsilon", atLeast: 0, orEqual: false)
        // AdamW runs in fp32: an epsilon that rounds to 0 there makes 0 / 0 of every zero gradient.
        try check(Float(t.adamEpsilon) >= Float.leastNormalMagnitude, "adam_epsilon",
                  "\(t.adamEpsilon) is below fp32's smallest normal number (\(Float.leastNormalMagnitude)): AdamW computes in fp32")
        try finite(t.maxGradNorm, "max_grad_norm", atLeast: 0)
        try finite(t.numTrainEpochs, "num_train_epochs", atLeast: 0)
        try check(t.maxSteps == -1 || (t.maxSteps > 0 && t.maxSteps <= TrainingArguments.maxStepsLimit), "max_steps",
                  "\(t.maxSteps) must be in 1…\(TrainingArguments.maxStepsLimit), or -1 to train num_train_epochs")
        try inRange(t.warmupSteps, "warmup_steps", 0, TrainingArguments.maxStepsLimit)
        try check(t.seed >= 0 && t.seed <= Int(UInt32.max), "seed", "\(t.seed) must be in 0…\(UInt32.max), as Trainer's")
        if let n = t.maxTrainSamples {
            try check(n > 0, "max_train_samples", "\(n) must be positive (it is how many training examples to use)")
        }
        if let n = t.maxEvalSamples {
            try check(n > 0, "max_eval_samples", "\(n) must be positive (it is how many validation examples to use)")
        }
        if let n = t.threads { try inRange(n, "threads", 1, 1024) }
        try inRange(t.maxSourceLength, "max_source_length", 1)
        try check(["summarization", "denoising"].contains(t.objective), "objective",
                  "'\(t.objective)' is not an objective Precis trains (summarization or denoising)")
        try check(t.maskRatio >= 0 && t.maskRatio <= 1, "mask_ratio", "must be in [0, 1]")
        try check(t.poissonLambda > 0 && t.poissonLambda <= 64, "poisson_lambda", "must be in (0, 64]")
        try check(t.permuteSentenceRatio >= 0 && t.permuteSentenceRatio <= 1, "permute_sentence_ratio", "must be in [0, 1]")
        for c in t.denoisingColumns {
            try check(c == t.textColumn || c == t.summaryColumn, "denoising_columns",
                      "'\(c)' is neither text_column ('\(t.textColumn)') nor summary_column ('\(t.summaryColumn)')")
        }
        try check(t.maskToken.utf8.count <= 256, "mask_token", "longer than 256 bytes")
        try inRange(t.maxTargetLength, "max_target_length", 1)
        if let n = t.generationMaxLength { try inRange(n, "generation_max_length", 1) }
        if let n = t.generationNumBeams { try inRange(n, "generation_num_beams", 1, 256) }
        try check(t.numTrainEpochs > 0 || t.maxSteps > 0, "num_train_epochs", "must be positive (or set max_steps)")
        try check(t.warmupRatio.isFinite && t.warmupRatio >= 0 && t.warmupRatio < 1, "warmup_steps", "the ratio \(t.warmupRatio) must be in [0, 1)")
        try check(["random", "sequential", "group_by_length"].contains(t.trainSamplingStrategy), "train_sampling_strategy",
                  "'\(t.trainSamplingStrategy)' is not one of random, sequential, group_by_length")
        try check(t.labelSmoothingFactor >= 0 && t.labelSmoothingFactor < 1, "label_smoothing_factor", "must be in [0, 1)")
        if let problem = TrainingArguments.sourcePrefixProblem(t.sourcePrefix) { try check(false, "source_prefix", problem) }
        if let kind = t.tokenizerModel {
            try check(["bpe", "unigram"].contains(kind), "tokenizer_model", "'\(kind)' is not one of bpe, unigram")
        }
        try inRange(t.tokenizerVocabSize, "tokenizer_vocab_size", 300)
        try check(["linear", "cosine", "constant", "constant_with_warmup"].contains(t.lrSchedulerType), "lr_scheduler_type",
                  "'\(t.lrSchedulerType)' is not one of linear, cosine, constant, constant_with_warmup")
        try check(t.maxSourceLength > 0 && t.maxTargetLength > 0, "max_source_length", "lengths must be positive")
        try check(t.loggingSteps > 0, "logging_steps", "must be positive")
        try check(["steps", "epoch", "no"].contains(t.saveStrategy), "save_strategy", "'\(t.saveStrategy)' is not one of steps, epoch, no")
        try check(["steps", "epoch", "no"].contains(t.evalStrategy), "eval_strategy", "'\(t.evalStrategy)' is not one of steps, epoch, no")
        try check(t.saveSteps > 0, "save_steps", "must be positive")
        try check((t.evalSteps ?? 1) > 0, "eval_steps", "must be positive")
        try check((t.saveTotalLimit ?? 1) > 0, "save_total_limit", "must be positive")
        try inRange(t.perDeviceEvalBatchSize, "per_device_eval_batch_size", 1, 65_536)
        try check(["end", "every_save", "checkpoint", "all_checkpoints"].contains(t.hubStrategy), "hub_strategy",
                  "'\(t.hubStrategy)' is not one of end, every_save, checkpoint, all_checkpoints")
        try check(!t.pushToHub || t.hubModelId != nil, "hub_model_id", "push_to_hub needs a hub_model_id (owner/name)")
        try check(!t.loadBestModelAtEnd || (t.saveStrategy != "no" && t.evalStrategy != "no"), "load_best_model_at_end",
                  "needs save_strategy and eval_strategy other than no")
        if t.loadBestModelAtEnd && t.saveStrategy == "steps" && t.evalStrategy == "steps" {
            try check(t.saveSteps % (t.evalSteps ?? t.loggingSteps) == 0, "save_steps",
                      "load_best_model_at_end needs save_steps (\(t.saveSteps)) to be a multiple of eval_steps (\(t.evalSteps ?? t.loggingSteps))")
        }
        try check(t.saveStrategy == t.evalStrategy || !t.loadBestModelAtEnd, "load_best_model_at_end",
                  "needs save_strategy and eval_strategy to match (as Trainer requires)")
        let c = cluster
        func checkCluster(_ ok: Bool, _ key: String, _ reason: String) throws {
            if !ok { throw ConfigError.invalid(file: file, key: "cluster.\(key)", reason: reason) }
        }
        try checkCluster(c.servers > 0 && c.servers <= 1024, "servers", "\(c.servers) must be in 1…1024")
        // A server keeps a slot per contribution of a step, at most 4096.
        try checkCluster(c.workers > 0 && c.workers <= 4096, "workers", "\(c.workers) must be in 1…4096")
        if let n = c.threadsPerWorker { try checkCluster(n > 0 && n <= 1024, "threads_per_worker", "\(n) must be in 1…1024") }
        for (k, v) in [("heartbeat_interval", c.heartbeatInterval), ("heartbeat_timeout", c.heartbeatTimeout), ("start_timeout", c.startTimeout)] {
            try checkCluster(v.isFinite && v >= 0, k, "\(v) must be a finite number of seconds")
        }
        try checkCluster(["sync", "ssp", "async"].contains(c.consistency), "consistency", "'\(c.consistency)' is not one of sync, ssp, async")
        try checkCluster(c.staleness >= 0, "staleness", "must not be negative")
        try checkCluster(["none", "fp32", "bf16"].contains(c.codec), "codec", "'\(c.codec)' is not one of none, fp32, bf16")
        try checkCluster(["none", "fp32", "bf16", "bf16-delta"].contains(c.pullCodec), "pull_codec",
                         "'\(c.pullCodec)' is not one of none, fp32, bf16, bf16-delta")
        try checkCluster(c.heartbeatInterval > 0, "heartbeat_interval", "must be positive")
        try checkCluster(c.heartbeatTimeout > c.heartbeatInterval, "heartbeat_timeout", "must be longer than heartbeat_interval")
        // A partition's frame must fit the 16 MiB bound every data socket is bound with (WireLimits).
        try checkCluster(c.partitionBytes >= 1024 && c.partitionBytes <= WireLimits.maxPartitionBytes, "partition_bytes",
                         "\(c.partitionBytes) must be in 1024…\(WireLimits.maxPartitionBytes)")
        if let p = c.metricsPort { try checkCluster((0...65_535).contains(p), "metrics_port", "\(p) is not a TCP port (0–65535; 0 picks a free one)") }
        try checkCluster(!c.metricsBind.isEmpty && !c.metricsBind.contains(where: { $0.isWhitespace || $0 == "/" }), "metrics_bind",
                         "'\(c.metricsBind)' is not an address to bind (an IP address or host name)")
        try checkCluster(c.coordinator.hasPrefix("tcp://") || c.coordinator.hasPrefix("ipc://"), "coordinator",
                         "'\(c.coordinator)' must be a ZeroMQ endpoint like tcp://HOST:PORT")
    }
}

/// A typed key of a config section, by key path (one table drives reading and printing).
enum ConfigField<Root>: Sendable {
    case string(WritableKeyPath<Root, String> & Sendable)
    case optionalString(WritableKeyPath<Root, String?> & Sendable)
    case int(WritableKeyPath<Root, Int> & Sendable)
    case optionalInt(WritableKeyPath<Root, Int?> & Sendable)
    case double(WritableKeyPath<Root, Double> & Sendable)
    case bool(WritableKeyPath<Root, Bool> & Sendable)
    case optionalBool(WritableKeyPath<Root, Bool?> & Sendable)
    /// A string or a list of strings (`report_to`).
    case stringList(WritableKeyPath<Root, [String]> & Sendable)

    /// The value in `root`, as YAML writes it (nil: not set).
    func yaml(_ root: Root) -> String? {
        switch self {
        case .string(let k): return Self.quoted(root[keyPath: k])
        case .optionalString(let k): return root[keyPath: k].map(Self.quoted)
        case .int(let k): return "\(root[keyPath: k])"
        case .optionalInt(let k): return root[keyPath: k].map { "\($0)" }
        case .double(let k): return "\(root[keyPath: k])"
        case .bool(let k): return "\(root[keyPath: k])"
        case .optionalBool(let k): return root[keyPath: k].map { "\($0)" }
        case .stringList(let k): return "[" + root[keyPath: k].map(Self.quoted).joined(separator: ", ") + "]"
        }
    }

    static func quoted(_ s: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        return data.flatMap { String(data: $0, encoding: .utf8) }.map { String($0.dropFirst().dropLast()) } ?? "\"\""
    }
}

/// Reads typed keys from a YAML mapping, remembering which were used.
struct Reader {
    let dict: [String: Any]
    let file: String
    let section: String
    var unused: Set<String>

    init(dict: [String: Any], file: String, section: String = "training") {
        self.dict = dict; self.file = file; self.section = section; unused = Set(dict.keys)
    }

    mutating func take(_ k: String) -> Any? {
        unused.remove(k)
        guard let v = dict[k], !(v is NSNull) else { return nil }
        return v
    }

    mutating func read<Root>(_ k: String, _ field: ConfigField<Root>, into root: inout Root) throws {
        switch field {
        case .string(let p): try string(k, &root[keyPath: p])
        case .optionalString(let p): try optionalString(k, &root[keyPath: p])
        case .int(let p): try int(k, &root[keyPath: p])
        case .optionalInt(let p): try optionalInt(k, &root[keyPath: p])
        case .double(let p): try double(k, &root[keyPath: p])
        case .bool(let p): try bool(k, &root[keyPath: p])
        case .optionalBool(let p): try optionalBool(k, &root[keyPath: p])
        case .stringList(let p): try stringList(k, &root[keyPath: p])
        }
    }

    mutating func string(_ k: String, _ out: inout String) throws {
        guard let v = take(k) else { return }
        guard let s = v as? String else { throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: ConfigError.expectedString(v)) }
        out = s
    }

    mutating func int(_ k: String, _ out: inout Int) throws {
        guard let v = take(k) else { return }
        guard let i = v as? Int else { throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: "an integer") }
        out = i
    }

    mutating func optionalInt(_ k: String, _ out: inout Int?) throws {
        guard let v = take(k) else { return }
        guard let i = v as? Int else { throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: "an integer") }
        out = i
    }

    mutating func optionalString(_ k: String, _ out: inout String?) throws {
        guard let v = take(k) else { return }
        guard let s = v as? String else { throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: ConfigError.expectedString(v)) }
        out = s
    }

    mutating func optionalBool(_ k: String, _ out: inout Bool?) throws {
        guard let v = take(k) else { return }
        guard let b = v as? Bool else { throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: "true or false") }
        out = b
    }

    mutating func double(_ k: String, _ out: inout Double) throws {
        guard let v = take(k) else { return }
        if let d = v as? Double { out = d } else if let i = v as? Int { out = Double(i) } else {
            throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: "a number")
        }
    }

    mutating func stringList(_ k: String, _ out: inout [String]) throws {
        guard let v = take(k) else { return }
        if let s = v as? String { out = [s]; return }
        guard let list = v as? [Any], list.count <= 64, let strings = list as? [String] else {
            throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: "a string or a list of at most 64 strings")
        }
        out = strings
    }

    mutating func bool(_ k: String, _ out: inout Bool) throws {
        guard let v = take(k) else { return }
        guard let b = v as? Bool else { throw ConfigError.wrongType(file: file, key: "\(section).\(k)", expected: "true or false") }
        out = b
    }
}
