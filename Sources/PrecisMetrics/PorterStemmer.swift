/// The Porter suffix-stripping stemmer, reproducing NLTK's `PorterStemmer`
/// in its default `NLTK_EXTENSIONS` mode (the stemmer rouge-score uses when
/// `use_stemmer=True`).
///
/// Besides the five steps of Porter (1980), the NLTK mode differs from the
/// published algorithm in these ways, all reproduced here:
///
/// * a small dictionary of irregular forms is consulted first
///   (`skies`→`sky`, `dying`→`die`, `news`→`news`, `innings`→`inning`,
///   `proceed`→`proceed`, …);
/// * words of one or two characters are returned unchanged;
/// * step 1a maps a four-letter word ending in `ies` to `…ie` (`ties`→`tie`);
/// * step 1b maps `ied` to `ie` for four-letter words and to `i` otherwise,
///   without further step-1b processing;
/// * the `*o` (cvc) condition is also true for a two-letter vowel+consonant
///   stem (any consonant, `w`/`x`/`y` included);
/// * step 1c turns a final `y` into `i` only when it follows a consonant that
///   is not the first letter of the word (`happy`→`happi`, `enjoy` stays,
///   `cry`→`cri`, `by`… too short anyway);
/// * step 2 tries `alli`→`al` first and, when it applies, runs step 2 again
///   on the result; uses `bli`→`ble` instead of `abli`→`able`; and adds
///   `fulli`→`ful` and `logi`→`log` (the latter with the measure taken on
///   the stem *including* the `l`);
/// * a rule list stops at the first rule whose suffix matches: when that
///   rule's condition fails, the word is left unchanged by that step.
///
/// Letters are compared as Unicode scalars; only ASCII `a e i o u y` have
/// special roles, every other scalar (digits included) counts as a consonant,
/// exactly as in NLTK.
public struct PorterStemmer: Sendable {
    public init() {}

    /// Stems `word`. When `lowercase` is true (NLTK's default) the word is
    /// first lowercased with Swift's full Unicode lowercase mapping, which
    /// agrees with Python's `str.lower()` for ASCII input (the only input
    /// ROUGE ever passes).
    public func stem(_ word: String, lowercase: Bool = true) -> String {
        let originalLength = word.unicodeScalars.count
        let source = lowercase ? word.lowercased() : word
        var scalars = source.unicodeScalars.map { $0.value }
        stemScalars(&scalars, originalLength: originalLength)
        var out = String.UnicodeScalarView()
        out.reserveCapacity(scalars.count)
        for v in scalars {
            // Every value came from a valid scalar or from an ASCII literal.
            out.append(Unicode.Scalar(v)!)
        }
        return String(out)
    }

    /// Stems an already-lowercased ASCII token in place (the tokenizer's fast path).
    func stemASCII(_ token: inout [UInt8]) {
        var scalars = token.map { UInt32($0) }
        stemScalars(&scalars, originalLength: token.count)
        token.removeAll(keepingCapacity: true)
        for v in scalars { token.append(UInt8(truncatingIfNeeded: v)) }
    }

    // MARK: - Driver

    func stemScalars(_ w: inout [UInt32], originalLength: Int) {
        if let irregular = Self.irregularForms[w] {
            w = irregular
            return
        }
        // NLTK checks the length of the word as given, before lowercasing.
        if originalLength <= 2 { return }
        var word = Word(w)
        word.step1a()
        word.step1b()
        word.step1c()
        word.step2()
        word.step3()
        word.step4()
        word.step5a()
        word.step5b()
        w = word.s
    }

    static let irregularForms: [[UInt32]: [UInt32]] = {
        let groups: [(String, [String])] = [
            ("sky", ["sky", "skies"]),
            ("die", ["dying"]),
            ("lie", ["lying"]),
            ("tie", ["tying"]),
            ("news", ["news"]),
            ("inning", ["innings", "inning"]),
            ("outing", ["outings", "outing"]),
            ("canning", ["cannings", "canning"]),
            ("howe", ["howe"]),
            ("proceed", ["proceed"]),
            ("exceed", ["exceed"]),
            ("succeed", ["succeed"]),
        ]
        var table: [[UInt32]: [UInt32]] = [:]
        for (base, forms) in groups {
            for form in forms { table[scalarsOf(form)] = scalarsOf(base) }
        }
        return table
    }()
}

@inline(__always)
private func scalarsOf(_ s: String) -> [UInt32] { s.unicodeScalars.map { $0.value } }

private let letterA: UInt32 = 0x61, letterE: UInt32 = 0x65, letterI: UInt32 = 0x69
private let letterO: UInt32 = 0x6F, letterU: UInt32 = 0x75, letterY: UInt32 = 0x79
private let letterL: UInt32 = 0x6C, letterS: UInt32 = 0x73, letterT: UInt32 = 0x74
private let letterZ: UInt32 = 0x7A, letterW: UInt32 = 0x77, letterX: UInt32 = 0x78

@inline(__always)
private func isVowelLetter(_ c: UInt32) -> Bool {
    c == letterA || c == letterE || c == letterI || c == letterO || c == letterU
}

/// When a rule's suffix matches, the condition decides whether the
/// replacement happens; it is evaluated on the word with the suffix removed.
private enum Condition {
    case always
    case measureAbove0
    case measureAbove1
    /// step 4 `ion`: m > 1 and the stem ends in `s` or `t`.
    case measureAbove1EndingSOrT
    /// step 2 `logi`: m > 0 measured on the word minus its last three letters.
    case logiStem
}

private struct Rule {
    let suffix: [UInt32]
    let replacement: [UInt32]
    let condition: Condition

    init(_ suffix: String, _ replacement: String, _ condition: Condition) {
        self.suffix = scalarsOf(suffix)
        self.replacement = scalarsOf(replacement)
        self.condition = condition
    }
}

private let step1aRules = [
    Rule("sses", "ss", .always),
    Rule("ies", "i", .always),
    Rule("ss", "ss", .always),
    Rule("s", "", .always),
]

private let step2Rules = [
    Rule("ational", "ate", .measureAbove0),
    Rule("tional", "tion", .measureAbove0),
    Rule("enci", "ence", .measureAbove0),
    Rule("anci", "ance", .measureAbove0),
    Rule("izer", "ize", .measureAbove0),
    Rule("bli", "ble", .measureAbove0),
    Rule("alli", "al", .measureAbove0),
    Rule("entli", "ent", .measureAbove0),
    Rule("eli", "e", .measureAbove0),
    Rule("ousli", "ous", .measureAbove0),
    Rule("ization", "ize", .measureAbove0),
    Rule("ation", "ate", .measureAbove0),
    Rule("ator", "ate", .measureAbove0),
    Rule("alism", "al", .measureAbove0),
    Rule("iveness", "ive", .measureAbove0),
    Rule("fulness", "ful", .measureAbove0),
    Rule("ousness", "ous", .measureAbove0),
    Rule("aliti", "al", .measureAbove0),
    Rule("iviti", "ive", .measureAbove0),
    Rule("biliti", "ble", .measureAbove0),
    Rule("fulli", "ful", .measureAbove0),
    Rule("logi", "log", .logiStem),
]

private let step3Rules = [
    Rule("icate", "ic", .measureAbove0),
    Rule("ative", "", .measureAbove0),
    Rule("alize", "al", .measureAbove0),
    Rule("iciti", "ic", .measureAbove0),
    Rule("ical", "ic", .measureAbove0),
    Rule("ful", "", .measureAbove0),
    Rule("ness", "", .measureAbove0),
]

private let step4Rules = [
    Rule("al", "", .measureAbove1),
    Rule("ance", "", .measureAbove1),
    Rule("ence", "", .measureAbove1),
    Rule("er", "", .measureAbove1),
    Rule("ic", "", .measureAbove1),
    Rule("able", "", .measureAbove1),
    Rule("ible", "", .measureAbove1),
    Rule("ant", "", .measureAbove1),
    Rule("ement", "", .measureAbove1),
    Rule("ment", "", .measureAbove1),
    Rule("ent", "", .measureAbove1),
    Rule("ion", "", .measureAbove1EndingSOrT),
    Rule("ou", "", .measureAbove1),
    Rule("ism", "", .measureAbove1),
    Rule("ate", "", .measureAbove1),
    Rule("iti", "", .measureAbove1),
    Rule("ous", "", .measureAbove1),
    Rule("ive", "", .measureAbove1),
    Rule("ize", "", .measureAbove1),
]

private let suffixIES = scalarsOf("ies")
private let suffixIED = scalarsOf("ied")
private let suffixEED = scalarsOf("eed")
private let suffixED = scalarsOf("ed")
private let suffixING = scalarsOf("ing")
private let suffixAT = scalarsOf("at")
private let suffixBL = scalarsOf("bl")
private let suffixIZ = scalarsOf("iz")
private let suffixALLI = scalarsOf("alli")
private let suffixLL = scalarsOf("ll")

/// A word being stemmed; all predicates look at the prefix `s[0..<length]`.
/// Whether a letter is a consonant depends only on the letters before it, so
/// a prefix can be classified without copying it.
private struct Word {
    var s: [UInt32]

    init(_ s: [UInt32]) { self.s = s }

    var count: Int { s.count }

    func endsWith(_ suffix: [UInt32]) -> Bool {
        let n = suffix.count
        if n > s.count { return false }
        let base = s.count - n
        for k in 0..<n where s[base + k] != suffix[k] { return false }
        return true
    }

    /// Consonant test: not a vowel, and a `y` is a consonant exactly when it
    /// starts the word or follows a vowel.
    func isConsonant(_ i: Int) -> Bool {
        let c = s[i]
        if isVowelLetter(c) { return false }
        if c != letterY { return true }
        var j = i
        var flip = false
        while j > 0 && s[j] == letterY {
            flip.toggle()
            j -= 1
        }
        return (!isVowelLetter(s[j])) != flip
    }

    /// Number of vowel→consonant transitions in the first `length` letters,
    /// i.e. m in [C](VC)^m[V].
    func measure(_ length: Int) -> Int {
        var m = 0
        var previousConsonant = false
        for i in 0..<length {
            let c = s[i]
            let consonant: Bool
            if isVowelLetter(c) {
                consonant = false
            } else if c == letterY {
                consonant = i == 0 ? true : !previousConsonant
            } else {
                consonant = true
            }
            if consonant && i > 0 && !previousConsonant { m += 1 }
            previousConsonant = consonant
        }
        return m
    }

    func containsVowel(_ length: Int) -> Bool {
        var previousConsonant = false
        for i in 0..<length {
            let c = s[i]
            let consonant: Bool
            if isVowelLetter(c) {
                consonant = false
            } else if c == letterY {
                consonant = i == 0 ? true : !previousConsonant
            } else {
                consonant = true
            }
            if !consonant { return true }
            previousConsonant = consonant
        }
        return false
    }

    /// Condition *d on the first `length` letters.
    func endsDoubleConsonant(_ length: Int) -> Bool {
        length >= 2 && s[length - 1] == s[length - 2] && isConsonant(length - 1)
    }

    /// Condition *o on the first `length` letters, with NLTK's two-letter extension.
    func endsCVC(_ length: Int) -> Bool {
        if length >= 3 {
            let last = s[length - 1]
            if isConsonant(length - 3) && !isConsonant(length - 2) && isConsonant(length - 1)
                && last != letterW && last != letterX && last != letterY
            {
                return true
            }
        }
        return length == 2 && !isConsonant(0) && isConsonant(1)
    }

    mutating func replaceSuffix(dropping n: Int, with replacement: [UInt32]) {
        s.removeLast(n)
        s.append(contentsOf: replacement)
    }

    func holds(_ condition: Condition, stemLength: Int) -> Bool {
        switch condition {
        case .always: return true
        case .measureAbove0: return measure(stemLength) > 0
        case .measureAbove1: return measure(stemLength) > 1
        case .measureAbove1EndingSOrT:
            guard measure(stemLength) > 1 else { return false }
            let last = s[stemLength - 1]
            return last == letterS || last == letterT
        case .logiStem: return measure(s.count - 3) > 0
        }
    }

    /// The first rule whose suffix matches decides: replace when its
    /// condition holds, otherwise leave the word alone.
    mutating func applyFirstMatching(_ rules: [Rule]) {
        for rule in rules where endsWith(rule.suffix) {
            if holds(rule.condition, stemLength: s.count - rule.suffix.count) {
                replaceSuffix(dropping: rule.suffix.count, with: rule.replacement)
            }
            return
        }
    }

    mutating func step1a() {
        if s.count == 4 && endsWith(suffixIES) {
            s.removeLast()  // "ies" -> "ie"
            return
        }
        applyFirstMatching(step1aRules)
    }

    mutating func step1b() {
        if endsWith(suffixIED) {
            s.removeLast()  // "ied" -> "ie"
            if s.count != 3 { s.removeLast() }  // otherwise -> "i"
            return
        }
        if endsWith(suffixEED) {
            if measure(s.count - 3) > 0 { s.removeLast() }  // "eed" -> "ee"
            return
        }
        var stripped = false
        for suffix in [suffixED, suffixING] where endsWith(suffix) {
            if containsVowel(s.count - suffix.count) {
                s.removeLast(suffix.count)
                stripped = true
                break
            }
        }
        guard stripped else { return }

        if endsWith(suffixAT) || endsWith(suffixBL) || endsWith(suffixIZ) {
            s.append(letterE)
            return
        }
        if endsDoubleConsonant(s.count) {
            let last = s[s.count - 1]
            if last != letterL && last != letterS && last != letterZ { s.removeLast() }
            return
        }
        if measure(s.count) == 1 && endsCVC(s.count) { s.append(letterE) }
    }

    mutating func step1c() {
        guard let last = s.last, last == letterY else { return }
        let stemLength = s.count - 1
        if stemLength > 1 && isConsonant(stemLength - 1) { s[stemLength] = letterI }
    }

    mutating func step2() {
        if endsWith(suffixALLI) && measure(s.count - 4) > 0 {
            replaceSuffix(dropping: 4, with: [letterA, letterL])
            step2()
            return
        }
        applyFirstMatching(step2Rules)
    }

    mutating func step3() { applyFirstMatching(step3Rules) }

    mutating func step4() { applyFirstMatching(step4Rules) }

    mutating func step5a() {
        guard let last = s.last, last == letterE else { return }
        let stemLength = s.count - 1
        let m = measure(stemLength)
        if m > 1 || (m == 1 && !endsCVC(stemLength)) { s.removeLast() }
    }

    mutating func step5b() {
        if endsWith(suffixLL) && measure(s.count - 1) > 1 { s.removeLast() }
    }
}
