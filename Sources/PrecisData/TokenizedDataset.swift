import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// What the data pipeline needs from a tokenizer.
public protocol TextEncoder {
    /// Token ids with the post-processor's special tokens, content truncated so the whole sequence
    /// has at most `maxLength` ids (as `tokenizer(text, max_length=…, truncation=True)` does).
    func encode(_ text: String, maxLength: Int?) throws -> [Int32]
    /// Identifies the tokenizer's exact behaviour (e.g. a hash of its tokenizer.json).
    var fingerprint: String { get }
}

/// Tokenization settings, as `run_summarization.py` names them.
public struct TokenizationOptions: Sendable, Equatable {
    public var maxSourceLength = 512
    public var maxTargetLength = 128
    /// Prepended to every source text (T5's "summarize: ").
    public var sourcePrefix = ""

    public init(maxSourceLength: Int = 512, maxTargetLength: Int = 128, sourcePrefix: String = "") {
        self.maxSourceLength = maxSourceLength; self.maxTargetLength = maxTargetLength; self.sourcePrefix = sourcePrefix
    }
}

/// A tokenized dataset in one binary blob (memory-mapped when it comes from the cache):
///
///     "PRCSTOK1" | u64 count | u64 source ids | u64 target ids | u64 key length | key (padded to 8)
///     | u64 sourceOffsets[count+1] | u64 targetOffsets[count+1] | i32 sourceIds[] | i32 targetIds[]
///
/// all little-endian. Example i's source is sourceIds[sourceOffsets[i] ..< sourceOffsets[i+1]].
public final class TokenizedDataset: @unchecked Sendable {
    // @unchecked: the blob is immutable after init (read-only mmap or a private Data), so sharing
    // it across threads is safe.
    public let count: Int
    public let key: String
    private let base: UnsafeRawPointer
    private let length: Int
    private let owner: AnyObject?
    private let mapped: Bool
    private let srcOff: UnsafePointer<UInt64>, tgtOff: UnsafePointer<UInt64>
    private let srcIds: UnsafePointer<Int32>, tgtIds: UnsafePointer<Int32>

    static let magic = Array("PRCSTOK1".utf8)

    public func source(_ i: Int) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(start: srcIds + Int(srcOff[i]), count: Int(srcOff[i + 1] - srcOff[i]))
    }
    public func target(_ i: Int) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(start: tgtIds + Int(tgtOff[i]), count: Int(tgtOff[i + 1] - tgtOff[i]))
    }
    public func sourceLength(_ i: Int) -> Int { Int(srcOff[i + 1] - srcOff[i]) }
    public func targetLength(_ i: Int) -> Int { Int(tgtOff[i + 1] - tgtOff[i]) }
    public var sourceLengths: [Int] { (0..<count).map(sourceLength) }

    /// Checks the whole header before a pointer is formed (this module is built -Ounchecked: an
    /// overflow would wrap, not trap): every count is bounded by the blob's length first, so the
    /// sizes computed from them cannot overflow; the sizes must add up to the length; and both offset
    /// tables must start at 0, never decrease and end at their id counts, so every example's ids lie
    /// inside the blob.
    private init(base: UnsafeRawPointer, length: Int, owner: AnyObject?, mapped: Bool, file: String) throws {
        func bad(_ why: String) -> DataError { .badCache(file: file, reason: why) }
        func u64(_ off: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: off, as: UInt64.self)) }
        guard length >= 40, Array(UnsafeRawBufferPointer(start: base, count: 8)) == Self.magic else {
            throw bad("not a Precis tokenized dataset")
        }
        let size = UInt64(length)
        let (n64, ns64, nt64, kl64) = (u64(8), u64(16), u64(24), u64(32))
        guard kl64 < 4096, n64 < size / 16, ns64 <= size / 4, nt64 <= size / 4 else {
            throw bad("its header (\(n64) examples, \(ns64) + \(nt64) ids, a \(kl64)-byte key) does not fit its \(length) bytes")
        }
        let (n, ns, nt, kl) = (Int(n64), Int(ns64), Int(nt64), Int(kl64))
        let keyEnd = 40 + ((kl + 7) & ~7)
        let offBytes = 8 * (n + 1)
        let need = keyEnd + 2 * offBytes + 4 * (ns + nt)
        guard need == length else { throw bad("size \(length) does not match its header (\(need))") }
        key = String(decoding: UnsafeRawBufferPointer(start: base + 40, count: kl), as: UTF8.self)
        count = n
        self.base = base; self.length = length; self.owner = owner; self.mapped = mapped
        srcOff = (base + keyEnd).assumingMemoryBound(to: UInt64.self)
        tgtOff = (base + keyEnd + offBytes).assumingMemoryBound(to: UInt64.self)
        srcIds = (base + keyEnd + 2 * offBytes).assumingMemoryBound(to: Int32.self)
        tgtIds = (base + keyEnd + 2 * offBytes + 4 * ns).assumingMemoryBound(to: Int32.self)
        for (name, offsets, ids) in [("source", srcOff, ns64), ("target", tgtOff, nt64)] {
            guard offsets[0] == 0, offsets[n] == ids else { throw bad("\(name) offsets do not match the id counts") }
            for i in 0..<n where offsets[i] > offsets[i + 1] {
                throw bad("\(name) offsets decrease at example \(i)")
            }
        }
    }

    deinit { if mapped { munmap(UnsafeMutableRawPointer(mutating: base), length) } }

    /// Serialises examples into the blob format.
    static func blob(key: String, sources: [[Int32]], targets: [[Int32]]) -> Data {
        var d = Data()
        func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: magic)
        let ns = sources.reduce(0) { $0 + $1.count }, nt = targets.reduce(0) { $0 + $1.count }
        let k = Array(key.utf8)
        u64(sources.count); u64(ns); u64(nt); u64(k.count)
        d.append(contentsOf: k); d.append(contentsOf: [UInt8](repeating: 0, count: ((k.count + 7) & ~7) - k.count))
        for list in [sources, targets] {
            var off = 0
            u64(0)
            for s in list { off += s.count; u64(off) }
        }
        for list in [sources, targets] {
            for s in list { for v in s { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } } }
        }
        return d
    }

    /// An in-memory dataset (tests, or data that should not be cached).
    public convenience init(key: String, sources: [[Int32]], targets: [[Int32]]) throws {
        precondition(sources.count == targets.count)
        let box = BlobBox(Self.blob(key: key, sources: sources, targets: targets))
        try self.init(base: box.pointer, length: box.count, owner: box, mapped: false, file: "(memory)")
    }

    /// Memory-maps a cache file (a regular file: opened non-blocking, so a FIFO in its place is
    /// refused at once instead of blocking the open).
    public convenience init(mapping path: String) throws {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw DataError.cannotRead(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw DataError.badCache(file: path, reason: "not a regular file")
        }
        let size = Int(st.st_size)
        guard size > 0, let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw DataError.badCache(file: path, reason: "cannot map \(size) bytes")
        }
        do { try self.init(base: UnsafeRawPointer(p), length: size, owner: nil, mapped: true, file: path) } catch {
            munmap(p, size)
            throw error
        }
    }

    /// Tokenizes `records`, or maps the cache file for the same tokenizer, data and settings if one
    /// exists in `cacheDir`. The key is a 64-bit FNV-1a hash of the tokenizer fingerprint, the data
    /// file's bytes and the settings; the file is written atomically.
    public static func build(records: [SummarizationRecord], dataFingerprint: String, encoder: some TextEncoder,
                             options: TokenizationOptions, cacheDir: String?) throws -> (TokenizedDataset, fromCache: Bool) {
        let key = "tok=\(encoder.fingerprint);data=\(dataFingerprint);src=\(options.maxSourceLength);tgt=\(options.maxTargetLength);prefix=\(options.sourcePrefix)"
        let path = cacheDir.map { ($0 as NSString).appendingPathComponent(String(format: "tokenized-%016llx.bin", FNV.hash(key))) }
        if let path, FileManager.default.fileExists(atPath: path), let ds = try? TokenizedDataset(mapping: path), ds.key == key {
            return (ds, true)
        }
        var sources: [[Int32]] = [], targets: [[Int32]] = []
        sources.reserveCapacity(records.count); targets.reserveCapacity(records.count)
        for r in records {
            sources.append(try encoder.encode(options.sourcePrefix + r.source, maxLength: options.maxSourceLength))
            targets.append(try encoder.encode(r.target, maxLength: options.maxTargetLength))
        }
        let blob = Self.blob(key: key, sources: sources, targets: targets)
        if let path, let dir = cacheDir {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try AtomicFile.write(blob, to: path)
            return (try TokenizedDataset(mapping: path), false)
        }
        let box = BlobBox(blob)
        return (try TokenizedDataset(base: box.pointer, length: box.count, owner: box, mapped: false, file: "(memory)"), false)
    }
}

/// Keeps an in-memory blob alive at a stable address.
private final class BlobBox {
    let pointer: UnsafeRawPointer
    let count: Int
    private let storage: UnsafeMutableRawPointer
    init(_ d: Data) {
        count = d.count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, d.count), alignment: 8)
        d.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: d.count) }
        storage = raw
        pointer = UnsafeRawPointer(raw)
    }
    deinit { storage.deallocate() }
}

/// 64-bit FNV-1a, for cache keys and data fingerprints (not for security).
public enum FNV {
    public static func hash(_ s: String) -> UInt64 { hash(Data(s.utf8)) }
    public static func hash(_ d: Data, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        d.withUnsafeBytes { hash($0, seed: seed) }
    }
    static func hash(_ raw: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h = seed
        for b in raw { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
    /// Fingerprint of a file's bytes, read a piece at a time (a regular file only: a FIFO or a
    /// device is refused, not read for ever).
    public static func file(_ path: String) throws -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        let count: Int64
        do { count = try Hashing.readChunks(path) { h = hash($0, seed: h) } } catch {
            throw DataError.cannotRead(file: path, reason: "\(error)")
        }
        return String(format: "%016llx-%d", h, count)
    }
}
