/// The decoders of SentencePiece-style tokenizers besides `Metaspace`: `ByteFallback`, `Fuse`,
/// `Strip` and `Replace`, each as `tokenizers` runs it.

/// `{"type": "ByteFallback"}`: runs of `<0xXX>` tokens become the string of their bytes; a run
/// that is not valid UTF-8 becomes one U+FFFD per byte.
public struct ByteFallbackDecoder: TokenDecoder {
    public init() {}

    /// The byte of a `<0xXX>` token: six bytes, the two in the middle parsed as Rust's
    /// `u8::from_str_radix(_, 16)` does (which takes a leading `+`).
    static func byte(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
              u[5] == UInt8(ascii: ">") else { return nil }
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        if u[3] == UInt8(ascii: "+") { return hex(u[4]) }
        guard let high = hex(u[3]), let low = hex(u[4]) else { return nil }
        return high << 4 | low
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(tokens.count)
        var bytes: [UInt8] = []
        func flush() {
            guard !bytes.isEmpty else { return }
            if let s = bytes.withUnsafeBufferPointer({ UTF8Validation.isValid($0) ? String(decoding: $0, as: UTF8.self) : nil }) {
                out.append(s)
            } else {
                out.append(contentsOf: Array(repeating: "\u{FFFD}", count: bytes.count))
            }
            bytes.removeAll()
        }
        for token in tokens {
            if let b = Self.byte(token) {
                bytes.append(b)
            } else {
                flush()
                out.append(token)
            }
        }
        flush()
        return out
    }

    public func toJSON() -> JSONValue { .object(["type": .string("ByteFallback")]) }
}

/// `{"type": "Fuse"}`: all tokens become one string.
public struct FuseDecoder: TokenDecoder {
    public init() {}

    public func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }

    public func toJSON() -> JSONValue { .object(["type": .string("Fuse")]) }
}

/// `{"type": "Strip", "content": " ", "start": 1, "stop": 0}`: removes up to `start` leading and
/// up to `stop` trailing `content` characters from every token.
public struct StripDecoder: TokenDecoder {
    public let content: Unicode.Scalar
    public let start: Int
    public let stop: Int

    public init(content: Unicode.Scalar, start: Int, stop: Int) {
        self.content = content
        self.start = start
        self.stop = stop
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let scalars = Array(token.unicodeScalars)
            var head = 0
            while head < min(start, scalars.count) && scalars[head] == content { head += 1 }
            var tail = scalars.count
            var removed = 0
            // `tokenizers` panics when `stop` runs past the start of a token of `content`
            // characters only; here the cut simply stops there.
            while removed < stop && tail > 0 && scalars[tail - 1] == content {
                tail -= 1
                removed += 1
            }
            guard head < tail else { return "" }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[head..<tail])
            return String(view)
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Strip"), "content": .string(String(Character(content))),
                 "start": .int(start), "stop": .int(stop)])
    }
}

/// `{"type": "Replace", "pattern": …, "content": "..."}` as a decoder: the replacement in every token.
public struct ReplaceDecoder: TokenDecoder {
    public let pattern: ReplacePattern
    public let content: String
    let regex: OnigRegex

    public init(pattern: ReplacePattern, content: String) {
        self.pattern = pattern
        self.content = content
        regex = pattern.regex
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let scalars = Array(token.unicodeScalars)
            guard !scalars.isEmpty else { return token }
            var out = String.UnicodeScalarView()
            var last = 0
            for m in regex.matches(in: scalars) {
                out.append(contentsOf: scalars[last..<m.lowerBound])
                out.append(contentsOf: content.unicodeScalars)
                last = m.upperBound
            }
            out.append(contentsOf: scalars[last...])
            return String(out)
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Replace"), "pattern": pattern.toJSON(), "content": .string(content)])
    }
}
