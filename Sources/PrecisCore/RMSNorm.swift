/// RMS norm over the last dimension, as T5's `T5LayerNorm`: y = γ · x / √(mean(x²) + eps), no mean
/// subtraction and no bias (variance Σx²/dim in fp32, h = x · rsqrt(variance + eps), y = γ · h).
/// Forward saves h (x̂) and 1/√(variance + eps) per row for the backward pass, as `LayerNorm` does.
/// The row kernels are PrecisKernels' (their AVX-512 or AVX2 build when the CPU has one).
public enum RMSNorm {
    public static func forward(
        y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
        x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float
    ) {
        Parallel.chunks(rows, grain: max(1, (1 << 14) / dim)) { _, block in
            if let K = CPUFeatures.vectorKernels {
                K.rmsNorm(y: y, xhat: xhat, rstd: rstd, x: x, gamma: gamma, rows: block, dim: dim, eps: eps)
                return
            }
            Rows.rmsNorm(y: y, xhat: xhat, rstd: rstd, x: x, gamma: gamma, rows: block, dim: dim, eps: eps)
        }
    }

    /// dx = r·(dh − h·mean(dh·h)) with dh = dy·γ and r = 1/√(variance + eps); dγ += Σ dy·h.
    /// `dx` is overwritten; it may alias `dy`. Rows are spread over the workers for dx, columns for
    /// dγ (so every sum runs over rows in order, whatever the thread count).
    public static func backward(
        dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
        xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        dgamma: UnsafeMutablePointer<Float>, rows: Int, dim: Int
    ) {
        // dγ first: dx may overwrite dy.
        if dim < 8 {
            Row.rmsNormParameterGradients(dgamma: dgamma, dy: dy, xhat: xhat, rows: rows, dim: dim, columns: 0, dim)
        } else {
            Parallel.chunks(dim / 8, grain: rows * 8 >= 1 << 14 ? 1 : dim) { _, blocks in
                let lo = blocks.lowerBound * 8, hi = blocks.upperBound == dim / 8 ? dim : blocks.upperBound * 8
                if let K = CPUFeatures.vectorKernels {
                    K.rmsNormParameterGradients(dgamma: dgamma, dy: dy, xhat: xhat, rows: rows, dim: dim, columns: lo, hi)
                } else {
                    Row.rmsNormParameterGradients(dgamma: dgamma, dy: dy, xhat: xhat, rows: rows, dim: dim, columns: lo, hi)
                }
            }
        }
        Parallel.chunks(rows, grain: max(1, (1 << 14) / dim)) { _, block in
            if let K = CPUFeatures.vectorKernels {
                K.rmsNormBackward(dx: dx, dy: dy, xhat: xhat, rstd: rstd, gamma: gamma, rows: block, dim: dim)
                return
            }
            Rows.rmsNormBackward(dx: dx, dy: dy, xhat: xhat, rstd: rstd, gamma: gamma, rows: block, dim: dim)
        }
    }
}
