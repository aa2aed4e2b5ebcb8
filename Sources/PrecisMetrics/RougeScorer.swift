/// ROUGE scores computed as Google's `rouge-score` 0.1.2 `RougeScorer` does.
///
/// * `rougeN`: clipped n-gram overlap; precision = overlap / max(#prediction
///   n-grams, 1), recall = overlap / max(#target n-grams, 1).
/// * `rougeL`: LCS length over the whole token sequences (0 when either side
///   has no tokens).
/// * `rougeLsum`: both texts are split on `"\n"` (LF only: a `"\r"` stays in
///   its line), zero-length lines are dropped (whitespace-only lines are
///   kept, they just contribute no tokens), and the summary-level union-LCS
///   of rouge-score's `_summary_level_lcs` is computed: for each target line
///   the union of one LCS with every prediction line is taken, and each token
///   of that union counts as a hit while its count is still positive in both
///   the remaining target and prediction token counts.
///
/// F-measure is `2 * p * r / (p + r)` (0 when p + r == 0). All arithmetic is
/// the same Double arithmetic in the same order as rouge-score, so scores are
/// bitwise identical to Python's.
public struct RougeScorer: Sendable {
    public let types: [RougeType]
    public let tokenizer: RougeTokenizer
    /// When true, rougeLsum first splits each text into sentences with
    /// `SentenceSplitter` (rouge-score's `split_summaries=True` uses NLTK's
    /// punkt instead, so this mode is only an approximation of it).
    public let splitSummaries: Bool

    public init(types: [RougeType], useStemmer: Bool = false, splitSummaries: Bool = false) {
        for case .rougeN(let n) in types {
            precondition(n > 0, "rougeN requires a positive n, got \(n)")
        }
        self.types = types
        self.tokenizer = RougeTokenizer(useStemmer: useStemmer)
        self.splitSummaries = splitSummaries
    }

    /// Scores `prediction` against `target` for every configured type.
    public func score(target: String, prediction: String) -> [RougeType: Score] {
        var interner = TokenInterner()
        var workspace = LCSWorkspace()
        var result: [RougeType: Score] = [:]
        result.reserveCapacity(types.count)

        var flat: (target: [Int], prediction: [Int])?
        func flatTokens() -> (target: [Int], prediction: [Int]) {
            if let flat { return flat }
            let t = interner.ids(of: target, tokenizer)
            let p = interner.ids(of: prediction, tokenizer)
            flat = (t, p)
            return (t, p)
        }

        for type in types {
            switch type {
            case .rougeN(let n):
                let (t, p) = flatTokens()
                result[type] = Self.ngramScore(target: t, prediction: p, n: n)
            case .rougeL:
                let (t, p) = flatTokens()
                if t.isEmpty || p.isEmpty {
                    result[type] = .zero
                } else {
                    let lcs = workspace.length(t, p)
                    let precision = Double(lcs) / Double(p.count)
                    let recall = Double(lcs) / Double(t.count)
                    result[type] = Score(precision: precision, recall: recall)
                }
            case .rougeLsum:
                let t = lines(of: target).map { interner.ids(of: $0, tokenizer) }
                let p = lines(of: prediction).map { interner.ids(of: $0, tokenizer) }
                result[type] = Self.summaryLevelLCS(
                    target: t, prediction: p, vocabularySize: interner.count, workspace: &workspace)
            }
        }
        return result
    }

    /// rouge-score's `score_multi`: scores against each target and keeps, per
    /// type, the score with the highest F-measure (the first one on ties).
    public func scoreMulti(targets: [String], prediction: String) -> [RougeType: Score] {
        let all = targets.map { score(target: $0, prediction: prediction) }
        var best: [RougeType: Score] = [:]
        guard !all.isEmpty else { return best }
        for type in types {
            var chosen = all[0][type]!
            for s in all.dropFirst() where s[type]!.fmeasure > chosen.fmeasure { chosen = s[type]! }
            best[type] = chosen
        }
        return best
    }

    /// Scores aligned lists of targets and predictions.
    public func score(targets: [String], predictions: [String]) -> [[RougeType: Score]] {
        precondition(targets.count == predictions.count, "targets and predictions differ in length")
        return zip(targets, predictions).map { score(target: $0, prediction: $1) }
    }

    // MARK: - Internals

    /// rouge-score's `get_sents`: the sentences (or LF-separated lines) of a
    /// text, zero-length ones removed.
    private func lines(of text: String) -> [Substring] {
        if splitSummaries {
            return SentenceSplitter.split(text).filter { !$0.isEmpty }.map { Substring($0) }
        }
        // Split on the LF scalar only; Character-based splitting would treat
        // "\r\n" as one grapheme and miss the break.
        return text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: true)
            .map { Substring($0) }
    }

    static func ngramScore(target: [Int], prediction: [Int], n: Int) -> Score {
        let targetCounts = ngramCounts(target, n)
        let predictionCounts = ngramCounts(prediction, n)
        var overlap = 0
        for (gram, count) in targetCounts {
            overlap += min(count, predictionCounts[gram] ?? 0)
        }
        let targetTotal = max(target.count - n + 1, 0)
        let predictionTotal = max(prediction.count - n + 1, 0)
        let precision = Double(overlap) / Double(max(predictionTotal, 1))
        let recall = Double(overlap) / Double(max(targetTotal, 1))
        return Score(precision: precision, recall: recall)
    }

    private static func ngramCounts(_ tokens: [Int], _ n: Int) -> [ArraySlice<Int>: Int] {
        var counts: [ArraySlice<Int>: Int] = [:]
        guard tokens.count >= n else { return counts }
        counts.reserveCapacity(tokens.count - n + 1)
        for start in 0...(tokens.count - n) {
            counts[tokens[start..<(start + n)], default: 0] += 1
        }
        return counts
    }

    static func summaryLevelLCS(
        target: [[Int]], prediction: [[Int]], vocabularySize: Int, workspace: inout LCSWorkspace
    ) -> Score {
        if target.isEmpty || prediction.isEmpty { return .zero }
        let m = target.reduce(0) { $0 + $1.count }
        let n = prediction.reduce(0) { $0 + $1.count }
        if m == 0 || n == 0 { return .zero }

        var remainingTarget = [Int](repeating: 0, count: vocabularySize)
        var remainingPrediction = [Int](repeating: 0, count: vocabularySize)
        for line in target { for id in line { remainingTarget[id] += 1 } }
        for line in prediction { for id in line { remainingPrediction[id] += 1 } }

        var hits = 0
        var inUnion: [Bool] = []
        var lcs: [Int] = []
        for ref in target where !ref.isEmpty {
            inUnion.removeAll(keepingCapacity: true)
            inUnion.append(contentsOf: repeatElement(false, count: ref.count))
            for can in prediction where !can.isEmpty {
                workspace.indices(ref: ref, can: can, into: &lcs)
                for i in lcs { inUnion[i] = true }
            }
            for i in 0..<ref.count where inUnion[i] {
                let id = ref[i]
                if remainingPrediction[id] > 0 && remainingTarget[id] > 0 {
                    hits += 1
                    remainingPrediction[id] -= 1
                    remainingTarget[id] -= 1
                }
            }
        }
        let recall = Double(hits) / Double(m)
        let precision = Double(hits) / Double(n)
        return Score(precision: precision, recall: recall)
    }
}

/// Maps token bytes to dense integer ids, shared by target and prediction.
struct TokenInterner {
    private var table: [[UInt8]: Int] = [:]

    var count: Int { table.count }

    mutating func ids<S: StringProtocol>(of text: S, _ tokenizer: RougeTokenizer) -> [Int] {
        var out: [Int] = []
        tokenizer.forEachToken(in: String(text)) { token in
            if let id = table[token] {
                out.append(id)
            } else {
                let id = table.count
                table[token] = id
                out.append(id)
            }
        }
        return out
    }
}

extension RougeScorer {
    /// The longest text, in rouge-score tokens, that the command-line scorers accept. rouge-score
    /// itself has no limit, but ROUGE-L's LCS takes time proportional to the product of the two
    /// lengths: two 10 MB lines would run for hours. Summaries and dialogues are a few hundred tokens.
    public static let maxTokensPerText = 20_000

    /// The first text of `targets` or `predictions` (same index order) longer than `maxTokens`
    /// rouge-score tokens: its index, whether it is a target, and its length; nil when none is.
    public func firstTooLong(targets: [String], predictions: [String],
                             maxTokens: Int = RougeScorer.maxTokensPerText) -> (index: Int, isTarget: Bool, tokens: Int)? {
        func tokens(_ s: String) -> Int? {
            // A token is at least one byte and tokens are separated: short texts need no tokenizing.
            guard s.utf8.count > 2 * maxTokens else { return nil }
            let n = tokenizer.tokenize(s).count
            return n > maxTokens ? n : nil
        }
        for i in 0..<max(targets.count, predictions.count) {
            if i < targets.count, let n = tokens(targets[i]) { return (i, true, n) }
            if i < predictions.count, let n = tokens(predictions[i]) { return (i, false, n) }
        }
        return nil
    }
}
