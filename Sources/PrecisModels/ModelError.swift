import PrecisCore

/// Errors loading, building or running models. Each names the file and field or tensor involved.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(file: String, field: String, reason: String)
    case unknownModelType(file: String, modelType: String, known: [String])
    case missingFile(path: String)
    case missingWeight(file: String, tensor: String)
    case unexpectedWeight(file: String, tensor: String)
    case badBatch(field: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfig(f, field, r): return "\(f): field '\(field)': \(r)"
        case let .unknownModelType(f, t, known):
            return "\(f): model_type '\(t)' is not supported (known: \(known.joined(separator: ", ")))"
        case let .missingFile(p): return "\(p): no such file"
        case let .missingWeight(f, t): return "\(f): missing weight '\(t)'"
        case let .unexpectedWeight(f, t): return "\(f): unexpected weight '\(t)'"
        case let .badBatch(field, r): return "batch field '\(field)': \(r)"
        }
    }
}
