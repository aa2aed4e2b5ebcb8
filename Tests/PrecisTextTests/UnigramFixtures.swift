import Foundation
import PrecisText

/// Files under Tests/Fixtures/tokenizer/unigram, written by tools/golden/make_unigram_golden.py
/// with Python `tokenizers` 0.23.3, `transformers` 5.24 and `sentencepiece` 0.2.3.
enum UnigramFixtures {
    static let names = ["t5.json", "t5-converter.json", "pegasus.json", "spm-byte-fallback.json",
                        "native-always.json", "native-first.json", "native-never.json", "native-ws-first.json"]

    static var directory: URL {
        TokenizerFixtures.directory.appendingPathComponent("unigram")
    }

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Every fixture tokenizer, loaded once.
    static let tokenizers: [String: Tokenizer] = {
        var out: [String: Tokenizer] = [:]
        for name in names { out[name] = try! Tokenizer(contentsOfFile: path(name)) }
        return out
    }()

    static func lines<T: Decodable>(_ name: String, as type: T.Type) throws -> [T] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        let decoder = JSONDecoder()
        return try text.split(separator: "\n", omittingEmptySubsequences: true).map {
            try decoder.decode(T.self, from: Data($0.utf8))
        }
    }

    /// "HEX: HEX HEX…" lines (an optional leading word, such as the form, is returned apart).
    static func scalarTable(_ name: String) throws -> [(tag: String, scalar: UInt32, mapped: [Unicode.Scalar])] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        var out: [(String, UInt32, [Unicode.Scalar])] = []
        for line in text.split(separator: "\n") {
            var words = line.split(separator: " ")
            var tag = ""
            if !words[0].hasSuffix(":") { tag = String(words.removeFirst()) }
            let scalar = UInt32(words[0].dropLast(), radix: 16)!
            out.append((tag, scalar, words.dropFirst().map { Unicode.Scalar(UInt32($0, radix: 16)!)! }))
        }
        return out
    }
}

/// One line of cases.jsonl: a text and, per tokenizer file, what Python gives.
struct UnigramCase: Decodable {
    let kind: String
    let name: String
    let text: String
    let ids: [String: [Int]]
    let plain: [String: [Int]]
    /// Only where the decode is not the text itself.
    let decoded: [String: String]
    /// Only where it is not `decoded`.
    let decoded_all: [String: String]
}

extension Array where Element == Unicode.Scalar {
    var hex: String { map { String($0.value, radix: 16, uppercase: true) }.joined(separator: " ") }
}

extension String {
    /// Scalar-by-scalar equality (`==` on String is canonical equivalence).
    func sameScalars(_ other: String) -> Bool { unicodeScalars.elementsEqual(other.unicodeScalars) }
}
