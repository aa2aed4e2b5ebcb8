// Portable bodies of RMS norm (T5's `T5LayerNorm`): no mean subtraction, no bias. Compiled again
// for AVX-512 by PrecisAVX512 (same operations in the same order, so the same bits).

extension Row {
    /// RMS norm of one row as transformers computes it: variance = mean(x²) (Σx² / dim),
    /// h = x · (1/√(variance + eps)) into `xhat`, y = γ · h; returns 1/√(variance + eps).
    @inlinable @inline(__always)
    public static func rmsNorm(_ y: UnsafeMutablePointer<Float>, xhat hr: UnsafeMutablePointer<Float>, _ xr: UnsafePointer<Float>,
                               gamma: UnsafePointer<Float>, dim: Int, eps: Float) -> Float {
        var acc = F8()
        var i = 0
        while i + 8 <= dim { let v = load8(xr + i); acc += v * v; i += 8 }
        var ss = acc.sum()
        while i < dim { ss += xr[i] * xr[i]; i += 1 }
        let rs = 1 / (ss / Float(dim) + eps).squareRoot()
        let rv = F8(repeating: rs)
        i = 0
        while i + 8 <= dim {
            let h = load8(xr + i) * rv
            store8(h, hr + i)
            store8(load8(gamma + i) * h, y + i)
            i += 8
        }
        while i < dim {
            let h = xr[i] * rs
            hr[i] = h
            y[i] = gamma[i] * h
            i += 1
        }
        return rs
    }

    /// dx = r·(dh − h·mean(dh·h)) with dh = dy·γ and r = 1/√(variance + eps), for one row (`dx`
    /// may be `dy`).
    @inlinable @inline(__always)
    public static func rmsNormBackward(_ dxr: UnsafeMutablePointer<Float>, _ dyr: UnsafePointer<Float>, xhat hr: UnsafePointer<Float>,
                                       gamma: UnsafePointer<Float>, rstd rs: Float, dim: Int) {
        var acc = F8()
        var i = 0
        while i + 8 <= dim { acc += load8(dyr + i) * load8(gamma + i) * load8(hr + i); i += 8 }
        var s = acc.sum()
        while i < dim { s += dyr[i] * gamma[i] * hr[i]; i += 1 }
        let meanDhH = s / Float(dim)
        let hv = F8(repeating: meanDhH), rv = F8(repeating: rs)
        i = 0
        while i + 8 <= dim {
            let dh = load8(dyr + i) * load8(gamma + i)
            store8(rv * (dh - load8(hr + i) * hv), dxr + i)
            i += 8
        }
        while i < dim {
            let dh = dyr[i] * gamma[i]
            dxr[i] = rs * (dh - hr[i] * meanDhH)
            i += 1
        }
    }

    /// dγ[lo..<hi] += Σ_rows dy·h (rows `dim` apart, summed in order).
    @inlinable @inline(__always)
    public static func rmsNormParameterGradients(dgamma: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                                 rows: Int, dim: Int, columns lo: Int, _ hi: Int) {
        for r in 0..<rows {
            let dyr = dy + r * dim, hr = xhat + r * dim
            var i = lo
            while i + 8 <= hi {
                store8(load8(dgamma + i) + load8(dyr + i) * load8(hr + i), dgamma + i)
                i += 8
            }
            while i < hi { dgamma[i] += dyr[i] * hr[i]; i += 1 }
        }
    }
}

extension Rows {
    /// RMS norm over rows `rows` (rows `dim` apart), 1/√(variance + eps) of row r into rstd[r].
    @inlinable @inline(__always)
    public static func rmsNorm(y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int, eps: Float) {
        for r in rows {
            rstd[r] = Row.rmsNorm(y + r * dim, xhat: xhat + r * dim, x + r * dim, gamma: gamma, dim: dim, eps: eps)
        }
    }

    /// RMS norm's input gradient over rows `rows`.
    @inlinable @inline(__always)
    public static func rmsNormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                       rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int) {
        for r in rows {
            Row.rmsNormBackward(dx + r * dim, dy + r * dim, xhat: xhat + r * dim, gamma: gamma, rstd: rstd[r], dim: dim)
        }
    }
}
