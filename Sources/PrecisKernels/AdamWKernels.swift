/// The constants of one AdamW update (`PrecisCore.AdamW.step` derives them from its settings, the
/// learning rate and the step number).
public struct AdamWConstants: Sendable {
    /// lr / (1 − β₁ᵗ)
    public var stepSize: Float
    /// √(1 − β₂ᵗ)
    public var bc2Sqrt: Float
    /// 1 − β₁, β₂, 1 − β₂, ε
    public var w1: Float, b2: Float, w2: Float, eps: Float
    /// 1 − lr·λ for decayed parameters, else 1.
    public var decay: Float
    /// Each gradient is multiplied by this first (the clip coefficient).
    public var gradScale: Float

    public init(stepSize: Float, bc2Sqrt: Float, w1: Float, b2: Float, w2: Float, eps: Float, decay: Float, gradScale: Float) {
        self.stepSize = stepSize; self.bc2Sqrt = bc2Sqrt; self.w1 = w1; self.b2 = b2; self.w2 = w2; self.eps = eps
        self.decay = decay; self.gradScale = gradScale
    }
}

/// AdamW's update over n contiguous values, as PyTorch's single-tensor path orders it: m ← m +
/// (1 − β₁)(g − m), v ← β₂v + (1 − β₂)g², p ← p·decay − stepSize · m / (√v / √(1 − β₂ᵗ) + ε).
/// 8 lanes at a time, then a scalar tail with the same operations; `@inlinable`, so PrecisCore and
/// the vector-ISA modules compile it each for their own target, with the same bits.
public enum AdamWUpdate {
    @inlinable @inline(__always)
    public static func apply(params p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>,
                             m mm: UnsafeMutablePointer<Float>, v vv: UnsafeMutablePointer<Float>, count n: Int, _ c: AdamWConstants) {
        let w1v = F8(repeating: c.w1), b2v = F8(repeating: c.b2), w2v = F8(repeating: c.w2)
        let ev = F8(repeating: c.eps), sv = F8(repeating: c.stepSize), dv = F8(repeating: c.decay)
        let bcv = F8(repeating: c.bc2Sqrt), cv = F8(repeating: c.gradScale)
        let scaled = c.gradScale != 1
        var i = 0
        while i + 8 <= n {
            let gi = scaled ? load8(g + i) * cv : load8(g + i)
            let mi = load8(mm + i) + w1v * (gi - load8(mm + i))
            let vi = load8(vv + i) * b2v + w2v * gi * gi
            store8(mi, mm + i); store8(vi, vv + i)
            let denom = vi.squareRoot() / bcv + ev
            store8(load8(p + i) * dv - sv * mi / denom, p + i)
            i += 8
        }
        while i < n {
            let gi = scaled ? g[i] * c.gradScale : g[i]
            let mi = mm[i] + c.w1 * (gi - mm[i])
            let vi = vv[i] * c.b2 + c.w2 * gi * gi
            mm[i] = mi; vv[i] = vi
            let denom = vi.squareRoot() / c.bc2Sqrt + c.eps
            p[i] = p[i] * c.decay - c.stepSize * mi / denom
            i += 1
        }
    }
}
