import Foundation
import PrecisCore

/// What `tokenizer_config.json` needs to know of a run's `tokenizer.json`: the model kind, the
/// tokens by id, the unknown token and the pipeline's parts (read as JSON; PrecisModels does not
/// tokenize).
public struct TokenizerJSON {
    /// `model.type`: `BPE`, `Unigram`, …
    public let modelType: String
    /// The pipeline's parts as JSON objects (nil: absent or null).
    public let normalizer: [String: Any]?
    public let preTokenizer: [String: Any]?
    public let postProcessor: [String: Any]?
    /// Unigram: `model.unk_id`; BPE: the id of `model.unk_token`.
    public let unkId: Int?
    private let byId: [Int: String]
    private let scores: [Int: Double]

    /// Reads `data` (a tokenizer.json); `file` names it in errors.
    public init(_ data: Data, file: String) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let model = root["model"] as? [String: Any], let type = model["type"] as? String else {
            throw ModelError.invalidConfig(file: file, field: "model", reason: "not a tokenizer.json with a model type")
        }
        modelType = type
        normalizer = root["normalizer"] as? [String: Any]
        preTokenizer = root["pre_tokenizer"] as? [String: Any]
        postProcessor = root["post_processor"] as? [String: Any]
        var ids: [Int: String] = [:], scores: [Int: Double] = [:]
        if let vocab = model["vocab"] as? [[Any]] {          // Unigram: [[piece, score], …]
            for (i, entry) in vocab.enumerated() {
                guard let piece = entry.first as? String else { continue }
                ids[i] = piece
                if entry.count > 1, let s = entry[1] as? NSNumber { scores[i] = s.doubleValue }
            }
        } else if let vocab = model["vocab"] as? [String: Any] {  // BPE, WordPiece, WordLevel: {token: id}
            for (token, id) in vocab { if let i = (id as? NSNumber)?.intValue { ids[i] = token } }
        }
        for t in root["added_tokens"] as? [[String: Any]] ?? [] {
            if let i = (t["id"] as? NSNumber)?.intValue, let s = t["content"] as? String { ids[i] = s }
        }
        byId = ids
        self.scores = scores
        if let u = (model["unk_id"] as? NSNumber)?.intValue {
            unkId = u
        } else if let u = model["unk_token"] as? String {
            unkId = ids.first { $0.value == u }?.key
        } else {
            unkId = nil
        }
    }

    /// The token with id `id`, if the vocabulary or the added tokens have one.
    public func token(_ id: Int?) -> String? { id.flatMap { byId[$0] } }
    /// The id of `token`, if present.
    public func id(of token: String) -> Int? { byId.first { $0.value == token }?.key }
    /// A Unigram piece's score.
    public func score(_ id: Int) -> Double? { scores[id] }
    /// Every token and its id.
    public var tokens: [Int: String] { byId }

    /// The `type` of a pipeline part, and of each part of a `Sequence` (its `normalizers` or `pretokenizers`).
    public static func types(_ part: [String: Any]?) -> [String] {
        guard let part, let t = part["type"] as? String else { return [] }
        if t == "Sequence" {
            let inner = (part["normalizers"] ?? part["pretokenizers"] ?? part["processors"]) as? [[String: Any]] ?? []
            return inner.compactMap { $0["type"] as? String }
        }
        return [t]
    }
}

/// `tokenizer_config.json` as transformers 5 writes it: the tokenizer class, `model_max_length`,
/// the special tokens. The family's values come from the model (`Seq2SeqModel.tokenizerSettings`);
/// transformers' family classes rebuild the tokenizer from tokenizer.json's vocabulary with the
/// family's own pipeline, so a tokenizer.json that does not have that pipeline and vocabulary
/// layout is named `TokenizersBackend` instead, which loads it exactly as it is.
public enum TokenizerConfig {
    /// The class that loads any tokenizer.json unchanged.
    public static let genericClass = "TokenizersBackend"

    /// The file's JSON object for `model` and `tokenizer`.
    public static func object(for model: any Seq2SeqModel, tokenizer: TokenizerJSON) -> [String: Any] {
        let f = model.facts
        var out: [String: Any] = ["backend": "tokenizers", "model_max_length": model.tokenizerModelMaxLength]
        if let family = model.tokenizerSettings(for: tokenizer) {
            out["tokenizer_class"] = family.tokenizerClass
            for (k, v) in family.keys { out[k] = v }
        } else {
            out["tokenizer_class"] = genericClass
            if let s = tokenizer.token(f.padTokenId) { out["pad_token"] = s }
            if let s = tokenizer.token(f.eosTokenId) { out["eos_token"] = s }
            if let s = tokenizer.token(f.bosTokenId) { out["bos_token"] = s }
            if let s = tokenizer.token(tokenizer.unkId) { out["unk_token"] = s }
        }
        return out
    }

    /// `tokenizer_config.json`'s bytes (sorted keys, indented, as transformers writes it).
    public static func data(for model: any Seq2SeqModel, tokenizer: TokenizerJSON) throws -> Data {
        try JSONSerialization.data(withJSONObject: object(for: model, tokenizer: tokenizer),
                                   options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }
}

/// A family's tokenizer class and the keys it needs besides `model_max_length` (special tokens).
public struct TokenizerSettings {
    public var tokenizerClass: String
    public var keys: [String: Any]
    public init(tokenizerClass: String, keys: [String: Any]) { self.tokenizerClass = tokenizerClass; self.keys = keys }
}

extension ModelFolder {
    /// The tokenizer files of a model folder: `tokenizer.json` as given and its `tokenizer_config.json`
    /// (transformers 5 writes no `special_tokens_map.json`). `file` names the tokenizer in errors.
    public static func tokenizerFiles(for model: any Seq2SeqModel, tokenizerJSON: Data, file: String) throws -> [(name: String, data: Data)] {
        let t = try TokenizerJSON(tokenizerJSON, file: file)
        return [("tokenizer.json", tokenizerJSON), ("tokenizer_config.json", try TokenizerConfig.data(for: model, tokenizer: t))]
    }

    /// Writes the tokenizer files (each atomically) into `dir`.
    public static func saveTokenizer(for model: any Seq2SeqModel, tokenizerFile: String, to dir: String) throws {
        let data = try ModelError.readFile(tokenizerFile, limit: 512 << 20)   // the most a tokenizer.json may have
        for (name, bytes) in try tokenizerFiles(for: model, tokenizerJSON: data, file: tokenizerFile) {
            try AtomicFile.write(bytes, to: (dir as NSString).appendingPathComponent(name))
        }
    }
}
