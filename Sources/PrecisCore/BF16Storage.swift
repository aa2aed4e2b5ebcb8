/// 64-byte aligned bf16 (UInt16) storage of a packed operand, zeroed when made.
///
/// `@unchecked Sendable` because its memory is written only by the packing functions of
/// `PackedBF16Matrix` / `BF16Rows`, which run only while that value holds the sole reference
/// (`isKnownUniquelyReferenced`, copy-on-write otherwise) or before the value exists; every shared
/// copy only reads it.
package final class BF16Storage: @unchecked Sendable {
    let capacity: Int
    let pointer: UnsafeMutablePointer<UInt16>

    init(capacity: Int) {
        self.capacity = capacity
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, capacity) * 2, alignment: 64)
        pointer = raw.bindMemory(to: UInt16.self, capacity: max(1, capacity))
        pointer.initialize(repeating: 0, count: max(1, capacity))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// bf16 conversions (round to nearest even, NaN kept), the rounding every bf16 product applies to its inputs.
public enum BF16 {
    /// The bf16 bits of `x`.
    @inline(__always)
    public static func bits(_ x: Float) -> UInt16 {
        var u = x.bitPattern
        if u & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        u &+= 0x7fff &+ ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: u >> 16)
    }

    /// The fp32 value of bf16 bits (exact).
    @inline(__always)
    public static func value(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// `x` rounded to the nearest bf16 value.
    @inline(__always)
    public static func rounded(_ x: Float) -> Float { value(bits(x)) }
}
