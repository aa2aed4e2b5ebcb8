import PrecisWire

/// Which partitions of one contribution have their final gradient and which have been handed on to
/// be pushed. Backward reports runs of the flat buffer as their gradients become final (see
/// `Seq2SeqModel.onGradientsFinal`), in any order and across partition bounds; a partition is final
/// once reports have covered all of its values. The runs it reports are disjoint, apart from the
/// whole buffer reported again at the end, which completes whatever is left (coverage is counted
/// per partition and capped at its size).
///
/// A value type with no lock of its own: `GradientPusher` keeps it inside its mutex.
package struct PushState: Sendable {
    package let plan: PartitionPlan
    /// Partitions handed on to be pushed (each exactly once).
    package private(set) var sent: [Bool]
    /// Values of each partition reported final so far.
    private var coveredCount: [Int]

    package init(plan: PartitionPlan) {
        self.plan = plan
        sent = Array(repeating: false, count: plan.count)
        coveredCount = Array(repeating: 0, count: plan.count)
    }

    /// Marks `range` final; returns the partitions that just became entirely final.
    package mutating func covered(_ range: Range<Int>) -> [Int] {
        guard !range.isEmpty else { return [] }
        var done: [Int] = []
        // Partitions are sorted by offset: find the first that can overlap.
        var lo = 0, hi = plan.count
        while lo < hi { let mid = (lo + hi) / 2; if plan.bounds[mid + 1] <= range.lowerBound { lo = mid + 1 } else { hi = mid } }
        var p = lo
        while p < plan.count && plan.bounds[p] < range.upperBound {
            let r = plan.range(p)
            let overlap = min(r.upperBound, range.upperBound) - max(r.lowerBound, range.lowerBound)
            if overlap > 0 && coveredCount[p] < r.count {
                coveredCount[p] = min(r.count, coveredCount[p] + overlap)
                if coveredCount[p] == r.count { done.append(p) }
            }
            p += 1
        }
        return done
    }

    /// Marks partition `p` handed on; false when it already was (so it is pushed once).
    package mutating func markSent(_ p: Int) -> Bool {
        if sent[p] { return false }
        sent[p] = true
        return true
    }

    /// How many partitions have been handed on.
    package var sentCount: Int { sent.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// The partitions not handed on yet, last first (the decoder's, whose gradients are final first).
    package var unsent: [Int] { sent.indices.reversed().filter { !sent[$0] } }
}
