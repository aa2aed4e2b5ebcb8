/// The optimizer side of one training step over a flat buffer (or one shard of it): global-norm
/// clipping, the learning-rate schedule and AdamW, with its moments. A single process uses it over
/// the whole buffer; a parameter server uses it over its own range, with the clip coefficient
/// computed from the norm of the whole gradient.
public final class OptimizerState {
    public let range: Range<Int>
    public let adamw: AdamW
    public let schedule: LRSchedule
    public let segments: [(range: Range<Int>, decay: Bool)]
    /// First and second moments, indexed like the flat buffer minus `range.lowerBound`.
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Optimizer steps taken so far.
    public private(set) var steps = 0

    public init(table: ParameterTable, range: Range<Int>? = nil, adamw: AdamW, schedule: LRSchedule) {
        let r = range ?? 0..<table.count
        self.range = r
        self.adamw = adamw
        self.schedule = schedule
        segments = table.decaySegments(in: r)
        m = FloatBuffer(count: r.count)
        v = FloatBuffer(count: r.count)
    }

    /// An optimizer over `range` whose weight-decay segments are given directly (a parameter server
    /// gets them from the coordinator and needs no model). Segments outside `range` are clipped.
    public init(range r: Range<Int>, segments all: [(range: Range<Int>, decay: Bool)], adamw: AdamW, schedule: LRSchedule) {
        range = r
        self.adamw = adamw
        self.schedule = schedule
        segments = all.compactMap { seg in
            let lo = max(seg.range.lowerBound, r.lowerBound), hi = min(seg.range.upperBound, r.upperBound)
            return lo < hi ? (lo..<hi, seg.decay) : nil
        }
        m = FloatBuffer(count: r.count)
        v = FloatBuffer(count: r.count)
    }

    /// The learning rate the next step will use.
    public var currentLR: Double { schedule.lr(at: steps) }

    /// Applies one AdamW update to params[range] with the gradients grads[range] × `clipCoefficient`
    /// (the scaling happens inside the update: `grads` is not modified).
    /// `params` and `grads` address the whole flat buffer (or a buffer starting at `range.lowerBound`
    /// when `shardBase` is true).
    public func apply(params: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>,
                      clipCoefficient: Float = 1, shardBase: Bool = false) {
        let base = shardBase ? range.lowerBound : 0
        let p = params - base, g = grads - base
        let lr = currentLR
        steps += 1
        adamw.step(params: p, grads: UnsafePointer(g), m: m.pointer - range.lowerBound, v: v.pointer - range.lowerBound,
                   segments: segments, lr: lr, t: steps, gradScale: clipCoefficient)
    }

    /// Restores the step counter (resuming from a checkpoint).
    public func restore(steps: Int) { self.steps = steps }
}
