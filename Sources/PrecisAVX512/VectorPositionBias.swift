import PrecisKernels

// Attention's softmax with an additive position bias and the bias's gradient (PrecisKernels'
// `Rows.softmax(_:bias:…)` / `Rows.accumulateBiasGradient`), compiled here for this module's
// ISA (same operations, same bits).
extension VectorKernels {
    /// `Softmax.forward(_:bias:…)` over `rows` rows `ld` apart.
    @inline(never)
    public static func softmax(_ s: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, biasLd: Int, rows: Int, cols: Int, ld: Int,
                               keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int) {
        Rows.softmax(s, bias: bias, biasLd: biasLd, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal,
                     causalOffset: causalOffset)
    }

    /// `Softmax.accumulateBiasGradient` over rows `rows`.
    @inline(never)
    public static func accumulateBiasGradient(dBias: UnsafeMutablePointer<Float>, ldBias: Int, dScores: UnsafePointer<Float>, ld: Int,
                                              batch: Int, batchStride: Int, rows: Range<Int>, cols: Int) {
        Rows.accumulateBiasGradient(dBias: dBias, ldBias: ldBias, dScores: dScores, ld: ld, batch: batch, batchStride: batchStride,
                                    rows: rows, cols: cols)
    }
}
