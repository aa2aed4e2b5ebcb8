import Foundation

/// SentencePiece's `precompiled_charsmap`: the normalization rules of a SentencePiece model
/// (`nmt_nfkc` and friends) compiled into a Darts double-array trie over UTF-8 bytes, followed by
/// the replacement strings.
///
/// Layout: a little-endian `u32` byte size of the trie, the trie as little-endian `u32` units,
/// then the replacement strings, each ended by a NUL. A leaf's value is the offset of its
/// replacement. `lookup` returns the replacement of the *shortest* key that prefixes the input,
/// as `spm_precompiled`'s `transform` (which `tokenizers` uses) does.
///
/// The whole trie is checked when the charsmap is loaded (every reachable leaf must point at the
/// start of a character of the strings, and the trie must not loop), so a truncated or corrupt
/// charsmap is an error then, and a lookup never reads out of bounds.
public struct PrecompiledCharsmap: Sendable, Equatable {
    /// The charsmap as given (what `tokenizer.json` stores, base64-encoded).
    public let bytes: [UInt8]
    let units: [UInt32]
    let normalized: [UInt8]
    /// The replacement scalars of every leaf value.
    let replacements: [Int: [Unicode.Scalar]]

    public struct Invalid: Error, Sendable, Equatable {
        public let message: String
    }

    public init(bytes: [UInt8]) throws(Invalid) {
        self.bytes = bytes
        guard bytes.count >= 4 else { throw Invalid(message: "shorter than its 4-byte header") }
        let trieSize = Int(Self.u32(bytes, at: 0))
        let unitCount = trieSize / 4
        guard unitCount <= (bytes.count - 4) / 4 else {
            throw Invalid(message: "the header announces a \(trieSize)-byte trie, but only \(bytes.count - 4) bytes follow")
        }
        guard unitCount > 0 else { throw Invalid(message: "the trie is empty") }
        var units = [UInt32](repeating: 0, count: unitCount)
        for i in 0..<unitCount { units[i] = Self.u32(bytes, at: 4 + 4 * i) }
        let normalized = Array(bytes[(4 + 4 * unitCount)...])
        guard normalized.withUnsafeBufferPointer({ UTF8Validation.isValid($0) }) else {
            throw Invalid(message: "the replacement strings are not valid UTF-8")
        }
        self.units = units
        self.normalized = normalized
        replacements = try Self.checkedReplacements(units: units, normalized: normalized)
    }

    static func u32(_ b: [UInt8], at i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    // A Darts unit: bit 8 says a leaf hangs below, bits 0-7 (and 31) are the label, bits 10-30
    // the offset to the children (shifted left by 8 more when bit 9 is set); a leaf unit holds its
    // value in bits 0-30.
    @inline(__always) static func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
    @inline(__always) static func value(_ u: UInt32) -> Int { Int(u & 0x7FFF_FFFF) }
    @inline(__always) static func label(_ u: UInt32) -> UInt32 { u & 0x8000_00FF }
    @inline(__always) static func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }

    /// Walks every node reachable from the root once; returns the replacement of every leaf.
    static func checkedReplacements(units: [UInt32], normalized: [UInt8]) throws(Invalid) -> [Int: [Unicode.Scalar]] {
        var replacements: [Int: [Unicode.Scalar]] = [:]
        var visited = [Bool](repeating: false, count: units.count)
        var stack = [offset(units[0])]
        var steps = 0
        while let node = stack.popLast() {
            for c in 1...255 {
                let child = node ^ c
                guard child < units.count, label(units[child]) == UInt32(c) else { continue }
                let next = child ^ offset(units[child])
                if hasLeaf(units[child]) {
                    guard next < units.count else { throw Invalid(message: "a leaf lies outside the trie") }
                    let start = value(units[next])
                    if replacements[start] == nil {
                        guard start <= normalized.count, start == normalized.count || normalized[start] & 0xC0 != 0x80 else {
                            throw Invalid(message: "a leaf points at byte \(start) of \(normalized.count), not at a character")
                        }
                        var end = start
                        while end < normalized.count && normalized[end] != 0 { end += 1 }
                        replacements[start] = Array(String(decoding: normalized[start..<end], as: UTF8.self).unicodeScalars)
                    }
                }
                if next < units.count && !visited[next] {
                    visited[next] = true
                    steps += 1
                    guard steps <= units.count else { throw Invalid(message: "the trie has more nodes than units") }
                    stack.append(next)
                }
            }
        }
        return replacements
    }

    /// The replacement of the shortest key that is a prefix of `key` (a NUL byte ends the key).
    public func lookup<C: Collection>(_ key: C) -> [Unicode.Scalar]? where C.Element == UInt8 {
        var node = Self.offset(units[0])
        for c in key {
            if c == 0 { return nil }
            let child = node ^ Int(c)
            guard child < units.count else { return nil }
            let unit = units[child]
            guard Self.label(unit) == UInt32(c) else { return nil }
            node = child ^ Self.offset(unit)
            if Self.hasLeaf(unit) {
                guard node < units.count else { return nil }
                return replacements[Self.value(units[node])]
            }
        }
        return nil
    }

    public static func == (a: PrecompiledCharsmap, b: PrecompiledCharsmap) -> Bool { a.bytes == b.bytes }
}

/// `{"type": "Precompiled", "precompiled_charsmap": "<base64>"}`: SentencePiece's normalization,
/// applied as `tokenizers` applies it. For each grapheme cluster shorter than 6 UTF-8 bytes, the
/// rule of the shortest key that prefixes the cluster replaces the whole cluster; otherwise (no
/// rule, or a longer cluster) each scalar is replaced by its own rule or kept.
public struct PrecompiledNormalizer: OriginTrackingNormalizer {
    public let charsmap: PrecompiledCharsmap

    public init(charsmap: PrecompiledCharsmap) { self.charsmap = charsmap }

    public init(bytes: [UInt8]) throws(PrecompiledCharsmap.Invalid) {
        charsmap = try PrecompiledCharsmap(bytes: bytes)
    }

    public func normalize(_ text: inout NormalizedText) {
        guard !text.isEmpty else { return }
        var changes: [(Unicode.Scalar, Int)] = []
        changes.reserveCapacity(text.count)
        var modified = false
        var index = 0
        for cluster in text.string {
            let scalars = cluster.unicodeScalars
            let n = scalars.count
            defer { index += n }
            if cluster.utf8.count < 6, let replacement = charsmap.lookup(cluster.utf8) {
                modified = true
                Self.replace(&changes, count: n, with: replacement)
                continue
            }
            for s in scalars {
                if let replacement = charsmap.lookup(UTF8.encode(s)!) {
                    modified = true
                    Self.replace(&changes, count: 1, with: replacement)
                } else {
                    changes.append((s, 0))
                }
            }
        }
        if modified { text.transform(changes) }
    }

    /// Appends the changes that replace `count` scalars by `replacement`, as `tokenizers` does:
    /// extra scalars are marked inserted; fewer scalars make the last change so far (possibly
    /// one of an earlier replacement) remove the difference, and at the very start the removal
    /// is lost.
    static func replace(_ changes: inout [(Unicode.Scalar, Int)], count: Int, with replacement: [Unicode.Scalar]) {
        let diff = replacement.count - count
        for s in replacement { changes.append((s, 0)) }
        if diff > 0 {
            for i in (changes.count - diff)..<changes.count { changes[i].1 = 1 }
        } else if diff < 0, !changes.isEmpty {
            changes[changes.count - 1].1 += diff
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Precompiled"),
                 "precompiled_charsmap": .string(Data(charsmap.bytes).base64EncodedString())])
    }
}
