import Foundation

/// A byte-pair-encoding model (`"model": {"type": "BPE", ...}`).
///
/// A word starts as one symbol per character (per byte for byte-level words); then, as in
/// `tokenizers`, the adjacent pair with the lowest merge rank is merged, leftmost first, until no
/// adjacent pair has a merge. Merge ranks live in an open-addressing table keyed by the pair of
/// integer ids, and the ids of every word seen are cached.
public struct BPEModel: TokenizerModel {
    /// Token → id.
    public let vocab: [String: Int]
    /// The merges in rank order.
    public let merges: [(String, String)]
    public let unkToken: String?
    public let continuingSubwordPrefix: String?
    public let endOfWordSuffix: String?
    public let fuseUnk: Bool
    public let byteFallback: Bool
    public let ignoreMerges: Bool

    let core: BPECore
    let cache: BPEWordCache?

    /// Builds a model. Every merge's two parts and their concatenation must be in `vocab`.
    /// `cacheCapacity` bounds the number of cached words (0 disables the cache).
    public init(vocab: [String: Int], merges: [(String, String)], unkToken: String? = nil,
                continuingSubwordPrefix: String? = nil, endOfWordSuffix: String? = nil,
                fuseUnk: Bool = false, byteFallback: Bool = false, ignoreMerges: Bool = false,
                cacheCapacity: Int = BPEModel.defaultCacheCapacity) throws(TokenizerError) {
        try self.init(vocab: vocab, merges: merges, unkToken: unkToken, continuingSubwordPrefix: continuingSubwordPrefix,
                      endOfWordSuffix: endOfWordSuffix, fuseUnk: fuseUnk, byteFallback: byteFallback,
                      ignoreMerges: ignoreMerges, cacheCapacity: cacheCapacity,
                      source: "<memory>", mergesField: { "merges[\($0)]" })
    }

    public static let defaultCacheCapacity = 100_000

    init(vocab: [String: Int], merges: [(String, String)], unkToken: String?, continuingSubwordPrefix: String?,
         endOfWordSuffix: String?, fuseUnk: Bool, byteFallback: Bool, ignoreMerges: Bool, cacheCapacity: Int,
         source: String, mergesField: (Int) -> String) throws(TokenizerError) {
        self.vocab = vocab
        self.merges = merges
        self.unkToken = unkToken
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.endOfWordSuffix = endOfWordSuffix
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        core = try BPECore(vocab: vocab, merges: merges, prefix: continuingSubwordPrefix ?? "",
                           source: source, mergesField: mergesField)
        cache = cacheCapacity > 0 ? BPEWordCache(capacity: cacheCapacity) : nil
    }

    public var vocabSize: Int { vocab.count }
    public func tokenToID(_ token: String) -> Int? { vocab[token] }
    public func idToToken(_ id: Int) -> String? { core.token(id) }

    /// Empties the word cache.
    public func clearCache() { cache?.clear() }

    public func tokenize(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int]) {
        guard !word.isEmpty else { return }
        if ignoreMerges {
            let s = byteLevel ? ByteLevelAlphabet.encode(word) : String(decoding: word, as: UTF8.self)
            if let id = vocab[s] { ids.append(id); return }
        }
        let hash: UInt64
        if let cache, word.count < BPEWordCache.maxWordLength {
            hash = BPEWordCache.hash(word, byteLevel: byteLevel)
            if cache.lookup(word, byteLevel: byteLevel, hash: hash, into: &ids) { return }
        } else {
            hash = 0
        }
        let start = ids.count
        mergeWord(word, byteLevel: byteLevel, into: &ids)
        if let cache, word.count < BPEWordCache.maxWordLength {
            cache.insert(word, byteLevel: byteLevel, hash: hash, ids: ids[start...])
        }
    }

    /// Initial symbols, then merges; appends the final ids.
    func mergeWord(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int]) {
        if byteLevel && core.prefixIsEmpty && (endOfWordSuffix ?? "").isEmpty {
            let n = word.count
            let done: Bool = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: n) { symbols in
                let s = symbols.baseAddress!
                for i in 0..<n {
                    let id = core.byteIDs[Int(word[i])]
                    if id < 0 { return false }
                    s[i] = UInt32(id)
                }
                let final = n <= BPECore.smallWordLimit ? core.mergeSmall(s, n) : core.mergeLarge(s, n)
                for i in 0..<final { ids.append(Int(s[i])) }
                return true
            }
            if done { return }
        }
        var symbols = initialSymbols(word, byteLevel: byteLevel)
        let n = symbols.count
        symbols.withUnsafeMutableBufferPointer { buffer in
            guard let s = buffer.baseAddress else { return }
            let final = n <= BPECore.smallWordLimit ? core.mergeSmall(s, n) : core.mergeLarge(s, n)
            for i in 0..<final { ids.append(Int(s[i])) }
        }
    }

    /// The general path of `tokenizers`' `merge_word`: characters (with the continuing-subword
    /// prefix and end-of-word suffix), unknown characters, byte fallback.
    func initialSymbols(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool) -> [UInt32] {
        var chars: [String] = []
        if byteLevel {
            for b in word { chars.append(String(ByteLevelAlphabet.characters[Int(b)])) }
        } else {
            for s in String(decoding: word, as: UTF8.self).unicodeScalars { chars.append(String(s)) }
        }
        var symbols: [UInt32] = []
        var pendingUnk: UInt32? = nil
        let unkID = unkToken.flatMap { vocab[$0] }
        for (i, c) in chars.enumerated() {
            var s = c
            if i > 0, let prefix = continuingSubwordPrefix { s = prefix + s }
            if i == chars.count - 1, let suffix = endOfWordSuffix { s += suffix }
            if let id = vocab[s] {
                if let u = pendingUnk { symbols.append(u); pendingUnk = nil }
                symbols.append(UInt32(id))
                continue
            }
            if byteFallback {
                let byteIDs = s.utf8.map { vocab[String(format: "<0x%02X>", $0)] }
                if byteIDs.allSatisfy({ $0 != nil }) {
                    // As in `tokenizers`, a pending unknown token stays pending here.
                    for id in byteIDs { symbols.append(UInt32(id!)) }
                    continue
                }
            }
            // An `unk_token` missing from the vocabulary drops unknown characters (`tokenizers` fails).
            if let unkID {
                if let u = pendingUnk, !fuseUnk { symbols.append(u) }
                pendingUnk = UInt32(unkID)
            }
        }
        if let u = pendingUnk { symbols.append(u) }
        return symbols
    }

    public func toJSON() -> JSONValue {
        var vocabEntries: [(key: String, value: JSONValue)] = vocab.map { (key: $0.key, value: .int($0.value)) }
        vocabEntries.sort { ($0.value.intValue!, $0.key) < ($1.value.intValue!, $1.key) }
        return .object([
            "type": .string("BPE"),
            "dropout": .null,
            "unk_token": unkToken.map { .string($0) } ?? .null,
            "continuing_subword_prefix": continuingSubwordPrefix.map { .string($0) } ?? .null,
            "end_of_word_suffix": endOfWordSuffix.map { .string($0) } ?? .null,
            "fuse_unk": .bool(fuseUnk),
            "byte_fallback": .bool(byteFallback),
            "ignore_merges": .bool(ignoreMerges),
            "vocab": .object(JSONObject(vocabEntries)),
            "merges": .array(merges.map { .array([.string($0.0), .string($0.1)]) }),
        ])
    }
}

// MARK: - Merge tables

/// The immutable tables of a BPE model.
final class BPECore: Sendable {
    /// Pair (left id << 32 | right id) → rank << 32 | merged id.
    let pairs: PairTable
    /// The vocabulary id of each byte's byte-level character, -1 if absent.
    let byteIDs: [Int]
    let idToToken: [String?]
    let sparseIDToToken: [Int: String]
    let prefixIsEmpty: Bool

    static let smallWordLimit = 96
    static let noMerge = UInt64.max

    init(vocab: [String: Int], merges: [(String, String)], prefix: String, source: String,
         mergesField: (Int) -> String) throws(TokenizerError) {
        prefixIsEmpty = prefix.isEmpty
        // Symbols are UInt32 (as `tokenizers`' u32 ids): the file readers check this per entry; a
        // vocabulary built in memory is checked here.
        if let (token, id) = vocab.first(where: { $0.value < 0 || $0.value > Int(UInt32.max) }) {
            throw .invalidField(file: source, field: "vocab[\(JSONPath.key(token))]",
                                message: "expected an id in 0...\(UInt32.max), found \(id)")
        }
        let maxID = vocab.values.max() ?? -1
        if maxID < 2 * vocab.count + 1024 {
            var table = [String?](repeating: nil, count: maxID + 1)
            for (token, id) in vocab where id >= 0 { table[id] = token }
            idToToken = table
            sparseIDToToken = [:]
        } else {
            idToToken = []
            sparseIDToToken = Dictionary(vocab.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        }
        byteIDs = ByteLevelAlphabet.characters.map { c in vocab[String(c)] ?? -1 }
        var table = PairTable(capacity: merges.count)
        for (rank, merge) in merges.enumerated() {
            guard let a = vocab[merge.0] else { throw .unknownToken(file: source, field: mergesField(rank), token: merge.0) }
            guard let b = vocab[merge.1] else { throw .unknownToken(file: source, field: mergesField(rank), token: merge.1) }
            var right = merge.1
            if !prefix.isEmpty && right.hasPrefix(prefix) { right.removeFirst(prefix.count) }
            let merged = merge.0 + right
            guard let m = vocab[merged] else { throw .unknownToken(file: source, field: mergesField(rank), token: merged) }
            table.insert(UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)), UInt64(rank) << 32 | UInt64(UInt32(m)))
        }
        pairs = table
    }

    func token(_ id: Int) -> String? {
        if id >= 0 && id < idToToken.count { return idToToken[id] }
        return sparseIDToToken[id]
    }

    /// Merges a short word in place: repeatedly the lowest-ranked adjacent pair, leftmost first.
    /// Returns the number of symbols left.
    @inline(__always)
    func mergeSmall(_ syms: UnsafeMutablePointer<UInt32>, _ count: Int) -> Int {
        var n = count
        if n < 2 { return n }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: n) { ranksBuffer in
            let ranks = ranksBuffer.baseAddress!
            for i in 0..<(n - 1) { ranks[i] = pairs.lookup(syms[i], syms[i + 1]) }
            while n > 1 {
                var best = 0
                var bestValue = ranks[0]
                var i = 1
                while i < n - 1 {
                    if ranks[i] < bestValue { best = i; bestValue = ranks[i] }
                    i += 1
                }
                if bestValue == BPECore.noMerge { break }
                syms[best] = UInt32(truncatingIfNeeded: bestValue)
                var k = best + 1
                while k < n - 1 { syms[k] = syms[k + 1]; k += 1 }
                k = best + 1
                while k < n - 2 { ranks[k] = ranks[k + 1]; k += 1 }
                n -= 1
                if best > 0 { ranks[best - 1] = pairs.lookup(syms[best - 1], syms[best]) }
                if best < n - 1 { ranks[best] = pairs.lookup(syms[best], syms[best + 1]) }
            }
            return n
        }
    }

    /// Merges a long word in place with a priority queue over (rank, position) and a linked
    /// list of symbols, exactly like `tokenizers`' `Word::merge_all`. Returns the number of
    /// symbols left.
    func mergeLarge(_ syms: UnsafeMutablePointer<UInt32>, _ count: Int) -> Int {
        let n = count
        var next = [Int32](unsafeUninitializedCapacity: n) { b, c in
            for i in 0..<n { b[i] = i + 1 < n ? Int32(i + 1) : -1 }
            c = n
        }
        var prev = [Int32](unsafeUninitializedCapacity: n) { b, c in
            for i in 0..<n { b[i] = Int32(i - 1) }
            c = n
        }
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for i in 0..<(n - 1) {
            let v = pairs.lookup(syms[i], syms[i + 1])
            if v != BPECore.noMerge { heap.push(v & 0xFFFF_FFFF_0000_0000 | UInt64(i)) }
        }
        while let top = heap.pop() {
            let pos = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            guard alive[pos] else { continue }
            let nextPos = Int(next[pos])
            guard nextPos >= 0 else { continue }
            let v = pairs.lookup(syms[pos], syms[nextPos])
            guard v != BPECore.noMerge, v >> 32 == rank else { continue }
            syms[pos] = UInt32(truncatingIfNeeded: v)
            alive[nextPos] = false
            let after = next[nextPos]
            next[pos] = after
            if after >= 0 { prev[Int(after)] = Int32(pos) }
            let before = Int(prev[pos])
            if before >= 0 {
                let w = pairs.lookup(syms[before], syms[pos])
                if w != BPECore.noMerge { heap.push(w & 0xFFFF_FFFF_0000_0000 | UInt64(before)) }
            }
            if after >= 0 {
                let w = pairs.lookup(syms[pos], syms[Int(after)])
                if w != BPECore.noMerge { heap.push(w & 0xFFFF_FFFF_0000_0000 | UInt64(pos)) }
            }
        }
        var out = 0
        for i in 0..<n where alive[i] {
            syms[out] = syms[i]
            out += 1
        }
        return out
    }
}

/// A binary min-heap of `UInt64` keys.
struct MinHeap {
    var items: [UInt64] = []

    mutating func push(_ x: UInt64) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent] <= x { break }
            items[i] = items[parent]
            i = parent
        }
        items[i] = x
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        let n = items.count
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            if l + 1 < n && items[l + 1] < items[l] { c = l + 1 }
            if items[c] >= last { break }
            items[i] = items[c]
            i = c
        }
        items[i] = last
        return top
    }
}

/// Open-addressing hash table from a pair of ids (packed in a `UInt64`) to a `UInt64` value.
struct PairTable: Sendable {
    private(set) var keys: [UInt64]
    private(set) var values: [UInt64]
    private let shift: UInt64
    private let mask: Int
    static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        keys = [UInt64](repeating: PairTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
        shift = UInt64(64 - size.trailingZeroBitCount)
    }

    @inline(__always) private func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Inserts or overwrites.
    mutating func insert(_ key: UInt64, _ value: UInt64) {
        var i = slot(key)
        while keys[i] != PairTable.empty && keys[i] != key { i = (i + 1) & mask }
        keys[i] = key
        values[i] = value
    }

    /// The value of the pair (a, b), or `UInt64.max` when absent.
    @inline(__always) func lookup(_ a: UInt32, _ b: UInt32) -> UInt64 {
        let key = UInt64(a) << 32 | UInt64(b)
        return keys.withUnsafeBufferPointer { k in
            var i = slot(key)
            while true {
                let stored = k[i]
                if stored == key { return values.withUnsafeBufferPointer { $0[i] } }
                if stored == PairTable.empty { return BPECore.noMerge }
                i = (i + 1) & mask
            }
        }
    }
}

// MARK: - Word cache

/// Word bytes → ids, shared by the copies of a model. Lookups and inserts take a lock with
/// `try`, so concurrent encoders never wait on each other (a busy cache is simply skipped).
package final class BPEWordCache: @unchecked Sendable {
    static let maxWordLength = 256

    private let lock = NSLock()
    let capacity: Int
    // Open addressing over entry indices (-1 empty).
    private var slots: [Int32] = []
    private var slotMask = 0
    private var hashes: [UInt64] = []
    private var keyStarts: [Int32] = []
    private var keyLengths: [Int32] = []  // negative for byte-level words
    private var valueStarts: [Int32] = []
    private var valueLengths: [Int32] = []
    private var keyBytes: [UInt8] = []
    private var values: [UInt32] = []

    init(capacity: Int) {
        self.capacity = capacity
        reset()
    }

    private func reset() {
        slots = [Int32](repeating: -1, count: 1024)
        slotMask = 1023
        hashes = []; keyStarts = []; keyLengths = []; valueStarts = []; valueLengths = []
        keyBytes = []; values = []
    }

    func clear() {
        lock.lock()
        reset()
        lock.unlock()
    }

    @inline(__always)
    static func hash(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ (UInt64(word.count) &* 0x9E37_79B9_7F4A_7C15)
        if byteLevel { h = ~h }
        let p = UnsafeRawPointer(word.baseAddress!)
        var i = 0
        let n = word.count
        while i + 8 <= n {
            h = (h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(word[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ tail) &* 0xFF51_AFD7_ED55_8CCD
        }
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        return h
    }

    /// Appends the cached ids of `word` and returns true, or returns false.
    @inline(__always)
    func lookup(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, hash: UInt64, into ids: inout [Int]) -> Bool {
        guard lock.try() else { return false }
        defer { lock.unlock() }
        let keyLength = Int32(byteLevel ? -word.count : word.count)
        var i = Int(truncatingIfNeeded: hash) & slotMask
        while true {
            let e = Int(slots[i])
            if e < 0 { return false }
            if hashes[e] == hash && keyLengths[e] == keyLength {
                let start = Int(keyStarts[e])
                let same = keyBytes.withUnsafeBufferPointer { kb in
                    memcmp(kb.baseAddress! + start, word.baseAddress!, word.count) == 0
                }
                if same {
                    let vs = Int(valueStarts[e]), vl = Int(valueLengths[e])
                    values.withUnsafeBufferPointer { v in
                        for k in vs..<(vs + vl) { ids.append(Int(v[k])) }
                    }
                    return true
                }
            }
            i = (i + 1) & slotMask
        }
    }

    func insert(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, hash: UInt64, ids: ArraySlice<Int>) {
        guard lock.try() else { return }
        defer { lock.unlock() }
        guard hashes.count < capacity else { return }
        let keyLength = Int32(byteLevel ? -word.count : word.count)
        var i = Int(truncatingIfNeeded: hash) & slotMask
        while slots[i] >= 0 {
            let e = Int(slots[i])
            if hashes[e] == hash && keyLengths[e] == keyLength {
                let start = Int(keyStarts[e])
                let same = keyBytes.withUnsafeBufferPointer { kb in
                    memcmp(kb.baseAddress! + start, word.baseAddress!, word.count) == 0
                }
                if same { return }
            }
            i = (i + 1) & slotMask
        }
        let e = Int32(hashes.count)
        hashes.append(hash)
        keyStarts.append(Int32(keyBytes.count))
        keyLengths.append(keyLength)
        valueStarts.append(Int32(values.count))
        valueLengths.append(Int32(ids.count))
        keyBytes.append(contentsOf: word)
        for id in ids { values.append(UInt32(truncatingIfNeeded: id)) }
        slots[i] = e
        if hashes.count * 2 > slots.count { grow() }
    }

    private func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        slotMask = size - 1
        for (e, h) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: h) & slotMask
            while slots[i] >= 0 { i = (i + 1) & slotMask }
            slots[i] = Int32(e)
        }
    }
}
