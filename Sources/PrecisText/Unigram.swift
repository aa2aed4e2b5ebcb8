/// A SentencePiece Unigram model (`"model": {"type": "Unigram", "vocab": [[piece, score], ...],
/// "unk_id": …, "byte_fallback": …}`), segmenting as `tokenizers`' `Unigram::encode` does.
///
/// Each word is cut by Viterbi over its UTF-8 bytes: at every character boundary, every piece
/// that starts there (found in a trie, shortest first) extends the best path ending there by its
/// score; a character that no single piece covers can also be the unknown token, scored
/// `min(score) - 10`. Ties keep the first candidate. Consecutive unknown characters are fused
/// into one token; a piece that is not in the vocabulary becomes its `<0xXX>` byte tokens with
/// `byte_fallback` (when all of them exist), the unknown id otherwise.
public struct UnigramModel: TokenizerModel {
    /// The pieces and their scores, in id order.
    public let pieces: [(piece: String, score: Double)]
    public let unkID: Int?
    public let byteFallback: Bool
    /// Piece → id (the last id of a piece listed twice, as `tokenizers` keeps it).
    let ids: [String: Int]
    let trie: PieceTrie
    let unkScore: Double
    /// `<0xXX>` → id, -1 where the vocabulary lacks it.
    let byteIDs: [Int]
    /// The ids of words already segmented (only with an unknown id: without one, `tokenize`
    /// and `encode` differ on unknown characters). Shared by copies; safe across threads.
    package let cache: BPEWordCache?

    /// What the unknown-token penalty subtracts from the lowest score.
    static let unknownPenalty = 10.0

    public enum Invalid: Error, Sendable, Equatable {
        case emptyVocabulary
        case unknownIDOutOfRange(Int, count: Int)
    }

    /// `cacheCapacity` bounds the number of cached words (0 disables the cache).
    public init(pieces: [(piece: String, score: Double)], unkID: Int?, byteFallback: Bool = false,
                cacheCapacity: Int = BPEModel.defaultCacheCapacity) throws(Invalid) {
        if let unkID {
            guard !pieces.isEmpty else { throw .emptyVocabulary }
            guard unkID >= 0 && unkID < pieces.count else { throw .unknownIDOutOfRange(unkID, count: pieces.count) }
        }
        self.pieces = pieces
        self.unkID = unkID
        self.byteFallback = byteFallback
        var ids: [String: Int] = [:]
        ids.reserveCapacity(pieces.count)
        var minScore = Double.infinity
        for (i, p) in pieces.enumerated() {
            ids[p.piece] = i
            minScore = min(minScore, p.score)
        }
        self.ids = ids
        unkScore = minScore - Self.unknownPenalty
        trie = PieceTrie(ids)
        byteIDs = (0..<256).map { b in ids["<0x\(String(b, radix: 16, uppercase: true).leftPadded(2))>"] ?? -1 }
        cache = unkID != nil && cacheCapacity > 0 ? BPEWordCache(capacity: cacheCapacity) : nil
    }

    /// Empties the word cache.
    public func clearCache() { cache?.clear() }

    public var vocabSize: Int { pieces.count }
    public func tokenToID(_ token: String) -> Int? { ids[token] }
    public func idToToken(_ id: Int) -> String? { id >= 0 && id < pieces.count ? pieces[id].piece : nil }

    /// Unknown characters without an unknown id are left out; `encode` reports them.
    public func tokenize(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int]) {
        try? encode(word: word, byteLevel: byteLevel, into: &ids, strict: false)
    }

    public func encode(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int]) throws(TokenizerError) {
        try encode(word: word, byteLevel: byteLevel, into: &ids, strict: true)
    }

    func encode(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into out: inout [Int], strict: Bool) throws(TokenizerError) {
        guard !word.isEmpty else { return }
        guard let cache, word.count < BPEWordCache.maxWordLength else {
            try segment(word: word, byteLevel: byteLevel, into: &out, strict: strict)
            return
        }
        let hash = BPEWordCache.hash(word, byteLevel: byteLevel)
        if cache.lookup(word, byteLevel: byteLevel, hash: hash, into: &out) { return }
        let start = out.count
        try segment(word: word, byteLevel: byteLevel, into: &out, strict: strict)
        cache.insert(word, byteLevel: byteLevel, hash: hash, ids: out[start...])
    }

    /// Viterbi over `word` (see the type's comment), without the cache.
    func segment(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into out: inout [Int], strict: Bool) throws(TokenizerError) {
        if byteLevel {
            let text = Array(ByteLevelAlphabet.encode(word).utf8)
            try text.withUnsafeBufferPointer { (b) throws(TokenizerError) in
                try segment(word: b, byteLevel: false, into: &out, strict: strict)
            }
            return
        }
        let n = word.count
        // Best path ending at each byte offset: score, where its last token starts (-1: none yet),
        // and that token's id (-1: an unknown character without an unknown id).
        var score = [Double](repeating: 0, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        var tokenID = [Int](repeating: 0, count: n + 1)
        var start = 0
        while start < n {
            let base = score[start]
            let width = Self.utf8Width(word[start])
            var coversCharacter = false
            trie.forEachPrefix(of: word, from: start) { length, id in
                let end = start + length
                let candidate = base + pieces[id].score
                if from[end] < 0 || candidate > score[end] {
                    score[end] = candidate
                    from[end] = start
                    tokenID[end] = id
                }
                if length == width { coversCharacter = true }
            }
            if !coversCharacter {
                let end = min(start + width, n)
                let candidate = base + unkScore
                if from[end] < 0 || candidate > score[end] {
                    if unkID == nil && strict {
                        let character = String(decoding: UnsafeBufferPointer(rebasing: word[start..<end]), as: UTF8.self)
                        throw .encoding(message: "the Unigram model has no unk_id for \(JSONValue.string(character).compactString())")
                    }
                    score[end] = candidate
                    from[end] = start
                    tokenID[end] = unkID ?? -1
                }
            }
            start += width
        }
        // Walk back, fusing runs of unknown characters.
        var tokens: [(start: Int, end: Int, id: Int?)] = []
        var end = n
        var unknownEnd = -1
        while end > 0 {
            let s = max(from[end], 0)
            let id = tokenID[end]
            let isUnknown = id == -1 || id == unkID
            if isUnknown {
                if unknownEnd < 0 { unknownEnd = end }
            } else {
                if unknownEnd >= 0 { tokens.append((end, unknownEnd, nil)); unknownEnd = -1 }
                tokens.append((s, end, id))
            }
            end = s
        }
        if unknownEnd >= 0 { tokens.append((0, unknownEnd, nil)) }
        for t in tokens.reversed() {
            if let id = t.id {
                out.append(id)
                continue
            }
            let piece = UnsafeBufferPointer(rebasing: word[t.start..<t.end])
            let text = String(decoding: piece, as: UTF8.self)
            if let id = ids[text] {
                out.append(id)
            } else if byteFallback && piece.allSatisfy({ byteIDs[Int($0)] >= 0 }) {
                for b in piece { out.append(byteIDs[Int(b)]) }
            } else if let unkID {
                out.append(unkID)
            } else if strict {
                throw .encoding(message: "the Unigram model has no unk_id for \(JSONValue.string(text).compactString())")
            }
        }
    }

    @inline(__always) static func utf8Width(_ lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Unigram"), "unk_id": unkID.map { .int($0) } ?? .null,
                 "vocab": .array(pieces.map { .array([.string($0.piece), .double($0.score)]) }),
                 "byte_fallback": .bool(byteFallback)])
    }
}

/// The pieces of a Unigram vocabulary in a byte trie: children of a node are kept sorted by
/// label, in one flat array.
struct PieceTrie: Sendable {
    /// Per node: the range of its children in `labels`/`targets`, and the id of the piece that
    /// ends there (-1 for none).
    var childStart: [Int32] = []
    var childEnd: [Int32] = []
    var pieceID: [Int32] = []
    var labels: [UInt8] = []
    var targets: [Int32] = []

    init(_ ids: [String: Int]) {
        // Build with per-node dictionaries, then lay the children out breadth first.
        var children: [[UInt8: Int]] = [[:]]
        var leaf: [Int] = [-1]
        for (piece, id) in ids {
            var node = 0
            for b in piece.utf8 {
                if let next = children[node][b] {
                    node = next
                } else {
                    children.append([:])
                    leaf.append(-1)
                    children[node][b] = children.count - 1
                    node = children.count - 1
                }
            }
            if node != 0 { leaf[node] = id }
        }
        childStart = [Int32](repeating: 0, count: children.count)
        childEnd = [Int32](repeating: 0, count: children.count)
        pieceID = leaf.map { Int32($0) }
        for node in children.indices {
            childStart[node] = Int32(labels.count)
            for (label, target) in children[node].sorted(by: { $0.key < $1.key }) {
                labels.append(label)
                targets.append(Int32(target))
            }
            childEnd[node] = Int32(labels.count)
        }
    }

    /// Calls `body(length, id)` for every piece that starts `word` at `from`, shortest first.
    @inline(__always)
    func forEachPrefix(of word: UnsafeBufferPointer<UInt8>, from: Int, _ body: (Int, Int) -> Void) {
        var node = 0
        var i = from
        while i < word.count {
            let b = word[i]
            var lo = Int(childStart[node]), hi = Int(childEnd[node])
            var next = -1
            while lo < hi {
                let mid = (lo + hi) >> 1
                let l = labels[mid]
                if l == b { next = Int(targets[mid]); break }
                if l < b { lo = mid + 1 } else { hi = mid }
            }
            if next < 0 { return }
            node = next
            i += 1
            let id = pieceID[node]
            if id >= 0 { body(i - from, Int(id)) }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
