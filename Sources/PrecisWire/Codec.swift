import CLZ4

/// How a shard of floats travels. Every codec is lossless except `bf16`, whose rounding error the
/// sender keeps and adds to the next shard it sends (error feedback), so nothing is lost over steps.
public enum Codec: UInt8, Sendable, CaseIterable, Codable {
    /// Raw little-endian fp32.
    case none = 0
    /// fp32, byte-shuffled (all first bytes, then all second bytes, …), then LZ4.
    case fp32 = 1
    /// Rounded to bfloat16 (round to nearest even), byte-shuffled, then LZ4.
    case bf16 = 2

    public var bytesPerValue: Int { self == .bf16 ? 2 : 4 }

    /// The codec a config names (`none`, `fp32`, `bf16`; the config reader validates the name).
    public init(name: String) {
        switch name {
        case "none": self = .none
        case "bf16": self = .bf16
        default: self = .fp32
        }
    }

    public var name: String { self == .none ? "none" : self == .fp32 ? "fp32" : "bf16" }
}

/// Encodes and decodes float shards. Holds its scratch buffers so the steady state allocates nothing
/// beyond the output it returns; one codec object per sending or receiving thread.
public final class ShardCodec {
    private var plane = [UInt8]()
    private var packed = [UInt8]()

    public init() {}

    /// Encodes `values`. With `.bf16` and a `residual` buffer of the same length, the value sent is
    /// round(values + residual) and residual becomes what rounding lost.
    public func encode(_ values: UnsafeBufferPointer<Float>, codec: Codec,
                       residual: UnsafeMutablePointer<Float>? = nil) throws -> [UInt8] {
        let n = values.count
        if codec == .none { return Array(UnsafeRawBufferPointer(values)) }
        let p = try shuffle(values, codec: codec, residual: residual)
        return try compress(p, count: n * codec.bytesPerValue)
    }

    /// The byte planes of `values` (fp32: 4 planes; bf16: the rounded values' 2 planes, with error
    /// feedback through `residual`), in the codec's scratch buffer.
    func shuffle(_ values: UnsafeBufferPointer<Float>, codec: Codec, residual: UnsafeMutablePointer<Float>?) throws -> [UInt8] {
        let n = values.count
        switch codec {
        case .none:
            return []
        case .fp32:
            ensure(&plane, n * 4)
            plane.withUnsafeMutableBytes { out in
                // One pass over the floats, four byte planes written side by side (pointer loops: an
                // indexed byte loop runs 5-10x slower).
                let src = UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt32.self)
                let p0 = out.baseAddress!.assumingMemoryBound(to: UInt8.self), p1 = p0 + n, p2 = p1 + n, p3 = p2 + n
                for i in 0..<n {
                    let v = UInt32(littleEndian: src[i])
                    p0[i] = UInt8(truncatingIfNeeded: v); p1[i] = UInt8(truncatingIfNeeded: v >> 8)
                    p2[i] = UInt8(truncatingIfNeeded: v >> 16); p3[i] = UInt8(truncatingIfNeeded: v >> 24)
                }
            }
        case .bf16:
            ensure(&plane, n * 2)
            plane.withUnsafeMutableBytes { out in
                let p0 = out.baseAddress!.assumingMemoryBound(to: UInt8.self), p1 = p0 + n
                let src = values.baseAddress!
                if let r = residual {
                    for i in 0..<n {
                        let v = src[i] + r[i]
                        let h = Self.toBF16(v)
                        r[i] = v - Self.fromBF16(h)
                        p0[i] = UInt8(truncatingIfNeeded: h); p1[i] = UInt8(truncatingIfNeeded: h >> 8)
                    }
                } else {
                    for i in 0..<n {
                        let h = Self.toBF16(src[i])
                        p0[i] = UInt8(truncatingIfNeeded: h); p1[i] = UInt8(truncatingIfNeeded: h >> 8)
                    }
                }
            }
        }
        return plane
    }

    /// Decodes a payload of `count` values into `out`.
    public func decode(_ payload: UnsafeRawBufferPointer, codec: Codec, count n: Int, into out: UnsafeMutablePointer<Float>) throws {
        switch codec {
        case .none:
            guard payload.count == n * 4 else { throw WireError.lengthMismatch(field: "fp32 payload", expected: n * 4, got: payload.count) }
            UnsafeMutableRawPointer(out).copyMemory(from: payload.baseAddress!, byteCount: n * 4)
        case .fp32, .bf16:
            let raw = n * codec.bytesPerValue
            ensure(&plane, raw)
            let got = plane.withUnsafeMutableBytes { dst in
                LZ4_decompress_safe(payload.baseAddress!.assumingMemoryBound(to: CChar.self),
                                    dst.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(payload.count), Int32(raw))
            }
            guard got >= 0 else { throw WireError.lz4("corrupt compressed data (error \(got))") }
            guard Int(got) == raw else { throw WireError.lengthMismatch(field: "decompressed shard", expected: raw, got: Int(got)) }
            plane.withUnsafeBytes { src in
                let p0 = src.baseAddress!.assumingMemoryBound(to: UInt8.self), p1 = p0 + n
                if codec == .fp32 {
                    let p2 = p1 + n, p3 = p2 + n
                    let dst = UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self)
                    for i in 0..<n {
                        dst[i] = (UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(p3[i]) << 24).littleEndian
                    }
                } else {
                    for i in 0..<n { out[i] = Float(bitPattern: (UInt32(p0[i]) | UInt32(p1[i]) << 8) << 16) }
                }
            }
        }
    }

    private func compress(_ input: [UInt8], count: Int) throws -> [UInt8] {
        let bound = Int(LZ4_compressBound(Int32(count)))
        ensure(&packed, bound)
        let written = input.withUnsafeBytes { src in
            packed.withUnsafeMutableBytes { dst in
                LZ4_compress_default(src.baseAddress!.assumingMemoryBound(to: CChar.self),
                                     dst.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(count), Int32(bound))
            }
        }
        guard written > 0 || count == 0 else { throw WireError.lz4("compression failed") }
        return Array(packed[0..<Int(written)])
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
