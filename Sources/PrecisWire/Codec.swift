import CLZ4

/// How a shard of floats travels. Every codec is lossless except `bf16`, whose rounding error the
/// sender keeps and adds to the next shard it sends (error feedback), so nothing is lost over steps,
/// and `bf16Delta` (parameters only), a bf16 difference the receiver adds to the copy it holds
/// (`PullDelta`: the server keeps the residual, so the copy stays within one delta's rounding).
public enum Codec: UInt8, Sendable, CaseIterable, Codable {
    /// Raw little-endian fp32.
    case none = 0
    /// fp32, byte-shuffled (all first bytes, then all second bytes, …) with the top byte plane
    /// (sign and exponent) bit-transposed, then LZ4.
    case fp32 = 1
    /// Rounded to bfloat16 (round to nearest even), byte-shuffled with the top plane bit-transposed,
    /// then LZ4.
    case bf16 = 2
    /// Parameters only (`pull_codec: bf16-delta`): the payload is a `bf16` shard of the difference
    /// between the server's values and the copy the puller holds (the header's slot names that
    /// copy's version); the puller adds it. See `PullDelta`.
    case bf16Delta = 3

    public var bytesPerValue: Int { self == .bf16 || self == .bf16Delta ? 2 : 4 }

    /// The codec a config names (`none`, `fp32`, `bf16`, `bf16-delta`; the config reader validates the name).
    public init(name: String) {
        switch name {
        case "none": self = .none
        case "bf16": self = .bf16
        case "bf16-delta": self = .bf16Delta
        default: self = .fp32
        }
    }

    public var name: String {
        switch self {
        case .none: "none"
        case .fp32: "fp32"
        case .bf16: "bf16"
        case .bf16Delta: "bf16-delta"
        }
    }
}

/// Encodes and decodes float shards. Holds its scratch buffers so the steady state allocates nothing
/// beyond the output it returns; one codec object per sending or receiving thread.
public final class ShardCodec {
    /// The top byte plane as it is, then bit-transposed (scratch, reused).
    private var top = [UInt8]()
    private var transposed = [UInt8]()

    public init() {}

    /// The most bytes an encoding of `n` values can take.
    public static func bound(count n: Int, codec: Codec) -> Int {
        codec == .none ? n * 4 : n * (codec.bytesPerValue - 1) + Int(LZ4_compressBound(Int32(n)))
    }

    /// Encodes `values`. With `.bf16` and an `errorFeedback` buffer of the same length, the value sent is
    /// round(values + errorFeedback) and errorFeedback becomes what rounding lost (the error fed back into the next encode).
    public func encode(_ values: UnsafeBufferPointer<Float>, codec: Codec,
                       errorFeedback: UnsafeMutablePointer<Float>? = nil) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(1, Self.bound(count: values.count, codec: codec)))
        let written = try out.withUnsafeMutableBytes { try encode(values, codec: codec, errorFeedback: errorFeedback, into: $0.baseAddress!) }
        out.removeLast(out.count - written)
        return out
    }

    /// Encodes `values` into `out` (room for `bound(count:codec:)` bytes); returns the bytes written.
    /// The payload of the LZ4 codecs: the lower byte planes as they are (fp32: all lowest bytes, then
    /// all second, then all third bytes; bf16: the low bytes), then one LZ4 block of the top plane
    /// bit-transposed. The lower planes are mantissa bits, close to random, which LZ4 would only
    /// copy (slower than the copy itself); the top plane is sign and exponent.
    public func encode(_ values: UnsafeBufferPointer<Float>, codec: Codec, errorFeedback: UnsafeMutablePointer<Float>?,
                       into out: UnsafeMutableRawPointer) throws -> Int {
        let n = values.count
        if codec == .none {
            if n > 0 { out.copyMemory(from: values.baseAddress!, byteCount: n * 4) }
            return n * 4
        }
        guard n > 0 else { return try compressTop(0, into: out) }
        ensure(&top, n)
        top.withUnsafeMutableBytes { t in
            let p0 = out.assumingMemoryBound(to: UInt8.self)
            let pt = t.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch codec {
            case .none: break
            case .fp32:
                // One pass over the floats, byte planes written side by side (pointer loops: an
                // indexed byte loop runs 5-10x slower).
                let src = UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt32.self)
                let p1 = p0 + n, p2 = p1 + n
                for i in 0..<n {
                    let v = UInt32(littleEndian: src[i])
                    p0[i] = UInt8(truncatingIfNeeded: v); p1[i] = UInt8(truncatingIfNeeded: v >> 8)
                    p2[i] = UInt8(truncatingIfNeeded: v >> 16); pt[i] = UInt8(truncatingIfNeeded: v >> 24)
                }
            case .bf16, .bf16Delta:
                let src = values.baseAddress!
                if let r = errorFeedback {
                    for i in 0..<n {
                        let v = src[i] + r[i]
                        let h = Self.toBF16(v)
                        r[i] = v - Self.fromBF16(h)
                        p0[i] = UInt8(truncatingIfNeeded: h); pt[i] = UInt8(truncatingIfNeeded: h >> 8)
                    }
                } else {
                    for i in 0..<n {
                        let h = Self.toBF16(src[i])
                        p0[i] = UInt8(truncatingIfNeeded: h); pt[i] = UInt8(truncatingIfNeeded: h >> 8)
                    }
                }
            }
        }
        let low = n * (codec.bytesPerValue - 1)
        return low + (try compressTop(n, into: out + low))
    }

    /// Bit-transposes the first `n` bytes of `top` and writes them as one LZ4 block at `out`.
    private func compressTop(_ n: Int, into out: UnsafeMutableRawPointer) throws -> Int {
        ensure(&transposed, n)
        let bound = Int(LZ4_compressBound(Int32(n)))
        let written = top.withUnsafeBytes { t in
            transposed.withUnsafeMutableBytes { x in
                if n > 0 {
                    Self.bitTranspose(t.baseAddress!.assumingMemoryBound(to: UInt8.self), n, into: x.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
                return LZ4_compress_default(x.baseAddress!.assumingMemoryBound(to: CChar.self), out.assumingMemoryBound(to: CChar.self),
                                            Int32(n), Int32(bound))
            }
        }
        guard written > 0 else { throw WireError.lz4("compression failed") }
        return Int(written)
    }

    /// Decodes a payload of `count` values into `out`.
    public func decode(_ payload: UnsafeRawBufferPointer, codec: Codec, count n: Int, into out: UnsafeMutablePointer<Float>) throws {
        switch codec {
        case .none:
            guard payload.count == n * 4 else { throw WireError.lengthMismatch(field: "fp32 payload", expected: n * 4, got: payload.count) }
            if n > 0 { UnsafeMutableRawPointer(out).copyMemory(from: payload.baseAddress!, byteCount: n * 4) }
        case .fp32, .bf16, .bf16Delta:
            let low = n * (codec.bytesPerValue - 1)
            guard payload.count > low, let base = payload.baseAddress else {
                throw WireError.lengthMismatch(field: "\(codec.name) payload (at least)", expected: low + 1, got: payload.count)
            }
            ensure(&transposed, n)
            let got = transposed.withUnsafeMutableBytes { dst in
                LZ4_decompress_safe((base + low).assumingMemoryBound(to: CChar.self), dst.baseAddress!.assumingMemoryBound(to: CChar.self),
                                    Int32(payload.count - low), Int32(n))
            }
            guard got >= 0 else { throw WireError.lz4("corrupt compressed data (error \(got))") }
            guard Int(got) == n else { throw WireError.lengthMismatch(field: "decompressed top plane", expected: n, got: Int(got)) }
            guard n > 0 else { return }
            ensure(&top, n)
            transposed.withUnsafeBytes { x in
              top.withUnsafeMutableBytes { t in
                let pt = t.baseAddress!.assumingMemoryBound(to: UInt8.self)
                Self.bitUntranspose(x.baseAddress!.assumingMemoryBound(to: UInt8.self), n, into: pt)
                let p0 = base.assumingMemoryBound(to: UInt8.self)
                if codec == .fp32 {
                    let p1 = p0 + n, p2 = p1 + n
                    let dst = UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self)
                    for i in 0..<n {
                        dst[i] = (UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(pt[i]) << 24).littleEndian
                    }
                } else {
                    for i in 0..<n { out[i] = Float(bitPattern: (UInt32(p0[i]) | UInt32(pt[i]) << 8) << 16) }
                }
              }
            }
        }
    }

    /// The top byte plane (sign and exponent bits, or bf16's sign and 7 exponent bits) bit by bit:
    /// for `m = n / 8`, bytes k·m ..< (k+1)·m hold bit k of every byte, 8 bytes per output byte
    /// (byte i of a group of 8 in bit i), followed by the last `n % 8` bytes as they are. The
    /// exponent's high bits barely change, so LZ4 finds long runs where the byte plane has short
    /// matches only: about 5× faster to compress and a better ratio.
    @inline(__always)
    static func bitTranspose(_ src: UnsafePointer<UInt8>, _ n: Int, into dst: UnsafeMutablePointer<UInt8>) {
        let m = n / 8
        let raw = UnsafeRawPointer(src)
        for j in 0..<m {
            let x = transpose8x8(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * j, as: UInt64.self)))
            dst[j] = UInt8(truncatingIfNeeded: x); dst[m + j] = UInt8(truncatingIfNeeded: x >> 8)
            dst[2 * m + j] = UInt8(truncatingIfNeeded: x >> 16); dst[3 * m + j] = UInt8(truncatingIfNeeded: x >> 24)
            dst[4 * m + j] = UInt8(truncatingIfNeeded: x >> 32); dst[5 * m + j] = UInt8(truncatingIfNeeded: x >> 40)
            dst[6 * m + j] = UInt8(truncatingIfNeeded: x >> 48); dst[7 * m + j] = UInt8(truncatingIfNeeded: x >> 56)
        }
        for i in (8 * m)..<n { dst[i] = src[i] }
    }

    /// The inverse of `bitTranspose`.
    @inline(__always)
    static func bitUntranspose(_ src: UnsafePointer<UInt8>, _ n: Int, into dst: UnsafeMutablePointer<UInt8>) {
        let m = n / 8
        let out = UnsafeMutableRawPointer(dst)
        for j in 0..<m {
            var x = UInt64(src[j]) | UInt64(src[m + j]) << 8 | UInt64(src[2 * m + j]) << 16 | UInt64(src[3 * m + j]) << 24
            x |= UInt64(src[4 * m + j]) << 32 | UInt64(src[5 * m + j]) << 40 | UInt64(src[6 * m + j]) << 48 | UInt64(src[7 * m + j]) << 56
            out.storeBytes(of: transpose8x8(x).littleEndian, toByteOffset: 8 * j, as: UInt64.self)
        }
        for i in (8 * m)..<n { dst[i] = src[i] }
    }

    /// Transposes the 8×8 bit matrix whose row i is byte i of `x` (bit k of byte i ↔ bit i of byte k).
    @inline(__always)
    static func transpose8x8(_ x: UInt64) -> UInt64 {
        var x = x
        var t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA
        x ^= t ^ (t << 7)
        t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC
        x ^= t ^ (t << 14)
        t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0
        x ^= t ^ (t << 28)
        return x
    }

    private func ensure(_ buf: inout [UInt8], _ n: Int) {
        if buf.count < max(1, n) { buf = [UInt8](repeating: 0, count: max(1, n)) }
    }

    /// fp32 → bf16, round to nearest even (NaN stays NaN).
    @inline(__always) public static func toBF16(_ v: Float) -> UInt16 {
        let b = v.bitPattern
        if v.isNaN { return UInt16(b >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    @inline(__always) public static func fromBF16(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}
