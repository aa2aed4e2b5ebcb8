import Foundation
import Synchronization
import PrecisWire

/// Stands in for the coordinator's event loop while the loop does something long in one go (a
/// rollback's checkpoint verification and read, the final save): a thread of its own takes the
/// ROUTER, acknowledges the heartbeats of the members living when it started (each with the key it
/// registered with) and holds every other message, in arrival order, for the loop to handle once it
/// is back. Without it a long pause looks to every member like a dead coordinator: they drop their
/// work and register again, and a server's re-registration pauses the run and rolls it back once
/// more (a cascade seen with checkpoints that take longer to read than `heartbeat_timeout`).
///
/// It reads nothing of the coordinator's: it gets a snapshot of the living members' keys, and the
/// status replies to give, when it starts.
package final class HeartbeatStandIn: Sendable {
    /// A message the stand-in received, for the event loop.
    package struct Held: Sendable {
        package let frames: [[UInt8]]
        package let role: KeyRole?
        package let key: String?
        package init(frames: [[UInt8]], role: KeyRole?, key: String?) { self.frames = frames; self.role = role; self.key = key }
    }

    /// What a stand-in received while it stood in.
    package struct Outcome: Sendable {
        /// In arrival order.
        package var held: [Held] = []
        /// The members whose heartbeats it acknowledged (the loop records them as heard).
        package var heartbeats: Set<Int> = []
        /// Heartbeats acknowledged, status requests answered.
        package var acknowledged = 0, statusAnswered = 0
        /// Messages dropped once `Answers.limitBytes` of them were held (a peer flooding the coordinator
        /// while it is busy gets no unbounded memory).
        package var dropped = 0
        package var heldBytes = 0
        /// Why the thread stopped early (a ZeroMQ error), if it did; what it held is kept.
        package var failure: String?
    }

    /// What it may answer by itself.
    package struct Answers: Sendable {
        /// The living members (by id) and the key each registered with (nil: the cluster has no keys).
        package var members: [Int: String?]
        /// Whether the cluster has keys (`ControlPermissions` then checks each message's role).
        package var keyed: Bool
        /// The frames of a status reply without and with the training curve (nil: held instead).
        package var status: [[UInt8]]?
        package var statusWithHistory: [[UInt8]]?
        /// The most bytes of messages held; later ones are dropped (and counted). Control messages
        /// are at most `WireLimits.controlMessageBytes` (16 MiB) each.
        package var limitBytes = 64 << 20
        package init(members: [Int: String?], keyed: Bool, status: [[UInt8]]? = nil, statusWithHistory: [[UInt8]]? = nil) {
            self.members = members; self.keyed = keyed; self.status = status; self.statusWithHistory = statusWithHistory
        }
    }

    /// Runs `work` on this thread while a stand-in thread serves `router`; returns `work`'s result
    /// and what the stand-in received. `work` must not use `router`.
    package static func during<T>(_ router: ZMQSocket, answers: Answers, _ work: () throws -> T) throws -> (T, Outcome) {
        let standIn = HeartbeatStandIn(router: router, answers: answers)
        let result: T
        do { result = try work() } catch {
            _ = standIn.stop()
            throw error
        }
        return (result, standIn.stop())
    }

    /// The router, handed to the stand-in's thread and back. ZeroMQ lets a socket move to another
    /// thread across a full memory barrier: the thread's start is one, the semaphore `stop` waits on
    /// (signalled when the thread is done with the socket) the other, and the event loop does not
    /// use the router in between (`during` runs only `work`, which must not).
    private struct Handoff: @unchecked Sendable { let router: ZMQSocket }

    private let stopFlag = Atomic<Bool>(false)
    private let ended = DispatchSemaphore(value: 0)
    private let outcome = Mutex(Outcome())

    private init(router: ZMQSocket, answers: Answers) {
        let handoff = Handoff(router: router)
        let thread = Thread { [self] in self.serve(handoff.router, answers) }
        thread.name = "heartbeat-stand-in"
        thread.start()
    }

    /// Ends the thread (it checks every 20 ms) and returns what it received; the router is the
    /// caller's again.
    private func stop() -> Outcome {
        stopFlag.store(true, ordering: .relaxed)
        ended.wait()
        return outcome.withLock { $0 }
    }

    private func serve(_ router: ZMQSocket, _ answers: Answers) {
        defer { ended.signal() }
        do {
            while !stopFlag.load(ordering: .relaxed) {
                guard try ZMQPoll.wait([router], timeoutMs: 20)[0] else { continue }
                // The flag is checked between messages too: a peer that never stops sending
                // cannot keep the stand-in from giving the router back.
                while !stopFlag.load(ordering: .relaxed), let frames = try router.tryReceive() {
                    try take(frames, role: router.lastPeerRole, key: router.lastPeerKey, router: router, answers: answers)
                }
            }
        } catch {
            outcome.withLock { $0.failure = "\(error)" }
        }
    }

    /// One message: answered when it is a heartbeat of a living member with its own key, or a
    /// status request (when the answers have one); held otherwise.
    private func take(_ frames: [[UInt8]], role: KeyRole?, key: String?, router: ZMQSocket, answers: Answers) throws {
        if frames.count >= 2, let m = try? DataMessage(frames: Array(frames.dropFirst())),
           ControlPermissions.refusal(m.header.type, role: role, keyed: answers.keyed) == nil {
            switch m.header.type {
            case .heartbeat:
                if let id = try? Control.decode(HeartbeatMessage.self, m).id, let registered = answers.members[id], registered == key {
                    try router.send(to: frames[0], Control.frames(.heartbeatAck, Empty()))
                    outcome.withLock { $0.acknowledged += 1; $0.heartbeats.insert(id) }
                    return
                }
            case .statusRequest:
                let wantsHistory = (try? Control.decode(StatusRequest.self, m))?.history == true
                if let reply = wantsHistory ? answers.statusWithHistory : answers.status {
                    try router.send(to: frames[0], reply)
                    outcome.withLock { $0.statusAnswered += 1 }
                    return
                }
            default: break
            }
        }
        let bytes = frames.reduce(0) { $0 + $1.count }
        outcome.withLock { o in
            guard o.heldBytes + bytes <= answers.limitBytes else { o.dropped += 1; return }
            o.held.append(Held(frames: frames, role: role, key: key))
            o.heldBytes += bytes
        }
    }
}

/// The messages stand-ins held, first in first out.
package struct HeldMessages {
    private var items: [HeartbeatStandIn.Held] = []
    private var next = 0
    package init() {}
    package var isEmpty: Bool { next == items.count }
    package mutating func push(_ more: [HeartbeatStandIn.Held]) { items += more }
    package mutating func pop() -> HeartbeatStandIn.Held? {
        guard next < items.count else { return nil }
        defer {
            next += 1
            if next == items.count { items = []; next = 0 }
        }
        return items[next]
    }
}
