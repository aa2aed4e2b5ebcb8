#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Portable bodies of the elementwise kernels: 8 float lanes at a time with a scalar tail, over
// caller-owned memory, allocating nothing. Everything is `@inlinable` so that each module compiles
// these bodies for its own target: PrecisCore for baseline x86-64 (any CPU), PrecisAVX512 for
// AVX-512 (run only after a CPU check). This module itself is compiled for the baseline, so a call
// that is not inlined (a debug build) still runs on any CPU. Both builds perform the same float
// operations in the same order (Swift does not contract a·b + c into an FMA), so they give the same
// bits.

public typealias F8 = SIMD8<Float>

/// The largest lane, as the standard library's `SIMD.max()` computes it (`Float.maximum` from lane
/// 0 up), written out: `max()` is emitted into each client module as a shared specialization, and
/// the copy compiled in `PrecisAVX512` (for skylake-avx512) could then be the one the linker keeps
/// for every module, so a CPU without AVX-512 would run AVX-512 instructions in the portable kernels.
/// `tools/check_isa_symbols.sh` checks that no such shared symbol is left.
@inlinable @inline(__always) public func laneMax(_ v: F8) -> Float {
    var m = v[0]
    m = Float.maximum(m, v[1]); m = Float.maximum(m, v[2]); m = Float.maximum(m, v[3])
    m = Float.maximum(m, v[4]); m = Float.maximum(m, v[5]); m = Float.maximum(m, v[6])
    return Float.maximum(m, v[7])
}

@inlinable @inline(__always) public func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inlinable @inline(__always) public func load8(_ p: UnsafeMutablePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inlinable @inline(__always) public func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

/// exp(x) for 8 lanes: Cody–Waite range reduction and a degree-6 polynomial (max relative error
/// ≈ 1e-7; inputs are clamped to [-87.3, 88.3], so exp(-inf) gives ≈1e-38, not 0). Rounding to an
/// integer uses the 1.5·2²³ "magic number" so that every operation stays a vector instruction
/// (Swift's generic SIMD rounding and Int conversion compile to scalar loops).
@inlinable @inline(__always) public func vexp(_ xIn: F8) -> F8 {
    let lo = F8(repeating: -87.3), hi = F8(repeating: 88.3)
    var x = xIn.replacing(with: lo, where: xIn .< lo)
    x = x.replacing(with: hi, where: x .> hi)
    let t = x * 1.44269504088896341 + 12582912.0
    let fx = t - 12582912.0
    let n = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    var r = x - fx * 0.693359375
    r = r + fx * 2.12194440e-4
    var p = F8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    // 2ⁿ built from its bits: (n + 127) · 2²³ (a multiply, since SIMD shifts are not vectorised).
    let scale = unsafeBitCast((n &+ 127) &* 8_388_608, to: F8.self)
    return p * scale
}

/// Scalar exp matching `vexp` lane for lane.
@inlinable @inline(__always) public func sexp(_ x: Float) -> Float { vexp(F8(repeating: x))[0] }

/// erf(a) for a ≥ 0 by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), and exp(−a²), which
/// it computes on the way.
@inlinable @inline(__always) public func verfAbs(_ a: F8) -> (erf: F8, expMinusSquare: F8) {
    let t = 1 / (1 + 0.3275911 * a)
    var p = F8(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    p = p * t
    let e = vexp(-(a * a))
    return (1 - p * e, e)
}

/// erf(x) for 8 lanes.
@inlinable @inline(__always) public func verf(_ x: F8) -> F8 {
    let y = verfAbs(x.replacing(with: -x, where: x .< 0)).erf
    return y.replacing(with: -y, where: x .< 0)
}

/// The standard normal CDF Φ(x) and density φ(x) for 8 lanes from one exponential: erf(x/√2) uses
/// exp(−x²/2), which is also √(2π)·φ(x).
@inlinable @inline(__always) public func vnormal(_ x: F8) -> (cdf: F8, pdf: F8) {
    let z = x * 0.70710678118654752
    let (erfAbs, e) = verfAbs(z.replacing(with: -z, where: z .< 0))
    let erf = erfAbs.replacing(with: -erfAbs, where: z .< 0)
    return (0.5 * (1 + erf), e * 0.3989422804014327)
}

/// Row kernels (one row, one thread).
public enum Row {
    /// max x (n ≥ 1)
    @inlinable @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if n >= 8 {
            var acc = load8(x)
            i = 8
            while i + 8 <= n { let v = load8(x + i); acc = acc.replacing(with: v, where: v .> acc); i += 8 }
            m = laneMax(acc)
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// Σ x
    @inlinable @inline(__always)
    public static func total(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F8()
        var i = 0
        while i + 8 <= n { acc += load8(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    /// Σ x·y, accumulated in 8 float lanes then reduced.
    @inlinable @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F8()
        var i = 0
        while i + 8 <= n { acc += load8(x + i) * load8(y + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

    /// x *= a
    @inlinable @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ n: Int) {
        var i = 0
        let av = F8(repeating: a)
        while i + 8 <= n { store8(load8(x + i) * av, x + i); i += 8 }
        while i < n { x[i] *= a; i += 1 }
    }

    /// Softmax in place over the first `limit` of `cols` scores; keys at or past `limit`, and keys
    /// whose `keyMask` value is 0 (values are exactly 0 or 1), get probability exactly 0. A row with
    /// no allowed key becomes uniform over all `cols` keys (as PyTorch's additive mask makes it).
    @inlinable @inline(__always)
    public static func softmax(_ row: UnsafeMutablePointer<Float>, limit: Int, cols: Int, keyMask: UnsafePointer<Float>?) {
        var m = -Float.infinity
        if let km = keyMask {
            // max over allowed keys, 8 lanes at a time (masked lanes count as −∞).
            let ninf = F8(repeating: -.infinity), zero = F8()
            var acc = ninf
            var j = 0
            while j + 8 <= limit {
                let v = load8(row + j).replacing(with: ninf, where: load8(km + j) .== zero)
                acc = acc.replacing(with: v, where: v .> acc)
                j += 8
            }
            m = laneMax(acc)
            while j < limit { if km[j] != 0 { m = Swift.max(m, row[j]) }; j += 1 }
        } else if limit > 0 {
            m = max(row, limit)
        }
        if m == -Float.infinity {
            row.update(repeating: 1 / Float(cols), count: cols)
            return
        }
        let mv = F8(repeating: m)
        var sum = F8()
        var j = 0
        var t: Float
        if let km = keyMask {
            while j + 8 <= limit {
                let e = vexp(load8(row + j) - mv) * load8(km + j)
                store8(e, row + j); sum += e; j += 8
            }
            t = sum.sum()
            while j < limit {
                let e: Float = km[j] != 0 ? sexp(row[j] - m) : 0
                row[j] = e; t += e; j += 1
            }
        } else {
            while j + 8 <= limit {
                let e = vexp(load8(row + j) - mv)
                store8(e, row + j); sum += e; j += 8
            }
            t = sum.sum()
            while j < limit { let e = sexp(row[j] - m); row[j] = e; t += e; j += 1 }
        }
        scale(row, 1 / t, limit)
        if limit < cols { (row + limit).update(repeating: 0, count: cols - limit) }
    }

    /// dS = P ⊙ (dP − Σ dP ⊙ P) over one row, written over dP.
    @inlinable @inline(__always)
    public static func softmaxBackward(_ g: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ cols: Int) {
        let d = dot(g, p, cols)
        let dv = F8(repeating: d)
        var j = 0
        while j + 8 <= cols { store8(load8(p + j) * (load8(g + j) - dv), g + j); j += 8 }
        while j < cols { g[j] = p[j] * (g[j] - d); j += 1 }
    }

    /// One row of label-smoothed cross-entropy fused with its gradient (see PrecisCore's
    /// `CrossEntropy`): returns the row's loss; writes scale·(softmax(z) − (1 − ε)·onehot − ε/V)
    /// into `d` (which may be `z`) unless it is nil. `label` is a valid index (ignored rows are the
    /// caller's).
    @inlinable @inline(__always)
    public static func crossEntropy(_ z: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>?, label: Int,
                                    vocab: Int, eps: Float, scale: Float) -> Double {
        let m = max(z, vocab)
        let zLabel = Double(z[label])
        let meanZ = eps != 0 ? Double(total(z, vocab)) / Double(vocab) : 0
        let mv = F8(repeating: m)
        var acc = F8()
        var j = 0
        var s: Float
        if let d {
            // exp(z − m) goes straight into the gradient buffer (z may be the same memory: read first).
            while j + 8 <= vocab { let e = vexp(load8(z + j) - mv); store8(e, d + j); acc += e; j += 8 }
            s = acc.sum()
            while j < vocab { let e = sexp(z[j] - m); d[j] = e; s += e; j += 1 }
            let inv = F8(repeating: 1 / s), sc = F8(repeating: scale), shift = F8(repeating: eps / Float(vocab))
            j = 0
            while j + 8 <= vocab { store8((load8(d + j) * inv - shift) * sc, d + j); j += 8 }
            while j < vocab { d[j] = (d[j] / s - eps / Float(vocab)) * scale; j += 1 }
            d[label] -= (1 - eps) * scale
        } else {
            while j + 8 <= vocab { acc += vexp(load8(z + j) - mv); j += 8 }
            s = acc.sum()
            while j < vocab { s += sexp(z[j] - m); j += 1 }
        }
        let lse = Double(m) + log(Double(s))
        return (1 - Double(eps)) * (lse - zLabel) + Double(eps) * (lse - meanZ)
    }

    /// Inverted dropout over n values with the counter-based mask of PrecisCore's `Dropout`: the
    /// keep decision of element i is a hash of (seed, stream, offset + i) compared with
    /// `threshold`; y = x · keep · scale, and, when `bits` is given, keep recorded one bit per
    /// value (bit i % 8 of byte i / 8; `offset` is then a multiple of 8). `y` may be `x`.
    @inlinable @inline(__always)
    public static func dropout(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int, threshold t: UInt32,
                               scale: Float, seed: UInt64, stream: UInt32, offset: Int, bits: UnsafeMutablePointer<UInt8>?) {
        let scale = F8(repeating: scale)
        let bitValues = SIMD8<Int32>(1, 2, 4, 8, 16, 32, 64, 128)
        var i = 0
        while i < n {
            let keep = dropoutKeep8(seed: seed, stream: stream, index: offset + i, threshold: t)
            if let bits {
                bits[i / 8] = UInt8(truncatingIfNeeded: SIMD8<Int32>(repeating: 0).replacing(with: bitValues, where: keep).wrappedSum())
            }
            if i + 8 <= n {
                let v = load8(x + i) * scale
                store8(F8(repeating: 0).replacing(with: v, where: keep), y + i)
            } else {
                for j in 0..<(n - i) { y[i + j] = keep[j] ? x[i + j] * scale[0] : 0 }
            }
            i += 8
        }
    }

    /// The keep decision for 8 consecutive elements starting at `index`.
    @inlinable @inline(__always)
    public static func dropoutKeep8(seed: UInt64, stream: UInt32, index: Int, threshold: UInt32) -> SIMDMask<SIMD8<Int32>> {
        let base = UInt32(truncatingIfNeeded: index)
        var h = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) &+ base
        let s0 = UInt32(truncatingIfNeeded: seed), s1 = UInt32(truncatingIfNeeded: seed >> 32)
        h ^= SIMD8(repeating: s0 &* 0x9E37_79B9) ^ SIMD8(repeating: stream &* 0x85EB_CA6B)
        h = mix(h)
        h ^= SIMD8(repeating: s1 ^ UInt32(truncatingIfNeeded: index >> 32))
        h = mix(h)
        return h .>= SIMD8(repeating: threshold)
    }

    /// murmur3's 32-bit finaliser, lane-wise.
    @inlinable @inline(__always)
    static func mix(_ x: SIMD8<UInt32>) -> SIMD8<UInt32> {
        var h = x
        h ^= h &>> 16
        h = h &* 0x85EB_CA6B
        h ^= h &>> 13
        h = h &* 0xC2B2_AE35
        h ^= h &>> 16
        return h
    }

    /// LayerNorm of one row: h = (x − mean)/σ into `xhat`, y = h·γ + β (two-pass biased variance, as
    /// PyTorch); returns 1/σ.
    @inlinable @inline(__always)
    public static func layerNorm(_ y: UnsafeMutablePointer<Float>, xhat hr: UnsafeMutablePointer<Float>, _ xr: UnsafePointer<Float>,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, dim: Int, eps: Float) -> Float {
        let invD = 1 / Float(dim)
        let mean = total(xr, dim) * invD
        var acc = F8()
        let mv = F8(repeating: mean)
        var i = 0
        while i + 8 <= dim { let d = load8(xr + i) - mv; acc += d * d; i += 8 }
        var ss = acc.sum()
        while i < dim { let d = xr[i] - mean; ss += d * d; i += 1 }
        let rs = 1 / (ss * invD + eps).squareRoot()
        let rv = F8(repeating: rs)
        i = 0
        while i + 8 <= dim {
            let h = (load8(xr + i) - mv) * rv
            store8(h, hr + i)
            store8(h * load8(gamma + i) + load8(beta + i), y + i)
            i += 8
        }
        while i < dim {
            let h = (xr[i] - mean) * rs
            hr[i] = h
            y[i] = h * gamma[i] + beta[i]
            i += 1
        }
        return rs
    }

    /// dx = (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ, for one row (`dx` may be `dy`).
    @inlinable @inline(__always)
    public static func layerNormBackward(_ dxr: UnsafeMutablePointer<Float>, _ dyr: UnsafePointer<Float>, xhat hr: UnsafePointer<Float>,
                                         gamma: UnsafePointer<Float>, rstd rs: Float, dim: Int) {
        let invD = 1 / Float(dim)
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
        let meanDh = a * invD, meanDhH = b * invD
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

    /// dγ[lo..<hi] += Σ_rows dy·x̂ and dβ[lo..<hi] += Σ_rows dy (rows `dim` apart, summed in order).
    @inlinable @inline(__always)
    public static func layerNormParameterGradients(dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
                                                   dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rows: Int, dim: Int,
                                                   columns lo: Int, _ hi: Int) {
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
}

/// The row kernels over many rows, as PrecisCore's kernels call them (portable) and PrecisAVX512
/// wraps them (AVX-512): one loop for both builds.
public enum Rows {
    /// Softmax over `rows` rows `ld` apart; row i sees keys up to i + `causalOffset` when `causal`.
    @inlinable @inline(__always)
    public static func softmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                               keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int) {
        for i in 0..<rows {
            Row.softmax(s + i * ld, limit: causal ? min(cols, i + causalOffset + 1) : cols, cols: cols, keyMask: keyMask)
        }
    }

    /// Softmax's backward over `rows` rows `ld` apart.
    @inlinable @inline(__always)
    public static func softmaxBackward(_ dp: UnsafeMutablePointer<Float>, p: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int) {
        for i in 0..<rows { Row.softmaxBackward(dp + i * ld, p + i * ld, cols) }
    }

    /// LayerNorm over rows `rows` (rows `dim` apart), 1/σ of row r into rstd[r].
    @inlinable @inline(__always)
    public static func layerNorm(y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                 x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                 rows: Range<Int>, dim: Int, eps: Float) {
        for r in rows {
            rstd[r] = Row.layerNorm(y + r * dim, xhat: xhat + r * dim, x + r * dim, gamma: gamma, beta: beta, dim: dim, eps: eps)
        }
    }

    /// LayerNorm's input gradient over rows `rows`.
    @inlinable @inline(__always)
    public static func layerNormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                         rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int) {
        for r in rows {
            Row.layerNormBackward(dx + r * dim, dy + r * dim, xhat: xhat + r * dim, gamma: gamma, rstd: rstd[r], dim: dim)
        }
    }
}
