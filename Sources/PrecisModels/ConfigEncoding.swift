import Foundation

/// Writes a model's `config.json` as transformers does: the config's keys, `architectures` and
/// `dtype`, pretty-printed with sorted keys.
enum ConfigEncoding {
    static func encode<C: Encodable>(_ config: C, architecture: String) throws -> Data {
        let base = try JSONEncoder().encode(config)
        var dict = try JSONSerialization.jsonObject(with: base) as! [String: Any]
        dict["architectures"] = [architecture]
        dict["dtype"] = "float32"
        return try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
    }
}
