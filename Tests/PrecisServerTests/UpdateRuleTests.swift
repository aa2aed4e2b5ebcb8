import Testing
import PrecisCore
import PrecisServer
import PrecisWire

/// The server's update rule, partition by partition over its own buffers, is the update one
/// `OptimizerState` makes over the whole flat buffer (as the single-process trainer does).
@Suite struct UpdateRuleTests {
    let plan = PartitionPlan(total: 40_000, servers: 3, partitionFloats: 3_000, cuts: [9_001, 26_000])
    let segments = [DecaySegment(lower: 0, upper: 5_000, decay: true), DecaySegment(lower: 5_000, upper: 5_100, decay: false),
                    DecaySegment(lower: 5_100, upper: 21_000, decay: true), DecaySegment(lower: 21_000, upper: 40_000, decay: false)]

    func values(_ n: Int, seed: UInt64, scale: Double) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in Float(rng.normal() * scale) }
    }

    @Test(arguments: [0, 1, 2])
    func theServersUpdateIsOptimizerStatesOverTheWholeBuffer(server: Int) {
        let a = AssignMessage(server: server, partitions: plan.partitions(of: server), plan: plan, segments: segments,
                              beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, schedule: "linear", learningRate: 1e-3,
                              warmupSteps: 2, totalSteps: 10, consistency: .sync, pullCodec: .fp32, startStep: 3)
        let layout = OwnedPartitions(plan: plan, server: server, partitions: a.partitions)
        let rule = UpdateRule(layout: layout, assignment: a)
        let reference = OptimizerState(range: 0..<plan.total, segments: segments.map { (range: $0.lower..<$0.upper, decay: $0.decay) },
                                       adamw: AdamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01),
                                       schedule: LRSchedule(kind: .linear, baseLR: 1e-3, warmupSteps: 2, totalSteps: 10))
        reference.restore(steps: 3)

        let initial = values(plan.total, seed: 1, scale: 0.02)
        let all = FloatBuffer(initial)
        let own = FloatBuffer(Array(initial[layout.base..<(layout.base + layout.count)]))
        for (k, clip) in [Float(1), 0.5, 0.03125].enumerated() {
            let g = values(plan.total, seed: 10 + UInt64(k), scale: 1e-2)
            let allGrads = FloatBuffer(g), ownGrads = FloatBuffer(Array(g[layout.base..<(layout.base + layout.count)]))
            reference.apply(params: all.pointer, grads: allGrads.pointer, clipCoefficient: clip)
            var visited: [Int] = []
            rule.applyAll(params: own.pointer, gradient: ownGrads.pointer, clip: clip) { visited.append($0) }
            #expect(visited == Array(layout.indices), "each partition once, in order")
        }
        #expect(rule.steps == 6 && reference.steps == 6)
        let want = (layout.base..<(layout.base + layout.count)).map { all.pointer[$0].bitPattern }
        #expect((0..<layout.count).map { own.pointer[$0].bitPattern } == want)
        #expect(want != initial[layout.base..<(layout.base + layout.count)].map(\.bitPattern), "the parameters moved")
        for local in layout.indices {
            let r = layout.flatRange(local: local), o = rule.optimizers[local]
            #expect((0..<r.count).map { o.m.pointer[$0] } == r.map { reference.m.pointer[$0] }, "m of partition \(local)")
            #expect((0..<r.count).map { o.v.pointer[$0] } == r.map { reference.v.pointer[$0] }, "v of partition \(local)")
        }
    }

    /// ssp/async: each partition is updated on its own as its shards arrive; the version is the
    /// fewest updates any partition has had.
    @Test func partitionsUpdatedOnArrivalCountTheirOwnSteps() {
        let a = AssignMessage(server: 0, partitions: plan.partitions(of: 0), plan: plan, segments: segments,
                              beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, schedule: "constant", learningRate: 1e-3,
                              warmupSteps: 0, totalSteps: 10, consistency: .async, pullCodec: .fp32, startStep: 0)
        let layout = OwnedPartitions(plan: plan, server: 0, partitions: a.partitions)
        let rule = UpdateRule(layout: layout, assignment: a)
        let params = FloatBuffer(count: layout.count), grads = FloatBuffer(values(layout.count, seed: 2, scale: 1))
        rule.apply(local: 0, params: params.pointer, gradient: grads.pointer, clip: 1)
        rule.apply(local: 0, params: params.pointer, gradient: grads.pointer, clip: 1)
        #expect(rule.steps == 0 && rule.optimizers[0].steps == 2)
        for local in layout.indices.dropFirst() { rule.apply(local: local, params: params.pointer, gradient: grads.pointer, clip: 1) }
        #expect(rule.steps == 1)
        // Adam's first step moves each parameter by about lr against its gradient's sign.
        let r = layout.range(local: 1)
        #expect(r.allSatisfy { abs(params.pointer[$0] + 1e-3 * (grads.pointer[$0] > 0 ? 1 : -1)) < 1e-6 })
        #expect((layout.range(local: 1).upperBound..<layout.count).allSatisfy { params.pointer[$0] != 0 })
    }
}
