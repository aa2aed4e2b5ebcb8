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
        /// The validation loss (shown in the body; not a `model-index` metric).
        public var loss: Double?

        public init(rouge1: Double, rouge2: Double, rougeL: Double, rougeLsum: Double, genLen: Double? = nil, loss: Double? = nil) {
            self.rouge1 = rouge1; self.rouge2 = rouge2; self.rougeL = rougeL; self.rougeLsum = rougeLsum; self.genLen = genLen
            self.loss = loss
        }
    }

    /// Which model of the run the card describes, so cards of different revisions differ.
    public struct Revision: Equatable, Sendable {
        public var step: Int
        public var epoch: Double
        public var totalSteps: Int
        public init(step: Int, epoch: Double, totalSteps: Int) { self.step = step; self.epoch = epoch; self.totalSteps = totalSteps }
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
    ///   - baseModelIsLocal: `baseModel` is a local folder, not a Hub repository (no link to the Hub).
    ///   - baseModelTraining: how the base model was trained, when it is known (an earlier Precis
    ///     run's output folder): a table under the training procedure.
    ///   - hyperparameters: shown in this order (`learning_rate`, `train_batch_size`, …).
    ///   - evalHistory: `log_history` entries; those with `eval_*` keys become the results table.
    ///   - trainingSummary: a sentence or two on how it was trained (hosts, steps, time).
    ///   - license: the Hub's licence identifier (nil: no `license` key).
    ///   - metrics: the evaluation of this revision's model (nil: not evaluated at its step).
    ///   - revision: the step (and epoch) of the model the card describes.
    ///   - sourcePrefix: put before the input in the usage snippet ("summarize: " for T5).
    public static func render(modelName: String, repoID: String? = nil, baseModel: String? = nil,
                              baseModelIsLocal: Bool = false, baseModelTraining: [(String, String)] = [],
                              license: String? = nil, dataset: DatasetInfo = DatasetInfo(),
                              metrics: Metrics? = nil, hyperparameters: [(String, String)] = [],
                              evalHistory: [[String: Double]] = [], trainingSummary: String? = nil,
                              revision: Revision? = nil, sourcePrefix: String = "") -> String {
        var y = "---\n"
        y += "library_name: transformers\n"
        if let license { y += "license: \(yaml(license))\n" }
        if let baseModel { y += "base_model: \(yaml(baseModel))\n" }
        y += "datasets:\n- \(yaml(dataset.type))\n"
        y += "tags:\n- summarization\n- precis\n"
        y += "pipeline_tag: summarization\n"
        y += "model-index:\n- name: \(yaml(modelName))\n"
        if let m = metrics, [m.rouge1, m.rouge2, m.rougeL, m.rougeLsum].contains(where: \.isFinite) {
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
        if let baseModel, baseModelIsLocal {
            b += "This model is a fine-tuned version of the local model `\(baseModel)` on the \(dataset.name) dataset"
        } else if let baseModel {
            b += "This model is a fine-tuned version of [\(baseModel)](https://huggingface.co/\(baseModel)) on the \(dataset.name) dataset"
        } else {
            b += "This model was trained from scratch on the \(dataset.name) dataset"
        }
        b += " for abstractive summarization.\n"
        if let r = revision {
            b += "This revision is the model at step \(r.step) of \(r.totalSteps) (epoch \(number(r.epoch, digits: 2))).\n"
        }
        if let m = metrics {
            b += "It achieves the following results on the \(dataset.split) split:\n\n"
            let rows: [(String, Double?)] = [("Loss", m.loss), ("ROUGE-1", m.rouge1), ("ROUGE-2", m.rouge2), ("ROUGE-L", m.rougeL),
                                             ("ROUGE-Lsum", m.rougeLsum), ("Gen Len", m.genLen)]
            for (name, value) in rows { if let v = value, v.isFinite { b += "- \(name): \(number(v))\n" } }
        } else if revision != nil {
            b += evalTable(evalHistory).isEmpty ? "It was not evaluated during training.\n"
                : "This revision was not evaluated at its step; the evaluation results below are those logged during training.\n"
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
        if !baseModelTraining.isEmpty {
            b += "\n### How the base model was trained\n\n"
            b += "The base model is the output of an earlier Precis run; its recipe, from the `training_config.yaml` and "
            b += "`trainer_state.json` in its folder:\n\n| Hyperparameter | Value |\n|---|---|\n"
            for (k, v) in baseModelTraining { b += "| \(cell(k)) | \(cell(v)) |\n" }
        }
        let table = evalTable(evalHistory)
        if !table.isEmpty { b += "\n### Evaluation results\n\n" + table }
        let id = repoID ?? modelName
        // transformers 5 has no "summarization" pipeline task any more: tokenizer, model and generate.
        b += "\n## How to use\n\n```python\nfrom transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n\n"
        b += "model_id = \(pythonString(id))\n"
        b += "tokenizer = AutoTokenizer.from_pretrained(model_id)\n"
        b += "model = AutoModelForSeq2SeqLM.from_pretrained(model_id)\n"
        b += "dialogue = \"\"\"Anna: Are we still on for lunch tomorrow?\nBen: Yes! 12:30 at the usual place.\"\"\"\n"
        b += "inputs = tokenizer(\(sourcePrefix.isEmpty ? "" : pythonString(sourcePrefix) + " + ")dialogue, truncation=True, return_tensors=\"pt\")\n"
        b += "summary_ids = model.generate(**inputs, max_new_tokens=64)\n"
        b += "print(tokenizer.decode(summary_ids[0], skip_special_tokens=True))\n```\n"
        return y + b
    }

    /// One row per logged evaluation: step, epoch, then the `eval_*` metrics (loss and ROUGE first).
    static func evalTable(_ history: [[String: Double]]) -> String {
        let evals = history.filter { $0.keys.contains { $0.hasPrefix("eval_") } }
        guard !evals.isEmpty else { return "" }
        let noise: Set<String> = ["eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_samples"]
        let preferred = ["eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len"]
        let present = Set(evals.flatMap(\.keys)).filter { $0.hasPrefix("eval_") && !noise.contains($0) }
        let columns = preferred.filter(present.contains) + present.subtracting(preferred).sorted()
        let titles: [String: String] = ["eval_loss": "Validation Loss", "eval_rouge1": "ROUGE-1", "eval_rouge2": "ROUGE-2",
                                        "eval_rougeL": "ROUGE-L", "eval_rougeLsum": "ROUGE-Lsum", "eval_gen_len": "Gen Len"]
        var t = "| Step | Epoch | " + columns.map { cell(titles[$0] ?? String($0.dropFirst(5))) }.joined(separator: " | ") + " |\n"
        t += "|" + String(repeating: "---|", count: columns.count + 2) + "\n"
        for e in evals {
            // trainer_state.json may hold any number: only a finite step within Int's range prints.
            let step = e["step"].flatMap { Int(exactly: $0.rounded(.towardZero)) }.map(String.init) ?? ""
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

    /// A Python string literal (JSON's escapes are Python's).
    static func pythonString(_ s: String) -> String {
        guard let d = try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes]) else { return "\"\"" }
        return String(String(decoding: d, as: UTF8.self).dropFirst().dropLast())
    }
}

extension ModelCard {
    /// `card` with a `## heading` section holding `body`: an existing section of that heading is
    /// replaced (up to the next `## ` heading), else the section goes before "## Model description"
    /// (or at the end when the card has none). The front matter and every other section are kept.
    public static func withSection(_ card: String, heading: String, body: String) -> String {
        let title = "## \(heading)\n"
        let section = title + "\n" + body.trimmingCharacters(in: .newlines) + "\n\n"
        var lines = card.components(separatedBy: "\n")
        if let start = lines.firstIndex(of: "## \(heading)") {
            let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") } ?? lines.count
            lines.replaceSubrange(start..<end, with: section.components(separatedBy: "\n").dropLast())
            return lines.joined(separator: "\n")
        }
        if let at = card.range(of: "\n## Model description\n") {
            return String(card[..<at.lowerBound]) + "\n" + section + String(card[card.index(after: at.lowerBound)...])
        }
        return card + (card.hasSuffix("\n") ? "\n" : "\n\n") + section
    }

    /// The body of a results section: how the model was evaluated, and the scores in one table.
    public static func resultsSection(data: String, examples: Int, decoding: String, metrics: Metrics) -> String {
        var b = "Evaluated with `precis evaluate` on `\(data)` (\(examples) examples), \(decoding); "
        b += "ROUGE F-measures × 100 with the Porter stemmer (rouge-score's semantics).\n\n"
        b += "| Loss | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-Lsum | Gen Len |\n|---|---|---|---|---|---|\n"
        let values = [metrics.loss, metrics.rouge1, metrics.rouge2, metrics.rougeL, metrics.rougeLsum, metrics.genLen]
        b += "| " + values.map { $0.map { number($0) } ?? "" }.joined(separator: " | ") + " |\n"
        return b
    }
}
