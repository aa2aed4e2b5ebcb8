/// Products of the attention heads (see `PrecisCore.HeadGemm`), without OpenBLAS's packing.
///
/// Every per-head product of attention is C[m × n] = α · Σₖ a(i, k) · B[k, j] where B's rows are
/// contiguous (V, K, Q or dctx: one head's 64 columns; Kᵀ or Vᵀ once transposed) and a(i, k) is an
/// element of a matrix read along its rows or its columns. Row blocks of C live in registers
/// (6 rows × 64 columns = 24 AVX-512 accumulators) while k runs: each step loads one row of B
/// (4 vectors) and broadcasts 6 elements of a, 24 fused multiply-adds per 10 loads, so the FMA
/// units, not the loads, set the pace, and nothing is copied first. OpenBLAS packs both operands of
/// every call, which for these thin shapes (k or n = 64) costs a fifth of the work.
extension AVX512Kernels {
    /// Six rows of 64 accumulators.
    private struct Acc {
        var r0: (F16, F16, F16, F16), r1: (F16, F16, F16, F16), r2: (F16, F16, F16, F16)
        var r3: (F16, F16, F16, F16), r4: (F16, F16, F16, F16), r5: (F16, F16, F16, F16)
    }

    @inline(__always)
    private static func fma4(_ r: inout (F16, F16, F16, F16), _ s: Float, _ b0: F16, _ b1: F16, _ b2: F16, _ b3: F16) {
        let v = F16(repeating: s)
        r.0 = r.0.addingProduct(v, b0); r.1 = r.1.addingProduct(v, b1)
        r.2 = r.2.addingProduct(v, b2); r.3 = r.3.addingProduct(v, b3)
    }

    @inline(__always)
    private static func store4(_ r: (F16, F16, F16, F16), _ alpha: F16, _ c: UnsafeMutablePointer<Float>) {
        store(r.0 * alpha, c); store(r.1 * alpha, c + 16); store(r.2 * alpha, c + 32); store(r.3 * alpha, c + 48)
    }

    /// C[m × n] = α · Σₖ a[i·rowStride + k·kStride] · b[k·ldb + j] (C overwritten, rows `ldc` apart).
    /// `pad` holds at least 16·min(k, 128) floats when n is not a multiple of 16 (the last columns of B are
    /// copied there, zero-padded, so they run through the same vector code).
    @inline(never)
    public static func broadcastGemm(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, rowStride: Int,
                                     kStride: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>,
                                     ldc: Int, pad: UnsafeMutablePointer<Float>?) {
        // k in chunks of `depth` rows of B (32 KB of a 64-column block), which stay in L1 while every
        // row block of C runs over them; C carries the partial sums between chunks, scaled by α at
        // the last. (Measured in the step: 128 a little ahead of 64 and of no chunking.)
        let depth = 128
        var k0 = 0
        repeat {
            let kc = min(depth, k - k0), first = k0 == 0, last = k0 + kc >= k
            let av = F16(repeating: last ? alpha : 1)
            let ak = a + k0 * kStride, bk = b + k0 * ldb
            var j0 = 0
            while j0 + 64 <= n {
                block64(m: m, k: kc, av: av, first: first, a: ak, rs: rowStride, ks: kStride, b: bk + j0, ldb: ldb,
                        c: c + j0, ldc: ldc)
                j0 += 64
            }
            while j0 + 16 <= n {
                block16(m: m, k: kc, av: av, first: first, a: ak, rs: rowStride, ks: kStride, b: bk + j0, ldb: ldb,
                        c: c + j0, ldc: ldc, width: 16)
                j0 += 16
            }
            if j0 < n {
                let w = n - j0
                guard let pad else { preconditionFailure("broadcastGemm: n % 16 != 0 needs a pad of 16·k floats") }
                for kk in 0..<kc {
                    let src = bk + kk * ldb + j0, dst = pad + kk * 16
                    for j in 0..<16 { dst[j] = j < w ? src[j] : 0 }
                }
                block16(m: m, k: kc, av: av, first: first, a: ak, rs: rowStride, ks: kStride, b: pad, ldb: 16,
                        c: c + j0, ldc: ldc, width: w)
            }
            k0 += kc
        } while k0 < k
    }

    /// Columns 0..<64 of C.
    @inline(__always)
    private static func block64(m: Int, k: Int, av: F16, first: Bool, a: UnsafePointer<Float>, rs: Int, ks: Int,
                                b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let z = (F16(), F16(), F16(), F16())
        @inline(__always) func start(_ p: UnsafeMutablePointer<Float>) -> (F16, F16, F16, F16) {
            first ? z : (load(p), load(p + 16), load(p + 32), load(p + 48))
        }
        var i = 0
        while i + 6 <= m {
            let ci = c + i * ldc
            var acc = Acc(r0: start(ci), r1: start(ci + ldc), r2: start(ci + 2 * ldc), r3: start(ci + 3 * ldc),
                          r4: start(ci + 4 * ldc), r5: start(ci + 5 * ldc))
            var ap = a + i * rs, bp = b
            for _ in 0..<k {
                let b0 = load(bp), b1 = load(bp + 16), b2 = load(bp + 32), b3 = load(bp + 48)
                fma4(&acc.r0, ap[0], b0, b1, b2, b3)
                fma4(&acc.r1, ap[rs], b0, b1, b2, b3)
                fma4(&acc.r2, ap[2 * rs], b0, b1, b2, b3)
                fma4(&acc.r3, ap[3 * rs], b0, b1, b2, b3)
                fma4(&acc.r4, ap[4 * rs], b0, b1, b2, b3)
                fma4(&acc.r5, ap[5 * rs], b0, b1, b2, b3)
                ap += ks; bp += ldb
            }
            store4(acc.r0, av, ci); store4(acc.r1, av, ci + ldc); store4(acc.r2, av, ci + 2 * ldc)
            store4(acc.r3, av, ci + 3 * ldc); store4(acc.r4, av, ci + 4 * ldc); store4(acc.r5, av, ci + 5 * ldc)
            i += 6
        }
        while i < m {
            var r = start(c + i * ldc)
            var ap = a + i * rs, bp = b
            for _ in 0..<k {
                fma4(&r, ap[0], load(bp), load(bp + 16), load(bp + 32), load(bp + 48))
                ap += ks; bp += ldb
            }
            store4(r, av, c + i * ldc)
            i += 1
        }
    }

    /// Columns 0..<width (≤ 16) of C, B's rows read 16 wide.
    @inline(__always)
    private static func block16(m: Int, k: Int, av: F16, first: Bool, a: UnsafePointer<Float>, rs: Int, ks: Int,
                                b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, width: Int) {
        @inline(__always) func put(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
            if width == 16 { store(v * av, p) } else { let s = v * av; for j in 0..<width { p[j] = s[j] } }
        }
        @inline(__always) func start(_ p: UnsafeMutablePointer<Float>) -> F16 {
            if first { return F16() }
            if width == 16 { return load(p) }
            var v = F16(); for j in 0..<width { v[j] = p[j] }; return v
        }
        var i = 0
        while i + 6 <= m {
            let ci = c + i * ldc
            var c0 = start(ci), c1 = start(ci + ldc), c2 = start(ci + 2 * ldc), c3 = start(ci + 3 * ldc)
            var c4 = start(ci + 4 * ldc), c5 = start(ci + 5 * ldc)
            var ap = a + i * rs, bp = b
            for _ in 0..<k {
                let bv = load(bp)
                c0 = c0.addingProduct(F16(repeating: ap[0]), bv); c1 = c1.addingProduct(F16(repeating: ap[rs]), bv)
                c2 = c2.addingProduct(F16(repeating: ap[2 * rs]), bv); c3 = c3.addingProduct(F16(repeating: ap[3 * rs]), bv)
                c4 = c4.addingProduct(F16(repeating: ap[4 * rs]), bv); c5 = c5.addingProduct(F16(repeating: ap[5 * rs]), bv)
                ap += ks; bp += ldb
            }
            put(c0, ci); put(c1, ci + ldc); put(c2, ci + 2 * ldc); put(c3, ci + 3 * ldc); put(c4, ci + 4 * ldc); put(c5, ci + 5 * ldc)
            i += 6
        }
        while i < m {
            var c0 = start(c + i * ldc)
            var ap = a + i * rs, bp = b
            for _ in 0..<k {
                c0 = c0.addingProduct(F16(repeating: ap[0]), load(bp))
                ap += ks; bp += ldb
            }
            put(c0, c + i * ldc)
            i += 1
        }
    }

    /// t[kk·n + j] = b[j·ldb + kk] for j < n, kk < k: the k × n transpose of an n × k block.
    @inline(never)
    public static func transpose(_ t: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows n: Int, cols k: Int, ldb: Int) {
        var j = 0
        while j + 16 <= n {
            // 16 rows of b at a time: each output row gets 16 contiguous floats.
            for kk in 0..<k {
                var v = F16()
                for r in 0..<16 { v[r] = b[(j + r) * ldb + kk] }
                store(v, t + kk * n + j)
            }
            j += 16
        }
        while j < n {
            for kk in 0..<k { t[kk * n + j] = b[j * ldb + kk] }
            j += 1
        }
    }
}
