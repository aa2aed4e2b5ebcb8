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
        if let K = CPUFeatures.vectorKernels {
            K.softmax(s, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal, causalOffset: causalOffset)
            return
        }
        Rows.softmax(s, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal, causalOffset: causalOffset)
    }

    /// `forward` with an additive bias on the scores first, as T5's attention does
    /// (`scores += position_bias`, then the masked softmax): row i's first keys (up to its causal
    /// limit) get `bias[i·biasLd + j]` added, in place, then the same masking as `forward`. The
    /// bias of one head is shared by the batch: pass the same `bias` for every batch entry. The
    /// scores' gradient is `backward`'s; the bias's is the sum of those over the batch
    /// (`accumulateBiasGradient`).
    public static func forward(
        _ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, bias: UnsafePointer<Float>, biasLd: Int,
        keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int = 0
    ) {
        if let K = CPUFeatures.vectorKernels {
            K.softmax(s, bias: bias, biasLd: biasLd, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal,
                      causalOffset: causalOffset)
            return
        }
        Rows.softmax(s, bias: bias, biasLd: biasLd, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal,
                     causalOffset: causalOffset)
    }

    /// The additive bias's gradient: dBias[i·ldBias + j] += Σ_b dScores[b·batchStride + i·ld + j] over
    /// `rows` × `cols` values, b = 0..<batch in order (dScores from `backward`). For a
    /// [batch, heads, tq, tk] block of score gradients and a [heads, tq, tk] bias, pass rows =
    /// heads·tq, ld = ldBias = tk, batchStride = heads·tq·tk; for one tile, batch 1. Rows are
    /// spread over the workers; every value is summed over the batch in order whatever the split.
    public static func accumulateBiasGradient(
        dBias: UnsafeMutablePointer<Float>, ldBias: Int, dScores: UnsafePointer<Float>, ld: Int,
        rows: Int, cols: Int, batch: Int = 1, batchStride: Int = 0
    ) {
        Parallel.chunks(rows, grain: max(1, (1 << 14) / max(1, cols * batch))) { _, block in
            if let K = CPUFeatures.vectorKernels {
                K.accumulateBiasGradient(dBias: dBias, ldBias: ldBias, dScores: dScores, ld: ld, batch: batch,
                                         batchStride: batchStride, rows: block, cols: cols)
                return
            }
            Rows.accumulateBiasGradient(dBias: dBias, ldBias: ldBias, dScores: dScores, ld: ld, batch: batch, batchStride: batchStride,
                                        rows: block, cols: cols)
        }
    }

    /// dS = P ⊙ (dP − rowsum(dP ⊙ P)), written over dP.
    public static func backward(
        _ dp: UnsafeMutablePointer<Float>, p: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int
    ) {
        if let K = CPUFeatures.vectorKernels {
            K.softmaxBackward(dp, p: p, rows: rows, cols: cols, ld: ld)
            return
        }
        Rows.softmaxBackward(dp, p: p, rows: rows, cols: cols, ld: ld)
    }
}
