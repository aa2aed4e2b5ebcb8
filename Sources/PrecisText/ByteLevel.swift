/// GPT-2's byte-to-Unicode table: every byte stands for one printable character, so that any
/// byte string can be written as a string of vocabulary characters. Bytes `!`...`~`, `¡`...`¬`
/// and `®`...`ÿ` map to themselves; the other 68 bytes map to U+0100 and up, in byte order
/// (so the space 0x20 is `Ġ`, U+0120, and the newline 0x0A is `Ċ`, U+010A).
public enum ByteLevelAlphabet {
    /// The character of each byte, indexed by byte.
    public static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The UTF-8 encoding of each byte's character (one or two bytes).
    static let characterUTF8: [[UInt8]] = characters.map { Array(String($0).utf8) }

    /// Scalar value → byte, for the 512 scalars below U+0200 (-1 when the scalar is not a byte character).
    static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 512)
        for (b, s) in characters.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The byte a byte-level character stands for.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < 512 else { return nil }
        let b = byteOfScalar[v]
        return b < 0 ? nil : UInt8(b)
    }

    /// The byte-level string of some bytes (`"Hello world"` → `"HelloĠworld"`).
    public static func encode<S: Sequence<UInt8>>(_ bytes: S) -> String {
        var out: [UInt8] = []
        for b in bytes { out.append(contentsOf: characterUTF8[Int(b)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of a byte-level string, or `nil` when some character is not a byte character.
    public static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            guard let b = byte(for: s) else { return nil }
            out.append(b)
        }
        return out
    }

    /// Appends the bytes of a byte-level string to `out`; returns false (appending nothing)
    /// when some character is not a byte character.
    static func appendDecoded(_ token: String, to out: inout [UInt8]) -> Bool {
        let mark = out.count
        for s in token.unicodeScalars {
            guard let b = byte(for: s) else {
                out.removeSubrange(mark...)
                return false
            }
            out.append(b)
        }
        return true
    }
}

/// The GPT-2 split regex of byte-level BPE,
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
/// implemented by hand over Unicode scalars with Oniguruma's leftmost-first semantics.
///
/// Character classes follow the Oniguruma inside Hugging Face `tokenizers` 0.23: `\p{L}` is
/// general category L*, `\p{N}` is N*, `\s` is White_Space, all with Unicode 16.0 data;
/// scalars assigned after Unicode 16.0 are unassigned there and so count as "other".
public enum GPT2Split {
    public enum CharacterClass: UInt8, Sendable {
        case letter = 0, number = 1, whitespace = 2, other = 3
    }

    /// How the split regex classifies a scalar.
    public static func characterClass(of scalar: Unicode.Scalar) -> CharacterClass {
        CharacterClass(rawValue: classValue(scalar.value))!
    }

    /// Splits a text into pre-tokens (the matches of the regex, which cover the text).
    public static func split(_ text: String) -> [String] {
        var text = text
        var pieces: [String] = []
        text.withUTF8 { buffer in
            forEachPiece(buffer) { start, end in
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
            }
        }
        return pieces
    }

    static func computeClass(_ scalar: Unicode.Scalar) -> UInt8 {
        let p = scalar.properties
        if p.isWhitespace { return CharacterClass.whitespace.rawValue }
        if let age = p.age, age.major > 16 { return CharacterClass.other.rawValue }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return CharacterClass.letter.rawValue
        case .decimalNumber, .letterNumber, .otherNumber:
            return CharacterClass.number.rawValue
        default:
            return CharacterClass.other.rawValue
        }
    }

    /// Classes of the Basic Multilingual Plane, built on first use (surrogates count as other).
    static let bmpClasses: [UInt8] = {
        var table = [UInt8](repeating: CharacterClass.other.rawValue, count: 0x10000)
        for v in 0..<0x10000 {
            if let s = Unicode.Scalar(UInt32(v)) { table[v] = computeClass(s) }
        }
        return table
    }()

    static let asciiClasses: [UInt8] = (0..<128).map { computeClass(Unicode.Scalar(UInt8($0))) }

    @inline(__always) static func classValue(_ v: UInt32) -> UInt8 {
        if v < 0x80 { return asciiClasses[Int(v)] }
        if v < 0x10000 { return bmpClasses[Int(v)] }
        return computeClass(Unicode.Scalar(v)!)
    }

    /// Decodes the scalar at `i` of valid UTF-8: its class and its length in bytes.
    @inline(__always)
    static func classAt(_ p: UnsafePointer<UInt8>, _ i: Int) -> (UInt8, Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (asciiClasses[Int(b0)], 1) }
        if b0 < 0xE0 {
            let v = (b0 & 0x1F) << 6 | (UInt32(p[i + 1]) & 0x3F)
            return (bmpClasses[Int(v)], 2)
        }
        if b0 < 0xF0 {
            let v = (b0 & 0x0F) << 12 | (UInt32(p[i + 1]) & 0x3F) << 6 | (UInt32(p[i + 2]) & 0x3F)
            return (bmpClasses[Int(v)], 3)
        }
        let v = (b0 & 0x07) << 18 | (UInt32(p[i + 1]) & 0x3F) << 12 | (UInt32(p[i + 2]) & 0x3F) << 6 | (UInt32(p[i + 3]) & 0x3F)
        return (computeClass(Unicode.Scalar(v)!), 4)
    }

    /// Calls `body(start, end)` with the byte range of each match, in order. `buffer` must be
    /// valid UTF-8 (it comes from a `String`).
    @inline(__always)
    static func forEachPiece(_ buffer: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        let n = buffer.count
        guard n > 0, let p = buffer.baseAddress else { return }
        let whitespace = CharacterClass.whitespace.rawValue
        var i = 0
        while i < n {
            let b = p[i]
            // 's 't 're 've 'm 'll 'd
            if b == 0x27 && i + 1 < n {
                let c1 = p[i + 1]
                if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 {  // s t m d
                    body(i, i + 2)
                    i += 2
                    continue
                }
                if i + 2 < n {
                    let c2 = p[i + 2]
                    if ((c1 == 0x72 || c1 == 0x76) && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {  // re ve ll
                        body(i, i + 3)
                        i += 3
                        continue
                    }
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
            var runStart = i
            var (cls, len) = classAt(p, i)
            if b == 0x20 && i + 1 < n {
                let (nextClass, nextLen) = classAt(p, i + 1)
                if nextClass != whitespace {
                    runStart = i + 1
                    cls = nextClass
                    len = nextLen
                }
            }
            if cls != whitespace {
                var j = runStart + len
                while j < n {
                    let (c, l) = classAt(p, j)
                    if c != cls { break }
                    j += l
                }
                body(i, j)
                i = j
                continue
            }
            // `\s+(?!\S)` then `\s+`: a whitespace run; when a non-space follows, its last scalar
            // is left for the next match (unless the run is a single scalar).
            var j = i + len
            var lastStart = i
            while j < n {
                let (c, l) = classAt(p, j)
                if c != whitespace { break }
                lastStart = j
                j += l
            }
            if j < n && lastStart > i {
                body(i, lastStart)
                i = lastStart
            } else {
                body(i, j)
                i = j
            }
        }
    }
}
