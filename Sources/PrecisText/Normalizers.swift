/// The normalizers of SentencePiece-style tokenizers besides `Precompiled`: `Strip`, `Replace`,
/// `Nmt` and `Prepend`, each as `tokenizers` applies it (origins included).

/// `{"type": "Strip", "strip_left": …, "strip_right": …}`: removes leading and/or trailing
/// whitespace (Unicode White_Space, Rust's `char::is_whitespace`).
public struct StripNormalizer: OriginTrackingNormalizer {
    public var left: Bool
    public var right: Bool

    public init(left: Bool, right: Bool) {
        self.left = left
        self.right = right
    }

    /// The remaining scalars keep their origins.
    public func normalize(_ text: inout NormalizedText) {
        var start = 0
        var end = text.count
        if left { while start < end && text.scalars[start].properties.isWhitespace { start += 1 } }
        if right { while end > start && text.scalars[end - 1].properties.isWhitespace { end -= 1 } }
        guard start > 0 || end < text.count else { return }
        let shift = text.shift
        text = text.slice(start..<end)
        text.shift = shift
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Strip"), "strip_left": .bool(left), "strip_right": .bool(right)])
    }
}

/// A `Replace` pattern: `{"String": "..."}` (a literal) or `{"Regex": "..."}` (Oniguruma syntax).
public enum ReplacePattern: Sendable {
    case string(String)
    case regex(OnigRegex)

    public var regex: OnigRegex {
        switch self {
        case let .string(s): return OnigRegex(literal: s)
        case let .regex(r): return r
        }
    }

    public func toJSON() -> JSONValue {
        switch self {
        case let .string(s): return .object(["String": .string(s)])
        case let .regex(r): return .object(["Regex": .string(r.pattern)])
        }
    }
}

/// `{"type": "Replace", "pattern": …, "content": "..."}`: replaces every match (leftmost,
/// non-overlapping) with `content`; the new scalars take the origin of the last scalar they
/// replace.
public struct ReplaceNormalizer: OriginTrackingNormalizer {
    public let pattern: ReplacePattern
    public let content: String
    let regex: OnigRegex
    let replacement: [Unicode.Scalar]
    /// For a regex that is one literal character repeated at least `minimum` times (`" {2,}"`,
    /// `"x+"`: SentencePiece's space collapsing), the character and the minimum: its matches
    /// (leftmost, greedy, non-overlapping) are the runs of that character at least that long,
    /// found without the regex VM.
    package let run: (scalar: Unicode.Scalar, minimum: Int)?

    public init(pattern: ReplacePattern, content: String) {
        self.pattern = pattern
        self.content = content
        regex = pattern.regex
        replacement = Array(content.unicodeScalars)
        if case let .regex(r) = pattern { run = Self.literalRun(r.pattern) } else { run = nil }
    }

    /// `C{n,}` or `C+` with C a character that is not a regex metacharacter; nil otherwise.
    package static func literalRun(_ pattern: String) -> (scalar: Unicode.Scalar, minimum: Int)? {
        let s = Array(pattern.unicodeScalars)
        guard let c = s.first, !"\\^$.|?*+()[]{}".unicodeScalars.contains(c) else { return nil }
        if s.count == 2 && s[1] == "+" { return (c, 1) }
        guard s.count >= 5, s[1] == "{", s[s.count - 2] == ",", s[s.count - 1] == "}" else { return nil }
        let digits = s[2..<(s.count - 2)]
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0.properties.numericType == .decimal && $0.isASCII }),
              let n = Int(String(String.UnicodeScalarView(digits))), n >= 1 else { return nil }
        return (c, n)
    }

    public func normalize(_ text: inout NormalizedText) {
        guard !text.isEmpty else { return }
        guard let run else {
            text.replaceMatches(regex.matches(in: text.scalars), with: replacement)
            return
        }
        var matches: [Range<Int>] = []
        let scalars = text.scalars
        var i = 0
        while i < scalars.count {
            guard scalars[i] == run.scalar else { i += 1; continue }
            var j = i + 1
            while j < scalars.count && scalars[j] == run.scalar { j += 1 }
            if j - i >= run.minimum { matches.append(i..<j) }
            i = j
        }
        text.replaceMatches(matches, with: replacement)
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Replace"), "pattern": pattern.toJSON(), "content": .string(content)])
    }
}

/// `{"type": "Nmt"}`: SentencePiece's NMT normalization: removes C0 control characters (but tab,
/// line feed, form feed and carriage return), DEL, U+008F and U+009F, then maps tab, LF, FF, CR,
/// U+1680, U+200B–U+200F, U+2028, U+2029, U+2581, U+FEFF and U+FFFD to a space.
public struct NmtNormalizer: OriginTrackingNormalizer {
    public init() {}

    static func removes(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x8F, 0x9F: return true
        default: return false
        }
    }

    static func mapsToSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B...0x200F, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD: return true
        default: return false
        }
    }

    public func normalize(_ text: inout NormalizedText) {
        text.filter { !Self.removes($0) }
        for i in text.scalars.indices where Self.mapsToSpace(text.scalars[i]) { text.scalars[i] = " " }
    }

    public func toJSON() -> JSONValue { .object(["type": .string("Nmt")]) }
}

/// `{"type": "Prepend", "prepend": "▁"}`: puts `prepend` before non-empty text.
public struct PrependNormalizer: Normalizer {
    public let prepend: String

    public init(_ prepend: String) { self.prepend = prepend }

    public func normalize(_ text: String) -> String {
        text.isEmpty ? text : prepend + text
    }

    public func normalize(_ text: inout NormalizedText) {
        text.prepend(Array(prepend.unicodeScalars))
    }

    public func toJSON() -> JSONValue { .object(["type": .string("Prepend"), "prepend": .string(prepend)]) }
}
