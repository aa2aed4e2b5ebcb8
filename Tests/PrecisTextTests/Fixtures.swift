import Foundation
import PrecisText

/// Locates files under Tests/Fixtures/tokenizer from this source file's path (written by
/// tools/golden/make_tokenizer_golden.py with Python `tokenizers` 0.23.3).
enum TokenizerFixtures {
    static var directory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // PrecisTextTests
            .deletingLastPathComponent()  // Tests
            .appendingPathComponent("Fixtures")
            .appendingPathComponent("tokenizer")
    }

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Decodes every non-empty line of a JSON Lines fixture with Foundation's decoder (an
    /// independent check of PrecisText's own JSON reader).
    static func lines<T: Decodable>(_ name: String, as type: T.Type) throws -> [T] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        let decoder = JSONDecoder()
        return try text.split(separator: "\n", omittingEmptySubsequences: true).map {
            try decoder.decode(T.self, from: Data($0.utf8))
        }
    }

    /// The fixture tokenizers, loaded once.
    static let samsum: Tokenizer = try! Tokenizer(contentsOfFile: path("samsum-bpe-8192.json"))

    static func tokenizer(_ name: String) throws -> Tokenizer {
        if name == "samsum-bpe-8192.json" { return samsum }
        if name == "classic:samsum-bpe-8192" {
            return try Tokenizer.roberta(vocabFile: path("samsum-bpe-8192-vocab.json"),
                                         mergesFile: path("samsum-bpe-8192-merges.txt"))
        }
        return try Tokenizer(contentsOfFile: path(name))
    }
}

/// One line of golden-sample.jsonl.
struct GoldenText: Decodable {
    let kind: String
    let name: String?
    let split: String?
    let id: String?
    let text: String
    let ids: [Int]
    let ids_plain: [Int]?
    let decoded: String?
    let decoded_all: String?

    var label: String { name ?? "\(kind) \(split ?? "") \(id ?? "")" }
}

/// One line of golden-cases.jsonl.
struct GoldenCase: Decodable {
    struct Trunc: Decodable {
        let max_length: Int
        let direction: String?
        let strategy: String?
    }

    let op: String
    let tokenizer: String
    let text: String?
    let pair: String?
    let add_special_tokens: Bool?
    let truncation: Trunc?
    let ids: [Int]?
    let decode_ids: [Int]?
    let skip_special_tokens: Bool?
}

extension String {
    /// A short printable form for failure messages.
    var preview: String {
        let escaped = unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
        return escaped.count > 80 ? String(escaped.prefix(80)) + "…" : escaped
    }
}
