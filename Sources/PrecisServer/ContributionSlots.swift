import PrecisCore
import PrecisWire

/// The bookkeeping of a sync step on one server: one slot per contribution (a buffer over the
/// server's values), which contribution has delivered which partition, the figures (loss, tokens,
/// examples) its pushes carried, and each partition's sum as soon as every contribution has
/// delivered it.
///
/// A partition's slots are added in contribution order (slot 0, then 1, …) and the partitions' Σg²
/// in partition order, so the sum and the norm are the same bits whatever order the pushes arrived
/// in. A contribution computed twice (handed to a second worker after its first one died) is the
/// same gradient, so a second copy simply overwrites the first; it is counted once.
///
/// Not thread-safe: the server's event loop owns it.
package final class ContributionSlots {
    /// Contribution indices at or above this are refused (a corrupt or hostile header would
    /// otherwise make the server allocate a slot for each index below it).
    package static let maxContributions = 4096

    package let layout: OwnedPartitions
    /// The step's summed gradient over the server's values (each partition valid once summed).
    package let sum: FloatBuffer
    /// Contributions per step, from the coordinator's `plan` messages.
    private var expected: [Int: Int] = [:]
    /// One buffer over the server's values per contribution index seen; reused from step to step.
    private var slots: [FloatBuffer] = []
    /// received[contribution][local partition]
    private var received: [[Bool]] = []
    /// Each contribution's figures, from its latest push (every push of a contribution carries the same).
    private var figures: [ContributionFigures?] = []
    private var summed: [Bool]
    private var partitionSumOfSquares: [Double]
    /// The step's Σg² has been handed out: the step is complete and later copies are ignored.
    package private(set) var reported = false

    /// Contribution indices at or above this are refused before the step's plan is known (from the
    /// assignment: a step has at most as many contributions as micro-batches).
    package let limit: Int

    package init(layout: OwnedPartitions, maxContributions: Int? = nil) {
        self.layout = layout
        limit = min(Self.maxContributions, max(1, maxContributions ?? Self.maxContributions))
        sum = FloatBuffer(count: layout.count)
        summed = Array(repeating: false, count: layout.partitions.count)
        partitionSumOfSquares = Array(repeating: 0, count: layout.partitions.count)
    }

    /// The coordinator's plan: step `step` sums `contributions` contributions.
    package func expect(step: Int, contributions: Int) { expected[step] = contributions }

    /// Whether contribution index `c` can belong to `step`: below the step's planned count once the
    /// plan is in, below `limit` before.
    package func accepts(contribution c: Int, step: Int) -> Bool { c >= 0 && c < min(limit, expected[step] ?? limit) }

    /// Stores contribution `c`'s gradient of local partition `local` and the figures its push
    /// carried: `write` fills the partition's values in c's slot (the transport decodes the shard
    /// straight into it). When `write` throws, the partition counts as not delivered by `c`, and
    /// the error goes to the caller.
    package func store(contribution c: Int, local: Int, figures f: ContributionFigures,
                       _ write: (UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        precondition(c >= 0 && c < Self.maxContributions, "contribution index \(c)")
        while slots.count <= c {
            slots.append(FloatBuffer(count: layout.count))
            received.append(Array(repeating: false, count: layout.partitions.count))
            figures.append(nil)
        }
        received[c][local] = false
        try write(slots[c].pointer + layout.range(local: local).lowerBound)
        received[c][local] = true
        figures[c] = f
    }

    /// The figures of `step`'s contributions, in contribution order, once every one has delivered
    /// a partition here (empty before, and on a server without partitions).
    package func contributionFigures(step: Int) -> [ContributionFigures] {
        guard let n = expected[step], n > 0, figures.count >= n else { return [] }
        let f = figures.prefix(n).compactMap { $0 }
        return f.count == n ? f : []
    }

    /// Sums every partition that all of `step`'s contributions have delivered and that is not summed
    /// yet (in contribution order), with its Σg². Once every partition is summed, returns the step's
    /// Σg² (the partitions' added in partition order) — once: afterwards the step is `reported`.
    /// Returns nil while something is missing (the plan, a partition of a contribution).
    package func sumCompleted(step: Int) -> Double? {
        guard !reported, let n = expected[step], n > 0, slots.count >= n else { return nil }
        for local in layout.indices where !summed[local] && (0..<n).allSatisfy({ received[$0][local] }) {
            let r = layout.range(local: local)
            let g = sum.pointer + r.lowerBound
            Vec.copy(g, slots[0].pointer + r.lowerBound, r.count)
            for c in 1..<n { Vec.add(g, slots[c].pointer + r.lowerBound, r.count) }
            partitionSumOfSquares[local] = Vec.sumOfSquares(g, r.count)
            summed[local] = true
        }
        guard summed.allSatisfy({ $0 }) else { return nil }
        reported = true
        return partitionSumOfSquares.reduce(0, +)
    }

    /// Local partitions whose sum is complete.
    package func isSummed(local: Int) -> Bool { summed[local] }

    /// After step `step`'s update: forgets its plan and what was delivered (the slots are kept for
    /// the next step).
    package func finish(step: Int) {
        expected[step] = nil
        for c in received.indices { for i in received[c].indices { received[c][i] = false } }
        for c in figures.indices { figures[c] = nil }
        for i in summed.indices { summed[i] = false }
        reported = false
    }
}
