import PrecisKernels

/// PrecisKernels' portable bodies (and a few loops of their own), compiled for one vector ISA: this
/// source is compiled twice, as `PrecisAVX512` (`-target-cpu skylake-avx512`) and as `PrecisAVX2`
/// (`-target-cpu haswell`, whose files are links to these), see Package.swift. Both builds perform
/// the portable kernels' operations lane for lane, so every ISA gives the same bits; only the width
/// of the instructions differs. Nothing here may run unless the CPU has the module's ISA:
/// `PrecisCore.CPUFeatures.vectorKernels` picks the widest module this CPU runs, or none. Every
/// function is `@inline(never)` so no wide instruction is inlined into portable code.
public enum VectorKernels: VectorKernelSet {
    typealias F16 = SIMD16<Float>
    typealias V8 = F8

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> F16 { UnsafeRawPointer(p).loadUnaligned(as: F16.self) }
    @inline(__always) static func store(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
    }

    /// Φ(x) and φ(x): PrecisKernels' `vnormal`, compiled here for this module's ISA.
    @inline(__always) static func normal(_ x: V8) -> (cdf: V8, pdf: V8) { vnormal(x) }

    /// Exact GELU, y = x·Φ(x), over n elements (n a multiple of 8; callers handle tails).
    @inline(never)
    public static func geluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load8(x + i)
            store8(v * normal(v).cdf, y + i)
            i += 8
        }
    }

    /// dx = dy·(Φ(x) + x·φ(x)) over n elements (a multiple of 8).
    @inline(never)
    public static func geluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load8(x + i)
            let (cdf, pdf) = normal(v)
            store8(load8(dy + i) * (cdf + v * pdf), dx + i)
            i += 8
        }
    }

    /// For backward through exact GELU without its saved output: x ← x·Φ(x) (the activation,
    /// recomputed in place over its input) and g ← g·(Φ(x) + x·φ(x)) (its input's gradient), with one
    /// evaluation of Φ and φ, over n elements (a multiple of 8).
    @inline(never)
    public static func geluRecomputeBackward(_ x: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load8(x + i)
            let (cdf, pdf) = normal(v)
            store8(load8(g + i) * (cdf + v * pdf), g + i)
            store8(v * cdf, x + i)
            i += 8
        }
    }

    /// y[r, o] = b[o] + Σᵢ x[r, i]·W[o, i] for up to 8 rows, with W packed as [O/16][I][16] (see
    /// `PackedWeights`), for the 16-output blocks in `blocks`. Streams each weight once: decoding a
    /// few rows is bound by reading the weights, which a packed GEMM would copy first.
    @inline(never)
    public static func packedMatmul(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, ldx: Int,
                                    packed: UnsafePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, inDim: Int,
                                    blocks: Range<Int>) {
        precondition(rows >= 1 && rows <= 8)
        for blk in blocks {
            let w = packed + blk * inDim * 16
            let b0 = bias.map { load($0 + blk * 16) } ?? F16()
            var a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0, a6 = b0, a7 = b0
            // Rows beyond `rows` read row 0 again (harmless) and are not stored.
            let x1 = x + (rows > 1 ? ldx : 0), x2 = x + (rows > 2 ? 2 * ldx : 0), x3 = x + (rows > 3 ? 3 * ldx : 0)
            let x4 = x + (rows > 4 ? 4 * ldx : 0), x5 = x + (rows > 5 ? 5 * ldx : 0), x6 = x + (rows > 6 ? 6 * ldx : 0)
            let x7 = x + (rows > 7 ? 7 * ldx : 0)
            for i in 0..<inDim {
                let wv = load(w + i * 16)
                a0 += wv * x[i]; a1 += wv * x1[i]; a2 += wv * x2[i]; a3 += wv * x3[i]
                a4 += wv * x4[i]; a5 += wv * x5[i]; a6 += wv * x6[i]; a7 += wv * x7[i]
            }
            let o = y + blk * 16
            store(a0, o)
            if rows > 1 { store(a1, o + ldy) }
            if rows > 2 { store(a2, o + 2 * ldy) }
            if rows > 3 { store(a3, o + 3 * ldy) }
            if rows > 4 { store(a4, o + 4 * ldy) }
            if rows > 5 { store(a5, o + 5 * ldy) }
            if rows > 6 { store(a6, o + 6 * ldy) }
            if rows > 7 { store(a7, o + 7 * ldy) }
        }
    }

    /// `AdamWUpdate.apply` over `count` values.
    @inline(never)
    public static func adamW(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                             v: UnsafeMutablePointer<Float>, count: Int, _ c: AdamWConstants) {
        AdamWUpdate.apply(params: params, grads: grads, m: m, v: v, count: count, c)
    }

    // The row kernels of PrecisKernels, compiled here for this module's ISA (same operations, same bits).

    /// `Softmax.forward` over `rows` rows `ld` apart.
    @inline(never)
    public static func softmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                               keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int) {
        Rows.softmax(s, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal, causalOffset: causalOffset)
    }

    /// `Softmax.backward` over `rows` rows `ld` apart.
    @inline(never)
    public static func softmaxBackward(_ dp: UnsafeMutablePointer<Float>, p: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int) {
        Rows.softmaxBackward(dp, p: p, rows: rows, cols: cols, ld: ld)
    }

    /// One row of `CrossEntropy`.
    @inline(never)
    public static func crossEntropy(_ z: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>?, label: Int,
                                    vocab: Int, eps: Float, scale: Float) -> Double {
        Row.crossEntropy(z, d, label: label, vocab: vocab, eps: eps, scale: scale)
    }

    /// One thread's run of `Dropout.apply`.
    @inline(never)
    public static func dropout(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int, threshold: UInt32,
                               scale: Float, seed: UInt64, stream: UInt32, offset: Int, bits: UnsafeMutablePointer<UInt8>?) {
        Row.dropout(y, x, count: n, threshold: threshold, scale: scale, seed: seed, stream: stream, offset: offset, bits: bits)
    }

    /// `LayerNorm.forward` over rows `rows` (rows `dim` apart).
    @inline(never)
    public static func layerNorm(y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                 x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                 rows: Range<Int>, dim: Int, eps: Float) {
        Rows.layerNorm(y: y, xhat: xhat, rstd: rstd, x: x, gamma: gamma, beta: beta, rows: rows, dim: dim, eps: eps)
    }

    /// `LayerNorm.backward`'s input gradient over rows `rows`.
    @inline(never)
    public static func layerNormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                         rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int) {
        Rows.layerNormBackward(dx: dx, dy: dy, xhat: xhat, rstd: rstd, gamma: gamma, rows: rows, dim: dim)
    }

    /// `LayerNorm.backward`'s dγ, dβ over columns lo..<hi.
    @inline(never)
    public static func layerNormParameterGradients(dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
                                                   dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rows: Int, dim: Int,
                                                   columns lo: Int, _ hi: Int) {
        Row.layerNormParameterGradients(dgamma: dgamma, dbeta: dbeta, dy: dy, xhat: xhat, rows: rows, dim: dim, columns: lo, hi)
    }
}
