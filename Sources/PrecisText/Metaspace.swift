/// SentencePiece's whitespace handling: `Metaspace` as a pre-tokenizer (spaces become `▁`, a `▁`
/// is prepended, words start at each `▁`) and as a decoder (the way back).

/// When Metaspace prepends its replacement character: to every piece of text, only to a piece
/// that starts the input (`first`: not after an added token, not a later word of an earlier
/// pre-tokenizer), or never.
public enum PrependScheme: String, Sendable, CaseIterable {
    case always, first, never
}

/// `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}`.
///
/// Replaces every space (U+0020 only) with `replacement`, prepends `replacement` unless the text
/// already starts with it (see `PrependScheme`), then, with `split`, cuts the text before every
/// `replacement` (each word but possibly the first starts with it).
public struct MetaspacePreTokenizer: PreTokenizer {
    public let replacement: Unicode.Scalar
    public let prependScheme: PrependScheme
    public let split: Bool

    public init(replacement: Unicode.Scalar = "\u{2581}", prependScheme: PrependScheme = .always, split: Bool = true) {
        self.replacement = replacement
        self.prependScheme = prependScheme
        self.split = split
    }

    public var producesByteLevelWords: Bool { false }
    public var needsOrigins: Bool { prependScheme == .first }

    /// The text is taken as a whole input (it starts at offset 0).
    public func forEachWord(in text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        forEachWord(in: NormalizedText(utf8: text)) { word in
            word.utf8.withUnsafeBufferPointer { body($0) }
        }
    }

    public func forEachWord(in text: NormalizedText, _ body: (NormalizedText) -> Void) {
        guard !text.isEmpty else { return }
        var t = text
        // Each replacement keeps the origin of the space it replaces.
        for i in t.scalars.indices where t.scalars[i] == " " { t.scalars[i] = replacement }
        if t.scalars.first != replacement {
            switch prependScheme {
            case .always: t.prepend([replacement])
            case .first: if t.shift == 0 { t.prepend([replacement]) }
            case .never: break
            }
        }
        guard split else { return body(t) }
        var start = 0
        for i in t.scalars.indices where t.scalars[i] == replacement && i > start {
            body(t.slice(start..<i))
            start = i
        }
        body(t.slice(start..<t.count))
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Metaspace"), "replacement": .string(String(Character(replacement))),
                 "prepend_scheme": .string(prependScheme.rawValue), "split": .bool(split)])
    }
}

/// `{"type": "Metaspace"}` as a decoder: every `replacement` becomes a space, except in the
/// first token (unless the prepend scheme is `never`), where every one of them is dropped.
public struct MetaspaceDecoder: TokenDecoder {
    public let replacement: Unicode.Scalar
    public let prependScheme: PrependScheme
    public let split: Bool

    public init(replacement: Unicode.Scalar = "\u{2581}", prependScheme: PrependScheme = .always, split: Bool = true) {
        self.replacement = replacement
        self.prependScheme = prependScheme
        self.split = split
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, token in
            var out = String.UnicodeScalarView()
            for s in token.unicodeScalars {
                if s == replacement {
                    if i == 0 && prependScheme != .never { continue }
                    out.append(" ")
                } else {
                    out.append(s)
                }
            }
            return String(out)
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Metaspace"), "replacement": .string(String(Character(replacement))),
                 "prepend_scheme": .string(prependScheme.rawValue), "split": .bool(split)])
    }
}
