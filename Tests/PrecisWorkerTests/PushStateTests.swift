import Testing
import PrecisCore
import PrecisWire
import PrecisWorker

/// `PushState`: a partition is final once backward's reports have covered all its values, whatever
/// order they come in and however they straddle partition bounds; each is handed on once.
@Suite struct PushStateTests {
    /// Partitions of uneven sizes that never straddle the cuts (as the coordinator makes them).
    let plan = PartitionPlan(total: 1000, servers: 2, partitionFloats: 90, cuts: [137, 400, 733])

    /// Cuts [0, total) into `pieces` runs at seeded random offsets (not partition bounds), shuffled.
    func shuffledRuns(_ pieces: Int, seed: UInt64) -> [Range<Int>] {
        var rng = SeededRNG(seed: seed)
        var cuts = Set([0, plan.total])
        while cuts.count < pieces + 1 { cuts.insert(Int(rng.next() % UInt64(plan.total))) }
        let sorted = cuts.sorted()
        return Array(zip(sorted, sorted.dropFirst()).map { $0..<$1 }).shuffled(using: &rng)
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func aPartitionIsFinalExactlyWhenEveryValueIsCovered(seed: UInt64) {
        #expect(plan.count > 8)
        var state = PushState(plan: plan)
        var covered = [Bool](repeating: false, count: plan.total)
        var reported: [Int] = []
        for run in shuffledRuns(40, seed: seed) {
            let before = Set((0..<plan.count).filter { p in plan.range(p).allSatisfy { covered[$0] } })
            for i in run { covered[i] = true }
            let after = Set((0..<plan.count).filter { p in plan.range(p).allSatisfy { covered[$0] } })
            let done = state.covered(run)
            #expect(Set(done) == after.subtracting(before), "run \(run)")
            #expect(done.count == Set(done).count)
            reported += done
        }
        #expect(reported.sorted() == Array(0..<plan.count), "every partition once")
        // Backward's final report of the whole buffer completes nothing twice.
        #expect(state.covered(0..<plan.total).isEmpty)
        #expect(state.covered(5..<5).isEmpty)
    }

    /// Backward's end reports the whole buffer: it completes exactly the partitions still open.
    @Test func theWholeBufferCompletesWhatIsLeft() {
        var state = PushState(plan: plan)
        let early = state.covered(plan.bounds[3] ..< plan.bounds[6] + 7)
        #expect(early == [3, 4, 5])
        let rest = state.covered(0..<plan.total)
        #expect(rest == (0..<plan.count).filter { !early.contains($0) })
    }

    @Test func eachPartitionIsHandedOnOnceLastFirst() {
        var state = PushState(plan: plan)
        #expect(state.unsent == Array((0..<plan.count).reversed()))
        let first = state.markSent(2), again = state.markSent(2), last = state.markSent(plan.count - 1)
        #expect(first && !again && last)
        #expect(state.sentCount == 2)
        #expect(state.unsent == Array((0..<plan.count).reversed()).filter { $0 != 2 && $0 != plan.count - 1 })
        let marked = state.unsent.map { state.markSent($0) }
        #expect(marked.allSatisfy { $0 })
        #expect(state.unsent.isEmpty && state.sentCount == plan.count && state.sent.allSatisfy { $0 })
    }
}
