// Portable bodies of the pointwise activations and their gated forms (T5 v1.1's
// h = act(x·W0) ⊙ (x·W1)), as 8-lane formulas and loops over them. Like the row kernels, everything
// is `@inlinable`: PrecisCore compiles these loops for baseline x86-64, PrecisAVX512 again for
// AVX-512, and both perform the same float operations in the same order, so they give the same bits.
// A tail of n % 8 values is padded into 8 lanes (zeros beyond n) and goes through the same formulas.

/// tanh for 8 lanes via exp: tanh(u) = 1 − 2/(exp(2u) + 1).
@inlinable @inline(__always) public func vtanh(_ u: F8) -> F8 {
    1 - 2 / (vexp(2 * u) + 1)
}

/// One activation f as 8-lane formulas. The loops of `Pointwise` are generic over it, so each
/// caller's module compiles them, specialised, for its own target.
public protocol PointwiseActivation {
    /// f(x)
    static func value(_ x: F8) -> F8
    /// dy · f′(x)
    static func gradient(_ dy: F8, _ x: F8) -> F8
    /// (f(x), dy · f′(x)) with the bits of `value` and `gradient`, sharing what both compute.
    static func valueAndGradient(_ dy: F8, _ x: F8) -> (value: F8, gradient: F8)
}

/// Exact GELU, x·Φ(x) = ½x(1 + erf(x/√2)) (transformers' `gelu`).
public enum GeluErf: PointwiseActivation {
    @inlinable @inline(__always) public static func value(_ x: F8) -> F8 {
        0.5 * x * (1 + verf(x * 0.70710678118654752))
    }

    @inlinable @inline(__always) public static func gradient(_ dy: F8, _ x: F8) -> F8 {
        let (cdf, pdf) = vnormal(x)
        return dy * (cdf + x * pdf)
    }

    /// The value through `verf` and the gradient through `vnormal`, as the two separate kernels do.
    @inlinable @inline(__always) public static func valueAndGradient(_ dy: F8, _ x: F8) -> (value: F8, gradient: F8) {
        (value(x), gradient(dy, x))
    }
}

/// The tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (transformers' `gelu_new`,
/// `NewGELUActivation`; also `gelu_pytorch_tanh`).
public enum GeluTanh: PointwiseActivation {
    @inlinable @inline(__always) static func inner(_ v: F8) -> F8 {
        0.7978845608028654 * (v + 0.044715 * v * v * v)
    }

    @inlinable @inline(__always) static func derivative(_ v: F8, tanh t: F8) -> F8 {
        let du = 0.7978845608028654 * (1 + 3 * 0.044715 * v * v)
        return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du
    }

    @inlinable @inline(__always) public static func value(_ x: F8) -> F8 {
        0.5 * x * (1 + vtanh(inner(x)))
    }

    @inlinable @inline(__always) public static func gradient(_ dy: F8, _ x: F8) -> F8 {
        dy * derivative(x, tanh: vtanh(inner(x)))
    }

    /// One tanh for both.
    @inlinable @inline(__always) public static func valueAndGradient(_ dy: F8, _ x: F8) -> (value: F8, gradient: F8) {
        let t = vtanh(inner(x))
        return (0.5 * x * (1 + t), dy * derivative(x, tanh: t))
    }
}

/// max(x, 0); its gradient passes dy where x > 0 and is 0 elsewhere.
public enum ReLU: PointwiseActivation {
    @inlinable @inline(__always) public static func value(_ x: F8) -> F8 {
        x.replacing(with: 0, where: x .< 0)
    }

    @inlinable @inline(__always) public static func gradient(_ dy: F8, _ x: F8) -> F8 {
        dy.replacing(with: 0, where: x .<= 0)
    }

    @inlinable @inline(__always) public static func valueAndGradient(_ dy: F8, _ x: F8) -> (value: F8, gradient: F8) {
        (value(x), gradient(dy, x))
    }
}

/// x·σ(x) (transformers' `silu` / `swish`).
public enum SiLU: PointwiseActivation {
    @inlinable @inline(__always) public static func value(_ x: F8) -> F8 {
        x / (1 + vexp(-x))
    }

    @inlinable @inline(__always) public static func gradient(_ dy: F8, _ x: F8) -> F8 {
        let s = 1 / (1 + vexp(-x))
        return dy * s * (1 + x * (1 - s))
    }

    @inlinable @inline(__always) public static func valueAndGradient(_ dy: F8, _ x: F8) -> (value: F8, gradient: F8) {
        (value(x), gradient(dy, x))
    }
}

/// Elementwise loops over n values (one thread), generic over the activation. Outputs may alias
/// inputs at the same positions (every 8 values are read before any is written).
public enum Pointwise {
    /// 8 values from p, or the `count` < 8 left, padded with zeros.
    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ count: Int) -> F8 {
        if count >= 8 { return load8(p) }
        var v = F8()
        for j in 0..<count { v[j] = p[j] }
        return v
    }

    /// The first `count` lanes of v to p.
    @inlinable @inline(__always)
    static func store(_ v: F8, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        if count >= 8 { store8(v, p); return }
        for j in 0..<count { p[j] = v[j] }
    }

    /// y = f(x)
    @inlinable @inline(__always)
    public static func forward<F: PointwiseActivation>(_: F.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i < n {
            let c = n - i
            store(F.value(load(x + i, c)), y + i, c)
            i += 8
        }
    }

    /// dx = dy · f′(x)
    @inlinable @inline(__always)
    public static func backward<F: PointwiseActivation>(_: F.Type, _ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                                        _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i < n {
            let c = n - i
            store(F.gradient(load(dy + i, c), load(x + i, c)), dx + i, c)
            i += 8
        }
    }

    /// Backward without the saved output: x ← f(x) (the output, recomputed over its input) and
    /// g ← g · f′(x), in one pass.
    @inlinable @inline(__always)
    public static func backwardRecomputing<F: PointwiseActivation>(_: F.Type, x: UnsafeMutablePointer<Float>,
                                                                   grad g: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i < n {
            let c = n - i
            let (y, dx) = F.valueAndGradient(load(g + i, c), load(x + i, c))
            store(dx, g + i, c)
            store(y, x + i, c)
            i += 8
        }
    }

    /// The gated form: h = f(gate) ⊙ linear.
    @inlinable @inline(__always)
    public static func gatedForward<F: PointwiseActivation>(_: F.Type, _ h: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                                                            linear: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i < n {
            let c = n - i
            store(F.value(load(gate + i, c)) * load(linear + i, c), h + i, c)
            i += 8
        }
    }

    /// The gated form's backward from dh: dGate = (dh ⊙ linear) · f′(gate), dLinear = dh ⊙ f(gate),
    /// and, when `output` is given, h = f(gate) ⊙ linear recomputed (one evaluation of f for all
    /// three). Any output may alias any input.
    @inlinable @inline(__always)
    public static func gatedBackward<F: PointwiseActivation>(_: F.Type, dGate: UnsafeMutablePointer<Float>,
                                                             dLinear: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>?,
                                                             grad: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                                             linear: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i < n {
            let c = n - i
            let dh = load(grad + i, c), a = load(gate + i, c), b = load(linear + i, c)
            let (fa, da) = F.valueAndGradient(dh * b, a)
            store(da, dGate + i, c)
            store(dh * fa, dLinear + i, c)
            if let output { store(fa * b, output + i, c) }
            i += 8
        }
    }
}
