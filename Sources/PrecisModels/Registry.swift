import Foundation
import PrecisCore

/// What every sequence-to-sequence architecture provides: the flat parameter buffer and its table,
/// a gradient mirror, a training step, and what a Hugging Face model folder needs.
public protocol Seq2SeqModel: AnyObject {
    static var modelType: String { get }
    var table: ParameterTable { get }
    var params: FloatBuffer { get }
    var grads: FloatBuffer { get }
    var vocabSize: Int { get }
    /// Non-trainable tensors stored with the weights (e.g. BART's `final_logits_bias`).
    var extraTensors: [(name: String, values: FloatBuffer, shape: [Int])] { get }
    func zeroGradients()
    func initializeWeights(seed: UInt64)
    func step(_ batch: Seq2SeqBatch, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?) throws -> CrossEntropy.Result
    func forward(_ batch: Seq2SeqBatch, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?) throws -> CrossEntropy.Result
    func backward()
    func configJSON() throws -> Data
    var generationDefaults: [String: Any] { get }
    func aliases(for name: String) -> [String]
}

/// Maps `model_type` in `config.json` to an architecture.
public enum ModelRegistry {
    public typealias Builder = @Sendable (_ config: Data, _ file: String) throws -> any Seq2SeqModel

    public static let builders: [String: Builder] = [
        BartModel.modelType: { data, file in BartModel(config: try BartConfig.parse(data, file: file)) },
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
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError.missingFile(path: path) }
        return try model(config: data, file: path)
    }
}
