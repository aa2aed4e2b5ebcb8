import ArgumentParser
import Foundation
import PrecisData
import PrecisMetrics

/// Reads texts: one per line, or JSON Lines `{"text": ...}` (texts may then hold newlines).
func readTexts(_ path: String, jsonl: Bool) throws -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("\(path): no such file")
    }
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
    try out.write(to: URL(fileURLWithPath: path), options: .atomic)
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
        if splitSentences {
            preds = preds.map(addNewlinesBetweenSentences); refs = refs.map(addNewlinesBetweenSentences)
        }
        let scorer = RougeScorer(types: rougeTypes, useStemmer: useStemmer)
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

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate", abstract: "Score summaries of a dataset split with ROUGE (model evaluation arrives with the tokenizer).")

    @Option(help: "Dataset file (.jsonl, .json or .csv).")
    var data: String
    @Option(help: "An extractive baseline from the SAMSum paper: lead-3 or longest-3.")
    var baseline: String
    @Option(name: .customLong("text-column")) var textColumn = "dialogue"
    @Option(name: .customLong("summary-column")) var summaryColumn = "summary"
    @Option(name: .customLong("max-samples")) var maxSamples: Int?
    @Flag(name: .customLong("no-stemmer"), help: "Score without the Porter stemmer (the recipes use it).")
    var noStemmer = false
    @Option(help: "Output folder for predictions.jsonl and metrics.json.")
    var out: String?

    func run() throws {
        guard let kind = ExtractiveBaseline(rawValue: baseline) else {
            throw ValidationError("--baseline must be one of: \(ExtractiveBaseline.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            let ds = try DatasetLoader.load(data, options: DatasetOptions(textColumn: textColumn, summaryColumn: summaryColumn,
                                                                         skipBadRecords: true))
            if !ds.skipped.isEmpty { FileHandle.standardError.write(Data("\(ds.summary)\n".utf8)) }
            let recs = maxSamples.map { Array(ds.records.prefix($0)) } ?? ds.records
            let preds = recs.map { kind.summarize($0.source) }
            let scores = RougeScorer(types: rougeTypes, useStemmer: !noStemmer).score(targets: recs.map(\.target), predictions: preds)
            let mean = aggregateMean(scores)
            print("\(kind.rawValue) on \(data):")
            print(rougeTable(mean, count: scores.count), terminator: "")
            if let out {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try writeJSONLines(zip(recs, preds).map { ["id": $0.id ?? "", "prediction": $1] }, to: out + "/predictions.jsonl")
                var metrics: [String: Any] = ["baseline": kind.rawValue, "samples": scores.count]
                for t in rougeTypes { metrics["eval_\(t.name)"] = 100 * (mean[t]?.fmeasure ?? 0) }
                try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys])
                    .write(to: URL(fileURLWithPath: out + "/metrics.json"), options: .atomic)
            }
        } catch let e as ValidationError { throw e } catch { throw fail(error) }
    }
}
