import Foundation

/// The kinds of tokenizer Precis trains from JSON Lines text: what `precis tokenizer train
/// --model` and the training config's `tokenizer_model` name.
public enum TokenizerKind: String, Sendable, CaseIterable {
    /// Byte-level BPE with BART's special tokens (`Tokenizer.trainBARTByteLevelBPE`).
    case bpe
    /// SentencePiece Unigram with T5's special tokens (`Tokenizer.trainT5Unigram`).
    case unigram
}

/// Trains a tokenizer of one kind on string fields of JSON Lines files.
public struct TokenizerTraining: Sendable {
    public var kind: TokenizerKind
    public var vocabSize: Int
    /// BPE only: the minimum count of a pair to be merged.
    public var minFrequency: Int

    public init(kind: TokenizerKind, vocabSize: Int, minFrequency: Int = 2) {
        self.kind = kind
        self.vocabSize = vocabSize
        self.minFrequency = minFrequency
    }

    /// What a run did: the tokenizer, how many texts and distinct words it was trained on, and
    /// the seconds spent counting words and training.
    public struct Result: Sendable {
        public var tokenizer: Tokenizer
        public var texts: Int
        public var words: Int
        public var countingSeconds: Double
        public var trainingSeconds: Double
    }

    /// Every listed field of every record of every file is one training text.
    public func run(files: [String], fields: [String]) throws(TokenizerError) -> Result {
        guard !files.isEmpty else { throw .training(message: "no training file given") }
        guard !fields.isEmpty, !fields.contains("") else { throw .training(message: "the fields to train on need at least one field name") }
        let start = Date()
        var counts = WordCounts(byteLevel: kind == .bpe)
        let normalizer: (any Normalizer)? = kind == .unigram ? Tokenizer.sentencePieceNormalizer() : nil
        let pre: any PreTokenizer = kind == .bpe
            ? ByteLevelPreTokenizer(addPrefixSpace: false, trimOffsets: true, useRegex: true)
            : MetaspacePreTokenizer()
        var texts = 0
        for file in files {
            try JSONLines.forEachRecord(path: file) { (record, line) throws(TokenizerError) in
                for field in fields {
                    counts.add(try JSONLines.string(record, field, file: file, line: line), normalizer: normalizer, preTokenizer: pre)
                    texts += 1
                }
            }
        }
        let counted = Date()
        let tokenizer: Tokenizer
        switch kind {
        case .bpe: tokenizer = try Tokenizer.trainBARTByteLevelBPE(counts, vocabSize: vocabSize, minFrequency: minFrequency)
        case .unigram: tokenizer = try Tokenizer.trainT5Unigram(counts, vocabSize: vocabSize)
        }
        return Result(tokenizer: tokenizer, texts: texts, words: counts.count,
                      countingSeconds: counted.timeIntervalSince(start), trainingSeconds: Date().timeIntervalSince(counted))
    }
}
