import ArgumentParser
import Foundation
import PrecisCore
import PrecisData
import PrecisEval
import PrecisHub
import PrecisMetrics
import PrecisModels
import PrecisTrain

/// An input file's bytes: a regular file no larger than a dataset file may be (a FIFO or a device
/// is named as such, not taken for a missing file).
func readInputFile(_ path: String) throws -> Data {
    do { return try SmallFile.read(path, limit: DatasetLoader.maxFileBytes) } catch { throw ValidationError("\(path): \(error)") }
}

/// Standard input to its end, bounded as an input file is.
func readStandardInput() throws -> Data {
    do { return try SmallFile.read(fileDescriptor: 0, limit: DatasetLoader.maxFileBytes) } catch { throw ValidationError("<stdin>: \(error)") }
}

/// Reads texts: one per line, or JSON Lines `{"text": ...}` (texts may then hold newlines).
func readTexts(_ path: String, jsonl: Bool) throws -> [String] {
    let data = try readInputFile(path)
    guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(path): not valid UTF-8") }
    var lines = text.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    if !jsonl { return lines }
    return try lines.enumerated().map { i, line in
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ValidationError("\(path):\(i + 1): not a JSON object")
        }
        guard let t = obj["text"] as? String else { throw ValidationError("\(path):\(i + 1): missing string field 'text'") }
        return t
    }
}

let rougeTypes: [RougeType] = [.rouge1, .rouge2, .rougeL, .rougeLsum]

/// The aggregate table, F-measures (and P/R) × 100 as the Trainer recipe reports them.
func rougeTable(_ mean: [RougeType: Score], count: Int) -> String {
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    var s = pad("", 10) + "  precision     recall          F   (\(count) pairs)\n"
    for t in rougeTypes {
        let v = mean[t] ?? .zero
        s += pad(t.name, 10) + String(format: " %10.2f %10.2f %10.2f\n", 100 * v.precision, 100 * v.recall, 100 * v.fmeasure)
    }
    return s
}

func scoreJSON(_ s: [RougeType: Score]) -> [String: Any] {
    var o: [String: Any] = [:]
    for t in rougeTypes {
        let v = s[t] ?? .zero
        o[t.name] = ["precision": v.precision, "recall": v.recall, "fmeasure": v.fmeasure]
    }
    return o
}

func writeJSONLines(_ objects: [[String: Any]], to path: String) throws {
    var out = Data()
    for o in objects {
        out.append(try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]))
        out.append(0x0A)
    }
    try AtomicFile.write(out, to: path)
}

struct RougeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rouge", abstract: "ROUGE-1/2/L/Lsum exactly as Google's rouge-score computes them.")

    @Option(help: "Predictions: one per line (or JSON Lines with --jsonl).")
    var predictions: String
    @Option(help: "References, aligned with the predictions.")
    var references: String
    @Flag(name: .customLong("use-stemmer"), help: "Porter-stem tokens longer than 3 characters (as the Trainer recipes do).")
    var useStemmer = false
    @Flag(help: "Read JSON Lines {\"text\": ...} so texts can contain newlines (ROUGE-Lsum splits on them).")
    var jsonl = false
    @Flag(name: .customLong("split-sentences"), help: "Put each sentence on its own line before scoring (the HF recipe's step for ROUGE-Lsum).")
    var splitSentences = false
    @Flag(help: "Also print rouge-score's bootstrap 95% confidence interval.")
    var bootstrap = false
    @Option(name: .customLong("per-example"), help: "Write one JSON line of scores (raw fractions) per pair to this file.")
    var perExample: String?

    func run() throws {
        var preds = try readTexts(predictions, jsonl: jsonl), refs = try readTexts(references, jsonl: jsonl)
        guard preds.count == refs.count else {
            throw ValidationError("\(predictions) has \(preds.count) texts but \(references) has \(refs.count)")
        }
        guard !preds.isEmpty else { throw ValidationError("\(predictions) and \(references) hold no texts: nothing to score") }
        if splitSentences {
            preds = preds.map(addNewlinesBetweenSentences); refs = refs.map(addNewlinesBetweenSentences)
        }
        let scorer = RougeScorer(types: rougeTypes, useStemmer: useStemmer)
        if let long = scorer.firstTooLong(targets: refs, predictions: preds) {
            throw ValidationError("\(long.isTarget ? references : predictions): text \(long.index + 1) has \(long.tokens) tokens; "
                                  + "texts of more than \(RougeScorer.maxTokensPerText) are refused (ROUGE-L's cost grows with the product of the lengths)")
        }
        let scores = scorer.score(targets: refs, predictions: preds)
        print(rougeTable(aggregateMean(scores), count: scores.count), terminator: "")
        if bootstrap {
            var agg = BootstrapAggregator()
            for s in scores { agg.addScores(s) }
            let ci = agg.aggregate()
            for t in rougeTypes {
                if let a = ci[t] {
                    print(t.name + String(format: ": F 95%% CI [%.2f, %.2f], mid %.2f",
                                          100 * a.low.fmeasure, 100 * a.high.fmeasure, 100 * a.mid.fmeasure))
                }
            }
        }
        if let path = perExample { try writeJSONLines(scores.map(scoreJSON), to: path) }
    }
}

/// Generation options shared by `summarize` and `evaluate`; unset ones keep the model folder's
/// generation_config.json values.
struct GenerationOptions: ParsableArguments {
    @Option(name: .customLong("num-beams"), help: "Beams of beam search (1: greedy or sampling).")
    var numBeams: Int?
    @Option(name: .customLong("max-new-tokens"), help: "The most tokens generated per summary (overrides --max-length).")
    var maxNewTokens: Int?
    @Option(name: .customLong("max-length"), help: "The most tokens per summary, the decoder start token included.")
    var maxLength: Int?
    @Option(name: .customLong("min-length"), help: "The fewest tokens per summary before end of sequence is allowed.")
    var minLength: Int?
    @Option(name: .customLong("length-penalty"), help: "Beam search: scores are divided by length^this (above 1 favours longer summaries).")
    var lengthPenalty: Double?
    @Option(name: .customLong("no-repeat-ngram-size"), help: "No n-gram of this size appears twice in a summary (0: no limit).")
    var noRepeatNgramSize: Int?
    @Flag(name: .customLong("do-sample"), help: "Sample tokens instead of taking the most likely ones.")
    var doSample = false
    @Option(help: "Sampling temperature (with --do-sample).")
    var temperature: Double?
    @Option(name: .customLong("top-k"), help: "Sample from the k most likely tokens only (with --do-sample; 0: all).")
    var topK: Int?
    @Option(name: .customLong("top-p"), help: "Sample from the smallest set of tokens whose probabilities sum to p (with --do-sample).")
    var topP: Double?
    @Option(help: "Random seed for sampling.")
    var seed: UInt64?

    func apply(_ g: inout GenerationSettings) throws {
        if let v = numBeams { g.numBeams = v }
        if let v = maxNewTokens { g.maxNewTokens = v }
        if let v = maxLength { g.maxLength = v; if maxNewTokens == nil { g.maxNewTokens = nil } }
        if let v = minLength { g.minLength = v }
        if let v = lengthPenalty { g.lengthPenalty = v }
        if let v = noRepeatNgramSize { g.noRepeatNgramSize = v }
        if doSample { g.doSample = true }
        if let v = temperature { g.temperature = v }
        if let v = topK { g.topK = v }
        if let v = topP { g.topP = v }
        if let v = seed { g.seed = v }
        try g.validate(file: "command line")
    }
}

/// Redraws a progress line on stderr.
func showProgress(_ bar: ProgressBar, _ done: Int, _ total: Int, extra: String = "") {
    Stdio.writeStderr("\r" + bar.line(done: done, total: total, extra: extra))
    if done >= total { Stdio.writeStderr("\n") }
}

/// `--source-prefix` as `training.source_prefix` is checked (TrainingArguments.sourcePrefixProblem).
func validateSourcePrefix(_ prefix: String) throws {
    if let problem = TrainingArguments.sourcePrefixProblem(prefix) { throw ValidationError("--source-prefix \(problem)") }
}

struct SummarizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summarize", abstract: "Summarise texts (JSON Lines on stdin or --input) with a model folder.")

    @Option(help: "Model folder (config.json, model.safetensors, tokenizer.json, generation_config.json), or a Hub repository org/name[@revision] (downloaded to the Hugging Face cache).")
    var model: String
    @Option(help: "JSON Lines input (default: standard input); each line an object with the text field.")
    var input: String?
    @Option(name: .customLong("text-column"), help: "Field holding the text (\"text\" is also accepted).")
    var textColumn = "dialogue"
    @Option(name: .customLong("batch-size"), help: "Inputs summarised together.")
    var batchSize = 16
    @Option(name: .customLong("max-source-length"), help: "Inputs are truncated to this many tokens.")
    var maxSourceLength = 512
    @Option(name: .customLong("source-prefix"), help: "Text put before every input (run_summarization's --source_prefix, e.g. \"summarize: \" for T5).")
    var sourcePrefix = ""
    @OptionGroup var gen: GenerationOptions
    @Flag(help: "Matrix products with bf16 operands and fp32 accumulation (training.bf16's products; needs a CPU with AMX or AVX-512-BF16).")
    var bf16 = false
    @Flag(help: "Also print each summary's generated token ids as \"ids\" (the decoder start and end-of-sequence tokens included, as transformers' generate returns them).")
    var ids = false

    func validate() throws { try validateSourcePrefix(sourcePrefix) }

    func run() throws {
        do {
            let sm = try SummarizationModel(folder: ModelSource.modelFolder(model))
            if bf16 { try setBF16(sm.model) }
            try gen.apply(&sm.generation)
            let data: Data
            let name = input ?? "<stdin>"
            if let input {
                data = try readInputFile(input)
            } else {
                data = try readStandardInput()
            }
            var texts: [String] = []
            for (i, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw ValidationError("\(name):\(i + 1): not a JSON object")
                }
                guard let t = (obj[textColumn] ?? obj["text"]) as? String else {
                    throw ValidationError("\(name):\(i + 1): missing string field '\(textColumn)'")
                }
                texts.append(t.replacingOccurrences(of: "\r\n", with: "\n"))
            }
            let bar = ProgressBar(label: "summarize")
            let (out, tokens) = try sm.summarize(texts, sourcePrefix: sourcePrefix, batchSize: batchSize,
                                                 maxSourceLength: maxSourceLength) { showProgress(bar, $0, $1) }
            for (s, t) in zip(out, tokens) {
                let line: [String: Any] = ids ? ["summary": s, "ids": t.map { Int($0) }] : ["summary": s]
                print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
            }
        } catch let e as ValidationError { throw e } catch { throw fail(error) }
    }
}

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Loss, generated predictions and ROUGE of a model on a dataset split, or an extractive baseline's ROUGE.")

    @Option(help: "Dataset file (.jsonl, .json or .csv).")
    var data: String
    @Option(help: "Model folder to evaluate, or a Hub repository org/name[@revision].")
    var model: String?
    @Option(help: "Instead of a model, an extractive baseline from the SAMSum paper: lead-3 or longest-3.")
    var baseline: String?
    @Option(name: .customLong("text-column"), help: "Field holding each example's text.")
    var textColumn = "dialogue"
    @Option(name: .customLong("summary-column"), help: "Field holding each example's reference summary.")
    var summaryColumn = "summary"
    @Option(name: .customLong("max-samples"), help: "Evaluate the first N examples only.")
    var maxSamples: Int?
    @Option(name: .customLong("batch-size"), help: "Examples per batch.")
    var batchSize = 16
    @Option(name: .customLong("max-source-length"), help: "Sources are truncated to this many tokens.")
    var maxSourceLength = 512
    @Option(name: .customLong("max-target-length"), help: "References are truncated to this many tokens for the loss.")
    var maxTargetLength = 128
    @Option(name: .customLong("source-prefix"), help: "Text put before every source (run_summarization's --source_prefix, e.g. \"summarize: \" for T5).")
    var sourcePrefix = ""
    @Flag(name: .customLong("no-stemmer"), help: "Score baselines without the Porter stemmer (the recipes use it).")
    var noStemmer = false
    @Option(name: .customLong("output-dir"), help: "Output folder for predictions.jsonl and metrics.json.")
    var outputDir: String?
    @Option(name: .customLong("out"), help: .hidden)
    var legacyOut: String?
    @Flag(help: "Matrix products with bf16 operands and fp32 accumulation (training.bf16's products; needs a CPU with AMX or AVX-512-BF16).")
    var bf16 = false
    @Flag(name: .customLong("record-in-card"), help: "Also write the scores into the model folder's README.md, as a section \"Results on FILE\" (replaced when it is there already).")
    var recordInCard = false
    @OptionGroup var gen: GenerationOptions

    func validate() throws {
        if bf16 && baseline != nil { throw ValidationError("--bf16 is for a model; a baseline runs no matrix products") }
        if recordInCard && baseline != nil { throw ValidationError("--record-in-card is for a model folder; a baseline has no card") }
        _ = try OutputDir.resolve(outputDir, legacy: legacyOut, required: false)
        if (model == nil) == (baseline == nil) { throw ValidationError("give exactly one of --model and --baseline") }
        if let m = maxSamples, m <= 0 { throw ValidationError("--max-samples must be positive, not \(m)") }
        try validateSourcePrefix(sourcePrefix)
    }

    func run() throws {
        do {
            let ds = try DatasetLoader.load(data, options: DatasetOptions(textColumn: textColumn, summaryColumn: summaryColumn,
                                                                         skipBadRecords: true))
            if !ds.skipped.isEmpty { Stdio.writeStderr("\(ds.summary)\n") }
            let recs = maxSamples.map { Array(ds.records.prefix($0)) } ?? ds.records
            guard !recs.isEmpty else {
                throw ValidationError("\(data): no examples to evaluate (\(ds.records.count) usable record(s)\(maxSamples.map { ", --max-samples \($0)" } ?? ""))")
            }
            var metrics: [String: Any] = ["data": data, "samples": recs.count]
            let preds: [String]
            if let baseline {
                guard let kind = ExtractiveBaseline(rawValue: baseline) else {
                    throw ValidationError("--baseline must be one of: \(ExtractiveBaseline.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                preds = recs.map { kind.summarize($0.source) }
                let scorer = RougeScorer(types: rougeTypes, useStemmer: !noStemmer)
                if let long = scorer.firstTooLong(targets: recs.map(\.target), predictions: preds) {
                    throw ValidationError("\(data): example \(long.index + 1)'s \(long.isTarget ? "summary" : "baseline summary") has \(long.tokens) tokens; "
                                          + "texts of more than \(RougeScorer.maxTokensPerText) are refused (ROUGE-L's cost grows with the product of the lengths)")
                }
                let scores = scorer.score(targets: recs.map(\.target), predictions: preds)
                let mean = aggregateMean(scores)
                print("\(kind.rawValue) on \(data):")
                print(rougeTable(mean, count: scores.count), terminator: "")
                metrics["baseline"] = kind.rawValue
                for t in rougeTypes { metrics["eval_\(t.name)"] = 100 * (mean[t]?.fmeasure ?? 0) }
            } else {
                let card = (model! as NSString).appendingPathComponent("README.md")
                if recordInCard && !FileManager.default.fileExists(atPath: card) {
                    throw ValidationError("--record-in-card: \(card) does not exist (the card a training run writes into its model folder)")
                }
                if recordInCard { _ = try readCard(card) }   // refused before the evaluation's minutes, not after
                let sm = try SummarizationModel(folder: ModelSource.modelFolder(model!))
                if bf16 { try setBF16(sm.model) }
                try gen.apply(&sm.generation)
                let bars = ["loss": ProgressBar(label: "eval loss"), "generate": ProgressBar(label: "generate ")]
                let report = try Evaluator.evaluate(sm, records: recs, batchSize: batchSize,
                                                    options: TokenizationOptions(maxSourceLength: maxSourceLength,
                                                                                 maxTargetLength: maxTargetLength,
                                                                                 sourcePrefix: sourcePrefix)) { phase, done, total in
                    showProgress(bars[phase]!, done, total)
                }
                preds = report.predictions
                print("\(model!) on \(data) (\(recs.count) examples, \(sm.generation.numBeams) beam(s)):")
                print(String(format: "eval_loss %.4f   gen_len %.1f   %.1f s", report.loss, report.genLen, report.seconds))
                print(rougeTable(report.scores, count: recs.count), terminator: "")
                metrics["model"] = model!
                for (k, v) in report.metrics { metrics[k] = v }
                if recordInCard {
                    let m = ModelCard.Metrics(rouge1: report.metrics["eval_rouge1"] ?? .nan, rouge2: report.metrics["eval_rouge2"] ?? .nan,
                                              rougeL: report.metrics["eval_rougeL"] ?? .nan, rougeLsum: report.metrics["eval_rougeLsum"] ?? .nan,
                                              genLen: report.genLen, loss: report.loss)
                    let body = ModelCard.resultsSection(data: data, examples: recs.count, decoding: decodingDescription(sm.generation), metrics: m)
                    let text = try readCard(card)
                    try AtomicFile.write(Data(ModelCard.withSection(text, heading: "Results on \((data as NSString).lastPathComponent)", body: body).utf8),
                                         to: card)
                    print("recorded in \(card)")
                }
            }
            if let out = try OutputDir.resolve(outputDir, legacy: legacyOut, required: false) {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try writeJSONLines(zip(recs, preds).map { ["id": $0.id ?? "", "prediction": $1, "reference": $0.target] },
                                   to: out + "/predictions.jsonl")
                try AtomicFile.write(try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys]),
                                     to: out + "/metrics.json")
            }
        } catch let e as ValidationError { throw e } catch { throw fail(error) }
    }
}

/// A model card to add a section to: a regular UTF-8 file of at most 16 MiB (anything else is refused
/// by name, and the card is left as it is).
func readCard(_ card: String) throws -> String {
    let data: Data
    do { data = try SmallFile.read(card, limit: 16 << 20) } catch { throw ValidationError("\(card): \(error)") }
    guard let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("\(card): not UTF-8 text, so the results are not recorded in it")
    }
    return text
}

/// How `g` decodes, in generation_config.json's names (for a model card).
func decodingDescription(_ g: GenerationSettings) -> String {
    var parts = [g.doSample ? "sampling (temperature \(g.temperature), top_k \(g.topK), top_p \(g.topP), seed \(g.seed))"
                 : g.numBeams > 1 ? "beam search with num_beams \(g.numBeams)" : "greedy decoding"]
    if g.numBeams > 1 && g.lengthPenalty != 1 { parts.append("length_penalty \(g.lengthPenalty)") }
    if g.noRepeatNgramSize > 0 { parts.append("no_repeat_ngram_size \(g.noRepeatNgramSize)") }
    if g.minLength > 0 { parts.append("min_length \(g.minLength)") }
    parts.append(g.maxNewTokens.map { "max_new_tokens \($0)" } ?? "max_length \(g.maxLength)")
    return parts.joined(separator: ", ")
}

/// `--bf16`: bf16 products on `model`; on a CPU without a bf16 kernel, an error naming the flag and
/// the missing CPU flags (exit status 1).
func setBF16(_ model: any Seq2SeqModel) throws {
    do { try model.setMatmulPrecision(.bf16) } catch let BF16Error.unavailable(why) {
        throw BF16FlagError(description: "--bf16: \(why)")
    }
}

struct BF16FlagError: Error, CustomStringConvertible { let description: String }
