import Foundation

/// The README.md of a pushed model: YAML front matter the Hub reads (library, license, base model,
/// datasets, tags, a `model-index` with ROUGE), then a readable body.
public enum ModelCard {
    /// Final ROUGE scores as the recipe reports them (F-measures ×100), and the mean generated length.
    public struct Metrics: Equatable, Sendable {
        public var rouge1: Double
        public var rouge2: Double
        public var rougeL: Double
        public var rougeLsum: Double
        public var genLen: Double?

        public init(rouge1: Double, rouge2: Double, rougeL: Double, rougeLsum: Double, genLen: Double? = nil) {
            self.rouge1 = rouge1; self.rouge2 = rouge2; self.rougeL = rougeL; self.rougeLsum = rougeLsum; self.genLen = genLen
        }
    }

    /// The dataset the metrics were computed on (the Hub's `model-index` dataset block).
    public struct DatasetInfo: Equatable, Sendable {
        public var name: String
        public var type: String
        public var split: String
        public init(name: String = "samsum", type: String = "samsum", split: String = "test") {
            self.name = name; self.type = type; self.split = split
        }
    }

    /// - Parameters:
    ///   - modelName: the `model-index` name and the title (usually the repository's name part).
    ///   - repoID: what the usage snippet loads (defaults to `modelName`).
    ///   - baseModel: the model fine-tuned, if any (nil: trained from scratch).
    ///   - hyperparameters: shown in this order (`learning_rate`, `train_batch_size`, …).
    ///   - evalHistory: `log_history` entries; those with `eval_*` keys become the results table.
    ///   - trainingSummary: a sentence or two on how it was trained (hosts, steps, time).
    public static func render(modelName: String, repoID: String? = nil, baseModel: String? = nil,
                              license: String = "apache-2.0", dataset: DatasetInfo = DatasetInfo(),
                              metrics: Metrics? = nil, hyperparameters: [(String, String)] = [],
                              evalHistory: [[String: Double]] = [], trainingSummary: String? = nil) -> String {
        var y = "---\n"
        y += "library_name: transformers\n"
        y += "license: \(yaml(license))\n"
        if let baseModel { y += "base_model: \(yaml(baseModel))\n" }
        y += "datasets:\n- \(yaml(dataset.type))\n"
        y += "tags:\n- summarization\n- precis\n"
        y += "pipeline_tag: summarization\n"
        y += "model-index:\n- name: \(yaml(modelName))\n"
        if let m = metrics {
            y += "  results:\n  - task:\n      type: summarization\n      name: Summarization\n"
            y += "    dataset:\n      name: \(yaml(dataset.name))\n      type: \(yaml(dataset.type))\n      split: \(yaml(dataset.split))\n"
            y += "    metrics:\n"
            var rows: [(String, Double?, String)] = [("rouge1", m.rouge1, "ROUGE-1"), ("rouge2", m.rouge2, "ROUGE-2"),
                                                     ("rougeL", m.rougeL, "ROUGE-L"), ("rougeLsum", m.rougeLsum, "ROUGE-Lsum")]
            rows.append(("gen_len", m.genLen, "Gen Len"))
            for (type, value, name) in rows {
                guard let value, value.isFinite else { continue }
                y += "    - type: \(type)\n      value: \(number(value))\n      name: \(yaml(name))\n"
            }
        } else {
            y += "  results: []\n"
        }
        y += "---\n\n"

        var b = "# \(modelName)\n\n"
        if let baseModel {
            b += "This model is a fine-tuned version of [\(baseModel)](https://huggingface.co/\(baseModel)) on the \(dataset.name) dataset"
        } else {
            b += "This model was trained from scratch on the \(dataset.name) dataset"
        }
        b += " for abstractive summarization.\n"
        if let m = metrics {
            b += "It achieves the following results on the \(dataset.split) split:\n\n"
            b += "- ROUGE-1: \(number(m.rouge1))\n- ROUGE-2: \(number(m.rouge2))\n"
            b += "- ROUGE-L: \(number(m.rougeL))\n- ROUGE-Lsum: \(number(m.rougeLsum))\n"
            if let g = m.genLen, g.isFinite { b += "- Gen Len: \(number(g))\n" }
        }
        b += "\n## Model description\n\n"
        b += "A sequence-to-sequence transformer (encoder-decoder) that writes short abstractive summaries. "
        b += "The folder is a standard Hugging Face model folder (`config.json`, `model.safetensors`, tokenizer files) "
        b += "and loads with transformers.\n"
        b += "\n## Training procedure\n\n"
        b += (trainingSummary ?? "Trained with Precis, a parameter-server cluster for CPU hosts "
              + "that reproduces the Hugging Face `Seq2SeqTrainer` recipe (AdamW, linear warmup and decay, label smoothing, "
              + "ROUGE evaluation with generation).") + "\n"
        if !hyperparameters.isEmpty {
            b += "\n### Training hyperparameters\n\n| Hyperparameter | Value |\n|---|---|\n"
            for (k, v) in hyperparameters { b += "| \(cell(k)) | \(cell(v)) |\n" }
        }
        let table = evalTable(evalHistory)
        if !table.isEmpty { b += "\n### Evaluation results\n\n" + table }
        let id = repoID ?? modelName
        b += "\n## How to use\n\n```python\nfrom transformers import pipeline\n\n"
        b += "summarizer = pipeline(\"summarization\", model=\(pythonString(id)))\n"
        b += "dialogue = \"\"\"Anna: Are we still on for lunch tomorrow?\nBen: Yes! 12:30 at the usual place.\"\"\"\n"
        b += "print(summarizer(dialogue)[0][\"summary_text\"])\n```\n"
        return y + b
    }

    /// One row per logged evaluation: step, epoch, then the `eval_*` metrics (loss and ROUGE first).
    static func evalTable(_ history: [[String: Double]]) -> String {
        let evals = history.filter { $0.keys.contains { $0.hasPrefix("eval_") } }
        guard !evals.isEmpty else { return "" }
        let noise: Set<String> = ["eval_runtime", "eval_samples_per_second", "eval_steps_per_second"]
        let preferred = ["eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len"]
        let present = Set(evals.flatMap(\.keys)).filter { $0.hasPrefix("eval_") && !noise.contains($0) }
        let columns = preferred.filter(present.contains) + present.subtracting(preferred).sorted()
        let titles: [String: String] = ["eval_loss": "Validation Loss", "eval_rouge1": "ROUGE-1", "eval_rouge2": "ROUGE-2",
                                        "eval_rougeL": "ROUGE-L", "eval_rougeLsum": "ROUGE-Lsum", "eval_gen_len": "Gen Len"]
        var t = "| Step | Epoch | " + columns.map { cell(titles[$0] ?? String($0.dropFirst(5))) }.joined(separator: " | ") + " |\n"
        t += "|" + String(repeating: "---|", count: columns.count + 2) + "\n"
        for e in evals {
            let step = e["step"].map { String(Int($0)) } ?? ""
            let epoch = e["epoch"].map { number($0, digits: 2) } ?? ""
            let values = columns.map { e[$0].map { number($0) } ?? "" }
            t += "| \(step) | \(epoch) | " + values.joined(separator: " | ") + " |\n"
        }
        return t
    }

    // MARK: Formatting

    /// A YAML scalar: plain when unambiguous (starts with a letter; letters, digits, `-`, `_`, `.`,
    /// `/`; not a YAML keyword), otherwise double-quoted with escapes.
    static func yaml(_ s: String) -> String {
        let keywords: Set<String> = ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "nan", "inf"]
        if let f = s.first, f.isASCII, f.isLetter,
           s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./".contains($0)) }),
           !keywords.contains(s.lowercased()) {
            return s
        }
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    out += String(format: "\\x%02X", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// A decimal with at most `digits` places and at least one (valid as a YAML 1.1 and 1.2 float).
    static func number(_ v: Double, digits: Int = 4) -> String {
        var s = String(format: "%.\(digits)f", v)
        while s.hasSuffix("0") && !s.hasSuffix(".0") { s.removeLast() }
        return s
    }

    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func pythonString(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
