import Foundation
import PrecisCore

/// Errors loading, building or running models. Each names the file and field or tensor involved.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(file: String, field: String, reason: String)
    case unknownModelType(file: String, modelType: String, known: [String])
    case missingFile(path: String)
    /// A file that is there but cannot be used as one: not a regular file, too large, unreadable.
    case unreadableFile(path: String, reason: String)
    case missingWeight(file: String, tensor: String)
    case unexpectedWeight(file: String, tensor: String)
    case badBatch(field: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfig(f, field, r): return "\(f): field '\(field)': \(r)"
        case let .unknownModelType(f, t, known):
            return "\(f): model_type '\(t)' is not supported (known: \(known.joined(separator: ", ")))"
        case let .missingFile(p): return "\(p): no such file"
        case let .unreadableFile(p, r): return "\(p): \(r)"
        case let .missingWeight(f, t): return "\(f): missing weight '\(t)'"
        case let .unexpectedWeight(f, t): return "\(f): unexpected weight '\(t)'"
        case let .badBatch(field, r): return "batch field '\(field)': \(r)"
        }
    }
}

extension ModelError {
    /// The most bytes a model folder's JSON settings file (config.json, generation_config.json, a
    /// weights index) may have: they are kilobytes.
    static let settingsFileLimit = 16 << 20

    /// The bytes of a model folder's file, read only when it is a regular file of at most `limit`
    /// bytes (`SmallFile`), or the error naming it.
    static func readFile(_ path: String, limit: Int = settingsFileLimit) throws(ModelError) -> Data {
        do { return try SmallFile.read(path, limit: limit) } catch SmallFile.Problem.missing {
            throw .missingFile(path: path)
        } catch {
            throw .unreadableFile(path: path, reason: "\(error)")
        }
    }
}
