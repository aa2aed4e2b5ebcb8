import PrecisCore
import PrecisWire

/// The update rule of a server's partitions: one `OptimizerState` per owned partition (AdamW with
/// the run's learning-rate schedule and weight-decay segments, clipped by the coefficient the
/// coordinator computed from the whole gradient's norm). Works on the server's buffers (see
/// `OwnedPartitions`), so it is the same update as one `OptimizerState` over the whole flat buffer.
///
/// Not thread-safe: the server's event loop owns it (AdamW itself runs on the compute threads).
package final class UpdateRule {
    package let layout: OwnedPartitions
    /// Per local partition; its moments `m` and `v` are indexed from the partition's first value.
    package let optimizers: [OptimizerState]

    package init(layout: OwnedPartitions, segments: [(range: Range<Int>, decay: Bool)], adamw: AdamW, schedule: LRSchedule,
                 startStep: Int) {
        self.layout = layout
        optimizers = layout.indices.map {
            OptimizerState(range: layout.flatRange(local: $0), segments: segments, adamw: adamw, schedule: schedule)
        }
        for o in optimizers { o.restore(steps: startStep) }
    }

    /// The rule an `assign` message describes.
    package convenience init(layout: OwnedPartitions, assignment a: AssignMessage) {
        self.init(layout: layout, segments: a.segments.map { (range: $0.lower..<$0.upper, decay: $0.decay) },
                  adamw: AdamW(beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weightDecay),
                  schedule: LRSchedule(kind: LRSchedule.Kind(rawValue: a.schedule) ?? .linear, baseLR: a.learningRate,
                                       warmupSteps: a.warmupSteps, totalSteps: a.totalSteps),
                  startStep: a.startStep)
    }

    /// One update of local partition `local`: `params` and `gradient` are the server's buffers;
    /// the gradient is scaled by `clip` inside the update (it is not modified).
    package func apply(local: Int, params: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>, clip: Float) {
        let off = layout.range(local: local).lowerBound
        optimizers[local].apply(params: params + off, grads: gradient + off, clipCoefficient: clip, shardBase: true)
    }

    /// A sync step: every partition in order, `afterEach(local)` right after each one's update
    /// (the server sends it to the pulls already waiting while it updates the rest).
    package func applyAll(params: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>, clip: Float,
                          afterEach: (Int) throws -> Void) rethrows {
        for local in layout.indices {
            apply(local: local, params: params, gradient: gradient, clip: clip)
            try afterEach(local)
        }
    }

    /// The updates every partition has had (ssp/async: each partition counts its own).
    package var steps: Int { optimizers.map(\.steps).min() ?? 0 }
}
