// Portable bodies of attention's softmax with an additive position bias (T5's relative position
// bias: `scores += position_bias` before the softmax, one bias per (head, query, key) shared by the
// batch) and of the bias's gradient. Compiled again for AVX-512 by PrecisAVX512 (same operations in
// the same order, so the same bits).

extension Row {
    /// row[j] += bias[j] for the first `limit` keys, then `softmax(row, limit:cols:keyMask:)`: the
    /// same masking (keys at or past `limit` and keys whose mask value is 0 get exactly 0; a row with
    /// no allowed key becomes uniform over all `cols` keys).
    @inlinable @inline(__always)
    public static func softmax(_ row: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, limit: Int, cols: Int,
                               keyMask: UnsafePointer<Float>?) {
        accumulate(row, bias, limit)
        softmax(row, limit: limit, cols: cols, keyMask: keyMask)
    }

    /// y += x over n values.
    @inlinable @inline(__always)
    public static func accumulate(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(load8(y + i) + load8(x + i), y + i); i += 8 }
        while i < n { y[i] += x[i]; i += 1 }
    }
}

extension Rows {
    /// Softmax over `rows` rows `ld` apart after adding the bias rows (`biasLd` apart) to the scores;
    /// row i sees keys up to i + `causalOffset` when `causal`.
    @inlinable @inline(__always)
    public static func softmax(_ s: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, biasLd: Int, rows: Int, cols: Int, ld: Int,
                               keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int) {
        for i in 0..<rows {
            Row.softmax(s + i * ld, bias: bias + i * biasLd, limit: causal ? min(cols, i + causalOffset + 1) : cols, cols: cols,
                        keyMask: keyMask)
        }
    }

    /// The bias's gradient: for rows `rows` of `cols` values, dBias[i, ·] += Σ_b dScores[b, i, ·],
    /// b = 0..<batch in order (score row i of batch entry b at b·batchStride + i·ld, bias row i at
    /// i·ldBias). Each value is summed in the same order however the rows are split.
    @inlinable @inline(__always)
    public static func accumulateBiasGradient(dBias: UnsafeMutablePointer<Float>, ldBias: Int, dScores: UnsafePointer<Float>, ld: Int,
                                              batch: Int, batchStride: Int, rows: Range<Int>, cols: Int) {
        for i in rows {
            for b in 0..<batch {
                Row.accumulate(dBias + i * ldBias, dScores + b * batchStride + i * ld, cols)
            }
        }
    }
}
