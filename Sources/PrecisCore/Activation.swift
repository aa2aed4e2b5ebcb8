import Foundation

/// Pointwise activations with their derivatives. Names follow transformers' `ACT2FN`.
public enum Activation: String, Sendable, Codable, CaseIterable {
    /// Exact GELU: x·Φ(x) = ½x(1 + erf(x/√2)).
    case gelu
    /// Tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))). Also `gelu_pytorch_tanh`.
    case geluNew = "gelu_new"
    case relu
    case silu

    public init?(transformersName: String) {
        switch transformersName {
        case "gelu": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluNew
        case "relu": self = .relu
        case "silu", "swish": self = .silu
        default: return nil
        }
    }

    /// y = f(x); y may alias x. Large arrays are split over the compute workers.
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        Parallel.chunks(n, grain: 1 << 15) { _, r in
            let y = y + r.lowerBound, x = x + r.lowerBound, n = r.count
            if let K = CPUFeatures.vectorKernels {
                switch self {
                case .gelu:
                    let m = n & ~7
                    K.geluForward(y, x, m)
                    forwardSerial(y + m, x + m, n - m)
                    return
                case .geluNew: K.geluNewForward(y, x, n); return
                case .relu: K.reluForward(y, x, n); return
                case .silu: break
                }
            }
            forwardSerial(y, x, n)
        }
    }

    /// dx = dy · f'(x); dx may alias dy. Large arrays are split over the compute workers.
    public func backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        Parallel.chunks(n, grain: 1 << 15) { _, r in
            let dx = dx + r.lowerBound, dy = dy + r.lowerBound, x = x + r.lowerBound, n = r.count
            if let K = CPUFeatures.vectorKernels {
                switch self {
                case .gelu:
                    let m = n & ~7
                    K.geluBackward(dx, dy, x, m)
                    backwardSerial(dx + m, dy + m, x + m, n - m)
                    return
                case .geluNew: K.geluNewBackward(dx, dy, x, n); return
                case .relu: K.reluBackward(dx, dy, x, n); return
                case .silu: break
                }
            }
            backwardSerial(dx, dy, x, n)
        }
    }

    /// Backward without the saved output: `grad` holds dL/dy on entry and dL/dx after, and `x` (the
    /// input) is overwritten with y = f(x), for callers that need the output again (fc2's weight
    /// gradient) but did not keep it. Both in one pass over the values.
    public func backwardRecomputing(x: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>, _ n: Int) {
        Parallel.chunks(n, grain: 1 << 15) { _, r in
            let x = x + r.lowerBound, g = grad + r.lowerBound, n = r.count
            if let K = CPUFeatures.vectorKernels {
                switch self {
                case .gelu:
                    let m = n & ~7
                    K.geluRecomputeBackward(x, g, m)
                    backwardRecomputingSerial(x: x + m, grad: g + m, n - m)
                    return
                case .geluNew: K.geluNewRecomputeBackward(x, g, n); return
                case .relu: K.reluRecomputeBackward(x, g, n); return
                case .silu: break
                }
            }
            backwardRecomputingSerial(x: x, grad: g, n)
        }
    }

    /// The gated form T5 v1.1 uses in its feed-forward block: h = f(gate) ⊙ linear, with gate = x·W0
    /// and linear = x·W1 (transformers' `T5DenseGatedActDense`). `h` may alias `gate` or `linear`.
    /// Large arrays are split over the compute workers.
    public func gatedForward(_ h: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        Parallel.chunks(n, grain: 1 << 15) { _, r in
            let h = h + r.lowerBound, a = gate + r.lowerBound, b = linear + r.lowerBound, n = r.count
            if let K = CPUFeatures.vectorKernels {
                switch self {
                case .geluNew: K.gatedGeluNewForward(h, gate: a, linear: b, n); return
                case .relu: K.gatedReluForward(h, gate: a, linear: b, n); return
                case .gelu, .silu: break
                }
            }
            gatedForwardSerial(h, gate: a, linear: b, n)
        }
    }

    /// The gated form's backward from dh (`grad`): dGate = (dh ⊙ linear) · f'(gate), dLinear =
    /// dh ⊙ f(gate), and, when `output` is given, h = f(gate) ⊙ linear recomputed (for the output
    /// projection's weight gradient), with one evaluation of f. Any output may alias any input
    /// (e.g. dGate over `gate`, dLinear over `linear`, h over `grad`). Large arrays are split over
    /// the compute workers.
    public func gatedBackward(dGate: UnsafeMutablePointer<Float>, dLinear: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>?,
                              grad: UnsafePointer<Float>, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        Parallel.chunks(n, grain: 1 << 15) { _, r in
            let o = r.lowerBound, n = r.count
            let da = dGate + o, db = dLinear + o, h = output.map { $0 + o }, g = grad + o, a = gate + o, b = linear + o
            if let K = CPUFeatures.vectorKernels {
                switch self {
                case .geluNew: K.gatedGeluNewBackward(dGate: da, dLinear: db, output: h, grad: g, gate: a, linear: b, n); return
                case .relu: K.gatedReluBackward(dGate: da, dLinear: db, output: h, grad: g, gate: a, linear: b, n); return
                case .gelu, .silu: break
                }
            }
            gatedBackwardSerial(dGate: da, dLinear: db, output: h, grad: g, gate: a, linear: b, n)
        }
    }

    // The portable (any x86-64 or ARM) kernels, single-threaded: PrecisKernels' `Pointwise` loops
    // compiled here for the baseline. The dispatched entry points above use them unless a vector-ISA
    // build applies (`CPUFeatures.vectorKernels`). Public so tests can compare the two.

    public func forwardSerial(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        switch self {
        case .gelu: Pointwise.forward(GeluErf.self, y, x, n)
        case .geluNew: Pointwise.forward(GeluTanh.self, y, x, n)
        case .relu: Pointwise.forward(ReLU.self, y, x, n)
        case .silu: Pointwise.forward(SiLU.self, y, x, n)
        }
    }

    public func backwardSerial(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        switch self {
        case .gelu: Pointwise.backward(GeluErf.self, dx, dy, x, n)
        case .geluNew: Pointwise.backward(GeluTanh.self, dx, dy, x, n)
        case .relu: Pointwise.backward(ReLU.self, dx, dy, x, n)
        case .silu: Pointwise.backward(SiLU.self, dx, dy, x, n)
        }
    }

    public func backwardRecomputingSerial(x: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .gelu: Pointwise.backwardRecomputing(GeluErf.self, x: x, grad: grad, n)
        case .geluNew: Pointwise.backwardRecomputing(GeluTanh.self, x: x, grad: grad, n)
        case .relu: Pointwise.backwardRecomputing(ReLU.self, x: x, grad: grad, n)
        case .silu: Pointwise.backwardRecomputing(SiLU.self, x: x, grad: grad, n)
        }
    }

    public func gatedForwardSerial(_ h: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        switch self {
        case .gelu: Pointwise.gatedForward(GeluErf.self, h, gate: gate, linear: linear, n)
        case .geluNew: Pointwise.gatedForward(GeluTanh.self, h, gate: gate, linear: linear, n)
        case .relu: Pointwise.gatedForward(ReLU.self, h, gate: gate, linear: linear, n)
        case .silu: Pointwise.gatedForward(SiLU.self, h, gate: gate, linear: linear, n)
        }
    }

    public func gatedBackwardSerial(dGate: UnsafeMutablePointer<Float>, dLinear: UnsafeMutablePointer<Float>,
                                    output: UnsafeMutablePointer<Float>?, grad: UnsafePointer<Float>,
                                    gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        switch self {
        case .gelu:
            Pointwise.gatedBackward(GeluErf.self, dGate: dGate, dLinear: dLinear, output: output, grad: grad, gate: gate, linear: linear, n)
        case .geluNew:
            Pointwise.gatedBackward(GeluTanh.self, dGate: dGate, dLinear: dLinear, output: output, grad: grad, gate: gate, linear: linear, n)
        case .relu:
            Pointwise.gatedBackward(ReLU.self, dGate: dGate, dLinear: dLinear, output: output, grad: grad, gate: gate, linear: linear, n)
        case .silu:
            Pointwise.gatedBackward(SiLU.self, dGate: dGate, dLinear: dLinear, output: output, grad: grad, gate: gate, linear: linear, n)
        }
    }
}
