import Testing
import PrecisServer
import PrecisWire

@Suite struct DataHeaderRulesTests {
    let plan = PartitionPlan(total: 30_000, servers: 2, partitionFloats: 2_500, cuts: [4_321, 17_000])
    var layout: OwnedPartitions { OwnedPartitions(plan: plan, server: 1, partitions: plan.partitions(of: 1)) }

    func header(_ type: MessageType, partition: UInt32, epoch: UInt32 = 5, step: UInt64 = 3, count: UInt32? = nil) -> WireHeader {
        let n = count ?? UInt32(layout.local(Int(partition)).map { layout.range(local: $0).count } ?? 0)
        return WireHeader(type: type, codec: .fp32, epoch: epoch, step: step, partition: partition, count: n)
    }

    @Test func everyFieldIsBoundedByThePlan() {
        let rules = DataHeaderRules(layout: layout, assignmentEpoch: 5, announcedEpoch: 9, totalSteps: 100)
        let mine = UInt32(layout.partitions[0]), other = UInt32(plan.partitions(of: 0)[0])
        #expect(rules.refusal(header(.pushGradient, partition: mine)) == nil)
        #expect(rules.refusal(header(.pullParameters, partition: UInt32.max, count: 0)) == nil)
        #expect(rules.refusal(header(.pushGradient, partition: UInt32(plan.count)))?.contains("the plan has") == true)
        #expect(rules.refusal(header(.pushGradient, partition: other))?.contains("not this server's") == true)
        #expect(rules.refusal(header(.pushGradient, partition: mine, count: 7))?.contains("7 values") == true)
        #expect(rules.refusal(header(.pushGradient, partition: mine, step: UInt64.max))?.contains("beyond the run's last step") == true)
        #expect(rules.refusal(header(.pullParameters, partition: mine, step: 101, count: 0))?.contains("beyond") == true)
        #expect(rules.refusal(header(.pushGradient, partition: mine, epoch: 4))?.contains("older than this server's assignment") == true)
        #expect(rules.refusal(header(.pushGradient, partition: mine, epoch: 0xFFFF_FFFF))?.contains("ahead of the newest announced") == true)
        #expect(rules.refusal(header(.initParameters, partition: mine, epoch: 6))?.contains("assignment is epoch 5") == true)
    }

    /// During a reshard a worker's view can be ahead of the server's assignment, and the newest
    /// announced epoch ahead of the message's: both are fine within the window.
    @Test func epochsAheadOfTheAssignmentWithinTheWindowPass() {
        let rules = DataHeaderRules(layout: layout, assignmentEpoch: 5, announcedEpoch: 9, totalSteps: 100)
        let mine = UInt32(layout.partitions[0])
        for e: UInt32 in [5, 6, 8, 9, 10, 9 + DataHeaderRules.epochWindow] {
            #expect(rules.refusal(header(.pushGradient, partition: mine, epoch: e)) == nil, "epoch \(e)")
        }
    }

    @Test func peersMustBeAnnouncedForTheirMessages() {
        var peers = AnnouncedPeers()
        let w = Array("w0/12".utf8), c = Array("coordinator/1/0/99".utf8), x = Array("intruder".utf8)
        peers.announce(MembersMessage(epoch: 3, coordinator: c, workers: [w]))
        #expect(peers.refusal(w, role: nil, keyed: false, need: .worker) == nil)
        #expect(peers.refusal(w + Array("/push".utf8), role: nil, keyed: false, need: .worker) == nil)
        #expect(peers.refusal(w, role: nil, keyed: false, need: .coordinator) != nil)
        #expect(peers.refusal(c, role: nil, keyed: false, need: .coordinator) == nil)
        #expect(peers.refusal(c, role: nil, keyed: false, need: .worker) != nil)
        #expect(peers.refusal(x, role: nil, keyed: false, need: .member) != nil)
        // With keys the role must match too: a worker key cannot pass for the coordinator.
        #expect(peers.refusal(c, role: .worker, keyed: true, need: .coordinator) != nil)
        #expect(peers.refusal(w, role: .operator, keyed: true, need: .member) != nil)
        #expect(peers.refusal(w, role: .worker, keyed: true, need: .worker) == nil)
        // Parked pulls are bounded and handed back once their peer is announced.
        for i in 0..<(AnnouncedPeers.parkedLimit + 5) {
            _ = peers.park(.init(peer: Array("p\(i)".utf8), version: 0, partition: 0, codec: .fp32))
        }
        #expect(peers.parked.count == AnnouncedPeers.parkedLimit)
        peers.announce(MembersMessage(epoch: 4, coordinator: c, workers: [Array("p10".utf8)]))
        #expect(peers.takeAdmitted(keyed: false).map(\.peer) == [Array("p10".utf8)])
        #expect(peers.parked.count == AnnouncedPeers.parkedLimit - 1)
    }
}

/// `bf16-delta` only in a pull, and only such a pull names a base version (in its slot), within the run.
@Suite struct DeltaPullHeaderRulesTests {
    let plan = PartitionPlan(total: 30_000, servers: 2, partitionFloats: 2_500, cuts: [4_321, 17_000])

    @Test func bf16DeltaIsForPullsAndTheBaseIsBounded() {
        let layout = OwnedPartitions(plan: plan, server: 1, partitions: plan.partitions(of: 1))
        let rules = DataHeaderRules(layout: layout, assignmentEpoch: 5, announcedEpoch: 5, totalSteps: 100)
        let mine = UInt32(layout.partitions[0]), count = UInt32(layout.range(local: 0).count)
        func pull(_ codec: Codec, slot: UInt32) -> WireHeader {
            WireHeader(type: .pullParameters, codec: codec, epoch: 5, step: 10, partition: UInt32.max, slot: slot, count: 0)
        }
        #expect(rules.refusal(pull(.bf16Delta, slot: 0)) == nil, "no base: a full reply")
        #expect(rules.refusal(pull(.bf16Delta, slot: 10)) == nil)
        #expect(rules.refusal(pull(.bf16Delta, slot: 101)) == nil, "base 100, the last step")
        #expect(rules.refusal(pull(.bf16Delta, slot: 102))?.contains("base version 101 is beyond") == true)
        #expect(rules.refusal(pull(.bf16Delta, slot: UInt32.max))?.contains("beyond") == true)
        #expect(rules.refusal(pull(.fp32, slot: 3))?.contains("only a bf16-delta pull names a base version") == true)
        let push = WireHeader(type: .pushGradient, codec: .bf16Delta, epoch: 5, step: 3, partition: mine, count: count)
        #expect(rules.refusal(push)?.contains("for parameter pulls only") == true)
        let initial = WireHeader(type: .initParameters, codec: .bf16Delta, epoch: 5, step: 0, partition: mine, count: count)
        #expect(rules.refusal(initial)?.contains("for parameter pulls only") == true)
    }
}
