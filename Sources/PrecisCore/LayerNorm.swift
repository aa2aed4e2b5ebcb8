/// LayerNorm over the last dimension: y = (x − mean) / sqrt(var + eps) · γ + β (biased variance, as
/// PyTorch). Forward saves x̂ and 1/σ per row for the backward pass.
public enum LayerNorm {
    public static func forward(
        y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
        x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        rows: Int, dim: Int, eps: Float
    ) {
        let invD = 1 / Float(dim)
        Parallel.chunks(rows, grain: max(1, (1 << 14) / dim)) { _, block in
        for r in block {
            let xr = x + r * dim, hr = xhat + r * dim, yr = y + r * dim
            let mean = Vec.total(xr, dim) * invD
            // Two-pass variance for accuracy.
            var acc = F8()
            let mv = F8(repeating: mean)
            var i = 0
            while i + 8 <= dim { let d = load8(xr + i) - mv; acc += d * d; i += 8 }
            var ss = acc.sum()
            while i < dim { let d = xr[i] - mean; ss += d * d; i += 1 }
            let rs = 1 / (ss * invD + eps).squareRoot()
            rstd[r] = rs
            let rv = F8(repeating: rs)
            i = 0
            while i + 8 <= dim {
                let h = (load8(xr + i) - mv) * rv
                store8(h, hr + i)
                store8(h * load8(gamma + i) + load8(beta + i), yr + i)
                i += 8
            }
            while i < dim {
                let h = (xr[i] - mean) * rs
                hr[i] = h
                yr[i] = h * gamma[i] + beta[i]
                i += 1
            }
        }
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
        Parallel.chunks(dim / 8, grain: rows * 8 >= 1 << 14 ? 1 : dim) { _, blocks in
            let lo = blocks.lowerBound * 8, hi = blocks.upperBound == dim / 8 ? dim : blocks.upperBound * 8
            for r in 0..<rows {
                let dyr = dy + r * dim, hr = xhat + r * dim
                var i = lo
                while i + 8 <= hi {
                    let g = load8(dyr + i)
                    store8(load8(dgamma + i) + g * load8(hr + i), dgamma + i)
                    store8(load8(dbeta + i) + g, dbeta + i)
                    i += 8
                }
                while i < hi { dgamma[i] += dyr[i] * hr[i]; dbeta[i] += dyr[i]; i += 1 }
            }
        }
        if dim < 8 {
            for r in 0..<rows {
                for i in 0..<dim { dgamma[i] += dy[r * dim + i] * xhat[r * dim + i]; dbeta[i] += dy[r * dim + i] }
            }
        }
        let invD = 1 / Float(dim)
        Parallel.chunks(rows, grain: max(1, (1 << 14) / dim)) { _, block in
            for r in block {
                let dyr = dy + r * dim, hr = xhat + r * dim, dxr = dx + r * dim
                var s1 = F8(), s2 = F8()
                var i = 0
                while i + 8 <= dim {
                    let dh = load8(dyr + i) * load8(gamma + i)
                    s1 += dh
                    s2 += dh * load8(hr + i)
                    i += 8
                }
                var a = s1.sum(), b = s2.sum()
                while i < dim {
                    let dh = dyr[i] * gamma[i]
                    a += dh
                    b += dh * hr[i]
                    i += 1
                }
                let meanDh = a * invD, meanDhH = b * invD, rs = rstd[r]
                let mv = F8(repeating: meanDh), hv = F8(repeating: meanDhH), rv = F8(repeating: rs)
                i = 0
                while i + 8 <= dim {
                    let dh = load8(dyr + i) * load8(gamma + i)
                    store8(rv * (dh - mv - load8(hr + i) * hv), dxr + i)
                    i += 8
                }
                while i < dim {
                    let dh = dyr[i] * gamma[i]
                    dxr[i] = rs * (dh - meanDh - hr[i] * meanDhH)
                    i += 1
                }
            }
        }
    }
}
