import Foundation
import Testing
import PrecisCoordinator
import PrecisWire

/// The stand-in on a real ROUTER, with a real DEALER as the member: the test's `work` (what the
/// event loop would be busy with) is where the member talks to the busy coordinator.
@Suite struct HeartbeatStandInTests {
    let context: ZMQContext
    let router: ZMQSocket
    let member: ZMQSocket

    init() throws {
        context = try ZMQContext()
        router = try ZMQSocket(context, .router)
        try router.limitForControl()
        try router.reportUndeliverable()
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        member = try ZMQSocket(context, .dealer)
        try member.connect(endpoint)
    }

    func heartbeat(_ id: Int) throws { try member.send(Control.frames(.heartbeat, HeartbeatMessage(id: id))) }

    /// The type of the next message the member receives within `ms`, nil when none comes.
    func reply(within ms: Int) -> MessageType? {
        guard let frames = try? member.receive(timeoutMs: ms) else { return nil }
        return (try? DataMessage(frames: frames))?.header.type
    }

    func type(_ h: HeartbeatStandIn.Held) -> MessageType? { (try? DataMessage(frames: Array(h.frames.dropFirst())))?.header.type }

    @Test func acknowledgesLivingMembersWhileBusyAndHoldsTheRestInOrder() throws {
        // Member 7 registered without a key; member 8 with one (this peer has none, so it cannot speak for 8).
        var answers = HeartbeatStandIn.Answers(members: [7: nil, 8: "Kx8"], keyed: false,
                                               status: Control.frames(.statusReply, json: Array(#"{"plain":1}"#.utf8)))
        answers.statusWithHistory = nil
        let (replies, outcome) = try HeartbeatStandIn.during(router, answers: answers) { () throws -> [MessageType?] in
            var got: [MessageType?] = []
            try heartbeat(7); got.append(reply(within: 5000))
            try member.send(Control.frames(.leave, LeaveMessage(id: 7, reason: "first")))
            try heartbeat(99); got.append(reply(within: 300))   // nobody's: held, unanswered
            try heartbeat(8); got.append(reply(within: 300))    // without member 8's key: held
            try member.send(Control.frames(.statusRequest, StatusRequest())); got.append(reply(within: 5000))
            try member.send(Control.frames(.statusRequest, StatusRequest(history: true))); got.append(reply(within: 300))
            try member.send([[1, 2, 3]])                          // not a message at all: held for the loop to log
            // Taken in order: once this is acknowledged, the stand-in has everything before it.
            try heartbeat(7); got.append(reply(within: 5000))
            return got
        }
        #expect(replies == [.heartbeatAck, nil, nil, .statusReply, nil, .heartbeatAck])
        #expect(outcome.heartbeats == [7])
        #expect(outcome.acknowledged == 2 && outcome.statusAnswered == 1 && outcome.dropped == 0 && outcome.failure == nil)
        #expect(outcome.held.map(type) == [.leave, .heartbeat, .heartbeat, .statusRequest, nil])
        #expect(outcome.held.allSatisfy { $0.frames.count >= 2 && $0.role == nil && $0.key == nil })
        #expect(outcome.heldBytes == outcome.held.reduce(0) { $0 + $1.frames.reduce(0) { $0 + $1.count } })

        // The router is the caller's again: what comes now, the caller receives.
        try heartbeat(7)
        let next = try router.receive(timeoutMs: 5000)
        #expect((try? DataMessage(frames: Array(next.dropFirst())))?.header.type == .heartbeat)
        #expect(reply(within: 200) == nil)   // the stand-in is gone: nobody acknowledged it
    }

    @Test func holdsAtMostItsLimitAndCountsWhatItDrops() throws {
        var answers = HeartbeatStandIn.Answers(members: [1: nil], keyed: false)
        let one = Control.frames(.leave, LeaveMessage(id: 1, reason: "x"))
        let bytes = 5 + one.reduce(0) { $0 + $1.count }   // the 5-byte routing id ZeroMQ gives the DEALER
        answers.limitBytes = 3 * bytes + bytes / 2
        let (_, outcome) = try HeartbeatStandIn.during(router, answers: answers) {
            for _ in 0..<10 { try member.send(one) }
            try heartbeat(1)
            #expect(reply(within: 5000) == .heartbeatAck)   // so the ten before it are taken
        }
        #expect(outcome.held.count == 3 && outcome.dropped == 7)
        #expect(outcome.heldBytes <= answers.limitBytes)
    }

    @Test func givesTheRouterBackWhenTheWorkFails() throws {
        struct Failed: Error {}
        #expect(throws: Failed.self) {
            _ = try HeartbeatStandIn.during(router, answers: .init(members: [3: nil], keyed: false)) { () throws -> Int in
                try heartbeat(3)
                #expect(reply(within: 5000) == .heartbeatAck)
                throw Failed()
            }
        }
        try heartbeat(3)
        #expect(throws: Never.self) { _ = try router.receive(timeoutMs: 5000) }
    }

    @Test func heldMessagesComeOutFirstInFirstOutAcrossPushes() {
        func held(_ n: UInt8) -> HeartbeatStandIn.Held { .init(frames: [[n]], role: nil, key: nil) }
        var queue = HeldMessages()
        #expect(queue.isEmpty && queue.pop() == nil)
        queue.push([held(1), held(2)])
        #expect(queue.pop()?.frames == [[1]])
        queue.push([held(3)])
        #expect(queue.pop()?.frames == [[2]] && queue.pop()?.frames == [[3]])
        #expect(queue.isEmpty && queue.pop() == nil)
        queue.push([held(4)])
        #expect(!queue.isEmpty && queue.pop()?.frames == [[4]])
    }
}
