import Foundation

/// Which files of a repository a model (or tokenizer) folder needs, from the revision's file list:
/// config.json, generation_config.json, the weights (model.safetensors, else its sharded index and
/// shards, else pytorch_model.bin, else its index and shards) and the tokenizer files. Nothing else
/// is fetched (no TF/Flax/ONNX weights, no README or images).
public enum HubFilePlan {
    public enum Purpose: Sendable, Equatable {
        /// A model folder: config, weights, generation config and the tokenizer files.
        case model
        /// The tokenizer files alone (and config.json when there is no tokenizer.json: its
        /// model_type names the tokenizer class when tokenizer_config.json does not).
        case tokenizer
    }

    public static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "vocab.json", "merges.txt", "spiece.model"]
    static let weightChoices: [(single: String, index: String)] = [
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ]

    /// The files to fetch first, and the sharded-weights index (if any) whose shards come next.
    public static func files(in siblings: Set<String>, purpose: Purpose, repo: String, revision: String) throws -> (files: [String], index: String?) {
        var files: [String] = []
        var index: String?
        if purpose == .model {
            guard siblings.contains("config.json") else {
                throw HubDownloadError.unusableRepo(repo: repo, revision: revision, reason: "it has no config.json (not a transformers model repository)")
            }
            files.append("config.json")
            if siblings.contains("generation_config.json") { files.append("generation_config.json") }
            var weights: String?
            for choice in weightChoices {
                if siblings.contains(choice.single) { weights = choice.single; break }
                if siblings.contains(choice.index) { index = choice.index; break }
            }
            if let weights { files.append(weights) } else if let index { files.append(index) } else {
                throw HubDownloadError.unusableRepo(repo: repo, revision: revision,
                                                    reason: "it has no model.safetensors, pytorch_model.bin or sharded index of either")
            }
        }
        let tokenizer = tokenizerFiles.filter(siblings.contains)
        if purpose == .tokenizer && tokenizer.isEmpty {
            throw HubDownloadError.unusableRepo(repo: repo, revision: revision,
                                                reason: "it has none of \(tokenizerFiles.joined(separator: ", "))")
        }
        // A tokenizer without tokenizer.json is built from the classic files by the class that
        // tokenizer_config.json names, else the one config.json's model_type implies: fetch that too.
        if purpose == .tokenizer && !siblings.contains("tokenizer.json") && siblings.contains("config.json") {
            files.append("config.json")
        }
        return (files + tokenizer, index)
    }

    /// The shard files a sharded index names (`weight_map` values), each checked to be a plain
    /// relative path that the revision holds.
    public static func shards(indexData: Data, indexFile: String, siblings: Set<String>, repo: String, revision: String) throws -> [String] {
        guard let obj = (try? JSONSerialization.jsonObject(with: indexData)) as? [String: Any] else {
            throw HubDownloadError.unusableRepo(repo: repo, revision: revision, reason: "\(indexFile) is not a JSON object")
        }
        guard let map = obj["weight_map"] as? [String: Any], !map.isEmpty else {
            throw HubDownloadError.unusableRepo(repo: repo, revision: revision, reason: "\(indexFile): 'weight_map' is missing, empty or not an object")
        }
        var names = Set<String>()
        for (tensor, v) in map {
            guard let name = v as? String else {
                throw HubDownloadError.unusableRepo(repo: repo, revision: revision, reason: "\(indexFile): weight_map['\(tensor)'] is not a string")
            }
            names.insert(name)
        }
        for name in names {
            guard isSafeRelativePath(name) else {
                throw HubDownloadError.unusableRepo(repo: repo, revision: revision, reason: "\(indexFile) names the file '\(name)', which is not a plain relative path")
            }
            guard siblings.contains(name) else {
                throw HubDownloadError.unusableRepo(repo: repo, revision: revision, reason: "\(indexFile) names \(name), which the repository does not hold")
            }
        }
        return names.sorted()
    }

    /// `a/b.json`: no empty, `.` or `..` parts, no leading `/`, no backslash or control character.
    public static func isSafeRelativePath(_ p: String) -> Bool {
        guard !p.isEmpty, p.utf8.count <= 1000, !p.hasPrefix("/") else { return false }
        if p.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 || $0 == "\\" }) { return false }
        return p.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }
}
