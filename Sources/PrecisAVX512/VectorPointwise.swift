import PrecisKernels

// The tanh GELU (`gelu_new`) and ReLU, plain and gated (PrecisKernels' `Pointwise` loops), compiled
// here for this module's ISA (same operations, same bits; any n, tails included).
extension VectorKernels {
    /// y = gelu_new(x) over n elements.
    @inline(never)
    public static func geluNewForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        Pointwise.forward(GeluTanh.self, y, x, n)
    }

    /// dx = dy · gelu_new′(x) over n elements.
    @inline(never)
    public static func geluNewBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        Pointwise.backward(GeluTanh.self, dx, dy, x, n)
    }

    /// x ← gelu_new(x), g ← g · gelu_new′(x), in one pass.
    @inline(never)
    public static func geluNewRecomputeBackward(_ x: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int) {
        Pointwise.backwardRecomputing(GeluTanh.self, x: x, grad: g, n)
    }

    /// h = gelu_new(gate) ⊙ linear over n elements.
    @inline(never)
    public static func gatedGeluNewForward(_ h: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>,
                                           _ n: Int) {
        Pointwise.gatedForward(GeluTanh.self, h, gate: gate, linear: linear, n)
    }

    /// The gated gelu_new's backward (see `Pointwise.gatedBackward`).
    @inline(never)
    public static func gatedGeluNewBackward(dGate: UnsafeMutablePointer<Float>, dLinear: UnsafeMutablePointer<Float>,
                                            output: UnsafeMutablePointer<Float>?, grad: UnsafePointer<Float>,
                                            gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        Pointwise.gatedBackward(GeluTanh.self, dGate: dGate, dLinear: dLinear, output: output, grad: grad, gate: gate, linear: linear, n)
    }

    /// y = max(x, 0) over n elements.
    @inline(never)
    public static func reluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        Pointwise.forward(ReLU.self, y, x, n)
    }

    /// dx = dy where x > 0, else 0, over n elements.
    @inline(never)
    public static func reluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        Pointwise.backward(ReLU.self, dx, dy, x, n)
    }

    /// x ← max(x, 0), g ← g · relu′(x), in one pass.
    @inline(never)
    public static func reluRecomputeBackward(_ x: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int) {
        Pointwise.backwardRecomputing(ReLU.self, x: x, grad: g, n)
    }

    /// h = max(gate, 0) ⊙ linear over n elements.
    @inline(never)
    public static func gatedReluForward(_ h: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>,
                                        _ n: Int) {
        Pointwise.gatedForward(ReLU.self, h, gate: gate, linear: linear, n)
    }

    /// The gated ReLU's backward (see `Pointwise.gatedBackward`).
    @inline(never)
    public static func gatedReluBackward(dGate: UnsafeMutablePointer<Float>, dLinear: UnsafeMutablePointer<Float>,
                                         output: UnsafeMutablePointer<Float>?, grad: UnsafePointer<Float>,
                                         gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int) {
        Pointwise.gatedBackward(ReLU.self, dGate: dGate, dLinear: dLinear, output: output, grad: grad, gate: gate, linear: linear, n)
    }
}
