/// Text on its way through normalization and pre-tokenization, with the origin of every Unicode
/// scalar: the offset (in UTF-8 bytes) in the original input of the character it came from.
///
/// This is the start of `tokenizers`' `NormalizedString` alignment, kept per scalar, and every
/// change follows `tokenizers`' rules (`NormalizedString::transform_range`), quirks included.
/// The ids only depend on origins in one place: Metaspace's `prepend_scheme: "first"` prepends
/// only to a piece that starts at offset 0 of the input, so the tokenizer tracks origins only when
/// its pre-tokenizer asks for them (`PreTokenizer.needsOrigins`).
public struct NormalizedText: Sendable, Equatable {
    public var scalars: [Unicode.Scalar]
    /// `origins[i]`: where, in the original input, the character that became `scalars[i]` starts.
    public var origins: [Int]
    /// Where this piece starts in the original input: a scalar inserted at the very start
    /// (`tokenizers`' alignment `(0, 0)` of the piece) gets this origin.
    public var shift: Int

    public init(scalars: [Unicode.Scalar], origins: [Int], shift: Int) {
        precondition(scalars.count == origins.count, "one origin per scalar")
        self.scalars = scalars
        self.origins = origins
        self.shift = shift
    }

    /// `text` as found at byte `offset` of the input: each scalar's origin is its own position.
    public init(_ text: String, offset: Int = 0) {
        var scalars: [Unicode.Scalar] = []
        var origins: [Int] = []
        scalars.reserveCapacity(text.utf8.count)
        origins.reserveCapacity(text.utf8.count)
        var position = offset
        for s in text.unicodeScalars {
            scalars.append(s)
            origins.append(position)
            position += UTF8.width(s)
        }
        self.init(scalars: scalars, origins: origins, shift: offset)
    }

    /// Valid UTF-8 found at byte `offset` of the input.
    public init(utf8 text: UnsafeBufferPointer<UInt8>, offset: Int = 0) {
        var scalars: [Unicode.Scalar] = []
        var origins: [Int] = []
        scalars.reserveCapacity(text.count)
        origins.reserveCapacity(text.count)
        var i = 0
        var iterator = text.makeIterator()
        var decoder = UTF8()
        while case let .scalarValue(s) = decoder.decode(&iterator) {
            scalars.append(s)
            origins.append(offset + i)
            i += UTF8.width(s)
        }
        self.init(scalars: scalars, origins: origins, shift: offset)
    }

    public var isEmpty: Bool { scalars.isEmpty }
    public var count: Int { scalars.count }

    public var string: String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// The UTF-8 bytes of the text.
    public var utf8: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(scalars.count)
        for s in scalars { UTF8.encode(s) { out.append($0) } }
        return out
    }

    /// For each byte offset of `utf8` that starts a scalar, that scalar's index (`count` at the end;
    /// -1 inside a scalar): finds the origins of words cut as byte slices of the text.
    public var scalarIndexAtByte: [Int] {
        var at = [Int](repeating: -1, count: scalars.reduce(0) { $0 + UTF8.width($1) } + 1)
        var b = 0
        for (i, s) in scalars.enumerated() {
            at[b] = i
            b += UTF8.width(s)
        }
        at[b] = count
        return at
    }

    /// The scalars `range` as a piece of its own (`NormalizedString::slice`): it starts where its
    /// first scalar came from.
    public func slice(_ range: Range<Int>) -> NormalizedText {
        NormalizedText(scalars: Array(scalars[range]), origins: Array(origins[range]),
                       shift: range.isEmpty ? shift : origins[range.lowerBound])
    }

    /// Replaces the whole text with `dest`, as `NormalizedString::transform` does. Each new scalar
    /// comes with a change: 0 replaces the next old scalar, +1 is inserted (it takes the origin of
    /// the old scalar before the current position, or the piece's start at the very beginning),
    /// -n replaces the next old scalar and removes the n after it. `initialOffset` old scalars
    /// are removed before the first one.
    public mutating func transform(_ dest: [(Unicode.Scalar, Int)], initialOffset: Int = 0) {
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Int] = []
        newScalars.reserveCapacity(dest.count)
        newOrigins.reserveCapacity(dest.count)
        let old = origins
        var offset = min(initialOffset, old.count)
        for (scalar, change) in dest {
            let origin: Int
            if change > 0 {
                origin = offset < 1 ? shift : old[min(offset, old.count) - 1]
            } else {
                // `tokenizers` indexes past the end here only when a transformation consumes more
                // than there is, which its normalizers never do; keep the last origin then.
                origin = offset < old.count ? old[offset] : (old.last ?? shift)
                offset += 1
                if change < 0 { offset += -change }
                offset = min(offset, old.count)
            }
            newScalars.append(scalar)
            newOrigins.append(origin)
        }
        scalars = newScalars
        origins = newOrigins
    }

    /// Replaces `range` with `replacement`, every new scalar taking the origin of the last
    /// replaced one (of the scalar before an empty range; of the piece's start at offset 0), as
    /// `NormalizedString::replace` does for each match.
    mutating func replaceMatches(_ matches: [Range<Int>], with replacement: [Unicode.Scalar]) {
        guard !matches.isEmpty else { return }
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Int] = []
        newScalars.reserveCapacity(scalars.count)
        newOrigins.reserveCapacity(scalars.count)
        var last = 0
        for m in matches {
            newScalars.append(contentsOf: scalars[last..<m.lowerBound])
            newOrigins.append(contentsOf: origins[last..<m.lowerBound])
            let origin = m.upperBound < 1 ? shift : origins[m.upperBound - 1]
            for s in replacement {
                newScalars.append(s)
                newOrigins.append(origin)
            }
            last = m.upperBound
        }
        newScalars.append(contentsOf: scalars[last...])
        newOrigins.append(contentsOf: origins[last...])
        scalars = newScalars
        origins = newOrigins
    }

    /// Keeps the scalars for which `keep` is true, each with its own origin
    /// (`NormalizedString::filter`).
    mutating func filter(_ keep: (Unicode.Scalar) -> Bool) {
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Int] = []
        newScalars.reserveCapacity(scalars.count)
        newOrigins.reserveCapacity(scalars.count)
        for (s, o) in zip(scalars, origins) where keep(s) {
            newScalars.append(s)
            newOrigins.append(o)
        }
        scalars = newScalars
        origins = newOrigins
    }

    /// Prepends `prefix` to a non-empty text (`NormalizedString::prepend`): the new scalars take
    /// the origin of the first one.
    mutating func prepend(_ prefix: [Unicode.Scalar]) {
        guard let first = origins.first else { return }
        scalars.insert(contentsOf: prefix, at: 0)
        origins.insert(contentsOf: Array(repeating: first, count: prefix.count), at: 0)
    }
}
