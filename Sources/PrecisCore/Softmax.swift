import PrecisAVX512
/// Row softmax for attention scores, with a key mask and an optional causal limit, and its backward.
public enum Softmax {
    /// In place over `rows` rows of `cols` scores each (row stride `ld`). For row i, key j takes part
    /// when `keyMask[j] == 1` (values are exactly 0 or 1; nil: all keys) and, if `causal`,
    /// j ≤ i + `causalOffset`. Excluded keys get probability exactly 0. A row with no allowed key becomes uniform over all keys, as an additive
    /// −∞-style mask does in PyTorch (every score shifted by the same large constant).
    public static func forward(
        _ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
        keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int = 0
    ) {
        if CPUFeatures.avx512 {
            AVX512Kernels.softmax(s, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal, causalOffset: causalOffset)
            return
        }
        Rows.softmax(s, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal, causalOffset: causalOffset)
    }

    /// dS = P ⊙ (dP − rowsum(dP ⊙ P)), written over dP.
    public static func backward(
        _ dp: UnsafeMutablePointer<Float>, p: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int
    ) {
        if CPUFeatures.avx512 {
            AVX512Kernels.softmaxBackward(dp, p: p, rows: rows, cols: cols, ld: ld)
            return
        }
        Rows.softmaxBackward(dp, p: p, rows: rows, cols: cols, ld: ld)
    }
}
