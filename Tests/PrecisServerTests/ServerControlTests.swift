import Foundation
import Testing
import PrecisServer
import PrecisWire

/// What the server does with each control message from the coordinator (`ServerControl.read`):
/// sound ones are used; a payload that does not decode or fails its check is dropped, or stops the
/// server (exit status 1, the field named) where it cannot go on without it. Before, an
/// undecodable payload was thrown out of the event loop and ended the server.
@Suite struct ServerControlTests {
    let plan = PartitionPlan(total: 1_000, servers: 1, partitionFloats: 500)

    func message<T: Encodable>(_ type: MessageType, _ value: T) throws -> DataMessage { try DataMessage(frames: Control.frames(type, value)) }
    func message(_ type: MessageType, json: String) throws -> DataMessage { try DataMessage(frames: Control.frames(type, json: Array(json.utf8))) }

    func assign(_ edit: (inout AssignMessage) -> Void = { _ in }) -> AssignMessage {
        var a = AssignMessage(server: 0, partitions: [0, 1], plan: plan, segments: [DecaySegment(lower: 0, upper: 1_000, decay: true)],
                              beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, schedule: "linear", learningRate: 1e-3,
                              warmupSteps: 0, totalSteps: 10, consistency: .sync, pullCodec: .none, startStep: 0)
        a.epoch = 1
        a.maxContributions = 1
        edit(&a)
        return a
    }

    func registered(partitionBytes: Int?, interval: Double = 0.2) -> RegisteredMessage {
        RegisteredMessage(id: 1000, name: "ps0", config: "", configFile: "", modelConfig: "", heartbeatInterval: interval,
                          heartbeatTimeout: 600, dataDigest: "", outputDir: "/tmp", partitionBytes: partitionBytes)
    }

    @Test func soundMessagesAreUsed() throws {
        guard case .assign(let a) = ServerControl.read(try message(.assign, assign())) else { Issue.record("assign not used"); return }
        #expect(a.partitions == [0, 1])
        guard case .registered = ServerControl.read(try message(.registered, registered(partitionBytes: 4_096_000))) else {
            Issue.record("registered not used"); return
        }
        guard case .apply(let x) = ServerControl.read(try message(.apply, ApplyMessage(step: 3, clip: 0.25, snapshot: true))) else {
            Issue.record("apply not used"); return
        }
        #expect(x.step == 3 && x.clip == 0.25)
        guard case .snapshot = ServerControl.read(try message(.snapshot, SnapshotMessage(tag: 1))) else { Issue.record("snapshot"); return }
        guard case .ignore = ServerControl.read(try message(.task, Empty())) else { Issue.record("a task is not for a server"); return }
    }

    /// Found by review: a bad assign reached `OwnedPartitions` and `UpdateRule`: buffers addressed
    /// outside their allocation (-Ounchecked). The server cannot serve without one: it stops.
    @Test func aBadAssignStopsTheServerNamingTheField() throws {
        let cases: [(AssignMessage, String)] = [
            (assign { $0.partitions = [0, 1, 2] }, "partitions [0, 1, 2] are not the plan's 2 partition(s) of server 0"),
            (assign { $0.plan.bounds = [0, 500, 2_000] }, "plan bounds end at 2000"),
            (assign { $0.segments = [DecaySegment(lower: 0, upper: 600, decay: true)] }, "segments cover 0..<600"),
            (assign { $0.startStep = -4 }, "startStep -4"),
            (assign { $0.eps = 0 }, "eps 0.0"),
        ]
        for (a, want) in cases {
            guard case .stop(let why) = ServerControl.read(try message(.assign, a)) else { Issue.record("not stopped: \(want)"); continue }
            #expect(why == "bad assign message: " + want || why.hasPrefix("bad assign message: " + want), "\(why)")
        }
    }

    /// Found by review: a registered with partitionBytes ≥ 2³¹ trapped in `Int32(n)` (the frames' bound).
    @Test func aBadRegisteredStopsTheServer() throws {
        guard case .stop(let why) = ServerControl.read(try message(.registered, registered(partitionBytes: 1 << 31))) else {
            Issue.record("not stopped"); return
        }
        #expect(why == "bad registered message: partitionBytes 2147483648 is outside 1...\(WireLimits.maxPartitionBytes)")
        guard case .stop(let why2) = ServerControl.read(try message(.registered, json: #"{"id": 1, "name": "x"}"#)) else {
            Issue.record("not stopped"); return
        }
        #expect(why2.hasPrefix("bad registered message: "))
    }

    /// Found by review: an undecodable payload was thrown from the control handler and ended the server.
    @Test func anUndecodablePayloadIsDroppedUnlessTheServerNeedsIt() throws {
        for type: MessageType in [.apply, .plan, .members, .refused] {
            guard case .drop(let why) = ServerControl.read(try message(type, json: #"{"step": "x"}"#)) else {
                Issue.record("\(type) not dropped"); continue
            }
            #expect(why.hasPrefix("bad \(type) message: "), "\(why)")
        }
        for type: MessageType in [.assign, .registered, .shutdown] {
            guard case .stop(let why) = ServerControl.read(try message(type, json: "not json")) else { Issue.record("\(type) not stopped"); continue }
            #expect(why.hasPrefix("bad \(type) message: "), "\(why)")
        }
    }

    /// Found by review: a NaN or infinite clip coefficient went into AdamW.
    @Test func anApplyWithABadClipIsDropped() throws {
        for clip: Float in [.nan, .infinity, -1, 2] {
            guard case .drop(let why) = ServerControl.read(try message(.apply, ApplyMessage(step: 0, clip: clip))) else {
                Issue.record("clip \(clip) not dropped"); continue
            }
            #expect(why == "bad apply message: clip \(clip) is outside [0, 1]")
        }
    }
}
