/// A token added on top of the model's vocabulary (`"added_tokens"` of `tokenizer.json`).
/// Added tokens are found in the text before pre-tokenization and never split.
public struct AddedToken: Sendable, Hashable {
    public var content: String
    /// Only match when not preceded or followed by a word character.
    public var singleWord: Bool
    /// Also take the whitespace on the left of a match.
    public var lstrip: Bool
    /// Also take the whitespace on the right of a match.
    public var rstrip: Bool
    /// Match against the normalized text (rather than the raw input).
    public var normalized: Bool
    /// Special tokens are skipped by `decode(_:skipSpecialTokens: true)`.
    public var special: Bool

    /// `normalized` defaults to `!special`, as in `tokenizers`.
    public init(_ content: String, special: Bool = false, singleWord: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, normalized: Bool? = nil) {
        self.content = content
        self.special = special
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized ?? !special
    }

    func toJSON(id: Int) -> JSONValue {
        .object(["id": .int(id), "content": .string(content), "single_word": .bool(singleWord),
                 "lstrip": .bool(lstrip), "rstrip": .bool(rstrip), "normalized": .bool(normalized),
                 "special": .bool(special)])
    }
}

/// The added tokens of a tokenizer and the matchers that find them in text.
public struct AddedVocabulary: Sendable {
    /// id → token.
    public private(set) var tokensByID: [Int: AddedToken] = [:]
    /// content → id.
    public private(set) var idsByContent: [String: Int] = [:]
    /// The contents of the special tokens.
    public private(set) var specialContents: Set<String> = []
    /// id → normalized content, for normalized tokens the normalizer changes.
    var normalizedContent: [Int: String] = [:]
    var rawMatcher = AddedTokenMatcher(patterns: [])
    var normalizedMatcher = AddedTokenMatcher(patterns: [])

    public init() {}

    public var isEmpty: Bool { tokensByID.isEmpty }

    /// The string of an id for decoding: the normalized content for normalized tokens.
    func decodingString(_ id: Int) -> String? {
        guard let token = tokensByID[id] else { return nil }
        return normalizedContent[id] ?? token.content
    }

    /// Adds tokens as `tokenizers`' `AddedVocabulary::add_tokens` does: a token already in the
    /// model (or already added) keeps that id, new ones get ids after the model's vocabulary.
    /// Returns how many tokens were added or updated.
    @discardableResult
    mutating func add(_ tokens: [AddedToken], model: any TokenizerModel, normalizer: (any Normalizer)?) -> Int {
        let modelSize = model.vocabSize
        var nextID: Int
        if let maxID = tokensByID.keys.max() {
            nextID = (maxID >= modelSize || modelSize == 0) ? maxID + 1 : modelSize
        } else {
            nextID = modelSize
        }
        var changed = 0
        for token in tokens {
            if token.content.isEmpty { continue }
            if let id = idsByContent[token.content], tokensByID[id] == token { continue }
            let id: Int
            if let existing = idsByContent[token.content] ?? model.tokenToID(token.content) {
                id = existing
            } else {
                id = nextID
                nextID += 1
            }
            if token.normalized, let normalizer {
                let normed = normalizer.normalize(token.content)
                if normed != token.content { normalizedContent[id] = normed }
            }
            idsByContent[token.content] = id
            if token.special { specialContents.insert(token.content) }
            tokensByID[id] = token
            changed += 1
        }
        rebuildMatchers()
        return changed
    }

    mutating func refreshNormalized(_ normalizer: (any Normalizer)?) {
        normalizedContent = [:]
        if let normalizer {
            for (id, token) in tokensByID where token.normalized {
                let normed = normalizer.normalize(token.content)
                if normed != token.content { normalizedContent[id] = normed }
            }
        }
        rebuildMatchers()
    }

    mutating func rebuildMatchers() {
        var raw: [(bytes: [UInt8], id: Int)] = []
        var normalized: [(bytes: [UInt8], id: Int)] = []
        for (id, token) in tokensByID {
            if token.normalized {
                normalized.append((Array((normalizedContent[id] ?? token.content).utf8), id))
            } else {
                raw.append((Array(token.content.utf8), id))
            }
        }
        rawMatcher = AddedTokenMatcher(patterns: raw)
        normalizedMatcher = AddedTokenMatcher(patterns: normalized)
    }

    /// Splits `text` around the added tokens `matcher` finds, honouring `single_word`, `lstrip`
    /// and `rstrip` (`tokenizers`' `find_matches`). Calls `body(start, end, id)` for each
    /// non-empty part in order, `id` being nil for text between tokens.
    func split(_ text: UnsafeBufferPointer<UInt8>, matcher: AddedTokenMatcher, _ body: (Int, Int, Int?) -> Void) {
        guard !matcher.isEmpty else {
            if !text.isEmpty { body(0, text.count, nil) }
            return
        }
        var startOffset = 0
        var searchFrom = 0
        while let (matchStart, matchEnd, id) = matcher.nextMatch(in: text, from: searchFrom) {
            searchFrom = matchEnd
            let token = tokensByID[id]!
            var start = matchStart, stop = matchEnd
            if token.singleWord {
                let startSpace = start == 0 || !UnicodeText.isWordCharacter(before: start, in: text)
                let stopSpace = stop == text.count || !UnicodeText.isWordCharacter(at: stop, in: text)
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                start = max(UnicodeText.whitespaceRunStart(before: start, in: text), startOffset)
            }
            if token.rstrip {
                stop = UnicodeText.whitespaceRunEnd(from: stop, in: text)
            }
            if startOffset < start { body(startOffset, start, nil) }
            body(start, stop, id)
            startOffset = stop
        }
        if startOffset < text.count { body(startOffset, text.count, nil) }
    }

    func toJSON() -> JSONValue {
        .array(tokensByID.keys.sorted().map { tokensByID[$0]!.toJSON(id: $0) })
    }
}

/// Leftmost-longest matching of a set of byte strings (what `tokenizers` does with an
/// Aho-Corasick automaton in `MatchKind::LeftmostLongest`).
struct AddedTokenMatcher: Sendable {
    /// Patterns grouped by first byte, longest first.
    private var byFirstByte: [[(bytes: [UInt8], id: Int)]]
    private var firstBytes: [Bool]
    let isEmpty: Bool

    init(patterns: [(bytes: [UInt8], id: Int)]) {
        byFirstByte = Array(repeating: [], count: 256)
        firstBytes = Array(repeating: false, count: 256)
        var any = false
        for p in patterns where !p.bytes.isEmpty {
            byFirstByte[Int(p.bytes[0])].append(p)
            firstBytes[Int(p.bytes[0])] = true
            any = true
        }
        for i in 0..<256 where byFirstByte[i].count > 1 {
            byFirstByte[i].sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        }
        isEmpty = !any
    }

    /// The leftmost match starting at or after `from` (the longest one there).
    func nextMatch(in text: UnsafeBufferPointer<UInt8>, from: Int) -> (Int, Int, Int)? {
        var i = from
        let n = text.count
        while i < n {
            let b = Int(text[i])
            if firstBytes[b] {
                for p in byFirstByte[b] where i + p.bytes.count <= n {
                    var ok = true
                    var k = 1
                    while k < p.bytes.count {
                        if text[i + k] != p.bytes[k] { ok = false; break }
                        k += 1
                    }
                    if ok { return (i, i + p.bytes.count, p.id) }
                }
            }
            i += 1
        }
        return nil
    }
}

/// Unicode helpers over UTF-8 bytes.
enum UnicodeText {
    /// The scalar that starts at byte `i` of valid UTF-8.
    static func scalar(at i: Int, in text: UnsafeBufferPointer<UInt8>) -> Unicode.Scalar {
        var it = text[i...].makeIterator()
        var decoder = UTF8()
        if case let .scalarValue(s) = decoder.decode(&it) { return s }
        return "\u{FFFD}"
    }

    /// The start of the scalar that ends at byte `end`.
    static func scalarStart(before end: Int, in text: UnsafeBufferPointer<UInt8>) -> Int {
        var i = end - 1
        while i > 0 && text[i] & 0xC0 == 0x80 { i -= 1 }
        return i
    }

    /// Rust regex `\w`: Alphabetic, marks, decimal numbers, connector punctuation, join controls.
    static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    static func isWordCharacter(before end: Int, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        isWordScalar(scalar(at: scalarStart(before: end, in: text), in: text))
    }

    static func isWordCharacter(at i: Int, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        isWordScalar(scalar(at: i, in: text))
    }

    /// Where the whitespace run that ends at `end` starts.
    static func whitespaceRunStart(before end: Int, in text: UnsafeBufferPointer<UInt8>) -> Int {
        var i = end
        while i > 0 {
            let s = scalarStart(before: i, in: text)
            if !scalar(at: s, in: text).properties.isWhitespace { break }
            i = s
        }
        return i
    }

    /// Where the whitespace run that starts at `start` ends.
    static func whitespaceRunEnd(from start: Int, in text: UnsafeBufferPointer<UInt8>) -> Int {
        var i = start
        while i < text.count {
            let s = scalar(at: i, in: text)
            if !s.properties.isWhitespace { break }
            i += UTF8.width(s)
        }
        return i
    }
}
