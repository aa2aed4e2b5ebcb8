import Foundation
import PrecisAVX512

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
        split(n, gelu512: { AVX512Kernels.geluForward(y + $0, x + $0, $1) },
              portable: { forwardSerial(y + $0, x + $0, $1) })
    }

    /// dx = dy · f'(x); dx may alias dy. Large arrays are split over the compute workers.
    public func backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        split(n, gelu512: { AVX512Kernels.geluBackward(dx + $0, dy + $0, x + $0, $1) },
              portable: { backwardSerial(dx + $0, dy + $0, x + $0, $1) })
    }

    /// Backward without the saved output: `grad` holds dL/dy on entry and dL/dx after, and `x` (the
    /// input) is overwritten with y = f(x), for callers that need the output again (fc2's weight
    /// gradient) but did not keep it. Exact GELU with AVX-512 does both in one pass.
    public func backwardRecomputing(x: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>, _ n: Int) {
        split(n, gelu512: { AVX512Kernels.geluRecomputeBackward(x + $0, grad + $0, $1) },
              portable: { lo, count in
                  backwardSerial(grad + lo, grad + lo, x + lo, count)
                  forwardSerial(x + lo, x + lo, count)
              })
    }

    /// Spreads n elements over the compute workers; each chunk runs the AVX-512 GELU kernel on its
    /// multiple-of-8 prefix when that applies, and the portable kernel on the rest.
    @inline(__always)
    private func split(_ n: Int, gelu512: (_ start: Int, _ count: Int) -> Void, portable: (_ start: Int, _ count: Int) -> Void) {
        Parallel.chunks(n, grain: 1 << 15) { _, r in
            var lo = r.lowerBound
            if self == .gelu && CPUFeatures.avx512 {
                let m = r.count & ~7
                gelu512(lo, m)
                lo += m
            }
            portable(lo, r.upperBound - lo)
        }
    }

    /// The portable (any x86-64 or ARM) kernel, single-threaded; `forward` uses it unless the
    /// AVX-512 one applies. Public so tests can compare the two.
    public func forwardSerial(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        switch self {
        case .gelu:
            while i + 8 <= n {
                let v = load8(x + i)
                store8(0.5 * v * (1 + verf(v * 0.70710678118654752)), y + i)
                i += 8
            }
        case .geluNew:
            while i + 8 <= n {
                let v = load8(x + i)
                store8(0.5 * v * (1 + vtanh(0.7978845608028654 * (v + 0.044715 * v * v * v))), y + i)
                i += 8
            }
        case .relu:
            while i + 8 <= n {
                let v = load8(x + i)
                store8(v.replacing(with: 0, where: v .< 0), y + i)
                i += 8
            }
        case .silu:
            while i + 8 <= n {
                let v = load8(x + i)
                store8(v / (1 + vexp(-v)), y + i)
                i += 8
            }
        }
        if i < n { forwardTail(y + i, x + i, n - i) }
    }

    /// The portable backward kernel, single-threaded (see `forwardSerial`).
    public func backwardSerial(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        switch self {
        case .gelu:
            while i + 8 <= n {
                let v = load8(x + i)
                let (cdf, pdf) = vnormal(v)
                store8(load8(dy + i) * (cdf + v * pdf), dx + i)
                i += 8
            }
        case .geluNew:
            while i + 8 <= n {
                let v = load8(x + i)
                let u = 0.7978845608028654 * (v + 0.044715 * v * v * v)
                let t = vtanh(u)
                let du = 0.7978845608028654 * (1 + 3 * 0.044715 * v * v)
                store8(load8(dy + i) * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du), dx + i)
                i += 8
            }
        case .relu:
            while i + 8 <= n {
                let g = load8(dy + i)
                store8(g.replacing(with: 0, where: load8(x + i) .<= 0), dx + i)
                i += 8
            }
        case .silu:
            while i + 8 <= n {
                let v = load8(x + i)
                let s = 1 / (1 + vexp(-v))
                store8(load8(dy + i) * s * (1 + v * (1 - s)), dx + i)
                i += 8
            }
        }
        if i < n {
            // Pad the tail into 8 lanes so it uses exactly the same formulas.
            var xs = F8(), gs = F8()
            for j in 0..<(n - i) { xs[j] = x[i + j]; gs[j] = dy[i + j] }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 24) { buf in
                let b = buf.baseAddress!
                store8(xs, b); store8(gs, b + 8)
                backwardSerial(b + 16, b + 8, b, 8)
                for j in 0..<(n - i) { dx[i + j] = b[16 + j] }
            }
        }
    }

    /// The last n < 8 elements, padded to 8 lanes so they use exactly the same formulas.
    private func forwardTail(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { buf in
            let b = buf.baseAddress!
            b.update(repeating: 0, count: 16)
            for j in 0..<n { b[j] = x[j] }
            forwardSerial(b + 8, b, 8)
            for j in 0..<n { y[j] = b[8 + j] }
        }
    }
}

/// tanh for 8 lanes via exp: tanh(u) = 1 − 2/(exp(2u) + 1).
@inline(__always) public func vtanh(_ u: F8) -> F8 {
    1 - 2 / (vexp(2 * u) + 1)
}

