import Foundation

/// Word counts of a corpus, as a pre-tokenizer splits it: what `tokenizers` feeds its trainers.
public struct WordCounts: Sendable {
    /// Whether the words are byte-level (see `PreTokenizer.producesByteLevelWords`).
    public let byteLevel: Bool
    var table = ByteStringCounter()

    public init(byteLevel: Bool) { self.byteLevel = byteLevel }

    /// The number of distinct words.
    public var count: Int { table.count }

    /// Adds the words of one training sequence (normalized, then pre-tokenized; added tokens
    /// are not looked for, as in `tokenizers`' `Tokenizer.train`).
    public mutating func add(_ text: String, normalizer: (any Normalizer)? = nil, preTokenizer: (any PreTokenizer)?) {
        var text = normalizer?.normalize(text) ?? text
        text.withUTF8 { buffer in
            if let preTokenizer {
                precondition(preTokenizer.producesByteLevelWords == byteLevel, "pre-tokenizer does not match the word counts")
                preTokenizer.forEachWord(in: buffer) { table.add($0, count: 1) }
            } else {
                if !buffer.isEmpty { table.add(buffer, count: 1) }
            }
        }
    }

    /// Adds `count` occurrences of one word (its UTF-8 bytes).
    public mutating func add(word: String, count: Int = 1) {
        var word = word
        word.withUTF8 { table.add($0, count: count) }
    }

    /// Merges the counts of another corpus part.
    public mutating func merge(_ other: WordCounts) {
        precondition(other.byteLevel == byteLevel)
        other.table.forEach { word, count in table.add(word, count: count) }
    }

    /// Every word (as the model sees it: byte-level strings for byte-level words) and its count.
    public var words: [(word: String, count: Int)] {
        var out: [(word: String, count: Int)] = []
        table.forEach { w, c in
            out.append((byteLevel ? ByteLevelAlphabet.encode(w) : String(decoding: w, as: UTF8.self), c))
        }
        return out
    }
}

/// Open-addressing counter keyed by byte strings stored in one arena.
struct ByteStringCounter: Sendable {
    private var slots = [Int32](repeating: -1, count: 1024)
    private var hashes: [UInt64] = []
    private var starts: [Int] = []
    private var lengths: [Int32] = []
    private var counts: [Int] = []
    private var bytes: [UInt8] = []

    var count: Int { hashes.count }

    mutating func add(_ word: UnsafeBufferPointer<UInt8>, count: Int) {
        let h = BPEWordCache.hash(word, byteLevel: false)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 {
            let e = Int(slots[i])
            if hashes[e] == h && Int(lengths[e]) == word.count {
                let same = bytes.withUnsafeBufferPointer { b in
                    word.isEmpty || memcmp(b.baseAddress! + starts[e], word.baseAddress!, word.count) == 0
                }
                if same { counts[e] += count; return }
            }
            i = (i + 1) & mask
        }
        slots[i] = Int32(hashes.count)
        hashes.append(h)
        starts.append(bytes.count)
        lengths.append(Int32(word.count))
        counts.append(count)
        bytes.append(contentsOf: word)
        if hashes.count * 2 > slots.count { grow() }
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        let mask = size - 1
        for (e, h) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(e)
        }
    }

    func forEach(_ body: (UnsafeBufferPointer<UInt8>, Int) -> Void) {
        bytes.withUnsafeBufferPointer { b in
            for e in 0..<hashes.count {
                body(UnsafeBufferPointer(rebasing: b[starts[e]..<(starts[e] + Int(lengths[e]))]), counts[e])
            }
        }
    }
}

/// Trains a BPE model the way `tokenizers`' `BpeTrainer` does:
///
/// 1. the special tokens get the first ids, then the alphabet (every character of the words,
///    plus `initialAlphabet`, optionally limited to the `limitAlphabet` most frequent) sorted by
///    code point;
/// 2. pair counts are collected from every word (weighted by the word's count);
/// 3. the most frequent pair is merged — ties broken by the smaller pair of ids (left id first),
///    which favours pairs of older tokens — until the vocabulary reaches `vocabSize` or no pair
///    occurs `minFrequency` times. Like the Rust trainer, the queue holds one entry per pair
///    and per batch of words where the pair appeared, counts are refreshed lazily, and a pair
///    merged twice keeps only its last rank in the merges list.
public struct BPETrainer: Sendable {
    public var vocabSize: Int
    public var minFrequency: Int
    public var specialTokens: [AddedToken]
    public var limitAlphabet: Int?
    public var initialAlphabet: [Unicode.Scalar]
    public var maxTokenLength: Int?

    public init(vocabSize: Int = 30000, minFrequency: Int = 0, specialTokens: [AddedToken] = [],
                limitAlphabet: Int? = nil, initialAlphabet: [Unicode.Scalar] = [], maxTokenLength: Int? = nil) {
        self.vocabSize = vocabSize
        self.minFrequency = minFrequency
        self.specialTokens = specialTokens
        self.limitAlphabet = limitAlphabet
        self.initialAlphabet = initialAlphabet
        self.maxTokenLength = maxTokenLength
    }

    /// The trained vocabulary (tokens in id order) and merges (in rank order).
    public func train(_ words: WordCounts) -> (vocab: [String], merges: [(String, String)]) {
        var wordToID: [String: UInt32] = [:]
        var idToWord: [String] = []
        var charCount: [Int] = []
        func addToken(_ s: String, chars: Int) {
            if wordToID[s] == nil {
                wordToID[s] = UInt32(idToWord.count)
                idToWord.append(s)
                charCount.append(chars)
            }
        }

        // 1. Special tokens.
        for t in specialTokens { addToken(t.content, chars: t.content.unicodeScalars.count) }

        // 2. Alphabet.
        var wordList: [[Unicode.Scalar]] = []
        var counts: [Int] = []
        words.table.forEach { w, c in
            if words.byteLevel {
                wordList.append(w.map { ByteLevelAlphabet.characters[Int($0)] })
            } else {
                wordList.append(Array(String(decoding: w, as: UTF8.self).unicodeScalars))
            }
            counts.append(c)
        }
        var alphabet: [Unicode.Scalar: Int] = [:]
        for (w, c) in zip(wordList, counts) {
            for s in w { alphabet[s, default: 0] &+= c }
        }
        for s in initialAlphabet { alphabet[s] = Int.max }
        var kept = Array(alphabet)
        if let limit = limitAlphabet, kept.count > limit {
            kept.sort { ($0.value, $0.key.value) < ($1.value, $1.key.value) }
            kept.removeFirst(kept.count - limit)
        }
        kept.sort { $0.key.value < $1.key.value }
        for (s, _) in kept { addToken(String(s), chars: 1) }

        // 3. Words as symbol ids (characters outside the alphabet are dropped).
        var symbols: [[UInt32]] = wordList.map { w in w.compactMap { wordToID[String($0)] } }

        // 4. Pair counts and where each pair occurs.
        var pairCounts: [UInt64: Int] = [:]
        var whereToUpdate: [UInt64: [Int32]] = [:]
        for (i, w) in symbols.enumerated() where w.count > 1 {
            for k in 0..<(w.count - 1) {
                let pair = UInt64(w[k]) << 32 | UInt64(w[k + 1])
                pairCounts[pair, default: 0] += counts[i]
                whereToUpdate[pair, default: []].appendUnique(Int32(i))
            }
        }
        var queue = MergeQueue()
        for (pair, pos) in whereToUpdate {
            let count = pairCounts[pair]!
            if count > 0 { queue.push(count: count, pair: pair, pos: pos) }
        }
        whereToUpdate.removeAll()

        // 5. Merges.
        let maxLength = maxTokenLength ?? Int.max
        var merges: [(pair: UInt64, newID: UInt32)] = []
        var changes: [(pair: UInt64, delta: Int, word: Int32)] = []
        while idToWord.count < vocabSize {
            guard var top = queue.pop() else { break }
            let current = pairCounts[top.pair] ?? 0
            if top.count != current {
                top.count = current
                queue.push(top)
                continue
            }
            if top.count < 1 || minFrequency > top.count { break }
            let a = UInt32(top.pair >> 32), b = UInt32(truncatingIfNeeded: top.pair)
            let newToken = idToWord[Int(a)] + idToWord[Int(b)]
            addToken(newToken, chars: charCount[Int(a)] + charCount[Int(b)])
            let newID = wordToID[newToken]!
            merges.append((top.pair, newID))

            changes.removeAll(keepingCapacity: true)
            for w in top.pos {
                Self.merge(&symbols[Int(w)], a, b, newID, word: w, charCount: charCount, maxLength: maxLength, into: &changes)
            }
            for change in changes {
                pairCounts[change.pair, default: 0] += change.delta * counts[Int(change.word)]
                if change.delta > 0 { whereToUpdate[change.pair, default: []].appendUnique(change.word) }
            }
            for (pair, pos) in whereToUpdate {
                let count = pairCounts[pair]!
                if count > 0 { queue.push(count: count, pair: pair, pos: pos) }
            }
            whereToUpdate.removeAll(keepingCapacity: true)
        }

        // A pair merged more than once keeps its last rank (the Rust trainer collects the merges
        // into a map keyed by pair).
        var lastRank: [UInt64: Int] = [:]
        for (rank, m) in merges.enumerated() { lastRank[m.pair] = rank }
        var mergeStrings: [(String, String)] = []
        for (rank, m) in merges.enumerated() where lastRank[m.pair] == rank {
            mergeStrings.append((idToWord[Int(m.pair >> 32)], idToWord[Int(UInt32(truncatingIfNeeded: m.pair))]))
        }
        return (idToWord, mergeStrings)
    }

    /// `tokenizers`' `Word::merge`: merges every (a, b) of a word left to right and records the
    /// pair count changes around each merge (the merged pair itself is not decremented).
    static func merge(_ w: inout [UInt32], _ a: UInt32, _ b: UInt32, _ replacement: UInt32, word: Int32,
                      charCount: [Int], maxLength: Int, into changes: inout [(pair: UInt64, delta: Int, word: Int32)]) {
        var i = 0
        let newLength = charCount[Int(a)] + charCount[Int(b)]
        while i < w.count {
            if w[i] == a && i + 1 < w.count && w[i + 1] == b {
                if i > 0 {
                    changes.append((UInt64(w[i - 1]) << 32 | UInt64(a), -1, word))
                    if charCount[Int(w[i - 1])] + newLength < maxLength {
                        changes.append((UInt64(w[i - 1]) << 32 | UInt64(replacement), 1, word))
                    }
                }
                w[i] = replacement
                w.remove(at: i + 1)
                if i < w.count - 1 {
                    changes.append((UInt64(b) << 32 | UInt64(w[i + 1]), -1, word))
                    if charCount[Int(w[i + 1])] + newLength < maxLength {
                        changes.append((UInt64(replacement) << 32 | UInt64(w[i + 1]), 1, word))
                    }
                }
            }
            i += 1
        }
    }

    /// Trains a `BPEModel` (vocabulary and merges only; no unknown token).
    public func trainModel(_ words: WordCounts) -> BPEModel {
        let (tokens, merges) = train(words)
        var vocab: [String: Int] = [:]
        for (id, t) in tokens.enumerated() { vocab[t] = id }
        // Every merge comes from the vocabulary, so building the model cannot fail.
        return try! BPEModel(vocab: vocab, merges: merges)
    }
}

extension Array where Element == Int32 {
    /// Appends unless the last element is already `x` (positions arrive grouped by word).
    @inline(__always) mutating func appendUnique(_ x: Int32) {
        if last != x { append(x) }
    }
}

/// The trainer's priority queue: highest count first, then the smallest pair (left id, then
/// right id), then insertion order.
struct MergeQueue {
    struct Entry {
        var count: Int
        var pair: UInt64
        var seq: Int
        var pos: [Int32]
    }

    private var items: [Entry] = []
    private var seq = 0

    @inline(__always) static func before(_ x: Entry, _ y: Entry) -> Bool {
        if x.count != y.count { return x.count > y.count }
        if x.pair != y.pair { return x.pair < y.pair }
        return x.seq < y.seq
    }

    mutating func push(count: Int, pair: UInt64, pos: [Int32]) {
        push(Entry(count: count, pair: pair, seq: 0, pos: pos))
    }

    mutating func push(_ entry: Entry) {
        var entry = entry
        entry.seq = seq
        seq += 1
        items.append(entry)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !Self.before(items[i], items[parent]) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        let n = items.count
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            if l + 1 < n && Self.before(items[l + 1], items[l]) { c = l + 1 }
            if !Self.before(items[c], items[i]) { break }
            items.swapAt(i, c)
            i = c
        }
        return top
    }
}

// MARK: - BART-style byte-level BPE

extension Tokenizer {
    /// BART's special tokens in the order of their ids: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3.
    public static let bartSpecialTokens = ["<s>", "<pad>", "</s>", "<unk>"]

    /// Trains a byte-level BPE tokenizer like `tokenizers`' `ByteLevelBPETokenizer`
    /// (`BpeTrainer` with the 256 byte-level characters as initial alphabet, words from the
    /// ByteLevel pre-tokenizer) with BART's special tokens: `<s>`=0, `<pad>`=1, `</s>`=2,
    /// `<unk>`=3, and `<mask>` (which takes the space before it) as the last id, so the whole
    /// vocabulary has `vocabSize` ids. The result has a `RobertaProcessing` post-processor
    /// (`<s> … </s>`) and a ByteLevel decoder; it is what
    /// `tools/golden/make_tokenizer_golden.py` builds with Python.
    public static func trainBARTByteLevelBPE(_ words: WordCounts, vocabSize: Int, minFrequency: Int = 2) throws(TokenizerError) -> Tokenizer {
        guard words.byteLevel else { throw .training(message: "the word counts must come from the ByteLevel pre-tokenizer") }
        let minimum = bartSpecialTokens.count + 256 + 1
        guard vocabSize >= minimum else {
            throw .training(message: "vocab size \(vocabSize) is below \(minimum) (4 special tokens, 256 bytes, <mask>)")
        }
        let trainer = BPETrainer(vocabSize: vocabSize - 1, minFrequency: minFrequency,
                                 specialTokens: bartSpecialTokens.map { AddedToken($0, special: true) },
                                 initialAlphabet: ByteLevelAlphabet.characters)
        var tokenizer = Tokenizer(model: trainer.trainModel(words),
                                  preTokenizer: ByteLevelPreTokenizer(addPrefixSpace: false, trimOffsets: true, useRegex: true),
                                  postProcessor: RobertaProcessing(sep: ("</s>", 2), cls: ("<s>", 0), trimOffsets: true, addPrefixSpace: false),
                                  decoder: ByteLevelDecoder(),
                                  addedTokens: trainer.specialTokens)
        tokenizer.addSpecialTokens([AddedToken("<mask>", special: true, lstrip: true)])
        return tokenizer
    }

    /// Counts the words of `texts` with the BART pre-tokenizer (ByteLevel, no prefix space).
    public static func bartWordCounts<S: Sequence<String>>(_ texts: S) -> WordCounts {
        var counts = WordCounts(byteLevel: true)
        let pre = ByteLevelPreTokenizer(addPrefixSpace: false, trimOffsets: true, useRegex: true)
        for t in texts { counts.add(t, preTokenizer: pre) }
        return counts
    }
}
