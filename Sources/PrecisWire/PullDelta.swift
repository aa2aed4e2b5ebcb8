/// The arithmetic of the `bf16-delta` pull codec, shared by the server and the worker so both do
/// the same float operations and end with the same bits.
///
/// The server keeps a **shadow** of each partition: the copy every puller on its chain holds. To
/// bring a copy from version b to v it sends δ = master(v) − shadow(b) rounded to bfloat16 (d̂) and
/// both sides set copy ← copy + d̂ (one fp32 addition per value, `add`). What rounding lost
/// (master − shadow) is not stored anywhere else: it is simply part of the next δ (error feedback),
/// so the copy never drifts. Per value, after any number of deltas:
///
///     |master(v) − copy(v)| ≤ 2⁻⁸·|δ|·(1 + 2⁻¹⁵) + 2⁻²⁴·|copy(v)| + 2⁻¹³⁴
///
/// where δ is the last delta (computed in fp32): bf16's round-to-nearest loses at most 2⁻⁸ of
/// |δ| (2⁻¹³⁴ absolute among subnormals), the fp32 subtraction 2⁻²⁴ of |δ| and the fp32 addition
/// 2⁻²⁴ of the result. `errorBound` is that right-hand side.
public enum PullDelta {
    /// copy[i] ← copy[i] + delta[i]: the one operation both sides apply (its bits are the same on both).
    public static func add(_ delta: UnsafePointer<Float>, to copy: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { copy[i] = copy[i] + delta[i] }
    }

    /// The server's side of one link: `delta` ← master − shadow (what is encoded and sent, as bf16),
    /// then shadow ← shadow + bf16(delta), exactly what a puller's `add` of the decoded payload does.
    public static func advance(shadow: UnsafeMutablePointer<Float>, toward master: UnsafePointer<Float>,
                               delta: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { delta[i] = master[i] - shadow[i] }
    }

    /// After `delta` was encoded: the shadow takes the decoded (bf16-rounded) delta.
    public static func commit(shadow: UnsafeMutablePointer<Float>, delta: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n { shadow[i] = shadow[i] + ShardCodec.fromBF16(ShardCodec.toBF16(delta[i])) }
    }

    /// The stated bound on |master − copy| for one value, given the last delta δ (fp32) and the copy.
    public static func errorBound(delta: Float, copy: Float) -> Double {
        Double(delta.magnitude) * 0x1p-8 * (1 + 0x1p-15) + Double(copy.magnitude) * 0x1p-24 + 0x1p-134
    }

    /// The bound from the delta a puller decoded (d̂, bf16) instead of the δ the server computed:
    /// |δ − d̂| ≤ 2⁻⁸|δ| + 2⁻¹³⁴ gives |δ| ≤ (|d̂| + 2⁻¹³⁴)/(1 − 2⁻⁸). What a test can check from a
    /// worker's copy, its last decoded delta and the server's master.
    public static func errorBound(decodedDelta: Float, copy: Float) -> Double {
        let delta = (Double(decodedDelta.magnitude) + 0x1p-134) / (1 - 0x1p-8)
        return delta * 0x1p-8 * (1 + 0x1p-15) + Double(copy.magnitude) * 0x1p-24 + 0x1p-134
    }

    /// The slot of a `bf16-delta` pull or reply: 1 + the base version (0: no base, a full reply).
    public static func slot(base: Int?) -> UInt32 {
        guard let base, base >= 0, base < Int(UInt32.max) else { return 0 }
        return UInt32(base + 1)
    }

    /// The base version a slot names (nil for 0).
    public static func base(slot: UInt32) -> Int? { slot == 0 ? nil : Int(slot) - 1 }
}
