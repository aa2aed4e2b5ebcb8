import Foundation

/// Unicode normalization (NFD, NFKD, NFC, NFKC) as `tokenizers` computes it: the
/// `unicode-normalization-alignments` crate, whose tables stop at Unicode 11.0, decomposes each
/// scalar, puts combining marks in canonical order and recomposes, and reports for every output
/// scalar how it relates to the input (0: replaces the next input scalar, +1: inserted, -n: also
/// consumes the n input scalars after it), which is what `NormalizedText.transform` takes.
///
/// Decompositions, combining classes and compositions come from the Unicode data of the Swift
/// runtime; scalars assigned after Unicode 11.0 are treated as the crate treats them: as
/// unassigned (no decomposition, combining class 0, never composed).
public enum UnicodeForms {
    public enum Form: String, Sendable, CaseIterable {
        case nfc = "NFC", nfd = "NFD", nfkc = "NFKC", nfkd = "NFKD"

        var compatible: Bool { self == .nfkc || self == .nfkd }
        var composes: Bool { self == .nfc || self == .nfkc }
    }

    /// The Unicode version of the tables `tokenizers` uses.
    static let tableVersion = (major: 11, minor: 0)

    /// Whether `tokenizers`' tables know `s`.
    static func isKnown(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < tableVersion.major || (age.major == tableVersion.major && age.minor <= tableVersion.minor)
    }

    /// The normalized scalars of `input`, each with its change (see the type's documentation).
    public static func normalize(_ input: [Unicode.Scalar], form: Form) -> [(Unicode.Scalar, Int)] {
        var cache = Cache()
        var decomposed = decompose(input, compatible: form.compatible, cache: &cache)
        guard form.composes else { return decomposed }
        decomposed = compose(decomposed, cache: &cache)
        return decomposed
    }

    /// The normalized string.
    public static func normalize(_ text: String, form: Form) -> String {
        // ASCII is left alone by every form.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        var view = String.UnicodeScalarView()
        for (s, _) in normalize(Array(text.unicodeScalars), form: form) { view.append(s) }
        return String(view)
    }

    /// Per-call memo of the Foundation look-ups.
    struct Cache {
        var decompositions: [UInt32: [Unicode.Scalar]] = [:]
        var compositions: [UInt64: Unicode.Scalar?] = [:]
    }

    static func combiningClass(_ s: Unicode.Scalar) -> UInt8 {
        if s.value < 0x300 { return 0 }
        guard isKnown(s) else { return 0 }
        return s.properties.canonicalCombiningClass.rawValue
    }

    /// The full (canonical or compatibility) decomposition of one scalar.
    static func decomposition(_ s: Unicode.Scalar, compatible: Bool, cache: inout Cache) -> [Unicode.Scalar] {
        if s.value < 0xA0 || !isKnown(s) { return [s] }
        if let d = cache.decompositions[s.value] { return d }
        let text = String(Character(s))
        let mapped = compatible ? text.decomposedStringWithCompatibilityMapping : text.decomposedStringWithCanonicalMapping
        var d = Array(mapped.unicodeScalars)
        if d.isEmpty || d.contains(where: { !isKnown($0) }) { d = [s] }
        cache.decompositions[s.value] = d
        return d
    }

    /// Decomposes every scalar (the first scalar of a decomposition replaces the input scalar,
    /// the others are inserted) and sorts each run of combining marks by combining class,
    /// stably, the changes moving with their scalars.
    static func decompose(_ input: [Unicode.Scalar], compatible: Bool, cache: inout Cache) -> [(Unicode.Scalar, Int)] {
        var out: [(Unicode.Scalar, Int)] = []
        out.reserveCapacity(input.count)
        var classes: [UInt8] = []
        classes.reserveCapacity(input.count)
        var runStart = -1  // start of the current run of non-starters in `out`
        func sortRun(_ end: Int) {
            guard runStart >= 0, end - runStart > 1 else { return }
            let order = (runStart..<end).sorted { classes[$0] != classes[$1] ? classes[$0] < classes[$1] : $0 < $1 }
            let items = order.map { out[$0] }
            let cls = order.map { classes[$0] }
            for (k, i) in (runStart..<end).enumerated() {
                out[i] = items[k]
                classes[i] = cls[k]
            }
        }
        for s in input {
            let parts = decomposition(s, compatible: compatible, cache: &cache)
            for (k, d) in parts.enumerated() {
                let c = combiningClass(d)
                if c == 0 {
                    sortRun(out.count)
                    runStart = -1
                } else if runStart < 0 {
                    runStart = out.count
                }
                out.append((d, k == 0 ? 0 : 1))
                classes.append(c)
            }
        }
        sortRun(out.count)
        return out
    }

    /// The primary composite of `a` followed by `b`, if any.
    static func composite(_ a: Unicode.Scalar, _ b: Unicode.Scalar, cache: inout Cache) -> Unicode.Scalar? {
        // Only marks and Hangul vowel and trailing jamo are ever the second of a pair.
        guard b.value >= 0x300, isKnown(a), isKnown(b) else { return nil }
        let isJamo = (0x1161...0x1175).contains(b.value) || (0x11A8...0x11C2).contains(b.value)
        if !isJamo {
            switch b.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark: break
            default: return nil
            }
        }
        let key = UInt64(a.value) << 32 | UInt64(b.value)
        if let known = cache.compositions[key] { return known }
        var result: Unicode.Scalar? = nil
        // NFC of a's decomposition followed by b (Foundation leaves some already composed
        // first scalars alone, such as a Hangul LV syllable before a trailing jamo).
        var pair = String.UnicodeScalarView()
        pair.append(contentsOf: String(Character(a)).decomposedStringWithCanonicalMapping.unicodeScalars)
        pair.append(b)
        let composed = Array(String(pair).precomposedStringWithCanonicalMapping.unicodeScalars)
        if composed.count == 1, let c = composed.first, isKnown(c) {
            // A genuine pair composition decomposes back to a's and b's decompositions, in order
            // (NFC could also have reordered marks before composing).
            let back = Array(String(Character(c)).decomposedStringWithCanonicalMapping.unicodeScalars)
            let parts = Array(String(Character(a)).decomposedStringWithCanonicalMapping.unicodeScalars)
                + Array(String(Character(b)).decomposedStringWithCanonicalMapping.unicodeScalars)
            if back == parts { result = c }
        }
        cache.compositions[key] = result
        return result
    }

    /// Canonical composition of a decomposed, ordered sequence. A composed scalar's change is the
    /// sum of its parts' changes minus one per composition; marks that did not compose follow
    /// their starter in order.
    static func compose(_ input: [(Unicode.Scalar, Int)], cache: inout Cache) -> [(Unicode.Scalar, Int)] {
        var out: [(Unicode.Scalar, Int)] = []
        out.reserveCapacity(input.count)
        var starter: (Unicode.Scalar, Int)? = nil
        var pending: [(Unicode.Scalar, Int)] = []
        var lastClass: UInt8? = nil  // class of the last pending mark; nil when none is pending
        for (ch, change) in input {
            let cls = combiningClass(ch)
            guard let k = starter else {
                if cls != 0 { out.append((ch, change)) } else { starter = (ch, change) }
                continue
            }
            if let last = lastClass, last >= cls {
                // Blocked from the starter.
                if cls == 0 {
                    out.append(k)
                    out.append(contentsOf: pending)
                    pending.removeAll(keepingCapacity: true)
                    lastClass = nil
                    starter = (ch, change)
                } else {
                    pending.append((ch, change))
                    lastClass = cls
                }
                continue
            }
            if let c = composite(k.0, ch, cache: &cache) {
                starter = (c, k.1 + change - 1)
                continue
            }
            if cls == 0 && lastClass == nil {
                out.append(k)
                starter = (ch, change)
                continue
            }
            pending.append((ch, change))
            lastClass = cls
        }
        if let k = starter { out.append(k) }
        out.append(contentsOf: pending)
        return out
    }
}
