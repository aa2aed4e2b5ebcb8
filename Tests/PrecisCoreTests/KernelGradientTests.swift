import Foundation
import Testing
import PrecisCore

/// Finite-difference checks of every kernel's backward on tiny shapes: the analytic gradient of
/// L = Σ wᵢ·yᵢ (random w) against central differences of L.
struct FD {
    var rng = SeededRNG(seed: 42)
    mutating func vector(_ n: Int, scale: Double = 1) -> [Float] { (0..<n).map { _ in Float(rng.normal() * scale) } }

    /// Central difference of `loss` with respect to x[i].
    static func numeric(_ x: inout [Float], _ i: Int, eps: Float = 1e-2, _ loss: ([Float]) -> Double) -> Double {
        let orig = x[i]
        x[i] = orig + eps; let up = loss(x)
        x[i] = orig - eps; let down = loss(x)
        x[i] = orig
        return (up - down) / Double(2 * eps)
    }

    static func check(_ analytic: [Float], _ x: [Float], tolerance: Double = 2e-2, _ loss: ([Float]) -> Double) {
        var xs = x
        var num = [Double](repeating: 0, count: x.count)
        for i in 0..<x.count { num[i] = numeric(&xs, i, loss) }
        var d = 0.0, r = 0.0
        for i in 0..<x.count { d += pow(Double(analytic[i]) - num[i], 2); r += num[i] * num[i] }
        #expect(r > 0, "the numeric gradient is zero: the check would be vacuous")
        #expect(d.squareRoot() <= tolerance * r.squareRoot(), "relative error \(d.squareRoot() / r.squareRoot())")
    }
}

func weighted(_ y: [Float], _ w: [Float]) -> Double { zip(y, w).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

@Suite struct KernelGradientTests {
    @Test func layerNorm() {
        var fd = FD()
        let rows = 3, dim = 13
        let x = fd.vector(rows * dim), g = fd.vector(dim), b = fd.vector(dim), w = fd.vector(rows * dim)
        func run(_ x: [Float], _ g: [Float]) -> (y: [Float], xhat: [Float], rstd: [Float]) {
            var y = [Float](repeating: 0, count: rows * dim), xh = y, rs = [Float](repeating: 0, count: rows)
            LayerNorm.forward(y: &y, xhat: &xh, rstd: &rs, x: x, gamma: g, beta: b, rows: rows, dim: dim, eps: 1e-5)
            return (y, xh, rs)
        }
        let f = run(x, g)
        var dx = [Float](repeating: 0, count: rows * dim), dg = [Float](repeating: 0, count: dim), db = dg
        LayerNorm.backward(dx: &dx, dy: w, xhat: f.xhat, rstd: f.rstd, gamma: g, dgamma: &dg, dbeta: &db, rows: rows, dim: dim)
        FD.check(dx, x) { weighted(run($0, g).y, w) }
        FD.check(dg, g) { weighted(run(x, $0).y, w) }
        // dβ = Σ_rows w
        for j in 0..<dim {
            let want = (0..<rows).reduce(Float(0)) { $0 + w[$1 * dim + j] }
            #expect(abs(db[j] - want) < 1e-5)
        }
    }

    @Test(arguments: Activation.allCases)
    func activation(_ act: Activation) {
        var fd = FD()
        let n = 21
        let x = fd.vector(n, scale: 2).map { abs($0) < 0.05 ? $0 + 0.1 : $0 }, w = fd.vector(n)
        func run(_ x: [Float]) -> [Float] { var y = [Float](repeating: 0, count: n); act.forward(&y, x, n); return y }
        var dx = [Float](repeating: 0, count: n)
        act.backward(&dx, w, x, n)
        FD.check(dx, x, tolerance: 1e-2) { weighted(run($0), w) }
    }

    @Test func geluMatchesErfDefinition() {
        let xs: [Float] = (-60...60).map { Float($0) / 10 }
        var y = [Float](repeating: 0, count: xs.count)
        Activation.gelu.forward(&y, xs, xs.count)
        for (x, v) in zip(xs, y) {
            let want = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
            #expect(abs(Double(v) - want) <= 1e-6 + 1e-6 * abs(want), "gelu(\(x)) = \(v), want \(want)")
        }
    }

    @Test func expIsAccurate() {
        for i in -870...880 {
            let x = Float(i) / 10
            let got = Double(sexp(x)), want = exp(Double(x))
            #expect(abs(got - want) <= 4e-7 * want, "exp(\(x))")
        }
    }

    @Test(arguments: [false, true])
    func softmaxWithMask(_ causal: Bool) {
        var fd = FD()
        let rows = 4, cols = 11
        let s = fd.vector(rows * cols), w = fd.vector(rows * cols)
        var mask = [Float](repeating: 1, count: cols); mask[3] = 0; mask[9] = 0
        func run(_ s: [Float]) -> [Float] {
            var p = s
            Softmax.forward(&p, rows: rows, cols: cols, ld: cols, keyMask: mask, causal: causal, causalOffset: 5)
            return p
        }
        let p = run(s)
        for r in 0..<rows {
            let sum = p[(r * cols)..<((r + 1) * cols)].reduce(0, +)
            #expect(abs(sum - 1) < 1e-5)
            #expect(p[r * cols + 3] == 0 && p[r * cols + 9] == 0)
            if causal { for j in (r + 6)..<cols { #expect(p[r * cols + j] == 0) } }
        }
        var g = w
        Softmax.backward(&g, p: p, rows: rows, cols: cols, ld: cols)
        FD.check(g, s) { weighted(run($0), w) }
    }

    @Test func softmaxFullyMaskedRowIsUniform() {
        var p: [Float] = [1, 2, 3, 4]
        Softmax.forward(&p, rows: 1, cols: 4, ld: 4, keyMask: [0, 0, 0, 0], causal: false)
        #expect(p == [0.25, 0.25, 0.25, 0.25])
    }

    @Test(arguments: [Float(0), 0.1])
    func crossEntropy(_ smoothing: Float) {
        var fd = FD()
        let rows = 5, vocab = 19
        let z = fd.vector(rows * vocab, scale: 3)
        let labels: [Int32] = [3, -100, 0, 18, 7]
        func loss(_ z: [Float]) -> Double {
            CrossEntropy.forwardBackward(logits: z, dlogits: nil, labels: labels, rows: rows, vocab: vocab,
                                         smoothing: smoothing).mean
        }
        var d = [Float](repeating: 0, count: rows * vocab)
        let r = CrossEntropy.forwardBackward(logits: z, dlogits: &d, labels: labels, rows: rows, vocab: vocab, smoothing: smoothing)
        #expect(r.count == 4)
        for j in 0..<vocab { #expect(d[vocab + j] == 0) }
        FD.check(d, z, tolerance: 1e-2, loss)
        // Reference value computed in double precision.
        var total = 0.0
        for row in 0..<rows where labels[row] != -100 {
            let zs = z[(row * vocab)..<((row + 1) * vocab)].map(Double.init)
            let m = zs.max()!
            let lse = m + log(zs.reduce(0) { $0 + exp($1 - m) })
            total += (1 - Double(smoothing)) * (lse - zs[Int(labels[row])]) + Double(smoothing) * (lse - zs.reduce(0, +) / Double(vocab))
        }
        #expect(abs(r.mean - total / 4) < 1e-5)
    }

    @Test func linear() {
        var fd = FD()
        let rows = 3, i = 5, o = 7
        let x = fd.vector(rows * i), wt = fd.vector(o * i), b = fd.vector(o), w = fd.vector(rows * o)
        func run(_ x: [Float], _ wt: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: rows * o)
            Linear.forward(y: &y, x: x, weight: wt, bias: b, rows: rows, inDim: i, outDim: o)
            return y
        }
        var dx = [Float](repeating: 0, count: rows * i), dw = [Float](repeating: 0, count: o * i), db = [Float](repeating: 0, count: o)
        Linear.backward(dx: &dx, dy: w, x: x, weight: wt, dWeight: &dw, dBias: &db, rows: rows, inDim: i, outDim: o)
        FD.check(dx, x) { weighted(run($0, wt, b), w) }
        FD.check(dw, wt) { weighted(run(x, $0, b), w) }
        FD.check(db, b) { weighted(run(x, wt, $0), w) }
    }

    @Test func embeddingScatterAddsRepeatedIds() {
        let table: [Float] = (0..<12).map(Float.init) // 4 rows × 3
        let ids: [Int32] = [2, 0, 2]
        var out = [Float](repeating: 0, count: 9)
        Embedding.forward(out: &out, table: table, ids: ids, rows: 3, dim: 3, scale: 2)
        #expect(out == [12, 14, 16, 0, 2, 4, 12, 14, 16])
        var dt = [Float](repeating: 0, count: 12)
        Embedding.backward(dtable: &dt, dout: [1, 1, 1, 2, 2, 2, 3, 3, 3], ids: ids, rows: 3, dim: 3, scale: 2)
        #expect(dt == [4, 4, 4, 0, 0, 0, 8, 8, 8, 0, 0, 0])
    }

    @Test(arguments: [5, 13, 19])
    func rmsNorm(_ dim: Int) {
        var fd = FD()
        let rows = 3
        let x = fd.vector(rows * dim), g = fd.vector(dim), w = fd.vector(rows * dim)
        func run(_ x: [Float], _ g: [Float]) -> (y: [Float], xhat: [Float], rstd: [Float]) {
            var y = [Float](repeating: 0, count: rows * dim), xh = y, rs = [Float](repeating: 0, count: rows)
            RMSNorm.forward(y: &y, xhat: &xh, rstd: &rs, x: x, gamma: g, rows: rows, dim: dim, eps: 1e-6)
            return (y, xh, rs)
        }
        let f = run(x, g)
        var dx = [Float](repeating: 0, count: rows * dim), dg = [Float](repeating: 0, count: dim)
        RMSNorm.backward(dx: &dx, dy: w, xhat: f.xhat, rstd: f.rstd, gamma: g, dgamma: &dg, rows: rows, dim: dim)
        FD.check(dx, x) { weighted(run($0, g).y, w) }
        FD.check(dg, g) { weighted(run(x, $0).y, w) }
        // dx may overwrite dy.
        var inPlace = w, dg2 = [Float](repeating: 0, count: dim)
        inPlace.withUnsafeMutableBufferPointer { d in
            RMSNorm.backward(dx: d.baseAddress!, dy: d.baseAddress!, xhat: f.xhat, rstd: f.rstd, gamma: g, dgamma: &dg2, rows: rows, dim: dim)
        }
        #expect(inPlace == dx && dg2 == dg, "in place")
    }

    /// Attention probabilities over a batch with a position bias per (head, query, key) shared by the
    /// batch: the scores' gradient is softmax's backward, the bias's the sum of those over the batch.
    @Test(arguments: [false, true])
    func softmaxWithPositionBias(_ causal: Bool) {
        var fd = FD()
        let batch = 2, heads = 2, tq = 3, tk = 9, tile = tq * tk
        let s = fd.vector(batch * heads * tile), bias = fd.vector(heads * tile), w = fd.vector(batch * heads * tile)
        var mask = [Float](repeating: 1, count: batch * tk); mask[2] = 0; mask[tk + 7] = 0
        func run(_ s: [Float], _ bias: [Float]) -> [Float] {
            var p = s
            p.withUnsafeMutableBufferPointer { pp in
                bias.withUnsafeBufferPointer { bp in
                    mask.withUnsafeBufferPointer { km in
                        for b in 0..<batch {
                            for h in 0..<heads {
                                Softmax.forward(pp.baseAddress! + (b * heads + h) * tile, rows: tq, cols: tk, ld: tk,
                                                bias: bp.baseAddress! + h * tile, biasLd: tk,
                                                keyMask: km.baseAddress! + b * tk, causal: causal, causalOffset: 4)
                            }
                        }
                    }
                }
            }
            return p
        }
        let p = run(s, bias)
        var dS = w
        Softmax.backward(&dS, p: p, rows: batch * heads * tq, cols: tk, ld: tk)
        var dBias = [Float](repeating: 0, count: heads * tile)
        Softmax.accumulateBiasGradient(dBias: &dBias, ldBias: tk, dScores: dS, ld: tk, rows: heads * tq, cols: tk,
                                       batch: batch, batchStride: heads * tile)
        FD.check(dS, s) { weighted(run($0, bias), w) }
        FD.check(dBias, bias) { weighted(run(s, $0), w) }
    }

    @Test(arguments: Activation.allCases)
    func gatedActivation(_ act: Activation) {
        var fd = FD()
        let n = 21
        let a = fd.vector(n, scale: 2).map { abs($0) < 0.05 ? $0 + 0.1 : $0 }, b = fd.vector(n), w = fd.vector(n)
        func run(_ a: [Float], _ b: [Float]) -> [Float] { var h = [Float](repeating: 0, count: n); act.gatedForward(&h, gate: a, linear: b, n); return h }
        var da = [Float](repeating: 0, count: n), db = da
        act.gatedBackward(dGate: &da, dLinear: &db, output: nil, grad: w, gate: a, linear: b, n)
        FD.check(da, a, tolerance: 1e-2) { weighted(run($0, b), w) }
        FD.check(db, b, tolerance: 1e-2) { weighted(run(a, $0), w) }
    }
}
