import Foundation
import PrecisCore
import PrecisText

/// What the noise needs to know of each vocabulary id: where words and sentences begin. Read once
/// from the tokenizer (each id's text as the decoder writes it and its vocabulary string, where
/// byte-level BPE marks a leading space with `Ġ` and SentencePiece with `▁`).
public struct TokenClasses: Sendable, Equatable {
    /// The id's text begins with whitespace: it starts a word.
    public var spaceBefore: [Bool]
    /// The id's text ends with whitespace (a line break included): the next id starts a word.
    public var spaceAfter: [Bool]
    /// The id's text, without surrounding whitespace, ends with `.`, `!` or `?`, or it holds a line
    /// break: a sentence may end after it.
    public var endsSentence: [Bool]
    /// The id's text is whitespace only (`\r`, `\n`, a lone space): it stays with the sentence before it.
    public var blank: [Bool]
    /// Special tokens (`<s>`, `</s>`, `<mask>`…): never masked, never moved.
    public var special: [Bool]

    public init(spaceBefore: [Bool], spaceAfter: [Bool], endsSentence: [Bool], blank: [Bool], special: [Bool]) {
        self.spaceBefore = spaceBefore; self.spaceAfter = spaceAfter; self.endsSentence = endsSentence
        self.blank = blank; self.special = special
    }

    public var count: Int { special.count }

    public init(tokenizer: Tokenizer) {
        let n = tokenizer.vocabSize
        let specials = Set(tokenizer.addedVocabulary.tokensByID.filter { $0.value.special }.keys)
        var before = [Bool](repeating: false, count: n), after = before, ends = before, blank = before, special = before
        for id in 0..<n {
            if specials.contains(id) { special[id] = true; continue }
            let raw = tokenizer.idToToken(id) ?? ""
            let text = tokenizer.decode([id], skipSpecialTokens: false)
            let marker = raw.hasPrefix("\u{0120}") || raw.hasPrefix("\u{2581}")   // Ġ, ▁
            before[id] = marker || (text.first?.isWhitespace ?? false)
            after[id] = text.last?.isWhitespace ?? false
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            blank[id] = (!text.isEmpty || raw == "\u{2581}") && trimmed.trimmingCharacters(in: .newlines).isEmpty
            ends[id] = text.contains("\n") || trimmed.hasSuffix(".") || trimmed.hasSuffix("!") || trimmed.hasSuffix("?")
        }
        self.init(spaceBefore: before, spaceAfter: after, endsSentence: ends, blank: blank, special: special)
    }
}

/// BART's pre-training noise (Lewis et al. 2020, §2.2; fairseq's `DenoisingDataset` with
/// `replace_length 1`, `mask_length span-poisson`): the sentences of a text permuted, then spans of
/// whole words, their lengths drawn from Poisson(λ), each replaced by one mask token until
/// `maskRatio` of the words are gone (a span of length 0 inserts a mask). The model learns to write
/// the original text back. Leading and trailing special tokens (`<s>`, `</s>`) stay where they are.
public struct DenoisingNoise: Sendable, Equatable {
    public var maskId: Int32
    public var maskRatio: Double
    public var poissonLambda: Double
    public var permuteSentenceRatio: Double
    public var classes: TokenClasses

    public init(maskId: Int32, maskRatio: Double, poissonLambda: Double, permuteSentenceRatio: Double, classes: TokenClasses) {
        self.maskId = maskId; self.maskRatio = maskRatio; self.poissonLambda = poissonLambda
        self.permuteSentenceRatio = permuteSentenceRatio; self.classes = classes
    }

    /// The seed of one example's noise: a function of the run's seed, the step and the example, so
    /// every process makes the same noisy batch and each epoch sees new noise.
    public static func seed(runSeed: UInt64, step: Int, example: Int) -> UInt64 {
        var h = runSeed ^ 0xD1B5_4A32_D192_ED03
        for v in [UInt64(truncatingIfNeeded: step), UInt64(truncatingIfNeeded: example)] {
            h = (h ^ v) &* 0x100_0000_01B3
            h ^= h >> 29
        }
        return h
    }

    func classOK(_ t: Int32) -> Bool { t >= 0 && Int(t) < classes.count }
    func isSpecial(_ t: Int32) -> Bool { !classOK(t) || classes.special[Int(t)] }

    /// `ids` with the noise applied. The result is never longer than `max(ids.count, maxLength)`:
    /// an inserted mask that would pass it is left out.
    public func apply(_ ids: UnsafeBufferPointer<Int32>, seed: UInt64, maxLength: Int) -> [Int32] {
        var rng = SeededRNG(seed: seed)
        // The content between the leading and trailing special tokens.
        var lo = 0, hi = ids.count
        while lo < hi && isSpecial(ids[lo]) { lo += 1 }
        while hi > lo && isSpecial(ids[hi - 1]) { hi -= 1 }
        if lo == hi { return Array(ids) }
        let permuted = permuteSentences(Array(ids[lo..<hi]), rng: &rng)
        let masked = maskSpans(permuted, rng: &rng, room: max(ids.count, maxLength) - ids.count)
        return Array(ids[0..<lo]) + masked + Array(ids[hi..<ids.count])
    }

    /// Cuts `content` into sentences (after an id that ends one, its trailing blank ids kept with
    /// it) and moves `permuteSentenceRatio` of them (rounded up) into a random order among their places.
    func permuteSentences(_ content: [Int32], rng: inout SeededRNG) -> [Int32] {
        guard permuteSentenceRatio > 0 else { return content }
        var starts = [0]
        for j in 1..<max(1, content.count) {
            let prev = content[j - 1], cur = content[j]
            let prevEnds = classOK(prev) && classes.endsSentence[Int(prev)]
            let curBlank = classOK(cur) && classes.blank[Int(cur)]
            if prevEnds && !curBlank { starts.append(j) }
        }
        let n = starts.count
        guard n > 1 else { return content }
        let k = min(n, Int((Double(n) * permuteSentenceRatio).rounded(.up)))
        var chosen = Array(0..<n)
        shuffle(&chosen, rng: &rng)
        let places = Array(chosen.prefix(k))
        var moved = places
        shuffle(&moved, rng: &rng)
        var order = Array(0..<n)
        for (p, s) in zip(places, moved) { order[p] = s }
        var out: [Int32] = []
        out.reserveCapacity(content.count)
        for s in order {
            let end = s + 1 < n ? starts[s + 1] : content.count
            out.append(contentsOf: content[starts[s]..<end])
        }
        return out
    }

    /// Replaces spans of whole words by one mask each until `maskRatio` of the words (rounded up) are
    /// covered; spans start at distinct random words, their lengths drawn from Poisson(λ) (0: a mask
    /// inserted before the word, at most `room` of those).
    func maskSpans(_ content: [Int32], rng: inout SeededRNG, room: Int) -> [Int32] {
        guard maskRatio > 0, !content.isEmpty else { return content }
        // Word starts: the first id, a special id and the one after it, an id (not whitespace alone:
        // that stays with the word before it) with a space before it or after a space or line break.
        var wordStart: [Int] = []
        for j in 0..<content.count {
            let t = content[j]
            if j == 0 || isSpecial(t) || isSpecial(content[j - 1])
                || (!classes.blank[Int(t)] && (classes.spaceBefore[Int(t)] || classes.spaceAfter[Int(content[j - 1])])) {
                wordStart.append(j)
            }
        }
        let words = wordStart.count
        let toMask = min(words, Int((Double(words) * maskRatio).rounded(.up)))
        guard toMask > 0 else { return content }
        var lengths: [Int] = []
        var total = 0
        while total < toMask {
            let l = spanLength(rng: &rng)
            lengths.append(min(l, toMask - total))
            total += lengths[lengths.count - 1]
        }
        // Distinct starting words for the spans (no more spans than words).
        var pick = Array(0..<words)
        shuffle(&pick, rng: &rng)
        var masked = [Bool](repeating: false, count: words)
        var insertBefore = [Bool](repeating: false, count: words + 1)
        for (s, l) in zip(pick, lengths) {
            if l == 0 { insertBefore[s] = true; continue }
            for w in s..<min(words, s + l) { masked[w] = true }
        }
        var out: [Int32] = []
        out.reserveCapacity(content.count)
        var inserted = 0
        for w in 0..<words {
            let end = w + 1 < words ? wordStart[w + 1] : content.count
            if insertBefore[w] && inserted < room && !(w > 0 && masked[w - 1]) && !masked[w] {
                out.append(maskId); inserted += 1
            }
            if masked[w] {
                if w == 0 || !masked[w - 1] { out.append(maskId) }
                // A special id inside a span is kept (the span around it collapses on both sides).
                for j in wordStart[w]..<end where isSpecial(content[j]) { out.append(content[j]) }
            } else {
                out.append(contentsOf: content[wordStart[w]..<end])
            }
        }
        return out
    }

    /// A span length from Poisson(λ): Knuth's product method, λ being small (BART: 3).
    public func spanLength(rng: inout SeededRNG) -> Int {
        let limit = exp(-poissonLambda)
        var k = 0
        var p = rng.uniform()
        while p > limit && k < 1000 { k += 1; p *= rng.uniform() }
        return k
    }

    func shuffle(_ a: inout [Int], rng: inout SeededRNG) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
    }
}
