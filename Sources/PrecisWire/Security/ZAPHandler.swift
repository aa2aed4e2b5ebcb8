import CZMQ
import Foundation
import Synchronization

/// The ZeroMQ authentication handler (ZAP, RFC 27) of a process that binds CURVE sockets: a REP
/// socket on `inproc://zeromq.zap.01` in the process's context, answering libzmq's requests on a
/// thread of its own. A CURVE client is admitted when its public key is in `authorized_keys`; the
/// reply's User-Id is the key's role, which every message from that peer then carries
/// (`ZMQSocket.peerRole`), and its metadata the public key itself (property `X-Precis-Key`, Z85:
/// `ZMQSocket.lastPeerKey`), so the coordinator can bind a member to the key it registered with.
/// Anyone else fails the handshake: nothing they send reaches the application.
/// It must run before the socket it guards binds.
public final class ZAPHandler: Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"
    /// The ZAP domain Precis sockets ask for.
    public static let domain = "precis"

    private let stopFlag = Atomic<Bool>(false)
    /// Signalled once by the handler's thread after it closed its socket.
    private let finished = DispatchSemaphore(value: 0)
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
        let finished = self.finished
        let thread = Thread { [self] in
            let sock = handoff.socket!
            handoff.socket = nil
            self.serve(sock, authorized: authorized, name: name)
            sock.close()
            finished.signal()
        }
        thread.name = "zap"
        thread.start()
    }

    /// Handshakes admitted and refused so far.
    public var admitted: Int { admittedCount.load(ordering: .relaxed) }
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// Stops the handler and waits (up to 2 s) until its thread has closed its socket, so the
    /// context can be terminated: the owner calls it when its run ends. Its thread holds the socket,
    /// and through it the context, until then; a context never terminated does not deliver what its
    /// sockets still queue before the process exits (the coordinator's last `shutdown`).
    public func stop() {
        guard !stopFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = finished.wait(timeout: .now() + 2)
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

    /// The metadata property naming the client's public key (Z85) on every message it sends.
    public static let keyProperty = "X-Precis-Key"

    /// ZAP metadata (ZMTP property encoding): a name length byte, the name, a 4-byte big-endian
    /// value length, the value.
    static func metadata(_ name: String, _ value: String) -> [UInt8] {
        let n = Array(name.utf8), v = Array(value.utf8)
        let len = UInt32(v.count)
        return [UInt8(n.count)] + n + [UInt8(len >> 24), UInt8(len >> 16 & 0xFF), UInt8(len >> 8 & 0xFF), UInt8(len & 0xFF)] + v
    }

    /// The reply to one ZAP request: [version, request id, status, status text, user id, metadata].
    static func answer(_ r: [[UInt8]], authorized: [String: KeyRole]) -> Reply {
        func reply(_ id: [UInt8], _ code: String, _ text: String, user: String, peer: String, key: String? = nil) -> Reply {
            Reply(frames: [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), Array(user.utf8),
                           key.map { metadata(keyProperty, $0) } ?? []],
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
        return reply(r[1], "200", "OK", user: role.rawValue, peer: peer, key: key)
    }
}
