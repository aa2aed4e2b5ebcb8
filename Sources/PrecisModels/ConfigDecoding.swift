import Foundation

/// Decodes a model's `config.json` bytes into its Codable config, turning every decoding failure
/// into a `ModelError.invalidConfig` that names the file and the field.
enum ConfigDecoding {
    /// The field a decoding error's path names ("(root)" for the document itself).
    private static func field(_ path: [CodingKey]) -> String {
        path.isEmpty ? "(root)" : path.map(\.stringValue).joined(separator: ".")
    }

    static func decode<C: Decodable>(_ type: C.Type, _ data: Data, file: String) throws -> C {
        do {
            return try JSONDecoder().decode(C.self, from: data)
        } catch let DecodingError.typeMismatch(expected, ctx) {
            throw ModelError.invalidConfig(file: file, field: field(ctx.codingPath), reason: "expected \(expected)")
        } catch let DecodingError.valueNotFound(expected, ctx) {
            throw ModelError.invalidConfig(file: file, field: field(ctx.codingPath), reason: "expected \(expected), got null")
        } catch let DecodingError.dataCorrupted(ctx) {
            let field = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            // Valid JSON whose value does not fit its field (`"d_model": 16.5`) comes without a path
            // from some decoders: find the field by decoding each key alone (the others default).
            if field.isEmpty, let dict = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
                for key in dict.keys.sorted() {
                    guard let one = try? JSONSerialization.data(withJSONObject: [key: dict[key]!]),
                          (try? JSONDecoder().decode(C.self, from: one)) == nil else { continue }
                    throw ModelError.invalidConfig(file: file, field: key, reason: "\(dict[key]!) does not fit this field (a whole number is expected)")
                }
            }
            if !field.isEmpty { throw ModelError.invalidConfig(file: file, field: field, reason: ctx.debugDescription) }
            throw ModelError.invalidConfig(file: file, field: "(root)", reason: "not valid JSON: \(ctx.debugDescription)")
        } catch {
            throw ModelError.invalidConfig(file: file, field: "(root)", reason: "\(error)")
        }
    }
}
