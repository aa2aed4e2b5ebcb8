import Foundation
import PrecisKernels

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`, single-tensor path): decoupled weight decay
/// applied first, m ← lerp(m, g, 1 − β₁), v ← β₂v + (1 − β₂)g², bias correction, and eps added
/// after dividing √v by √(1 − β₂ᵗ). Works on any contiguous range of the flat buffer, so a
/// parameter server runs it on its own shard.
public struct AdamW: Sendable, Equatable, Codable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var weightDecay: Double = 0

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    /// One update of step `t` (1-based) with learning rate `lr` on the given segments. All pointers
    /// address the same flat layout (segment ranges index into them). Each gradient is multiplied by
    /// `gradScale` first (the clip coefficient: the same float product a separate scaling pass
    /// would store, without that pass over the buffer).
    public func step(
        params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
        segments: [(range: Range<Int>, decay: Bool)], lr: Double, t: Int, gradScale: Float = 1
    ) {
        let bc1 = 1 - pow(beta1, Double(t))
        let bc2 = 1 - pow(beta2, Double(t))
        for seg in segments {
            let decay: Float = seg.decay && weightDecay != 0 ? Float(1 - lr * weightDecay) : 1
            let c = AdamWConstants(stepSize: Float(lr / bc1), bc2Sqrt: Float(bc2.squareRoot()), w1: Float(1 - beta1), b2: Float(beta2),
                                   w2: Float(1 - beta2), eps: Float(eps), decay: decay, gradScale: gradScale)
            Parallel.chunks(seg.range.count, grain: 1 << 15) { _, part in
                let start = seg.range.lowerBound + part.lowerBound
                let p = params + start, g = grads + start, mm = m + start, vv = v + start
                if let K = CPUFeatures.vectorKernels {
                    K.adamW(params: p, grads: g, m: mm, v: vv, count: part.count, c)
                } else {
                    AdamWUpdate.apply(params: p, grads: g, m: mm, v: vv, count: part.count, c)
                }
            }
        }
    }
}

/// Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_`: every gradient is scaled by
/// min(1, maxNorm / (‖g‖ + 1e-6)).
public enum GradClip {
    /// The L2 norm of grads[range] (double-precision accumulation).
    public static func norm(_ grads: UnsafePointer<Float>, count: Int) -> Double {
        Vec.sumOfSquares(grads, count).squareRoot()
    }

    /// The factor to scale gradients by, given their global norm.
    public static func coefficient(totalNorm: Double, maxNorm: Double) -> Float {
        Float(min(1.0, maxNorm / (totalNorm + 1e-6)))
    }
}

/// Learning-rate schedules as transformers' `get_scheduler` defines them. `lr(at:)` takes the number
/// of optimizer steps already taken (0 for the first step), as `LambdaLR` does.
public struct LRSchedule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case linear, cosine, constant
        case constantWithWarmup = "constant_with_warmup"
    }

    public var kind: Kind
    public var baseLR: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(kind: Kind, baseLR: Double, warmupSteps: Int = 0, totalSteps: Int) {
        self.kind = kind; self.baseLR = baseLR; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// Warmup steps from Trainer's `warmup_ratio`: ceil(ratio · total).
    public static func warmupSteps(ratio: Double, totalSteps: Int) -> Int {
        Int((ratio * Double(totalSteps)).rounded(.up))
    }

    public func multiplier(at step: Int) -> Double {
        let s = Double(step), w = Double(warmupSteps), t = Double(totalSteps)
        switch kind {
        case .constant:
            return 1
        case .constantWithWarmup:
            return step < warmupSteps ? s / max(1, w) : 1
        case .linear:
            if step < warmupSteps { return s / max(1, w) }
            return max(0, (t - s) / max(1, t - w))
        case .cosine:
            if step < warmupSteps { return s / max(1, w) }
            let progress = (s - w) / max(1, t - w)
            return max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        }
    }

    public func lr(at step: Int) -> Double { baseLR * multiplier(at: step) }
}
