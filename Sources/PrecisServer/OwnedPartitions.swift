import PrecisWire

/// The partitions one server owns: a contiguous run of the plan's partitions, held in buffers that
/// begin at the run's first value (`base`). Maps a global partition index to its local index (its
/// place among the owned ones) and a local partition to its values in those buffers.
package struct OwnedPartitions: Sendable, Equatable {
    package let plan: PartitionPlan
    /// Global partition indices, in the plan's order.
    package let partitions: [Int]
    /// The flat offset of the server's first value: its buffers hold `count` values from here.
    package let base: Int
    package let count: Int

    /// Server `server`'s share of `plan` (`partitions`: the global indices the coordinator assigned it).
    package init(plan: PartitionPlan, server: Int, partitions: [Int]) {
        let range = plan.range(ofServer: server)
        self.plan = plan
        self.partitions = partitions
        base = range.lowerBound
        count = range.count
    }

    /// Local partition indices (0 ..< number owned).
    package var indices: Range<Int> { partitions.indices }

    /// The local index of global partition `partition`, or nil when this server does not own it.
    package func local(_ partition: Int) -> Int? { partitions.firstIndex(of: partition) }

    /// Local partition `local`'s values in the flat buffer.
    package func flatRange(local: Int) -> Range<Int> { plan.range(partitions[local]) }

    /// Local partition `local`'s values in the server's buffers (the flat range less `base`).
    package func range(local: Int) -> Range<Int> {
        let r = flatRange(local: local)
        return (r.lowerBound - base)..<(r.upperBound - base)
    }
}
