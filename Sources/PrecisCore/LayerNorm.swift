/// LayerNorm over the last dimension: y = (x − mean) / sqrt(var + eps) · γ + β (biased variance, as
/// PyTorch). Forward saves x̂ and 1/σ per row for the backward pass. The row kernels are
/// PrecisKernels' (their AVX-512 or AVX2 build when the CPU has one).
public enum LayerNorm {
    public static func forward(
        y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
        x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        rows: Int, dim: Int, eps: Float
    ) {
        Parallel.chunks(rows, grain: max(1, (1 << 14) / dim)) { _, block in
            if let K = CPUFeatures.vectorKernels {
                K.layerNorm(y: y, xhat: xhat, rstd: rstd, x: x, gamma: gamma, beta: beta, rows: block, dim: dim, eps: eps)
                return
            }
            Rows.layerNorm(y: y, xhat: xhat, rstd: rstd, x: x, gamma: gamma, beta: beta, rows: block, dim: dim, eps: eps)
        }
    }

    /// dx = (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ; dγ += Σ dy·x̂; dβ += Σ dy.
    /// `dx` is overwritten; it may alias `dy`. Rows are spread over the workers for dx, columns for
    /// dγ and dβ (so every sum runs over rows in order, whatever the thread count).
    public static func backward(
        dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
        xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
        rows: Int, dim: Int
    ) {
        // dγ, dβ first: dx may overwrite dy.
        if dim < 8 {
            Row.layerNormParameterGradients(dgamma: dgamma, dbeta: dbeta, dy: dy, xhat: xhat, rows: rows, dim: dim, columns: 0, dim)
        } else {
            Parallel.chunks(dim / 8, grain: rows * 8 >= 1 << 14 ? 1 : dim) { _, blocks in
                let lo = blocks.lowerBound * 8, hi = blocks.upperBound == dim / 8 ? dim : blocks.upperBound * 8
                if let K = CPUFeatures.vectorKernels {
                    K.layerNormParameterGradients(dgamma: dgamma, dbeta: dbeta, dy: dy, xhat: xhat, rows: rows, dim: dim,
                                                  columns: lo, hi)
                } else {
                    Row.layerNormParameterGradients(dgamma: dgamma, dbeta: dbeta, dy: dy, xhat: xhat, rows: rows, dim: dim, columns: lo, hi)
                }
            }
        }
        Parallel.chunks(rows, grain: max(1, (1 << 14) / dim)) { _, block in
            if let K = CPUFeatures.vectorKernels {
                K.layerNormBackward(dx: dx, dy: dy, xhat: xhat, rstd: rstd, gamma: gamma, rows: block, dim: dim)
                return
            }
            Rows.layerNormBackward(dx: dx, dy: dy, xhat: xhat, rstd: rstd, gamma: gamma, rows: block, dim: dim)
        }
    }
}
