/// Everything that can go wrong while loading, training or running a tokenizer.
///
/// `file` is the path (or a caller-chosen label such as `"<string>"`) of the input that was being
/// read, `field` a dotted JSON path inside it (`model.merges[12]`, `pre_tokenizer.type`), and `line`
/// a 1-based line number for line-oriented inputs (JSON Lines, `merges.txt`).
public enum TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadableFile(file: String, reason: String)
    /// The input is not valid UTF-8 (`line` is 0 when the input is not line-oriented).
    case invalidUTF8(file: String, line: Int)
    /// The input is not valid JSON (`line` is the line of the JSON Lines file, or the line of
    /// the error inside a JSON document).
    case invalidJSON(file: String, line: Int, message: String)
    /// A required field is absent.
    case missingField(file: String, field: String)
    /// A field is present but has the wrong type or an invalid value.
    case invalidField(file: String, field: String, message: String)
    /// A component (model, normalizer, pre-tokenizer, ...) or option that PrecisText does not implement.
    case unsupported(file: String, field: String, value: String, supported: [String])
    /// A merge, special token or `unk_token` names a token that is not in the vocabulary.
    case unknownToken(file: String, field: String, token: String)
    /// A malformed line in a `merges.txt` file.
    case invalidMerges(file: String, line: Int, message: String)
    /// Truncation cannot satisfy the requested maximum length.
    case truncation(message: String)
    /// The model cannot encode the text (a Unigram model without `unk_id` meeting an unknown character).
    case encoding(message: String)
    /// Bad training parameters or data.
    case training(message: String)
    /// A file could not be written.
    case unwritableFile(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableFile(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .invalidUTF8(file, line):
            return line > 0 ? "\(file):\(line): invalid UTF-8" : "\(file): invalid UTF-8"
        case let .invalidJSON(file, line, message):
            return line > 0 ? "\(file):\(line): invalid JSON: \(message)" : "\(file): invalid JSON: \(message)"
        case let .missingField(file, field):
            return "\(file): missing field \(field)"
        case let .invalidField(file, field, message):
            return "\(file): field \(field): \(message)"
        case let .unsupported(file, field, value, supported):
            let list = supported.isEmpty ? "" : " (supported: \(supported.joined(separator: ", ")))"
            return "\(file): \(field) \(value) is not supported\(list)"
        case let .unknownToken(file, field, token):
            return "\(file): \(field): token \(JSONValue.string(token).compactString()) is not in the vocabulary"
        case let .invalidMerges(file, line, message):
            return "\(file):\(line): invalid merge: \(message)"
        case let .truncation(message):
            return "truncation: \(message)"
        case let .encoding(message):
            return "encoding: \(message)"
        case let .training(message):
            return "training: \(message)"
        case let .unwritableFile(file, reason):
            return "\(file): cannot write: \(reason)"
        }
    }
}
