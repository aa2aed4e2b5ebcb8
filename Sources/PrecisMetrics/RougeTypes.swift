/// A ROUGE variant, named as in rouge-score (`"rouge1"`, `"rouge2"`, `"rougeL"`, `"rougeLsum"`).
public enum RougeType: Hashable, Sendable, CustomStringConvertible {
    /// n-gram overlap, n in 1...9 (rouge-score accepts `rouge[0-9]`, rejecting 0).
    case rougeN(Int)
    /// Longest common subsequence over the whole token sequence.
    case rougeL
    /// Summary-level (union) LCS over newline-separated sentences.
    case rougeLsum

    public static let rouge1 = RougeType.rougeN(1)
    public static let rouge2 = RougeType.rougeN(2)
    public static let rouge3 = RougeType.rougeN(3)
    public static let rouge4 = RougeType.rougeN(4)

    /// Parses rouge-score's names; returns nil for anything rouge-score would reject.
    public init?(name: String) {
        switch name {
        case "rougeL": self = .rougeL
        case "rougeLsum": self = .rougeLsum
        default:
            let digits = name.utf8.dropFirst(5)
            guard name.hasPrefix("rouge"), digits.count == 1, let d = digits.first,
                d >= UInt8(ascii: "1"), d <= UInt8(ascii: "9")
            else { return nil }
            self = .rougeN(Int(d - UInt8(ascii: "0")))
        }
    }

    public var name: String {
        switch self {
        case .rougeN(let n): return "rouge\(n)"
        case .rougeL: return "rougeL"
        case .rougeLsum: return "rougeLsum"
        }
    }

    public var description: String { name }
}

/// Precision, recall and F1 of one prediction against one target.
public struct Score: Hashable, Sendable, CustomStringConvertible {
    public var precision: Double
    public var recall: Double
    public var fmeasure: Double

    public init(precision: Double, recall: Double, fmeasure: Double) {
        self.precision = precision
        self.recall = recall
        self.fmeasure = fmeasure
    }

    /// Builds a score whose F1 is `Score.fmeasure(precision:recall:)`.
    public init(precision: Double, recall: Double) {
        self.init(precision: precision, recall: recall,
                  fmeasure: Score.fmeasure(precision: precision, recall: recall))
    }

    public static let zero = Score(precision: 0, recall: 0, fmeasure: 0)

    /// Harmonic mean, evaluated as rouge-score does: `2 * p * r / (p + r)`, or 0.
    public static func fmeasure(precision: Double, recall: Double) -> Double {
        if precision + recall > 0 {
            return 2 * precision * recall / (precision + recall)
        }
        return 0
    }

    public var description: String {
        "Score(precision: \(precision), recall: \(recall), fmeasure: \(fmeasure))"
    }
}

/// A bootstrap confidence interval: low and high percentiles and the median.
public struct AggregateScore: Hashable, Sendable {
    public var low: Score
    public var mid: Score
    public var high: Score

    public init(low: Score, mid: Score, high: Score) {
        self.low = low
        self.mid = mid
        self.high = high
    }
}
