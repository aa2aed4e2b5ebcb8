import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A Merkle–Damgård hash over 64-byte blocks with a big-endian 64-bit length (SHA-1, SHA-256).
/// Conformers provide the state and the compression function; buffering, padding and the one-shot
/// helpers are shared.
public protocol BlockHashFunction: Sendable {
    init()
    /// Digest size in bytes.
    static var digestSize: Int { get }
    /// Bytes already absorbed (the message length so far).
    var absorbed: UInt64 { get set }
    /// The partial block (fewer than 64 bytes) not yet compressed.
    var pending: [UInt8] { get set }
    /// Compresses `blocks` whole 64-byte blocks starting at `p`.
    mutating func compress(_ p: UnsafeRawPointer, blocks: Int)
    /// The big-endian state words.
    var stateWords: [UInt32] { get }
}

extension BlockHashFunction {
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        absorbed &+= UInt64(n)
        if !pending.isEmpty {
            let take = min(64 - pending.count, n)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: take))
            p += take; n -= take
            if pending.count == 64 {
                pending.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        if n >= 64 {
            let blocks = n / 64
            compress(p, blocks: blocks)
            p += blocks * 64; n -= blocks * 64
        }
        if n > 0 { pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n)) }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    public mutating func update(_ data: Data) { data.withUnsafeBytes { update($0) } }
    public mutating func update(_ string: String) { update(Array(string.utf8)) }

    /// Pads, compresses the last block(s) and returns the digest. The hasher is spent afterwards.
    public mutating func finalize() -> [UInt8] {
        let bitLength = absorbed &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for i in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8))) }
        tail.withUnsafeBytes { compress($0.baseAddress!, blocks: $0.count / 64) }
        pending.removeAll()
        var out: [UInt8] = []
        out.reserveCapacity(Self.digestSize)
        for w in stateWords { out += [UInt8(w >> 24), UInt8((w >> 16) & 0xFF), UInt8((w >> 8) & 0xFF), UInt8(w & 0xFF)] }
        return Array(out.prefix(Self.digestSize))
    }

    /// `finalize()` as lowercase hex.
    public mutating func finalizeHex() -> String { Hashing.hex(finalize()) }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] { var h = Self(); h.update(bytes); return h.finalize() }
    public static func hash(_ data: Data) -> [UInt8] { var h = Self(); h.update(data); return h.finalize() }
    /// Hashes a file, read in 1 MiB chunks.
    public static func hash(fileAt path: String) throws -> [UInt8] {
        var h = Self()
        try Hashing.readChunks(path) { h.update($0) }
        return h.finalize()
    }
}

/// SHA-256 (FIPS 180-4).
public struct SHA256: BlockHashFunction {
    public static let digestSize = 32
    public var absorbed: UInt64 = 0
    public var pending: [UInt8] = []
    var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)

    public init() { pending.reserveCapacity(64) }

    public var stateWords: [UInt32] { [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7] }

    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    @inline(__always) static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 &- n)) }

    /// One round: `d += T1`, `h = T1 + T2` (the caller rotates the roles of the eight words).
    @inline(__always) static func round(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
                                        _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32) {
        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ (g ^ (e & (f ^ g))) &+ kw
        let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) | (c & (a | b)))
        d &+= t1
        h = t1 &+ t2
    }

    public mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        var (h0, h1, h2, h3, h4, h5, h6, h7) = h
        Self.k.withUnsafeBufferPointer { kp in
            let k = kp.baseAddress!
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { wb in
                let w = wb.baseAddress!
                for b in 0..<blocks {
                    let block = p + b * 64
                    for t in 0..<16 {
                        w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: t * 4, as: UInt32.self))
                    }
                    for t in 16..<64 {
                        let x = w[t - 15], y = w[t - 2]
                        let s0 = Self.rotr(x, 7) ^ Self.rotr(x, 18) ^ (x >> 3)
                        let s1 = Self.rotr(y, 17) ^ Self.rotr(y, 19) ^ (y >> 10)
                        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                    }
                    var a = h0, bb = h1, c = h2, d = h3, e = h4, f = h5, g = h6, hh = h7
                    // Eight rounds per iteration with the working variables' roles rotated, so no
                    // moves between rounds.
                    var t = 0
                    while t < 64 {
                        Self.round(a, bb, c, &d, e, f, g, &hh, k[t] &+ w[t])
                        Self.round(hh, a, bb, &c, d, e, f, &g, k[t + 1] &+ w[t + 1])
                        Self.round(g, hh, a, &bb, c, d, e, &f, k[t + 2] &+ w[t + 2])
                        Self.round(f, g, hh, &a, bb, c, d, &e, k[t + 3] &+ w[t + 3])
                        Self.round(e, f, g, &hh, a, bb, c, &d, k[t + 4] &+ w[t + 4])
                        Self.round(d, e, f, &g, hh, a, bb, &c, k[t + 5] &+ w[t + 5])
                        Self.round(c, d, e, &f, g, hh, a, &bb, k[t + 6] &+ w[t + 6])
                        Self.round(bb, c, d, &e, f, g, hh, &a, k[t + 7] &+ w[t + 7])
                        t += 8
                    }
                    h0 &+= a; h1 &+= bb; h2 &+= c; h3 &+= d; h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= hh
                }
            }
        }
        h = (h0, h1, h2, h3, h4, h5, h6, h7)
    }
}

/// SHA-1 (FIPS 180-4). Only for git object ids: it is not collision resistant.
public struct SHA1: BlockHashFunction {
    public static let digestSize = 20
    public var absorbed: UInt64 = 0
    public var pending: [UInt8] = []
    var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)

    public init() { pending.reserveCapacity(64) }

    public var stateWords: [UInt32] { [h.0, h.1, h.2, h.3, h.4] }

    @inline(__always) static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 &- n)) }

    public mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        var (h0, h1, h2, h3, h4) = h
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { wb in
            let w = wb.baseAddress!
            for b in 0..<blocks {
                let block = p + b * 64
                for t in 0..<16 {
                    w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: t * 4, as: UInt32.self))
                }
                for t in 16..<80 { w[t] = Self.rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1) }
                var a = h0, bb = h1, c = h2, d = h3, e = h4
                for t in 0..<80 {
                    let f: UInt32, k: UInt32
                    switch t {
                    case 0..<20: f = (bb & c) | (~bb & d); k = 0x5A827999
                    case 20..<40: f = bb ^ c ^ d; k = 0x6ED9EBA1
                    case 40..<60: f = (bb & c) | (bb & d) | (c & d); k = 0x8F1BBCDC
                    default: f = bb ^ c ^ d; k = 0xCA62C1D6
                    }
                    let temp = Self.rotl(a, 5) &+ f &+ e &+ k &+ w[t]
                    e = d; d = c; c = Self.rotl(bb, 30); bb = a; a = temp
                }
                h0 &+= a; h1 &+= bb; h2 &+= c; h3 &+= d; h4 &+= e
            }
        }
        h = (h0, h1, h2, h3, h4)
    }
}

/// One-shot helpers: hex digests of bytes and files, git blob ids.
public enum Hashing {
    /// Size of the chunks files are read in.
    public static let chunkSize = 1 << 20

    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(digest.count * 2)
        for b in digest { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func sha256Hex(_ data: Data) -> String { hex(SHA256.hash(data)) }
    public static func sha256Hex(fileAt path: String) throws -> String { hex(try SHA256.hash(fileAt: path)) }
    public static func sha1Hex(_ data: Data) -> String { hex(SHA1.hash(data)) }
    public static func sha1Hex(fileAt path: String) throws -> String { hex(try SHA1.hash(fileAt: path)) }

    /// The git object id of a blob: SHA-1 of `"blob <size>\0" + content` (what `git hash-object` prints).
    public static func gitBlobSHA1(data: Data) -> String {
        var h = SHA1()
        h.update("blob \(data.count)\0")
        h.update(data)
        return h.finalizeHex()
    }

    /// The git blob id of a file, streamed in 1 MiB chunks.
    public static func gitBlobSHA1(fileAt path: String) throws -> String {
        var st = stat()
        if stat(path, &st) != 0 { throw FileIOError.io(path: path, operation: "stat", errno: errno) }
        var h = SHA1()
        h.update("blob \(st.st_size)\0")
        let read = try readChunks(path) { h.update($0) }
        if read != Int64(st.st_size) {
            throw FileIOError.io(path: path, operation: "read (file changed while hashing)", errno: EIO)
        }
        return h.finalizeHex()
    }

    /// Calls `body` with successive chunks of the file (at most `chunkSize` bytes each); returns
    /// the number of bytes read. Only a regular file is read: it is opened non-blocking and a FIFO
    /// or a device is refused (`FileIOError.notRegular`), not read for ever.
    @discardableResult
    public static func readChunks(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw FileIOError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw FileIOError.io(path: path, operation: "fstat", errno: errno) }
        if st.st_mode & S_IFMT != S_IFREG { throw FileIOError.notRegular(path: path) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while true {
            let n = read(fd, buffer, chunkSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            total += Int64(n)
            try body(UnsafeRawBufferPointer(start: buffer, count: n))
        }
        return total
    }
}
