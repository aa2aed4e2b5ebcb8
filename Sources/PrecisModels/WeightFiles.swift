import Foundation
import PrecisCore

/// Which weight files a Hugging Face model folder holds, opened. In order of preference (the first
/// present wins, as transformers prefers safetensors): `model.safetensors`,
/// `model.safetensors.index.json` (shards), `pytorch_model.bin`, `pytorch_model.bin.index.json`.
/// Shard names in an index must be plain file names in the same folder.
public enum WeightFiles {
    public static let candidates = ["model.safetensors", "model.safetensors.index.json",
                                    "pytorch_model.bin", "pytorch_model.bin.index.json"]

    public static func open(folder dir: String) throws -> [any WeightFile] {
        func at(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        let fm = FileManager.default
        if fm.fileExists(atPath: at("model.safetensors")) { return [try SafeTensorsFile(path: at("model.safetensors"))] }
        if fm.fileExists(atPath: at("model.safetensors.index.json")) {
            return try shards(index: at("model.safetensors.index.json"), folder: dir).map { try SafeTensorsFile(path: $0) }
        }
        if fm.fileExists(atPath: at("pytorch_model.bin")) { return [try TorchCheckpointFile(path: at("pytorch_model.bin"))] }
        if fm.fileExists(atPath: at("pytorch_model.bin.index.json")) {
            return try shards(index: at("pytorch_model.bin.index.json"), folder: dir).map { try TorchCheckpointFile(path: $0) }
        }
        throw ModelError.missingFile(path: at("model.safetensors") + " (nor " + candidates.dropFirst().joined(separator: ", ") + ")")
    }

    /// The shard paths an index names (`weight_map`: tensor → file), each once, sorted.
    static func shards(index: String, folder dir: String) throws -> [String] {
        let data = try ModelError.readFile(index)
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = obj["weight_map"] as? [String: String] else {
            throw ModelError.invalidConfig(file: index, field: "weight_map", reason: "missing or not an object of strings")
        }
        let names = Set(map.values).sorted()
        guard !names.isEmpty else { throw ModelError.invalidConfig(file: index, field: "weight_map", reason: "names no files") }
        for name in names where name.isEmpty || name.contains("/") || name.contains("\\") || name == "." || name == ".." {
            throw ModelError.invalidConfig(file: index, field: "weight_map", reason: "'\(name)' is not a file name in this folder")
        }
        return names.map { (dir as NSString).appendingPathComponent($0) }
    }
}
