import PrecisText

/// The data pipeline's view of a Hugging Face tokenizer: ids with the post-processor's special
/// tokens, truncated as `tokenizer(text, max_length=…, truncation=True)` does.
public struct TokenizerEncoder: TextEncoder, Sendable {
    public let tokenizer: Tokenizer
    public let fingerprint: String

    public init(tokenizer: Tokenizer, fingerprint: String) {
        self.tokenizer = tokenizer; self.fingerprint = fingerprint
    }

    /// Loads `tokenizer.json`; its fingerprint is the hash of the file's bytes. A folder is read as
    /// a model folder's tokenizer (`init(folder:)`: tokenizer.json, vocab.json + merges.txt or spiece.model).
    public init(file: String) throws {
        if TokenizerFolder.isFolder(file) {
            try self.init(folder: file)
        } else {
            try self.init(tokenizer: Tokenizer(contentsOfFile: file), fingerprint: FNV.file(file))
        }
    }

    /// Throws `TokenizerError.encoding` for an id past Int32.max: a tokenizer's ids go up to
    /// UInt32.max (as in `tokenizers`), a model's batches hold Int32 (a vocabulary is far smaller).
    public func encode(_ text: String, maxLength: Int?) throws -> [Int32] {
        var t = tokenizer
        t.truncation = maxLength.map { Truncation(maxLength: $0) }
        return try t.encode(text, addSpecialTokens: true).ids.map { id in
            guard let narrow = Int32(exactly: id) else {
                let token = tokenizer.idToToken(id).map { JSONValue.string($0).compactString() } ?? "?"
                throw TokenizerError.encoding(message: "token \(token) has id \(id), past the largest id a model takes (\(Int32.max))")
            }
            return narrow
        }
    }

    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true) -> String {
        tokenizer.decode(ids.map { Int($0) }, skipSpecialTokens: skipSpecialTokens)
    }
}
