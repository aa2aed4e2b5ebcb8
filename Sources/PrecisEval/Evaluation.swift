import Foundation
import PrecisCore
import PrecisData
import PrecisMetrics
import PrecisModels
import PrecisText

/// A model folder ready to summarise: weights, generation settings and its tokenizer (`tokenizer.json`,
/// `vocab.json` + `merges.txt` or `spiece.model`).
public final class SummarizationModel {
    public let model: any Seq2SeqModel
    public let encoder: TokenizerEncoder
    public var generation: GenerationSettings
    public let folder: String

    public init(folder: String) throws {
        model = try ModelFolder.load(folder).model
        // tokenizer.json, else vocab.json + merges.txt, else spiece.model (TokenizerFolder).
        encoder = try TokenizerEncoder(folder: folder)
        generation = try GenerationSettings.load(folder: folder)
        self.folder = folder
    }

    /// A model already in memory (a worker's), with its tokenizer and generation settings.
    public init(model: any Seq2SeqModel, encoder: TokenizerEncoder, generation: GenerationSettings, folder: String = "(in memory)") {
        self.model = model; self.encoder = encoder; self.generation = generation; self.folder = folder
    }

    /// The model inputs of `texts`: `sourcePrefix` (run_summarization's `--source_prefix`, e.g.
    /// "summarize: " for T5) put before each text, then tokenized and truncated to
    /// `maxSourceLength` (and the model's positions).
    public func sourceIDs(_ texts: [String], sourcePrefix: String = "", maxSourceLength: Int = 512) throws -> [[Int32]] {
        let limit = min(maxSourceLength, model.facts.maxSourcePositions ?? .max)
        return try texts.map { try encoder.encode(sourcePrefix + $0, maxLength: limit) }
    }

    /// Summaries of `texts` (each after `sourcePrefix`), generated `batchSize` at a time (longest
    /// sources batched together; results come back in input order).
    public func summarize(_ texts: [String], sourcePrefix: String = "", batchSize: Int = 16, maxSourceLength: Int = 512,
                          progress: (Int, Int) -> Void = { _, _ in }) throws -> (texts: [String], tokens: [[Int32]]) {
        let ids = try sourceIDs(texts, sourcePrefix: sourcePrefix, maxSourceLength: maxSourceLength)
        let order = ids.indices.sorted { ids[$0].count > ids[$1].count }
        var outTokens = [[Int32]](repeating: [], count: texts.count)
        var done = 0
        for chunk in Sampler.batches(order, batchSize: batchSize) {
            let longest = chunk.map { ids[$0].count }.max() ?? 1
            let sLen = min(model.facts.maxSourcePositions ?? .max, (longest + 7) / 8 * 8)
            var input = [Int32](repeating: Int32(model.facts.padTokenId), count: chunk.count * sLen)
            var mask = [Int32](repeating: 0, count: chunk.count * sLen)
            for (r, i) in chunk.enumerated() {
                for (j, t) in ids[i].enumerated() { input[r * sLen + j] = t; mask[r * sLen + j] = 1 }
            }
            let out = try Generator.generate(model: model, inputIds: input, attentionMask: mask, batchSize: chunk.count,
                                             sourceLength: sLen, settings: generation)
            let per = out.sequences.count / chunk.count
            for (r, i) in chunk.enumerated() { outTokens[i] = out.sequences[r * per] }
            done += chunk.count
            progress(done, texts.count)
        }
        let decoded = outTokens.map { encoder.decode($0, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines) }
        return (decoded, outTokens)
    }
}

/// What `precis evaluate` (and the coordinator's evaluation) reports, in the Trainer's terms.
public struct EvaluationReport: Sendable {
    /// Mean loss over examples (each batch's mean token loss weighted by its example count, as
    /// Trainer's evaluation loop does).
    public var loss: Double
    /// ROUGE F-measures × 100 (rouge1, rouge2, rougeL, rougeLsum).
    public var rouge: [String: Double]
    /// Mean ROUGE precision, recall and F per type (raw fractions).
    public var scores: [RougeType: Score]
    /// Mean generated length in tokens (non-pad tokens, decoder start and EOS included, as the recipe counts).
    public var genLen: Double
    public var samples: Int
    public var predictions: [String]
    public var seconds: Double

    /// `eval_*` keys as Trainer logs them.
    public var metrics: [String: Double] {
        var m: [String: Double] = ["eval_loss": loss, "eval_samples": Double(samples), "eval_runtime": seconds]
        if !predictions.isEmpty { m["eval_gen_len"] = genLen }
        for (k, v) in rouge { m["eval_" + k] = v }
        return m
    }
}

/// One part of an evaluation: what a worker computes for its share of the examples.
public struct EvaluationShard: Sendable, Codable {
    /// Σ over batches of (mean token loss × examples in the batch), and the example count.
    public var lossSum: Double
    public var count: Int
    /// Generated summaries (empty without generation) and their lengths in tokens.
    public var predictions: [String]
    public var genLengths: [Int]
    public init(lossSum: Double, count: Int, predictions: [String], genLengths: [Int]) {
        self.lossSum = lossSum; self.count = count; self.predictions = predictions; self.genLengths = genLengths
    }
}

public enum Evaluator {
    /// Loss on the references and ROUGE of generated summaries (stemming on; each sentence on its own
    /// line for ROUGE-Lsum, as the Hugging Face recipe does).
    public static func evaluate(_ sm: SummarizationModel, records: [SummarizationRecord], batchSize: Int,
                                options: TokenizationOptions, progress: (String, Int, Int) -> Void = { _, _, _ in }) throws -> EvaluationReport {
        let t0 = Date()
        let part = try shard(sm, records: records, batchSize: batchSize, options: options, generate: true, progress: progress)
        return report(references: records.map(\.target), shards: [part], seconds: Date().timeIntervalSince(t0))
    }

    /// The loss (teacher-forced, evaluation mode) and, with `generate`, the summaries of `records`.
    public static func shard(_ sm: SummarizationModel, records: [SummarizationRecord], batchSize: Int, options: TokenizationOptions,
                             generate: Bool, progress: (String, Int, Int) -> Void = { _, _, _ in }) throws -> EvaluationShard {
        var options = options
        options.maxSourceLength = min(options.maxSourceLength, sm.model.facts.maxSourcePositions ?? .max)
        options.maxTargetLength = min(options.maxTargetLength, sm.model.facts.maxTargetPositions ?? .max)
        let ds = try TokenizedDataset.build(records: records, dataFingerprint: "eval-\(records.count)", encoder: sm.encoder,
                                            options: options, cacheDir: nil).0
        let collator = Collator(padId: Int32(sm.model.facts.padTokenId))
        var lossSum = 0.0, n = 0
        let order = (0..<ds.count).sorted { ds.sourceLength($0) > ds.sourceLength($1) }
        for chunk in Sampler.batches(order, batchSize: batchSize) {
            let batch = try collator.batch(chunk, from: ds)
            let r = try sm.model.step(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: nil)
            lossSum += r.mean * Double(chunk.count); n += chunk.count
            progress("loss", n, ds.count)
        }
        guard generate else { return EvaluationShard(lossSum: lossSum, count: n, predictions: [], genLengths: []) }
        let (preds, tokens) = try sm.summarize(records.map(\.source), sourcePrefix: options.sourcePrefix, batchSize: batchSize,
                                                maxSourceLength: options.maxSourceLength) { progress("generate", $0, $1) }
        let pad = Int32(sm.model.facts.padTokenId)
        return EvaluationShard(lossSum: lossSum, count: n, predictions: preds, genLengths: tokens.map { $0.filter { $0 != pad }.count })
    }

    /// Combines shards (in the order of `references`) into the report: mean loss, ROUGE × 100, mean length.
    public static func report(references: [String], shards: [EvaluationShard], seconds: Double) -> EvaluationReport {
        let lossSum = shards.reduce(0) { $0 + $1.lossSum }, n = shards.reduce(0) { $0 + $1.count }
        let preds = shards.flatMap(\.predictions), lengths = shards.flatMap(\.genLengths)
        var rouge: [String: Double] = [:]
        var mean: [RougeType: Score] = [:]
        if !preds.isEmpty {
            let scorer = RougeScorer(types: [.rouge1, .rouge2, .rougeL, .rougeLsum], useStemmer: true)
            let scores = scorer.score(targets: references.prefix(preds.count).map { addNewlinesBetweenSentences($0) },
                                      predictions: preds.map(addNewlinesBetweenSentences))
            mean = aggregateMean(scores)
            for t in [RougeType.rouge1, .rouge2, .rougeL, .rougeLsum] { rouge[t.name] = 100 * (mean[t]?.fmeasure ?? 0) }
        }
        // Summed as doubles: no length can overflow the sum (the coordinator bounds each one anyway).
        let genLen = lengths.isEmpty ? 0 : lengths.reduce(0.0) { $0 + Double($1) } / Double(lengths.count)
        return EvaluationReport(loss: n > 0 ? lossSum / Double(n) : 0, rouge: rouge, scores: mean, genLen: genLen, samples: n,
                                predictions: preds, seconds: seconds)
    }
}

public struct ProgressBar {
    public let label: String
    public let start = Date()
    public init(label: String) { self.label = label }

    public func line(done: Int, total: Int, extra: String = "") -> String {
        let frac = total > 0 ? Double(done) / Double(total) : 1
        let width = 30, filled = Int(frac * Double(width))
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed * Double(total - done) / Double(done) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        return String(format: "%@ %@ %d/%d %3.0f%% elapsed %@ ETA %@ %@", label, bar, done, total, 100 * frac,
                      Self.clock(elapsed), Self.clock(eta), extra)
    }

    public static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
