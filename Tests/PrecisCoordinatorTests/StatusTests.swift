import Foundation
import Testing
import PrecisCoordinator
import PrecisWire
import PrecisTrain

@Suite struct StatusTests {
    @Test func theStatusReportListsTheRunAndEveryMember() throws {
        let clock = FakeClock(50)
        var m = Membership(plannedServers: 1, heartbeatTimeout: 10, clock: clock, firstId: 3_000)
        _ = m.register(registration(.server, "ps0", endpoint: "tcp://10.0.0.1:7000"), identity: identity("ps0/1"), phase: .waiting)
        _ = m.register(registration(.worker, "w0", pid: 11), identity: identity("w0/11"), phase: .waiting)
        _ = m.register(registration(.worker, "w1", pid: 12), identity: identity("w1/12"), phase: .waiting)
        clock.advance(3.26)
        _ = m.heartbeat(3_001)
        m.countContribution(of: 3_001)
        m.countContribution(of: 3_001)
        _ = m.lose(3_002)
        clock.advance(1.5)
        let r = StatusReport(phase: .training, stepsDone: 7, maxSteps: 40, consistency: .ssp, endpoint: "tcp://10.0.0.9:5555",
                             membership: m, now: clock.now())
        #expect(r.state == .training && r.step == 7 && r.maxSteps == 40 && r.consistency == "ssp" && r.endpoint == "tcp://10.0.0.9:5555")
        #expect(r.epoch == 5, "three joins and a loss")
        #expect(r.servers == [StatusReport.MemberStatus(name: "ps0", host: "host-ps0", pid: 4242, alive: true, contributions: 0,
                                                        endpoint: "tcp://10.0.0.1:7000", secondsSinceHeartbeat: 4.8)])
        #expect(r.workers == [
            StatusReport.MemberStatus(name: "w0", host: "host-w0", pid: 11, alive: true, contributions: 2, endpoint: "", secondsSinceHeartbeat: 1.5),
            StatusReport.MemberStatus(name: "w1", host: "host-w1", pid: 12, alive: false, contributions: 0, endpoint: "", secondsSinceHeartbeat: 4.8),
        ])

        // On the wire: a statusReply control message with the keys `precis cluster status` reads.
        let message = try DataMessage(frames: Control.frames(.statusReply, r))
        #expect(message.header.type == .statusReply)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
        #expect(Set(json.keys) == ["state", "step", "max_steps", "epoch", "consistency", "endpoint", "servers", "workers"])
        let worker = try #require((json["workers"] as? [[String: Any]])?.first)
        #expect(Set(worker.keys) == ["name", "host", "pid", "alive", "contributions", "endpoint", "seconds_since_heartbeat"])
        #expect(json["state"] as? String == "training")
        #expect(try Control.decode(StatusReport.self, message) == r)
    }

    @Test func aNegativeSampleCountIsRefusedWithAMessage() {
        #expect(CheckpointEvaluation.invalid(maxSamples: -1) == "max samples must be 0 or more, not -1")
        #expect(CheckpointEvaluation.invalid(maxSamples: 0) == nil)
        #expect(CheckpointEvaluation.invalid(maxSamples: nil) == nil)
        #expect(throws: CoordinatorError.self) {
            try CheckpointEvaluation.local(checkpoint: "/nonexistent", dataFile: "/nonexistent", config: TrainingConfig(), maxSamples: -5)
        }
    }
}
