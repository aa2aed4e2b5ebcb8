import Testing
import PrecisCore
import PrecisServer
import PrecisWire

/// The server's bookkeeping of a sync step, without sockets: the sum of a step's contributions and
/// its Σg² do not depend on the order the pushes arrive in.
@Suite struct ContributionSlotsTests {
    let plan = PartitionPlan(total: 30_000, servers: 2, partitionFloats: 2_500, cuts: [4_321, 17_000])
    var layout: OwnedPartitions { OwnedPartitions(plan: plan, server: 1, partitions: plan.partitions(of: 1)) }

    /// Contributions of very different magnitudes, so float addition in another order gives other bits.
    func contributions(_ n: Int, seed: UInt64) -> [[Float]] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { c in
            let scale = [1e-3, 1.0, 1e3, 0.37][c % 4]
            return (0..<layout.count).map { _ in Float(rng.normal() * scale) }
        }
    }

    /// The figures contribution `c`'s pushes carry in these tests.
    func figures(_ c: Int, step: Int = 0) -> ContributionFigures {
        ContributionFigures(lossSum: 100.25 * Double(c + 1) + Double(step), tokens: 40 + c, examples: 2 + c)
    }

    /// Stores contribution `c`'s partition `local` (what the server does with a decoded push).
    func deliver(_ slots: ContributionSlots, _ values: [[Float]], c: Int, local: Int, step: Int = 0) {
        let r = layout.range(local: local)
        slots.store(contribution: c, local: local, figures: figures(c, step: step)) { dst in
            for (j, i) in r.enumerated() { dst[j] = values[c][i] }
        }
    }

    func sum(_ slots: ContributionSlots) -> [UInt32] {
        UnsafeBufferPointer(start: slots.sum.pointer, count: layout.count).map(\.bitPattern)
    }

    /// A push naming contribution 100 of a 2-contribution step would make the server allocate 100
    /// slots over its values: refused from the plan, or before it from the assignment's bound.
    @Test func contributionIndicesAreBoundedBeforeAnythingIsAllocated() {
        let slots = ContributionSlots(layout: layout, maxContributions: 4)
        #expect(slots.accepts(contribution: 3, step: 0))
        #expect(!slots.accepts(contribution: 4, step: 0) && !slots.accepts(contribution: 100, step: 0) && !slots.accepts(contribution: -1, step: 0))
        slots.expect(step: 0, contributions: 2)
        #expect(slots.accepts(contribution: 1, step: 0) && !slots.accepts(contribution: 2, step: 0))
        #expect(slots.accepts(contribution: 3, step: 1), "the next step's plan is not in yet: the assignment's bound holds")
        let unbounded = ContributionSlots(layout: layout)
        #expect(unbounded.accepts(contribution: ContributionSlots.maxContributions - 1, step: 0))
        #expect(!unbounded.accepts(contribution: ContributionSlots.maxContributions, step: 0))
    }

    @Test func ownedPartitionsTileTheServersBuffers() {
        let l = layout
        #expect(l.partitions == plan.partitions(of: 1) && l.partitions.count > 3)
        #expect(l.base == plan.range(ofServer: 1).lowerBound && l.count == plan.range(ofServer: 1).count)
        var next = 0
        for local in l.indices {
            #expect(l.range(local: local).lowerBound == next)
            #expect(l.flatRange(local: local) == plan.range(l.partitions[local]))
            #expect(l.local(l.partitions[local]) == local)
            next = l.range(local: local).upperBound
        }
        #expect(next == l.count)
        #expect(l.local(plan.partitions(of: 0)[0]) == nil)
    }

    @Test func theSumAndItsNormDoNotDependOnArrivalOrder() {
        let n = 4
        let values = contributions(n, seed: 9)
        let deliveries = (0..<n).flatMap { c in layout.indices.map { (c: c, local: $0) } }
        // The reference: each partition's contributions added in contribution order, Σg² in partition order.
        var reference = values[0]
        for c in 1..<n { for i in reference.indices { reference[i] += values[c][i] } }
        let referenceNorm = layout.indices.reduce(0.0) { acc, local in
            let r = layout.range(local: local)
            return acc + reference.withUnsafeMutableBufferPointer { Vec.sumOfSquares($0.baseAddress! + r.lowerBound, r.count) }
        }
        // The data really is order-sensitive: adding the contributions the other way round differs.
        var reversed = values[n - 1]
        for c in (0..<(n - 1)).reversed() { for i in reversed.indices { reversed[i] += values[c][i] } }
        #expect(reversed.map(\.bitPattern) != reference.map(\.bitPattern))

        for seed in 0..<6 {
            var rng = SeededRNG(seed: UInt64(seed))
            var order = deliveries.shuffled(using: &rng)
            if seed == 0 { order = deliveries.reversed() }
            let slots = ContributionSlots(layout: layout)
            let planLate = seed % 2 == 1          // the coordinator's plan may come after some pushes
            if !planLate { slots.expect(step: 7, contributions: n) }
            var norm: Double?
            var delivered = Set<Int>()
            for (k, d) in order.enumerated() {
                if planLate && k == order.count / 2 { slots.expect(step: 7, contributions: n) }
                deliver(slots, values, c: d.c, local: d.local)
                delivered.insert(d.c)
                norm = slots.sumCompleted(step: 7)
                #expect((norm != nil) == (k == order.count - 1), "delivery \(k) of \(order.count)")
                // The figures come out for every contribution at once, in contribution order.
                let all = delivered.count == n && (!planLate || k >= order.count / 2)
                #expect(slots.contributionFigures(step: 7) == (all ? (0..<n).map { figures($0) } : []), "delivery \(k)")
            }
            #expect(slots.reported)
            #expect(sum(slots) == reference.map(\.bitPattern), "order \(seed)")
            #expect(norm?.bitPattern == referenceNorm.bitPattern, "order \(seed)")
            #expect(slots.sumCompleted(step: 7) == nil, "the norm is reported once")
        }
    }

    /// Each partition is summed as soon as every contribution has it, while others are missing.
    @Test func partitionsAreSummedAsTheyComplete() {
        let values = contributions(2, seed: 4)
        let slots = ContributionSlots(layout: layout)
        slots.expect(step: 3, contributions: 2)
        for c in 0..<2 { deliver(slots, values, c: c, local: 1) }
        deliver(slots, values, c: 0, local: 0)
        #expect(slots.sumCompleted(step: 3) == nil)
        #expect(slots.isSummed(local: 1) && !slots.isSummed(local: 0) && !slots.isSummed(local: 2))
        let r = layout.range(local: 1)
        #expect(r.allSatisfy { slots.sum.pointer[$0] == values[0][$0] + values[1][$0] })
        #expect(slots.sumCompleted(step: 4) == nil, "another step's plan is not this one's")
    }

    /// A contribution computed twice (handed over after its worker died) is counted once; a push
    /// that fails to decode leaves its partition missing; the slots serve the next step afresh.
    @Test func copiesFailuresAndTheNextStep() {
        struct Corrupt: Error {}
        let values = contributions(3, seed: 5)
        let slots = ContributionSlots(layout: layout)
        slots.expect(step: 1, contributions: 3)
        for local in layout.indices {
            for c in 0..<3 { deliver(slots, values, c: c, local: local) }
            deliver(slots, values, c: 1, local: local)      // the copy
        }
        #expect(throws: Corrupt.self) { try slots.store(contribution: 2, local: 0, figures: figures(2)) { _ in throw Corrupt() } }
        #expect(slots.sumCompleted(step: 1) == nil, "partition 0 of contribution 2 is missing again")
        deliver(slots, values, c: 2, local: 0)
        let norm = slots.sumCompleted(step: 1)
        #expect(norm != nil)
        var expected = values[0]
        for c in 1..<3 { for i in expected.indices { expected[i] += values[c][i] } }
        #expect(sum(slots) == expected.map(\.bitPattern))

        slots.finish(step: 1)
        #expect(!slots.reported)
        slots.expect(step: 2, contributions: 2)
        let next = contributions(2, seed: 6)
        for local in layout.indices { deliver(slots, next, c: 1, local: local, step: 2) }
        #expect(slots.sumCompleted(step: 2) == nil, "step 1's deliveries do not count for step 2")
        #expect(slots.contributionFigures(step: 2) == [], "nor do step 1's figures")
        for local in layout.indices { deliver(slots, next, c: 0, local: local, step: 2) }
        #expect(slots.sumCompleted(step: 2) != nil)
        #expect(slots.contributionFigures(step: 2) == [figures(0, step: 2), figures(1, step: 2)])
        #expect(sum(slots) == zip(next[0], next[1]).map { ($0 + $1).bitPattern })
    }
}
