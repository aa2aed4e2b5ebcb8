/// Pre-tokenizers that split on whitespace or chain others (`WhitespaceSplit`, `Sequence`).

/// `{"type": "WhitespaceSplit"}`: words are the runs of non-whitespace (Unicode White_Space).
public struct WhitespaceSplitPreTokenizer: PreTokenizer {
    public init() {}

    public var producesByteLevelWords: Bool { false }

    public func forEachWord(in text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var i = 0
        var start = -1
        while i < text.count {
            let s = UnicodeText.scalar(at: i, in: text)
            let width = UTF8.width(s)
            if s.properties.isWhitespace {
                if start >= 0 { body(UnsafeBufferPointer(rebasing: text[start..<i])) }
                start = -1
            } else if start < 0 {
                start = i
            }
            i += width
        }
        if start >= 0 { body(UnsafeBufferPointer(rebasing: text[start..<text.count])) }
    }

    public func forEachWord(in text: NormalizedText, _ body: (NormalizedText) -> Void) {
        var start = -1
        for (i, s) in text.scalars.enumerated() {
            if s.properties.isWhitespace {
                if start >= 0 { body(text.slice(start..<i)) }
                start = -1
            } else if start < 0 {
                start = i
            }
        }
        if start >= 0 { body(text.slice(start..<text.count)) }
    }

    public func toJSON() -> JSONValue { .object(["type": .string("WhitespaceSplit")]) }
}

/// `{"type": "Sequence", "pretokenizers": [...]}`: each pre-tokenizer splits the words of the
/// one before.
public struct SequencePreTokenizer: PreTokenizer {
    public let preTokenizers: [any PreTokenizer]

    public init(_ preTokenizers: [any PreTokenizer]) { self.preTokenizers = preTokenizers }

    public var producesByteLevelWords: Bool { preTokenizers.contains { $0.producesByteLevelWords } }
    public var needsOrigins: Bool { preTokenizers.contains { $0.needsOrigins } }

    /// The text is taken as a whole input (it starts at offset 0).
    public func forEachWord(in text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        forEachWord(in: NormalizedText(utf8: text)) { word in
            word.utf8.withUnsafeBufferPointer { body($0) }
        }
    }

    public func forEachWord(in text: NormalizedText, _ body: (NormalizedText) -> Void) {
        run(0, text, body)
    }

    func run(_ k: Int, _ text: NormalizedText, _ body: (NormalizedText) -> Void) {
        guard k < preTokenizers.count else { return body(text) }
        preTokenizers[k].forEachWord(in: text) { word in
            if !word.isEmpty { run(k + 1, word, body) }
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Sequence"), "pretokenizers": .array(preTokenizers.map { $0.toJSON() })])
    }
}
