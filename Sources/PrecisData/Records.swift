import Foundation

/// One summarization example: the text to summarise and its reference summary.
public struct SummarizationRecord: Sendable, Equatable {
    public var id: String?
    public var source: String
    public var target: String

    public init(id: String? = nil, source: String, target: String) {
        self.id = id; self.source = source; self.target = target
    }
}

/// Errors reading datasets; each names the file and, where it applies, the line and field.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case cannotRead(file: String, reason: String)
    case invalidUTF8(file: String, line: Int)
    case invalidJSON(file: String, line: Int, reason: String)
    case missingField(file: String, line: Int, field: String)
    case notAString(file: String, line: Int, field: String)
    case emptyField(file: String, line: Int, field: String)
    case badCSV(file: String, line: Int, reason: String)
    case unknownFormat(file: String)
    case badCache(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(f, r): return "\(f): cannot read: \(r)"
        case let .invalidUTF8(f, l): return "\(f):\(l): invalid UTF-8"
        case let .invalidJSON(f, l, r): return "\(f):\(l): invalid JSON (\(r))"
        case let .missingField(f, l, field): return "\(f):\(l): missing field '\(field)'"
        case let .notAString(f, l, field): return "\(f):\(l): field '\(field)' is not a string"
        case let .emptyField(f, l, field): return "\(f):\(l): field '\(field)' is empty"
        case let .badCSV(f, l, r): return "\(f):\(l): \(r)"
        case let .unknownFormat(f): return "\(f): unknown dataset format (use .jsonl, .json or .csv)"
        case let .badCache(f, r): return "\(f): unusable dataset cache: \(r)"
        }
    }

    /// The line a record error refers to (nil for file-level errors).
    public var line: Int? {
        switch self {
        case let .invalidUTF8(_, l), let .invalidJSON(_, l, _), let .missingField(_, l, _), let .notAString(_, l, _),
             let .emptyField(_, l, _), let .badCSV(_, l, _): return l
        default: return nil
        }
    }
}
