import Foundation
import PrecisCore

/// Hugging Face model folders: `config.json`, the weights (`model.safetensors`, a sharded
/// `model.safetensors.index.json`, `pytorch_model.bin` or a sharded `pytorch_model.bin.index.json`:
/// see ``WeightFiles``), optional `generation_config.json`.
public enum ModelFolder {
    public struct LoadReport: Sendable {
        /// Tensors in the files that the model does not use (transformers warns about these too).
        public var unexpected: [String] = []
        /// Non-trainable buffers that were absent and left at zero.
        public var defaulted: [String] = []
    }

    /// Loads a model folder: builds the architecture named by `model_type` and fills its weights.
    public static func load(_ dir: String) throws -> (model: any Seq2SeqModel, report: LoadReport) {
        let model = try ModelRegistry.model(configFile: (dir as NSString).appendingPathComponent("config.json"))
        let report = try loadWeights(into: model, folder: dir)
        return (model, report)
    }

    /// Fills `model`'s parameters from the folder's weight files (see ``WeightFiles``).
    public static func loadWeights(into model: any Seq2SeqModel, folder dir: String) throws -> LoadReport {
        try loadWeights(into: model, files: try WeightFiles.open(folder: dir))
    }

    public static func loadWeights(into model: any Seq2SeqModel, files: [any WeightFile]) throws -> LoadReport {
        var report = LoadReport()
        var used = Set<String>()
        func find(_ names: [String]) -> (any WeightFile, String)? {
            for n in names { for f in files where f.contains(n) { return (f, n) } }
            return nil
        }
        for e in model.table.entries {
            guard let (f, n) = find([e.name] + model.aliases(for: e.name)) else {
                throw ModelError.missingWeight(file: files.map(\.path).joined(separator: ", "), tensor: e.name)
            }
            try f.readFloats(n, into: model.params.pointer + e.offset, expectShape: e.shape)
            used.insert(n)
        }
        for x in model.extraTensors {
            if let (f, n) = find([x.name, "model." + x.name]) {
                let shape = f.shape(of: n) ?? []
                guard shape.reduce(1, *) == x.values.count else {
                    throw SafeTensorsError.shapeMismatch(path: f.path, tensor: n, expected: x.shape, found: shape)
                }
                try f.readFloats(n, into: x.values.pointer, expectShape: nil)
                used.insert(n)
            } else {
                x.values.zero()
                report.defaulted.append(x.name)
            }
        }
        // Tied copies of the shared embedding, and tensors the model rebuilds, are expected, not surprising.
        let derived = model.derivedTensors.map(\.name)
        let tied = Set(model.table.entries.flatMap { model.aliases(for: $0.name) } + derived
                       + derived.filter { $0.hasPrefix("model.") }.map { String($0.dropFirst("model.".count)) })
        for f in files {
            for n in f.names where !used.contains(n) && !tied.contains(n) { report.unexpected.append(n) }
        }
        return report
    }

    /// Writes `config.json`, `generation_config.json` and `model.safetensors` (Hugging Face names,
    /// fp32), each atomically. `generation` overrides the defaults derived from the config.
    public static func save(_ model: any Seq2SeqModel, to dir: String, generation: [String: Any]? = nil) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try AtomicFile.write(try model.configJSON(), to: (dir as NSString).appendingPathComponent("config.json"))
        let gen = try JSONSerialization.data(withJSONObject: generation ?? model.generationDefaults,
                                             options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(gen, to: (dir as NSString).appendingPathComponent("generation_config.json"))
        try weightsWriter(model).write(to: (dir as NSString).appendingPathComponent("model.safetensors"))
    }

    /// A safetensors writer holding every parameter and buffer of `model` (and the tensors it rebuilds).
    public static func weightsWriter(_ model: any Seq2SeqModel) -> SafeTensorsWriter {
        var w = SafeTensorsWriter()
        w.metadata = ["format": "pt"]
        for e in model.table.entries {
            w.add(e.name, floats: UnsafeBufferPointer(start: model.params.pointer + e.offset, count: e.count), shape: e.shape)
        }
        for x in model.extraTensors + model.derivedTensors {
            w.add(x.name, floats: UnsafeBufferPointer(x.values.buffer), shape: x.shape)
        }
        return w
    }
}
