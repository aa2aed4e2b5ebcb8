import CZMQ
#if canImport(Glibc)
import Glibc
#endif

/// Messages a ROUTER could not hand to a peer. A plain ROUTER drops a message silently when the
/// peer's queue is at its send high-water mark, or when no peer of that routing id is connected;
/// with `reportUndeliverable()` (ZMQ_ROUTER_MANDATORY) every `send(to:…)` on the socket checks
/// instead: the message is not queued, the drop is counted here per peer, and the role reads the
/// new drops with `takeNew()` once per pass of its event loop, to log them and act.
///
/// Not thread-safe: it belongs to its socket, which belongs to one thread.
public final class PeerDrops {
    public enum Reason: Equatable, Sendable, CustomStringConvertible {
        /// The peer's queue holds `highWaterMark` messages it has not taken (it stopped reading, or
        /// the network to it is too slow).
        case queueFull(highWaterMark: Int32)
        /// No connection with that routing id (the peer exited, or its connection is being re-made).
        case notConnected

        public var description: String {
            switch self {
            case .queueFull(let hwm): return "its queue is full (HWM \(hwm) messages)"
            case .notConnected: return "it is not connected"
            }
        }
    }

    /// Drops to one peer since it was last reported (or forgotten).
    public struct Report: Equatable, Sendable {
        public var peer: [UInt8]
        public var count: Int
        public var reason: Reason
        public init(peer: [UInt8], count: Int, reason: Reason) { self.peer = peer; self.count = count; self.reason = reason }
    }

    /// Drops not yet taken, per peer, in the order the peers first dropped.
    private var pending: [Report] = []
    /// Peers already reported: later drops to them are counted in `total` but not reported again
    /// until the role forgets the peer.
    private var reported: Set<[UInt8]> = []
    /// Every message dropped so far.
    public private(set) var total = 0

    public init() {}

    func record(peer: [UInt8], reason: Reason) {
        total += 1
        guard !reported.contains(peer) else { return }
        if let i = pending.firstIndex(where: { $0.peer == peer }) {
            pending[i].count += 1
            // A full queue says more about the peer than a missing connection does.
            if case .queueFull = reason { pending[i].reason = reason }
        } else {
            pending.append(Report(peer: peer, count: 1, reason: reason))
        }
    }

    /// The peers that had messages dropped since the last call, each reported once (with how many
    /// and why) until `forget` is called for it.
    public func takeNew() -> [Report] {
        let new = pending
        pending = []
        for r in new { reported.insert(r.peer) }
        return new
    }

    /// The peer was dealt with (declared lost, or it registered again): a later drop is reported anew.
    public func forget(_ peer: [UInt8]) {
        reported.remove(peer)
        pending.removeAll { $0.peer == peer }
    }

    /// The log line for a report: `dropped N message(s) to NAME: its queue is full (HWM H messages)`.
    public static func line(_ r: Report, peerName: String) -> String {
        "dropped \(r.count) message\(r.count == 1 ? "" : "s") to \(peerName): \(r.reason)"
    }
}

extension ZMQSocket {
    /// `ZMQ_ROUTER_MANDATORY`.
    static let routerMandatory: Int32 = 33

    /// Makes this ROUTER report the messages it cannot hand to a peer instead of dropping them
    /// silently: `send(to:…)` no longer blocks or throws for an unreachable or full peer, it counts
    /// the drop in `drops` (read them with `drops.takeNew()`). Sends to a peer never block: the first
    /// frame goes with ZMQ_DONTWAIT, so a full queue is a drop, not a stalled event loop.
    public func reportUndeliverable() throws {
        precondition(kind == .router, "ROUTER_MANDATORY is a ROUTER option")
        try set(Self.routerMandatory, 1)
        drops = PeerDrops()
    }

    /// `ZMQ_ROUTER_HANDOVER`.
    static let routerHandover: Int32 = 56

    /// A peer that connects with a routing id already in use takes it over (ZMQ_ROUTER_HANDOVER):
    /// its messages are read and the replies go to it, the older connection is closed. Without it
    /// libzmq ignores the newcomer while the older connection lives — a worker that re-made its
    /// connection (its DEALER closed and opened again under the same routing id, faster than the
    /// ROUTER noticed the close) would be ignored for good, its pulls never answered.
    public func allowHandover() throws {
        precondition(kind == .router, "ROUTER_HANDOVER is a ROUTER option")
        try set(Self.routerHandover, 1)
    }

    /// The current send high-water mark.
    public func sendHighWaterMarkValue() -> Int32 {
        var v: Int32 = 0
        var len = MemoryLayout<Int32>.size
        return zmq_getsockopt(handle, Self.sendHighWaterMark, &v, &len) == 0 ? v : 0
    }

    /// Sends the routing-id frame of a message to `identity`. True when the message may go on; false
    /// when it was dropped (counted in `drops`). Without `reportUndeliverable` it is a plain send.
    func sendIdentity(_ identity: [UInt8]) throws -> Bool {
        guard let drops else {
            let rc = identity.withUnsafeBytes { zmq_send(handle, $0.baseAddress, identity.count, ZMQ_SNDMORE) }
            if rc < 0 { throw WireError.lastZMQ("zmq_send") }
            return true
        }
        while true {
            let rc = identity.withUnsafeBytes { zmq_send(handle, $0.baseAddress, identity.count, ZMQ_SNDMORE | ZMQ_DONTWAIT) }
            if rc >= 0 { return true }
            switch zmq_errno() {
            case EINTR: continue
            case EAGAIN: drops.record(peer: identity, reason: .queueFull(highWaterMark: sendHighWaterMarkValue()))
            case EHOSTUNREACH: drops.record(peer: identity, reason: .notConnected)
            default: throw WireError.lastZMQ("zmq_send")
            }
            return false
        }
    }
}
