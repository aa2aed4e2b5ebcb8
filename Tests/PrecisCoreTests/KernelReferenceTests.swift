import Foundation
import Testing
import PrecisCore

/// The kernels T5 and Pegasus use (RMS norm, softmax with an additive position bias and the bias's
/// gradient, gelu_new, ReLU and their gated forms) against definitions written here in Double, as
/// transformers states them (`T5LayerNorm`, `NewGELUActivation`, T5's `scores += position_bias`
/// before the softmax, `T5DenseGatedActDense`). Through the dispatched entry points, so with the
/// AVX-512 builds on a CPU that has it and the portable ones under PRECIS_NO_AVX512=1.
@Suite struct KernelReferenceTests {
    static func gaussian(_ rng: inout SeededRNG, _ n: Int, scale: Double = 1, shift: Double = 0) -> [Float] {
        (0..<n).map { _ in Float(rng.normal() * scale + shift) }
    }

    // MARK: RMS norm

    @Test(arguments: [1, 7, 16, 83, 512])
    func rmsNormMatchesTransformers(_ dim: Int) {
        var rng = SeededRNG(seed: UInt64(7 + dim))
        let rows = 4, eps: Float = 1e-6
        var x = Self.gaussian(&rng, rows * dim, scale: 2, shift: 0.5)
        // A row of tiny values, where eps weighs as much as the mean square.
        for j in 0..<dim { x[dim + j] *= 1e-3 }
        let gamma = Self.gaussian(&rng, dim, scale: 0.5, shift: 1), dy = Self.gaussian(&rng, rows * dim)
        var y = [Float](repeating: 0, count: rows * dim), xhat = y, rstd = [Float](repeating: 0, count: rows)
        RMSNorm.forward(y: &y, xhat: &xhat, rstd: &rstd, x: x, gamma: gamma, rows: rows, dim: dim, eps: eps)
        var dx = [Float](repeating: 0, count: rows * dim), dgamma = [Float](repeating: 0.25, count: dim)
        RMSNorm.backward(dx: &dx, dy: dy, xhat: xhat, rstd: rstd, gamma: gamma, dgamma: &dgamma, rows: rows, dim: dim)

        var wantDgamma = [Double](repeating: 0.25, count: dim), dgammaScale = [Double](repeating: 0.25, count: dim)
        for r in 0..<rows {
            let xr = (0..<dim).map { Double(x[r * dim + $0]) }
            // variance = mean(x²); x · rsqrt(variance + eps); weight · x
            let variance = xr.reduce(0) { $0 + $1 * $1 } / Double(dim)
            let rs = 1 / (variance + Double(eps)).squareRoot()
            #expect(abs(Double(rstd[r]) - rs) <= 1e-6 * rs, "rstd row \(r)")
            let h = xr.map { $0 * rs }
            for j in 0..<dim {
                let want = Double(gamma[j]) * h[j]
                #expect(abs(Double(y[r * dim + j]) - want) <= 1e-6 * abs(want), "y[\(r), \(j)] = \(y[r * dim + j]), want \(want)")
                #expect(abs(Double(xhat[r * dim + j]) - h[j]) <= 1e-6 * abs(h[j]), "x̂[\(r), \(j)]")
            }
            // dx = r·(dh − h·mean(dh·h)), dh = dy·γ: the derivative of γ·x·(mean(x²) + eps)^(-1/2).
            let dh = (0..<dim).map { Double(dy[r * dim + $0]) * Double(gamma[$0]) }
            let m = zip(dh, h).reduce(0) { $0 + $1.0 * $1.1 } / Double(dim)
            let mAbs = zip(dh, h).reduce(0) { $0 + abs($1.0 * $1.1) } / Double(dim)
            for j in 0..<dim {
                let want = rs * (dh[j] - h[j] * m)
                // The terms (and those of the mean) can cancel: the tolerance scales with their size.
                let tol = 1e-5 * rs * (abs(dh[j]) + abs(h[j]) * mAbs) + 1e-30
                #expect(abs(Double(dx[r * dim + j]) - want) <= tol, "dx[\(r), \(j)] = \(dx[r * dim + j]), want \(want)")
                wantDgamma[j] += Double(dy[r * dim + j]) * h[j]
                dgammaScale[j] += abs(Double(dy[r * dim + j]) * h[j])
            }
        }
        for j in 0..<dim {
            #expect(abs(Double(dgamma[j]) - wantDgamma[j]) <= 1e-6 * dgammaScale[j], "dγ[\(j)] = \(dgamma[j]), want \(wantDgamma[j])")
        }
    }

    // MARK: Softmax with a position bias

    /// Scores and biases on a grid of 2⁻¹⁰ below 32, so that score + bias is exact in fp32 and the
    /// definition can add them in Double.
    static func grid(_ rng: inout SeededRNG, _ n: Int, scale: Double) -> [Float] {
        (0..<n).map { _ in Float((rng.normal() * scale * 1024).rounded() / 1024) }
    }

    @Test(arguments: [5, 16, 83])
    func softmaxWithPositionBiasMatchesDefinition(_ cols: Int) {
        var rng = SeededRNG(seed: UInt64(100 + cols))
        let rows = 6, ld = cols + 2, biasLd = cols + 5
        let scores = Self.grid(&rng, rows * ld, scale: 3), bias = Self.grid(&rng, rows * biasLd, scale: 2)
        let somePadding = (0..<cols).map { Float($0 % 4 == 1 ? 0 : 1) }, allPadding = [Float](repeating: 0, count: cols)
        for causal in [false, true] {
            for mask in [nil, somePadding, allPadding] {
                var p = scores
                mask.withUnsafeBufferPointerOrNil { km in
                    Softmax.forward(&p, rows: rows, cols: cols, ld: ld, bias: bias, biasLd: biasLd, keyMask: km, causal: causal,
                                    causalOffset: 1)
                }
                for i in 0..<rows {
                    let limit = causal ? min(cols, i + 2) : cols
                    let allowed = (0..<cols).map { j in j < limit && (mask?[j] ?? 1) != 0 }
                    let z = (0..<cols).map { Double(scores[i * ld + $0]) + Double(bias[i * biasLd + $0]) }
                    let zMax = (0..<cols).filter { allowed[$0] }.map { z[$0] }.max()
                    let sum = (0..<cols).filter { allowed[$0] }.reduce(0.0) { $0 + exp(z[$1] - zMax!) }
                    for j in 0..<cols {
                        let got = Double(p[i * ld + j])
                        if zMax == nil {
                            // No allowed key: uniform over all keys, as the additive mask makes it.
                            #expect(got == 1 / Double(Float(cols)) || abs(got - 1 / Double(cols)) <= 1e-7, "uniform row \(i)")
                        } else if allowed[j] {
                            let want = exp(z[j] - zMax!) / sum
                            #expect(abs(got - want) <= 1e-6 * want, "p[\(i), \(j)] = \(got), want \(want) (causal \(causal))")
                        } else {
                            #expect(got == 0, "masked p[\(i), \(j)]")
                        }
                    }
                }
                // The same bits as adding the bias to the scores and taking the plain softmax.
                var added = scores
                for i in 0..<rows { for j in 0..<(causal ? min(cols, i + 2) : cols) { added[i * ld + j] += bias[i * biasLd + j] } }
                mask.withUnsafeBufferPointerOrNil { km in
                    Softmax.forward(&added, rows: rows, cols: cols, ld: ld, keyMask: km, causal: causal, causalOffset: 1)
                }
                for i in 0..<rows { for j in 0..<cols { #expect(added[i * ld + j] == p[i * ld + j], "biased = added [\(i), \(j)]") } }
            }
        }
    }

    @Test(arguments: [(1, 3), (4, 17), (64, 40)])
    func biasGradientIsTheSumOverTheBatch(_ rows: Int, _ cols: Int) {
        var rng = SeededRNG(seed: UInt64(rows * 31 + cols))
        let batch = 5, ld = cols + 1, ldBias = cols + 3, batchStride = rows * ld + 2
        let dScores = Self.gaussian(&rng, batch * batchStride), start = Self.gaussian(&rng, rows * ldBias)
        var dBias = start
        Softmax.accumulateBiasGradient(dBias: &dBias, ldBias: ldBias, dScores: dScores, ld: ld, rows: rows, cols: cols,
                                       batch: batch, batchStride: batchStride)
        // One batch entry at a time gives the same bits (each value is summed in batch order).
        var oneByOne = start
        for b in 0..<batch {
            dScores.withUnsafeBufferPointer { ds in
                Softmax.accumulateBiasGradient(dBias: &oneByOne, ldBias: ldBias, dScores: ds.baseAddress! + b * batchStride, ld: ld,
                                               rows: rows, cols: cols)
            }
        }
        #expect(dBias == oneByOne, "batch at once = one entry at a time")
        for i in 0..<rows {
            for j in 0..<ldBias {
                guard j < cols else {
                    #expect(dBias[i * ldBias + j] == start[i * ldBias + j], "padding column untouched")
                    continue
                }
                let terms = [Double(start[i * ldBias + j])] + (0..<batch).map { Double(dScores[$0 * batchStride + i * ld + j]) }
                let want = terms.reduce(0, +), scale = terms.reduce(0) { $0 + abs($1) }
                #expect(abs(Double(dBias[i * ldBias + j]) - want) <= 1e-6 * scale, "dBias[\(i), \(j)]")
            }
        }
    }

    // MARK: gelu_new, ReLU, gated forms

    /// NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), and its derivative.
    static func geluNew(_ x: Double) -> (value: Double, derivative: Double) {
        let c = (2 / Double.pi).squareRoot()
        let u = c * (x + 0.044715 * x * x * x), t = tanh(u)
        return (0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))
    }

    static func reference(_ act: Activation, _ x: Double) -> (value: Double, derivative: Double) {
        switch act {
        case .geluNew: return geluNew(x)
        case .relu: return (max(x, 0), x > 0 ? 1 : 0)
        case .gelu:
            let cdf = 0.5 * (1 + erf(x / 2.0.squareRoot())), pdf = exp(-x * x / 2) / (2 * Double.pi).squareRoot()
            return (x * cdf, cdf + x * pdf)
        case .silu:
            let s = 1 / (1 + exp(-x))
            return (x * s, s * (1 + x * (1 - s)))
        }
    }

    /// Inputs over the range that matters (and past it, where tanh saturates), a count with a tail.
    static let activationInputs: [Float] = (-1200...1200).map { Float($0) / 100 } + [-80, -31.5, 25, 60, 1e-4, -1e-4, 0, 3.3]

    /// The forward within 1e-6 relative (with an absolute floor of 1e-6 where |f(x)| < 1: tanh
    /// computed as 1 − 2/(e^{2u} + 1) in fp32 has an absolute error of about 1e-7); the derivative
    /// (dy = 1) within 1e-5 of max(1, |f′|).
    @Test(arguments: [Activation.geluNew, .relu])
    func activationMatchesDefinition(_ act: Activation) {
        let xs = Self.activationInputs, n = xs.count
        var y = [Float](repeating: 0, count: n), d = y
        act.forward(&y, xs, n)
        act.backward(&d, [Float](repeating: 1, count: n), xs, n)
        for i in 0..<n {
            let want = Self.reference(act, Double(xs[i]))
            #expect(abs(Double(y[i]) - want.value) <= 1e-6 * max(1, abs(want.value)), "\(act)(\(xs[i])) = \(y[i]), want \(want.value)")
            #expect(abs(Double(d[i]) - want.derivative) <= 1e-5 * max(1, abs(want.derivative)),
                    "\(act)′(\(xs[i])) = \(d[i]), want \(want.derivative)")
        }
        if act == .relu {
            // ReLU is exact.
            #expect(y == xs.map { max($0, 0) })
            #expect(d == xs.map { $0 > 0 ? 1 : 0 })
        }
    }

    /// T5DenseGatedActDense: h = f(x·W0) ⊙ (x·W1); dGate = dh·linear·f′(gate), dLinear = dh·f(gate).
    @Test(arguments: [Activation.geluNew, .relu, .gelu, .silu])
    func gatedActivationMatchesDefinition(_ act: Activation) {
        var rng = SeededRNG(seed: 77)
        let n = 1003
        let a = Self.gaussian(&rng, n, scale: 3), b = Self.gaussian(&rng, n), dh = Self.gaussian(&rng, n)
        var h = [Float](repeating: 0, count: n), da = h, db = h, out = h
        act.gatedForward(&h, gate: a, linear: b, n)
        act.gatedBackward(dGate: &da, dLinear: &db, output: &out, grad: dh, gate: a, linear: b, n)
        #expect(out == h, "the recomputed output is the forward's")
        for i in 0..<n {
            let f = Self.reference(act, Double(a[i])), lin = Double(b[i]), g = Double(dh[i])
            // Each product's error is the factor's error times the other factor.
            let wantH = f.value * lin, wantDa = g * lin * f.derivative, wantDb = g * f.value
            #expect(abs(Double(h[i]) - wantH) <= 1e-6 * max(1, abs(f.value)) * abs(lin) + 1e-30, "h[\(i)]")
            #expect(abs(Double(da[i]) - wantDa) <= 1e-5 * max(1, abs(f.derivative)) * abs(g * lin) + 1e-30, "dGate[\(i)]")
            #expect(abs(Double(db[i]) - wantDb) <= 1e-6 * max(1, abs(f.value)) * abs(g) + 1e-30, "dLinear[\(i)]")
        }
    }
}

extension Optional where Wrapped == [Float] {
    /// The array's base address, or nil, for the duration of `body`.
    func withUnsafeBufferPointerOrNil<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}
