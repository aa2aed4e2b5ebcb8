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

    public func encode(_ text: String, maxLength: Int?) throws -> [Int32] {
        var t = tokenizer
        t.truncation = maxLength.map { Truncation(maxLength: $0) }
        return try t.encode(text, addSpecialTokens: true).ids.map { Int32($0) }
    }

    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true) -> String {
        tokenizer.decode(ids.map { Int($0) }, skipSpecialTokens: skipSpecialTokens)
    }
}
