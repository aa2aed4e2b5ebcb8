import Foundation
import Testing
import PrecisCore
import PrecisKernels
import PrecisAVX512

/// The AVX-512 kernels and their portable twins agree, and both agree with plain definitions, so
/// machines without AVX-512 (which CI may not be) run code that is tested here too.
@Suite struct ISAKernelTests {
    @Test(arguments: [Activation.gelu, .geluNew, .relu, .silu])
    func dispatchedActivationsMatchThePortableKernels(_ act: Activation) {
        let n = 100_003
        var rng = SeededRNG(seed: 9)
        let x = (0..<n).map { _ in Float(rng.normal() * 3) }, dy = (0..<n).map { _ in Float(rng.normal()) }
        var a = [Float](repeating: 0, count: n), b = a
        act.forward(&a, x, n)
        act.forwardSerial(&b, x, n)
        for i in 0..<n { #expect(abs(a[i] - b[i]) <= 1e-6 * max(1, abs(b[i])), "forward \(i)") }
        act.backward(&a, dy, x, n)
        act.backwardSerial(&b, dy, x, n)
        for i in 0..<n { #expect(abs(a[i] - b[i]) <= 1e-6 * max(1, abs(b[i])), "backward \(i)") }
        // Backward that recomputes the output in place over the input (one pass with AVX-512 GELU).
        var xs = x, g = dy
        act.backwardRecomputing(x: &xs, grad: &g, n)
        act.forwardSerial(&a, x, n)
        act.backwardSerial(&b, dy, x, n)
        for i in 0..<n {
            #expect(abs(xs[i] - a[i]) <= 1e-6 * max(1, abs(a[i])), "recomputed output \(i)")
            #expect(abs(g[i] - b[i]) <= 1e-6 * max(1, abs(b[i])), "recomputing backward \(i)")
        }
        // Exact GELU's AVX-512 build performs the portable kernel's operations lane for lane: the same
        // bits, not just close ones.
        if act == .gelu && CPUFeatures.avx512 {
            act.forward(&a, x, n)
            act.forwardSerial(&b, x, n)
            #expect(a == b, "GELU forward bits")
            act.backward(&a, dy, x, n)
            act.backwardSerial(&b, dy, x, n)
            #expect(a == b, "GELU backward bits")
            act.forwardSerial(&a, x, n)
            act.backwardSerial(&b, dy, x, n)
            #expect(xs == a && g == b, "GELU recomputing backward bits")
        }
    }

    @Test(arguments: [(1, 16, 48), (3, 32, 100), (8, 64, 256), (13, 40, 24)])
    func packedProductsMatchADirectProduct(_ rows: Int, _ inDim: Int, _ outDim: Int) {
        var rng = SeededRNG(seed: UInt64(rows * 1000 + outDim))
        let w = (0..<(outDim * inDim)).map { _ in Float(rng.normal()) }
        let b = (0..<outDim).map { _ in Float(rng.normal()) }
        let x = (0..<(rows * inDim)).map { _ in Float(rng.normal()) }
        let packed = w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { PackedWeights(weight: wp.baseAddress!, bias: $0.baseAddress!, outDim: outDim, inDim: inDim) }
        }
        let ld = (outDim + 15) / 16 * 16
        var y = [Float](repeating: 0, count: rows * ld), yp = y
        packed.apply(&y, ldy: ld, x, rows: rows)
        // The portable kernel, 8 rows at a time as `apply` does.
        yp.withUnsafeMutableBufferPointer { out in
            x.withUnsafeBufferPointer { xb in
                var r0 = 0
                while r0 < rows {
                    let n = min(8, rows - r0)
                    packed.portable(out.baseAddress! + r0 * ld, ldy: ld, xb.baseAddress! + r0 * inDim, rows: n, blocks: 0..<packed.blocks)
                    r0 += n
                }
            }
        }
        for r in 0..<rows {
            for o in 0..<outDim {
                var want = Double(b[o])
                for i in 0..<inDim { want += Double(x[r * inDim + i]) * Double(w[o * inDim + i]) }
                #expect(abs(Double(y[r * ld + o]) - want) <= 1e-4 * max(1, abs(want)), "dispatched [\(r), \(o)]")
                #expect(abs(Double(yp[r * ld + o]) - want) <= 1e-4 * max(1, abs(want)), "portable [\(r), \(o)]")
            }
        }
    }

    /// The row kernels PrecisAVX512 compiles again from PrecisKernels' bodies give the same bits as
    /// the portable build (softmax with a key mask and a causal limit, its backward, fused
    /// cross-entropy with label smoothing, dropout with its record, LayerNorm forward and backward).
    /// Skipped without AVX-512.
    @Test(.enabled(if: CPUFeatures.avx512, "this CPU has no AVX-512 (or PRECIS_NO_AVX512 is set)"))
    func avx512RowKernelsGiveThePortableBits() throws {
        var rng = SeededRNG(seed: 21)
        let rows = 37, cols = 77, ld = 80
        let scores = (0..<(rows * ld)).map { _ in Float(rng.normal() * 4) }
        let mask = (0..<cols).map { j in Float(j % 5 == 3 ? 0 : 1) }
        for causal in [false, true] {
            for useMask in [false, true] {
                var a = scores, b = scores
                mask.withUnsafeBufferPointer { km in
                    let keyMask = useMask ? km.baseAddress : nil
                    AVX512Kernels.softmax(&a, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal, causalOffset: 2)
                    b.withUnsafeMutableBufferPointer { bp in
                        for i in 0..<rows {
                            Row.softmax(bp.baseAddress! + i * ld, limit: causal ? min(cols, i + 3) : cols, cols: cols, keyMask: keyMask)
                        }
                    }
                }
                #expect(a == b, "softmax causal \(causal) mask \(useMask)")
                let g = (0..<(rows * ld)).map { _ in Float(rng.normal()) }
                var ga = g, gb = g
                AVX512Kernels.softmaxBackward(&ga, p: a, rows: rows, cols: cols, ld: ld)
                gb.withUnsafeMutableBufferPointer { gp in
                    b.withUnsafeBufferPointer { bp in
                        for i in 0..<rows { Row.softmaxBackward(gp.baseAddress! + i * ld, bp.baseAddress! + i * ld, cols) }
                    }
                }
                #expect(ga == gb, "softmax backward")
            }
        }
        let vocab = 1003
        let logits = (0..<vocab).map { _ in Float(rng.normal() * 3) }
        for eps in [Float(0), 0.1] {
            var da = [Float](repeating: 0, count: vocab), db = da
            let la = logits.withUnsafeBufferPointer { z in
                AVX512Kernels.crossEntropy(z.baseAddress!, &da, label: 17, vocab: vocab, eps: eps, scale: 0.25)
            }
            let lb = logits.withUnsafeBufferPointer { z in
                db.withUnsafeMutableBufferPointer { Row.crossEntropy(z.baseAddress!, $0.baseAddress!, label: 17, vocab: vocab, eps: eps, scale: 0.25) }
            }
            #expect(la == lb && da == db, "cross-entropy ε = \(eps)")
        }
        let n = 1001
        let x = (0..<n).map { _ in Float(rng.normal()) }
        var ya = [Float](repeating: 0, count: n), yb = ya
        var ba = [UInt8](repeating: 0, count: (n + 7) / 8), bb = ba
        AVX512Kernels.dropout(&ya, x, count: n, threshold: 1 << 30, scale: 1 / 0.75, seed: 99, stream: 4, offset: 64, bits: &ba)
        yb.withUnsafeMutableBufferPointer { y in
            bb.withUnsafeMutableBufferPointer { bits in
                x.withUnsafeBufferPointer { xs in
                    Row.dropout(y.baseAddress!, xs.baseAddress!, count: n, threshold: 1 << 30, scale: 1 / 0.75, seed: 99, stream: 4,
                                offset: 64, bits: bits.baseAddress!)
                }
            }
        }
        #expect(ya == yb && ba == bb, "dropout")
        // LayerNorm forward, backward and its parameter gradients (dim 83: a scalar tail).
        let lnRows = 9, dim = 83
        let lx = (0..<(lnRows * dim)).map { _ in Float(rng.normal() * 2 + 1) }, ldy = (0..<(lnRows * dim)).map { _ in Float(rng.normal()) }
        let gamma = (0..<dim).map { _ in Float(rng.normal()) }, beta = (0..<dim).map { _ in Float(rng.normal()) }
        var y1 = [Float](repeating: 0, count: lnRows * dim), h1 = y1, y2 = y1, h2 = y1
        var r1 = [Float](repeating: 0, count: lnRows), r2 = r1
        AVX512Kernels.layerNorm(y: &y1, xhat: &h1, rstd: &r1, x: lx, gamma: gamma, beta: beta, rows: 0..<lnRows, dim: dim, eps: 1e-5)
        for r in 0..<lnRows {
            r2[r] = y2.withUnsafeMutableBufferPointer { yp in
                h2.withUnsafeMutableBufferPointer { hp in
                    lx.withUnsafeBufferPointer { xp in
                        Row.layerNorm(yp.baseAddress! + r * dim, xhat: hp.baseAddress! + r * dim, xp.baseAddress! + r * dim,
                                      gamma: gamma, beta: beta, dim: dim, eps: 1e-5)
                    }
                }
            }
        }
        #expect(y1 == y2 && h1 == h2 && r1 == r2, "layer norm")
        var dx1 = [Float](repeating: 0, count: lnRows * dim), dx2 = dx1
        var dg1 = [Float](repeating: 0.5, count: dim), db1 = dg1, dg2 = dg1, db2 = dg1
        AVX512Kernels.layerNormBackward(dx: &dx1, dy: ldy, xhat: h1, rstd: r1, gamma: gamma, rows: 0..<lnRows, dim: dim)
        AVX512Kernels.layerNormParameterGradients(dgamma: &dg1, dbeta: &db1, dy: ldy, xhat: h1, rows: lnRows, dim: dim, columns: 0, dim)
        Row.layerNormParameterGradients(dgamma: &dg2, dbeta: &db2, dy: ldy, xhat: h1, rows: lnRows, dim: dim, columns: 0, dim)
        for r in 0..<lnRows {
            dx2.withUnsafeMutableBufferPointer { dp in
                ldy.withUnsafeBufferPointer { yp in
                    h1.withUnsafeBufferPointer { hp in
                        Row.layerNormBackward(dp.baseAddress! + r * dim, yp.baseAddress! + r * dim, xhat: hp.baseAddress! + r * dim,
                                              gamma: gamma, rstd: r1[r], dim: dim)
                    }
                }
            }
        }
        #expect(dx1 == dx2 && dg1 == dg2 && db1 == db2, "layer norm backward")
        #expect(ya.filter { $0 == 0 }.count > n / 8, "dropout dropped some")
    }
}
