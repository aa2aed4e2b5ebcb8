import Foundation
import Testing
import PrecisCore
import PrecisKernels
import PrecisAVX512
import PrecisAVX2

/// The vector-ISA builds of the kernels (AVX-512, AVX2) and their portable twins agree, and both
/// agree with plain definitions, so machines without those ISAs (which CI may not be) run code that
/// is tested here too.
@Suite struct ISAKernelTests {
    /// The vector-ISA builds this CPU runs (the tests comparing bits run once for each).
    static let builds: [String] = (CPUFeatures.avx512 ? ["AVX-512"] : []) + (CPUFeatures.avx2 ? ["AVX2"] : [])
    static func kernels(_ isa: String) -> any VectorKernelSet.Type {
        isa == "AVX-512" ? PrecisAVX512.VectorKernels.self : PrecisAVX2.VectorKernels.self
    }

    /// The dispatcher picks the widest build the CPU runs.
    @Test func theDispatcherPicksTheWidestBuild() {
        let picked = CPUFeatures.vectorKernels.map { String(reflecting: $0) }
        let want = Self.builds.first.map { String(reflecting: Self.kernels($0)) }
        #expect(picked == want)
        #expect(CPUFeatures.vectorISA == (Self.builds.first ?? "portable"))
    }

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
        // The vector-ISA builds (exact GELU, gelu_new, ReLU; SiLU dispatches to the portable kernel)
        // perform the portable kernel's operations lane for lane: the same bits, not just close ones.
        if CPUFeatures.vectorKernels != nil {
            act.forward(&a, x, n)
            act.forwardSerial(&b, x, n)
            #expect(a == b, "\(act) forward bits")
            act.backward(&a, dy, x, n)
            act.backwardSerial(&b, dy, x, n)
            #expect(a == b, "\(act) backward bits")
            act.forwardSerial(&a, x, n)
            act.backwardSerial(&b, dy, x, n)
            #expect(xs == a && g == b, "\(act) recomputing backward bits")
        }
    }

    /// The gated form (h = f(gate) ⊙ linear) dispatched (a vector-ISA build for gelu_new and ReLU
    /// when the CPU runs one, split over the workers) gives the portable kernel's bits, and its fused backward gives
    /// the bits of its parts: dLinear = dh ⊙ f(gate), dGate = f's backward of dh ⊙ linear, h again.
    @Test(arguments: [Activation.gelu, .geluNew, .relu, .silu])
    func dispatchedGatedActivationsMatchThePortableKernels(_ act: Activation) {
        let n = 100_005
        var rng = SeededRNG(seed: 10)
        let a = (0..<n).map { _ in Float(rng.normal() * 3) }, b = (0..<n).map { _ in Float(rng.normal()) }
        let dh = (0..<n).map { _ in Float(rng.normal()) }
        var h1 = [Float](repeating: 0, count: n), h2 = h1
        act.gatedForward(&h1, gate: a, linear: b, n)
        act.gatedForwardSerial(&h2, gate: a, linear: b, n)
        #expect(h1 == h2, "gated forward bits")
        var da1 = h1, db1 = h1, o1 = h1, da2 = h1, db2 = h1, o2 = h1
        act.gatedBackward(dGate: &da1, dLinear: &db1, output: &o1, grad: dh, gate: a, linear: b, n)
        act.gatedBackwardSerial(dGate: &da2, dLinear: &db2, output: &o2, grad: dh, gate: a, linear: b, n)
        #expect(da1 == da2 && db1 == db2 && o1 == o2, "gated backward bits")
        #expect(o1 == h2, "the recomputed output is the forward's")
        // Its parts, from the plain activation's kernels.
        var fa = [Float](repeating: 0, count: n), dga = fa
        act.forwardSerial(&fa, a, n)
        let dhb = (0..<n).map { dh[$0] * b[$0] }
        act.backwardSerial(&dga, dhb, a, n)
        #expect(da1 == dga, "dGate = f's backward of dh ⊙ linear")
        #expect(db1 == (0..<n).map { dh[$0] * fa[$0] }, "dLinear = dh ⊙ f(gate)")
        #expect(h1 == (0..<n).map { fa[$0] * b[$0] }, "h = f(gate) ⊙ linear")
        // In place: dGate over gate, dLinear over linear, h over the gradient.
        var ga = a, lb = b, gh = dh
        ga.withUnsafeMutableBufferPointer { ga in
            lb.withUnsafeMutableBufferPointer { lb in
                gh.withUnsafeMutableBufferPointer { gh in
                    act.gatedBackward(dGate: ga.baseAddress!, dLinear: lb.baseAddress!, output: gh.baseAddress!, grad: gh.baseAddress!,
                                      gate: ga.baseAddress!, linear: lb.baseAddress!, n)
                }
            }
        }
        #expect(ga == da1 && lb == db1 && gh == o1, "gated backward in place")
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

    /// The row kernels PrecisAVX512 and PrecisAVX2 compile again from PrecisKernels' bodies give the
    /// same bits as the portable build (softmax with a key mask and a causal limit, its backward,
    /// fused cross-entropy with label smoothing, dropout with its record, LayerNorm forward and
    /// backward), and so do the exact GELU's three kernels, decoding's packed product and AdamW. Skipped on a CPU with neither ISA.
    @Test(.enabled(if: !builds.isEmpty, "this CPU has neither AVX-512 nor AVX2 (or PRECIS_NO_AVX512 / PRECIS_NO_AVX2 is set)"),
          arguments: builds)
    func vectorRowKernelsGiveThePortableBits(_ isa: String) throws {
        let K = Self.kernels(isa)
        var rng = SeededRNG(seed: 21)
        let rows = 37, cols = 77, ld = 80
        let scores = (0..<(rows * ld)).map { _ in Float(rng.normal() * 4) }
        let mask = (0..<cols).map { j in Float(j % 5 == 3 ? 0 : 1) }
        for causal in [false, true] {
            for useMask in [false, true] {
                var a = scores, b = scores
                mask.withUnsafeBufferPointer { km in
                    let keyMask = useMask ? km.baseAddress : nil
                    K.softmax(&a, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal, causalOffset: 2)
                    b.withUnsafeMutableBufferPointer { bp in
                        for i in 0..<rows {
                            Row.softmax(bp.baseAddress! + i * ld, limit: causal ? min(cols, i + 3) : cols, cols: cols, keyMask: keyMask)
                        }
                    }
                }
                #expect(a == b, "softmax causal \(causal) mask \(useMask)")
                let g = (0..<(rows * ld)).map { _ in Float(rng.normal()) }
                var ga = g, gb = g
                K.softmaxBackward(&ga, p: a, rows: rows, cols: cols, ld: ld)
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
                K.crossEntropy(z.baseAddress!, &da, label: 17, vocab: vocab, eps: eps, scale: 0.25)
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
        K.dropout(&ya, x, count: n, threshold: 1 << 30, scale: 1 / 0.75, seed: 99, stream: 4, offset: 64, bits: &ba)
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
        K.layerNorm(y: &y1, xhat: &h1, rstd: &r1, x: lx, gamma: gamma, beta: beta, rows: 0..<lnRows, dim: dim, eps: 1e-5)
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
        K.layerNormBackward(dx: &dx1, dy: ldy, xhat: h1, rstd: r1, gamma: gamma, rows: 0..<lnRows, dim: dim)
        K.layerNormParameterGradients(dgamma: &dg1, dbeta: &db1, dy: ldy, xhat: h1, rows: lnRows, dim: dim, columns: 0, dim)
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
        // The exact GELU's own loops (n a multiple of 8), against the portable build in PrecisCore.
        let gn = 1000
        let gx = (0..<gn).map { _ in Float(rng.normal() * 3) }, gdy = (0..<gn).map { _ in Float(rng.normal()) }
        var e1 = [Float](repeating: 0, count: gn), e2 = e1
        K.geluForward(&e1, gx, gn); Activation.gelu.forwardSerial(&e2, gx, gn)
        #expect(e1 == e2, "GELU forward")
        K.geluBackward(&e1, gdy, gx, gn); Activation.gelu.backwardSerial(&e2, gdy, gx, gn)
        #expect(e1 == e2, "GELU backward")
        var gx1 = gx, gg1 = gdy, gx2 = gx, gg2 = gdy
        K.geluRecomputeBackward(&gx1, &gg1, gn); Activation.gelu.backwardRecomputingSerial(x: &gx2, grad: &gg2, gn)
        #expect(gx1 == gx2 && gg1 == gg2, "GELU recomputing backward")
        // Decoding's packed-weight product (13 outputs: a padded block; 5 rows).
        let pin = 37, pout = 29, prows = 5, pld = 32
        let pw = (0..<(pout * pin)).map { _ in Float(rng.normal()) }, pb = (0..<pout).map { _ in Float(rng.normal()) }
        let px = (0..<(prows * pin)).map { _ in Float(rng.normal()) }
        let packed = pw.withUnsafeBufferPointer { w in
            pb.withUnsafeBufferPointer { PackedWeights(weight: w.baseAddress!, bias: $0.baseAddress!, outDim: pout, inDim: pin) }
        }
        // The layout PackedWeights documents, [out/16][in][16] with zero padding, built here.
        var layout = [Float](repeating: 0, count: packed.blocks * pin * 16), paddedBias = [Float](repeating: 0, count: packed.blocks * 16)
        for o in 0..<pout {
            paddedBias[o] = pb[o]
            for i in 0..<pin { layout[(o / 16) * pin * 16 + i * 16 + o % 16] = pw[o * pin + i] }
        }
        var py1 = [Float](repeating: 0, count: prows * pld), py2 = py1
        K.packedMatmul(&py1, ldy: pld, px, ldx: pin, packed: layout, bias: paddedBias, rows: prows, inDim: pin, blocks: 0..<packed.blocks)
        packed.portable(&py2, ldy: pld, px, rows: prows, blocks: 0..<packed.blocks)
        #expect(py1 == py2, "packed product")
        // AdamW's update (1003 values: a scalar tail), with a clip coefficient and weight decay.
        let an = 1003
        let ap = (0..<an).map { _ in Float(rng.normal()) }, ag = (0..<an).map { _ in Float(rng.normal() * 0.1) }
        let am = (0..<an).map { _ in Float(rng.normal() * 0.01) }, av = (0..<an).map { _ in Float(abs(rng.normal()) * 1e-4) }
        let ac = AdamWConstants(stepSize: 1e-3 / 0.19, bc2Sqrt: 0.0447, w1: 0.1, b2: 0.999, w2: 0.001, eps: 1e-8, decay: 1 - 1e-5,
                                gradScale: 0.7)
        var p1 = ap, m1 = am, v1 = av, p2 = ap, m2 = am, v2 = av
        K.adamW(params: &p1, grads: ag, m: &m1, v: &v1, count: an, ac)
        AdamWUpdate.apply(params: &p2, grads: ag, m: &m2, v: &v2, count: an, ac)
        #expect(p1 == p2 && m1 == m2 && v1 == v2, "AdamW")
        #expect(p1 != ap, "AdamW moved the parameters")
    }

    /// The kernels T5 and Pegasus add (RMS norm forward, backward and dγ; softmax with an additive
    /// position bias, masked and causal; the bias's gradient summed over a batch; gelu_new and ReLU,
    /// plain, recomputing and gated) give the same bits compiled for AVX-512 or AVX2 as the portable
    /// build, for widths with and without a tail of fewer than 8 (or 16) values and several row
    /// counts. Skipped on a CPU with neither ISA.
    @Test(.enabled(if: !builds.isEmpty, "this CPU has neither AVX-512 nor AVX2 (or PRECIS_NO_AVX512 / PRECIS_NO_AVX2 is set)"),
          arguments: builds, [(1, 5), (3, 16), (7, 83), (13, 130), (2, 517), (32, 64)])
    func vectorT5RowKernelsGiveThePortableBits(_ isa: String, _ shape: (Int, Int)) {
        let K = Self.kernels(isa)
        let (rows, width) = shape
        var rng = SeededRNG(seed: UInt64(rows * 1000 + width))
        func vector(_ n: Int, _ scale: Double = 1, _ shift: Double = 0) -> [Float] { (0..<n).map { _ in Float(rng.normal() * scale + shift) } }

        // RMS norm.
        let dim = width, n = rows * dim
        let x = vector(n, 2, 0.5), dy = vector(n), gamma = vector(dim, 0.5, 1)
        var y1 = [Float](repeating: 0, count: n), h1 = y1, y2 = y1, h2 = y1
        var r1 = [Float](repeating: 0, count: rows), r2 = r1
        K.rmsNorm(y: &y1, xhat: &h1, rstd: &r1, x: x, gamma: gamma, rows: 0..<rows, dim: dim, eps: 1e-6)
        Rows.rmsNorm(y: &y2, xhat: &h2, rstd: &r2, x: x, gamma: gamma, rows: 0..<rows, dim: dim, eps: 1e-6)
        #expect(y1 == y2 && h1 == h2 && r1 == r2, "RMS norm")
        var dx1 = [Float](repeating: 0, count: n), dx2 = dx1
        K.rmsNormBackward(dx: &dx1, dy: dy, xhat: h1, rstd: r1, gamma: gamma, rows: 0..<rows, dim: dim)
        Rows.rmsNormBackward(dx: &dx2, dy: dy, xhat: h1, rstd: r1, gamma: gamma, rows: 0..<rows, dim: dim)
        #expect(dx1 == dx2, "RMS norm backward")
        var dg1 = vector(dim), dg2 = dg1
        K.rmsNormParameterGradients(dgamma: &dg1, dy: dy, xhat: h1, rows: rows, dim: dim, columns: 0, dim)
        Row.rmsNormParameterGradients(dgamma: &dg2, dy: dy, xhat: h1, rows: rows, dim: dim, columns: 0, dim)
        #expect(dg1 == dg2, "RMS norm dγ")

        // Softmax with a position bias: `rows` queries over `width` keys, rows `ld` apart, bias rows
        // `biasLd` apart, with and without a padding mask and a causal limit.
        let cols = width, ld = cols + 3, biasLd = cols + 1
        let scores = vector(rows * ld, 4), bias = vector(rows * biasLd, 2)
        let mask = (0..<cols).map { j in Float(j % 7 == 2 ? 0 : 1) }
        for causal in [false, true] {
            for useMask in [false, true] {
                var a = scores, b = scores
                mask.withUnsafeBufferPointer { km in
                    let keyMask = useMask ? km.baseAddress : nil
                    K.softmax(&a, bias: bias, biasLd: biasLd, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal,
                              causalOffset: 1)
                    Rows.softmax(&b, bias: bias, biasLd: biasLd, rows: rows, cols: cols, ld: ld, keyMask: keyMask, causal: causal,
                                 causalOffset: 1)
                }
                #expect(a == b, "biased softmax causal \(causal) mask \(useMask)")
            }
        }
        // The bias's gradient over a batch of 3 score blocks `batchStride` apart.
        let batch = 3, batchStride = rows * ld + 5
        let dScores = vector(batch * batchStride)
        var db1 = vector(rows * biasLd), db2 = db1
        K.accumulateBiasGradient(dBias: &db1, ldBias: biasLd, dScores: dScores, ld: ld, batch: batch, batchStride: batchStride,
                                 rows: 0..<rows, cols: cols)
        Rows.accumulateBiasGradient(dBias: &db2, ldBias: biasLd, dScores: dScores, ld: ld, batch: batch, batchStride: batchStride,
                                    rows: 0..<rows, cols: cols)
        #expect(db1 == db2, "bias gradient")

        // gelu_new and ReLU over rows × width values (a tail when that is not a multiple of 8).
        let v = vector(n, 3), g = vector(n), lin = vector(n)
        var p1 = [Float](repeating: 0, count: n), p2 = p1, q1 = p1, q2 = p1, o1 = p1, o2 = p1
        K.geluNewForward(&p1, v, n); Pointwise.forward(GeluTanh.self, &p2, v, n)
        #expect(p1 == p2, "gelu_new forward")
        K.geluNewBackward(&p1, g, v, n); Pointwise.backward(GeluTanh.self, &p2, g, v, n)
        #expect(p1 == p2, "gelu_new backward")
        var x1 = v, g1 = g, x2 = v, g2 = g
        K.geluNewRecomputeBackward(&x1, &g1, n); Pointwise.backwardRecomputing(GeluTanh.self, x: &x2, grad: &g2, n)
        #expect(x1 == x2 && g1 == g2, "gelu_new recomputing backward")
        K.gatedGeluNewForward(&p1, gate: v, linear: lin, n); Pointwise.gatedForward(GeluTanh.self, &p2, gate: v, linear: lin, n)
        #expect(p1 == p2, "gated gelu_new forward")
        K.gatedGeluNewBackward(dGate: &p1, dLinear: &q1, output: &o1, grad: g, gate: v, linear: lin, n)
        Pointwise.gatedBackward(GeluTanh.self, dGate: &p2, dLinear: &q2, output: &o2, grad: g, gate: v, linear: lin, n)
        #expect(p1 == p2 && q1 == q2 && o1 == o2, "gated gelu_new backward")
        K.reluForward(&p1, v, n); Pointwise.forward(ReLU.self, &p2, v, n)
        #expect(p1 == p2, "ReLU forward")
        K.reluBackward(&p1, g, v, n); Pointwise.backward(ReLU.self, &p2, g, v, n)
        #expect(p1 == p2, "ReLU backward")
        x1 = v; g1 = g; x2 = v; g2 = g
        K.reluRecomputeBackward(&x1, &g1, n); Pointwise.backwardRecomputing(ReLU.self, x: &x2, grad: &g2, n)
        #expect(x1 == x2 && g1 == g2, "ReLU recomputing backward")
        K.gatedReluForward(&p1, gate: v, linear: lin, n); Pointwise.gatedForward(ReLU.self, &p2, gate: v, linear: lin, n)
        #expect(p1 == p2, "gated ReLU forward")
        K.gatedReluBackward(dGate: &p1, dLinear: &q1, output: nil, grad: g, gate: v, linear: lin, n)
        Pointwise.gatedBackward(ReLU.self, dGate: &p2, dLinear: &q2, output: nil, grad: g, gate: v, linear: lin, n)
        #expect(p1 == p2 && q1 == q2, "gated ReLU backward")
    }
}
