import Foundation
import PrecisCore

/// Maps `model_type` in `config.json` to an architecture.
public enum ModelRegistry {
    public typealias Builder = @Sendable (_ config: Data, _ file: String) throws -> any Seq2SeqModel

    public static let builders: [String: Builder] = [
        BartModel.modelType: { data, file in BartModel(config: try BartConfig.parse(data, file: file)) },
        PegasusModel.modelType: { data, file in PegasusModel(config: try PegasusConfig.parse(data, file: file)) },
        T5Model.modelType: { data, file in T5Model(config: try T5Config.parse(data, file: file)) },
    ]

    public static var knownTypes: [String] { builders.keys.sorted() }

    /// Builds an (uninitialised) model from `config.json` bytes.
    public static func model(config data: Data, file: String) throws -> any Seq2SeqModel {
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError.invalidConfig(file: file, field: "(root)", reason: "not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = obj as? [String: Any] else {
            throw ModelError.invalidConfig(file: file, field: "(root)", reason: "not a JSON object")
        }
        guard let type = dict["model_type"] as? String else {
            throw ModelError.invalidConfig(file: file, field: "model_type", reason: "missing (one of: \(knownTypes.joined(separator: ", ")))")
        }
        guard let build = builders[type] else {
            throw ModelError.unknownModelType(file: file, modelType: type, known: knownTypes)
        }
        return try build(data, file)
    }

    /// Builds a model from a config file on disk.
    public static func model(configFile path: String) throws -> any Seq2SeqModel {
        return try model(config: try ModelError.readFile(path), file: path)
    }
}
