import PrecisKernels

// RMS norm (PrecisKernels' `Row.rmsNorm…` / `Rows.rmsNorm…`), compiled here for this module's ISA
// (same operations, same bits).
extension VectorKernels {
    /// `RMSNorm.forward` over rows `rows` (rows `dim` apart).
    @inline(never)
    public static func rmsNorm(y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int, eps: Float) {
        Rows.rmsNorm(y: y, xhat: xhat, rstd: rstd, x: x, gamma: gamma, rows: rows, dim: dim, eps: eps)
    }

    /// `RMSNorm.backward`'s input gradient over rows `rows`.
    @inline(never)
    public static func rmsNormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                       rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int) {
        Rows.rmsNormBackward(dx: dx, dy: dy, xhat: xhat, rstd: rstd, gamma: gamma, rows: rows, dim: dim)
    }

    /// `RMSNorm.backward`'s dγ over columns lo..<hi.
    @inline(never)
    public static func rmsNormParameterGradients(dgamma: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                                 rows: Int, dim: Int, columns lo: Int, _ hi: Int) {
        Row.rmsNormParameterGradients(dgamma: dgamma, dy: dy, xhat: xhat, rows: rows, dim: dim, columns: lo, hi)
    }
}
