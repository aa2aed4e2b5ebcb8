import Foundation
import PrecisCore
import PrecisModels
import PrecisText

/// The tokenizer of a Hugging Face model folder, from whichever files it has, in transformers'
/// order of preference:
///
/// 1. `tokenizer.json`;
/// 2. `vocab.json` + `merges.txt`: byte-level BPE with RoBERTa/BART special tokens (`<s>`, `</s>`,
///    `<unk>`, `<pad>`, `<mask>`) and post-processor, as `BartTokenizerFast` builds it from those two
///    files (`add_prefix_space` and the `<mask>` token's `lstrip` from `tokenizer_config.json` /
///    `special_tokens_map.json` when present);
/// 3. `spiece.model`: a SentencePiece Unigram model converted as `T5Tokenizer` or `PegasusTokenizer`
///    do (``SentencePieceTokenizers``; `extra_ids` / `offset` from `tokenizer_config.json`).
///
/// Which class applies is `tokenizer_config.json`'s `tokenizer_class`, else the one
/// ``ModelRegistry/tokenizerClasses`` gives for `config.json`'s `model_type`. Special tokens other
/// than each class's defaults are refused (write a `tokenizer.json` for those).
public enum TokenizerFolder {
    public struct Loaded {
        public var tokenizer: Tokenizer
        /// The files it was built from (for fingerprints and messages).
        public var files: [String]
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noTokenizer(folder: String)
        case unsupported(file: String, detail: String)

        public var description: String {
            switch self {
            case let .noTokenizer(d):
                return "\(d): no tokenizer: expected tokenizer.json, vocab.json + merges.txt, or spiece.model"
            case let .unsupported(f, d): return "\(f): \(d)"
            }
        }
    }

    public static func load(_ dir: String) throws -> Loaded {
        func at(_ n: String) -> String { (dir as NSString).appendingPathComponent(n) }
        let fm = FileManager.default
        if fm.fileExists(atPath: at("tokenizer.json")) {
            return Loaded(tokenizer: try Tokenizer(contentsOfFile: at("tokenizer.json")), files: [at("tokenizer.json")])
        }
        let tokConfig = try jsonObject(at("tokenizer_config.json"))
        let specialMap = try jsonObject(at("special_tokens_map.json"))
        if fm.fileExists(atPath: at("vocab.json")) && fm.fileExists(atPath: at("merges.txt")) {
            try requireClass(["BartTokenizer", "RobertaTokenizer"], dir: dir, tokConfig: tokConfig, file: at("tokenizer_config.json"))
            let defaults = ["bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"]
            try requireDefaults(defaults, tokConfig, at("tokenizer_config.json"))
            try requireDefaults(defaults, specialMap, at("special_tokens_map.json"))
            let addPrefixSpace = tokConfig?["add_prefix_space"] as? Bool ?? false
            let mask = (specialMap?["mask_token"] as? [String: Any]) ?? (tokConfig?["mask_token"] as? [String: Any])
            let lstrip = mask?["lstrip"] as? Bool ?? false
            let t = try Tokenizer.roberta(vocabFile: at("vocab.json"), mergesFile: at("merges.txt"),
                                          addPrefixSpace: addPrefixSpace, maskLStrip: lstrip)
            return Loaded(tokenizer: t, files: [at("vocab.json"), at("merges.txt")])
        }
        if fm.fileExists(atPath: at("spiece.model")) {
            let file = at("spiece.model")
            let cls = try tokenizerClass(dir: dir, tokConfig: tokConfig)
            let model = try SentencePieceModel(contentsOfFile: file)
            switch cls {
            case "T5Tokenizer":
                try requireDefaults(["eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"], tokConfig, at("tokenizer_config.json"))
                let extra = try intField("extra_ids", tokConfig, at("tokenizer_config.json")) ?? 100
                return Loaded(tokenizer: try SentencePieceTokenizers.t5(model, extraIds: extra, file: file), files: [file])
            case "PegasusTokenizer":
                try requireDefaults(["eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask_2>",
                                     "mask_token_sent": "<mask_1>"], tokConfig, at("tokenizer_config.json"))
                let offset = try intField("offset", tokConfig, at("tokenizer_config.json")) ?? 103
                return Loaded(tokenizer: try SentencePieceTokenizers.pegasus(model, offset: offset, file: file), files: [file])
            default:
                throw Failure.unsupported(file: file, detail: "a SentencePiece model for \(cls ?? "an unknown tokenizer class") (supported: T5Tokenizer, PegasusTokenizer; name one in tokenizer_config.json's tokenizer_class or config.json's model_type)")
            }
        }
        throw Failure.noTokenizer(folder: dir)
    }

    /// `tokenizer_class` without a "Fast" suffix, else the class for `config.json`'s `model_type`.
    static func tokenizerClass(dir: String, tokConfig: [String: Any]?) throws -> String? {
        if let c = tokConfig?["tokenizer_class"] as? String { return c.hasSuffix("Fast") ? String(c.dropLast(4)) : c }
        let config = (dir as NSString).appendingPathComponent("config.json")
        guard let type = try jsonObject(config)?["model_type"] as? String else { return nil }
        return ModelRegistry.tokenizerClasses[type]
    }

    static func requireClass(_ allowed: [String], dir: String, tokConfig: [String: Any]?, file: String) throws {
        guard let c = tokConfig?["tokenizer_class"] as? String else { return }
        let base = c.hasSuffix("Fast") ? String(c.dropLast(4)) : c
        guard allowed.contains(base) else {
            throw Failure.unsupported(file: file, detail: "tokenizer_class '\(c)' with vocab.json + merges.txt is not supported (supported: \(allowed.joined(separator: ", ")))")
        }
    }

    /// Each special token the file names (as a string or `{"content": …}`) is the default.
    static func requireDefaults(_ defaults: [String: String], _ obj: [String: Any]?, _ file: String) throws {
        guard let obj else { return }
        for (key, want) in defaults.sorted(by: { $0.key < $1.key }) {
            guard let v = obj[key], !(v is NSNull) else { continue }
            let got = (v as? String) ?? ((v as? [String: Any])?["content"] as? String)
            guard got == want else {
                throw Failure.unsupported(file: file, detail: "\(key) '\(got ?? "\(v)")' differs from the default '\(want)'; only the default special tokens are built from these files (save a tokenizer.json instead)")
            }
        }
    }

    static func intField(_ key: String, _ obj: [String: Any]?, _ file: String) throws -> Int? {
        guard let v = obj?[key], !(v is NSNull) else { return nil }
        guard let n = v as? Int, !(v is Bool) else { throw Failure.unsupported(file: file, detail: "\(key) is not an integer") }
        return n
    }

    /// The most bytes tokenizer_config.json, special_tokens_map.json or config.json may have here.
    static let settingsFileLimit = 16 << 20

    /// The JSON object in `path`, nil when the file does not exist.
    static func jsonObject(_ path: String) throws -> [String: Any]? {
        let data: Data
        do { data = try SmallFile.read(path, limit: settingsFileLimit) } catch .missing { return nil } catch {
            throw Failure.unsupported(file: path, detail: error.description)
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Failure.unsupported(file: path, detail: "not a JSON object")
        }
        return obj
    }
}

extension TokenizerFolder {
    /// Whether `path` is an existing folder.
    public static func isFolder(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The tokenizer a `tokenizer` setting names: a `tokenizer.json` file, or a folder holding
    /// `tokenizer.json`, `vocab.json` + `merges.txt` or `spiece.model` (``load(_:)``).
    public static func load(path: String) throws -> Loaded {
        if isFolder(path) { return try load(path) }
        return Loaded(tokenizer: try Tokenizer(contentsOfFile: path), files: [path])
    }

    /// The `tokenizer.json` bytes a model folder saved with the tokenizer at `path` gets: the file
    /// itself (a file, or a folder's `tokenizer.json`) byte for byte; for a folder of classic files
    /// (vocab.json + merges.txt, spiece.model), the tokenizer built from them in tokenizer.json form.
    public static func tokenizerJSON(path: String) throws -> Data {
        let loaded = try load(path: path)
        let asIs = !isFolder(path) || loaded.files == [(path as NSString).appendingPathComponent("tokenizer.json")]
        if asIs {
            do { return try SmallFile.read(loaded.files[0], limit: Tokenizer.maxFileBytes) } catch {
                throw Failure.unsupported(file: loaded.files[0], detail: error.description)
            }
        }
        return Data(loaded.tokenizer.toJSON().prettyString().utf8)
    }
}

extension TokenizerEncoder {
    /// The tokenizer of a model folder (``TokenizerFolder``); its fingerprint hashes the files it came from.
    public init(folder: String) throws {
        let loaded = try TokenizerFolder.load(folder)
        let hashes = try loaded.files.map { try FNV.file($0) }
        self.init(tokenizer: loaded.tokenizer, fingerprint: hashes.count == 1 ? hashes[0] : hashes.joined(separator: "+"))
    }
}
