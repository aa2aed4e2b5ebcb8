/// Products of the attention heads (see `PrecisCore.HeadGemm`), without OpenBLAS's packing.
///
/// Every per-head product of attention is C[m × n] = α · Σₖ a(i, k) · B[k, j] where B's rows are
/// contiguous (V, K, Q or dctx: one head's 64 columns; Kᵀ or Vᵀ once transposed) and a(i, k) is an
/// element of a matrix read along its rows or its columns. Row blocks of C live in registers
/// (6 rows × 64 columns = 24 AVX-512 accumulators) while k runs: each step loads one row of B
/// (4 vectors) and broadcasts 6 elements of a, 24 fused multiply-adds per 10 loads, so the FMA
/// units, not the loads, set the pace. Only B is copied (a k-chunk of a head's 64 columns, when its
/// rows are strided); OpenBLAS packs both operands of every call, which for these thin shapes
/// (k or n = 64) costs a fifth of its time.
extension VectorKernels {
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

    /// Floats of scratch `broadcastGemm` needs: one k-chunk of a 64-column block of B, packed, and
    /// one of 16 columns, zero-padded.
    public static let broadcastScratch = depth * 64 + depth * 16

    /// Rows of B per k-chunk: a packed chunk of a 64-column block is 32 KB, which stays in L1 while
    /// every row block of C runs over it. C carries the partial sums between chunks, scaled by α at
    /// the last. (Measured in the step: 128 a little ahead of 64 and of no chunking.)
    static let depth = 128

    /// C[m × n] = α · Σₖ a[i·rowStride + k·kStride] · B[k, j], C overwritten (rows `ldc` apart). B is
    /// row-major with rows `ldb` apart, or, when `ldb` is nil, in 64-column panels as `transposePanels`
    /// writes them. `scratch` holds `broadcastScratch` floats.
    @inline(never)
    public static func broadcastGemm(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, rowStride: Int,
                                     kStride: Int, b: UnsafePointer<Float>, ldb: Int?, c: UnsafeMutablePointer<Float>,
                                     ldc: Int, scratch: UnsafeMutablePointer<Float>) {
        let packed = scratch, pad = scratch + depth * 64
        var k0 = 0
        repeat {
            let kc = min(depth, k - k0), first = k0 == 0, last = k0 + kc >= k
            let av = F16(repeating: last ? alpha : 1)
            let ak = a + k0 * kStride
            var j0 = 0
            while j0 < n {
                let w = min(64, n - j0)
                // This chunk of the block's rows of B: `ld` apart from `src`.
                let (src, ld) = ldb.map { (b + k0 * $0 + j0, $0) } ?? (b + j0 * k + k0 * w, w)
                if w == 64 {
                    // Strided rows are copied together first (unless C has too few rows to repay it):
                    // one stream the prefetcher follows, half the L1 lines.
                    var bp = src, bld = ld
                    if ld != 64 && m >= 12 {
                        for kk in 0..<kc {
                            let r = src + kk * ld, d = packed + kk * 64
                            store(load(r), d); store(load(r + 16), d + 16); store(load(r + 32), d + 32); store(load(r + 48), d + 48)
                        }
                        bp = UnsafePointer(packed); bld = 64
                    }
                    block64(m: m, k: kc, av: av, first: first, a: ak, rs: rowStride, ks: kStride, b: bp, ldb: bld,
                            c: c + j0, ldc: ldc)
                } else {
                    var jj = 0
                    while jj < w {
                        let width = min(16, w - jj)
                        if width == 16 {
                            block16(m: m, k: kc, av: av, first: first, a: ak, rs: rowStride, ks: kStride, b: src + jj, ldb: ld,
                                    c: c + j0 + jj, ldc: ldc, width: 16)
                        } else {
                            // The last columns, zero-padded to 16, through the same vector code.
                            for kk in 0..<kc {
                                let r = src + kk * ld + jj, d = pad + kk * 16
                                for j in 0..<16 { d[j] = j < width ? r[j] : 0 }
                            }
                            block16(m: m, k: kc, av: av, first: first, a: ak, rs: rowStride, ks: kStride, b: pad, ldb: 16,
                                    c: c + j0 + jj, ldc: ldc, width: width)
                        }
                        jj += width
                    }
                }
                j0 += w
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

    /// The k × n transpose of an n × k block of B (rows `ldb` apart), in the 64-column panels
    /// `broadcastGemm` reads with `ldb: nil`: columns 64p..<64p + w (w = min(64, n − 64p)) at
    /// t + 64p·k, row kk of them at + kk·w. Writes k·n floats.
    @inline(never)
    public static func transposePanels(_ t: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows n: Int, cols k: Int,
                                       ldb: Int) {
        var j0 = 0
        while j0 < n {
            let w = min(64, n - j0), panel = t + j0 * k
            var jr = 0
            while jr + 16 <= w {
                // 16 rows of b at a time: each row of the panel gets 16 contiguous floats.
                let rows = b + (j0 + jr) * ldb
                for kk in 0..<k {
                    var v = F16()
                    for r in 0..<16 { v[r] = rows[r * ldb + kk] }
                    store(v, panel + kk * w + jr)
                }
                jr += 16
            }
            while jr < w {
                let row = b + (j0 + jr) * ldb
                for kk in 0..<k { panel[kk * w + jr] = row[kk] }
                jr += 1
            }
            j0 += w
        }
    }
}
