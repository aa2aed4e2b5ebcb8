import CZMQ
import Foundation
import Synchronization

/// The ZeroMQ authentication handler (ZAP, RFC 27) of a process that binds CURVE sockets: a REP
/// socket on `inproc://zeromq.zap.01` in the process's context, answering libzmq's requests on a
/// thread of its own. A CURVE client is admitted when its public key is in `authorized_keys`; the
/// reply's User-Id is the key's role, which every message from that peer then carries
/// (`ZMQSocket.peerRole`). Anyone else fails the handshake: nothing they send reaches the application.
/// It must run before the socket it guards binds.
public final class ZAPHandler: Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"
    /// The ZAP domain Precis sockets ask for.
    public static let domain = "precis"

    private let stopFlag = Atomic<Bool>(false)
    /// The handler's thread has returned and closed its socket.
    private let finished = Atomic<Bool>(false)
    private let admittedCount = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    /// The socket, moved to the handler's thread once at start. @unchecked: after `init` returns only
    /// that thread touches it (ZeroMQ allows moving a socket between threads behind a full barrier,
    /// which starting a thread is).
    private final class Handoff: @unchecked Sendable {
        var socket: ZMQSocket?
        init(_ s: ZMQSocket) { socket = s }
    }

    public init(context: ZMQContext, keys: ClusterKeys, name: String) throws {
        let s = try ZMQSocket(context, .rep)
        try s.bind(Self.endpoint)
        let handoff = Handoff(s)
        let authorized = keys.authorized
        let thread = Thread { [self] in
            do {
                let sock = handoff.socket!
                handoff.socket = nil
                self.serve(sock, authorized: authorized, name: name)
            }
            self.finished.store(true, ordering: .releasing)
        }
        thread.name = "zap"
        thread.start()
    }

    /// Handshakes admitted and refused so far.
    public var admitted: Int { admittedCount.load(ordering: .relaxed) }
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    public func stop() { stopFlag.store(true, ordering: .relaxed) }

    /// Stops the handler and waits (up to `seconds`) until its thread has closed its socket. A role
    /// calls it before it exits: the context can only be terminated — which is what sends the
    /// messages still queued, such as the coordinator's last `shutdown` — once every socket is closed.
    public func stopAndWait(seconds: Double = 2) {
        stop()
        let deadline = Member.now() + seconds
        while !finished.load(ordering: .acquiring) && Member.now() < deadline { usleep(10_000) }
    }

    private func serve(_ s: ZMQSocket, authorized: [String: KeyRole], name: String) {
        while !stopFlag.load(ordering: .relaxed) {
            let request: [[UInt8]]
            do { request = try s.receive(timeoutMs: 100) } catch WireError.timeout { continue } catch { return }
            let reply = Self.answer(request, authorized: authorized)
            if reply.admitted {
                admittedCount.add(1, ordering: .relaxed)
            } else {
                let n = refusedCount.add(1, ordering: .relaxed).newValue
                if n <= 20 || n % 1000 == 0 {
                    Member.log(name, "refused a connection\(reply.peer.isEmpty ? "" : " from " + reply.peer): \(reply.reason)"
                               + (n == 20 ? " (further refusals are logged once per 1000)" : ""))
                }
            }
            do { try s.send(reply.frames) } catch { return }
        }
    }

    struct Reply {
        var frames: [[UInt8]]
        var admitted: Bool
        var reason: String
        var peer: String
    }

    /// The reply to one ZAP request: [version, request id, status, status text, user id, metadata].
    static func answer(_ r: [[UInt8]], authorized: [String: KeyRole]) -> Reply {
        func reply(_ id: [UInt8], _ code: String, _ text: String, user: String, peer: String) -> Reply {
            Reply(frames: [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), Array(user.utf8), []],
                  admitted: code == "200", reason: text, peer: peer)
        }
        guard r.count >= 6, r[0] == Array("1.0".utf8) else {
            return reply(r.count > 1 ? r[1] : [], "500", "malformed ZAP request", user: "", peer: "")
        }
        let peer = String(decoding: r[3].prefix(64), as: UTF8.self)
        guard String(decoding: r[5], as: UTF8.self) == "CURVE", r.count == 7, r[6].count == 32 else {
            return reply(r[1], "400", "not a CURVE client (\(String(decoding: r[5].prefix(16), as: UTF8.self)))", user: "", peer: peer)
        }
        let key = Z85.encode(r[6])
        guard let role = authorized[key] else {
            return reply(r[1], "400", "public key \(key) is not in authorized_keys", user: "", peer: peer)
        }
        return reply(r[1], "200", "OK", user: role.rawValue, peer: peer)
    }
}
