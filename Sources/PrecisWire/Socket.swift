import CZMQ
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A ZeroMQ context. One per process; sockets are created from it.
public final class ZMQContext: @unchecked Sendable {
    // @unchecked: a ZeroMQ context is thread-safe by design (zmq_ctx_* may be called from any thread);
    // only the sockets made from it are not, and those are not Sendable.
    let handle: UnsafeMutableRawPointer

    private let terminated = Atomic<Bool>(false)

    public init(ioThreads: Int = 1) throws {
        guard let h = zmq_ctx_new() else { throw WireError.lastZMQ("zmq_ctx_new") }
        zmq_ctx_set(h, ZMQ_IO_THREADS, Int32(ioThreads))
        handle = h
    }

    /// Terminates the context: libzmq first delivers what closed sockets still queue (up to each
    /// one's linger), then returns once every socket made from it is closed. The wait is bounded by
    /// `seconds`, on a thread of its own, so a socket some thread still holds open cannot hang the
    /// caller; returns false when the time ran out. A process that must not lose its last messages
    /// (the coordinator's `shutdown` to every member) closes its sockets, then calls this before it
    /// exits: `exit` does not wait for libzmq's I/O thread.
    @discardableResult
    public func terminate(waitingAtMost seconds: Double) -> Bool {
        guard !terminated.exchange(true, ordering: .acquiringAndReleasing) else { return true }
        let done = DispatchSemaphore(value: 0)
        let h = UInt(bitPattern: handle)
        let t = Thread {
            zmq_ctx_term(UnsafeMutableRawPointer(bitPattern: h))
            done.signal()
        }
        t.name = "zmq-term"
        t.start()
        return done.wait(timeout: .now() + seconds) == .success
    }

    deinit { if !terminated.load(ordering: .acquiring) { zmq_ctx_term(handle) } }
}

/// A ZeroMQ socket (not thread-safe: create and use it on one thread). Multipart messages are
/// `[[UInt8]]` frames. Every receive takes a timeout, so no wait is unbounded.
public final class ZMQSocket {
    public enum Kind: Int32 { case router = 6, dealer = 5, pair = 0, pub = 1, sub = 2, rep = 4 }
    /// `ZMQ_ROUTING_ID` (the identity a ROUTER sees for this peer).
    public static let routingID: Int32 = 5
    /// `ZMQ_LINGER`, `ZMQ_SNDHWM`, `ZMQ_RCVHWM` (for roles that do not import CZMQ).
    public static let linger: Int32 = 17
    public static let sendHighWaterMark: Int32 = 23
    public static let receiveHighWaterMark: Int32 = 24

    let handle: UnsafeMutableRawPointer
    public let kind: Kind
    public let context: ZMQContext
    /// Four message structs for `receiveInPlace`, allocated once (they must not move while in use).
    let inPlaceFrames = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 4)
    /// The message struct for zero-copy payload sends, allocated once.
    let sendFrame = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
    /// The role the last received message's sender authenticated as (CURVE + ZAP; nil without keys).
    public internal(set) var lastPeerRole: KeyRole?
    /// The public key (Z85) the last message's sender authenticated with (`receive` and
    /// `tryReceive` only; nil without keys).
    public internal(set) var lastPeerKey: String?
    /// A ROUTER's undeliverable messages, per peer (set by `reportUndeliverable()`; nil: a message
    /// to a full or missing peer is dropped silently, as ZeroMQ does by default).
    public internal(set) var drops: PeerDrops?

    public init(_ context: ZMQContext, _ kind: Kind) throws {
        guard let s = zmq_socket(context.handle, kind.rawValue) else { throw WireError.lastZMQ("zmq_socket") }
        handle = s
        self.kind = kind
        self.context = context
        try set(ZMQ_LINGER, 0)
    }

    private var closed = false

    /// Closes the socket now (deinit otherwise does): what it still queues keeps going out for its
    /// linger, in libzmq's I/O thread, until its context is terminated. Using it afterwards is an error.
    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    deinit {
        if !closed { zmq_close(handle) }
        inPlaceFrames.deallocate()
        sendFrame.deallocate()
    }

    public func set(_ option: Int32, _ value: Int32) throws {
        var v = value
        if zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) != 0 { throw WireError.lastZMQ("zmq_setsockopt(\(option))") }
    }

    /// No high-water mark in either direction: nothing is dropped or blocked for a slow peer (the
    /// roles bound what is in flight themselves).
    public func setUnboundedQueues() throws {
        try set(Self.sendHighWaterMark, 0)
        try set(Self.receiveHighWaterMark, 0)
    }

    public func set(_ option: Int32, bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, bytes.count) }
        if rc != 0 { throw WireError.lastZMQ("zmq_setsockopt(\(option))") }
    }

    /// Binds and returns the endpoint actually bound (so `tcp://127.0.0.1:*` gives the chosen port).
    @discardableResult
    public func bind(_ endpoint: String) throws -> String {
        if zmq_bind(handle, endpoint) != 0 { throw WireError.lastZMQ("zmq_bind(\(endpoint))") }
        var buf = [CChar](repeating: 0, count: 256)
        var len = buf.count
        if zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buf, &len) != 0 { throw WireError.lastZMQ("ZMQ_LAST_ENDPOINT") }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func connect(_ endpoint: String) throws {
        if zmq_connect(handle, endpoint) != 0 { throw WireError.lastZMQ("zmq_connect(\(endpoint))") }
    }

    /// Sends a multipart message. On a ROUTER that reports undeliverable messages the first frame
    /// is the peer's routing id, and a message it cannot take is counted in `drops`, not sent.
    public func send(_ frames: [[UInt8]]) throws {
        if drops != nil, let first = frames.first {
            guard try sendIdentity(first) else { return }
            // A routing id alone is no message: end it with an empty frame.
            if frames.count == 1 {
                if zmq_send(handle, nil, 0, 0) < 0 { throw WireError.lastZMQ("zmq_send") }
                return
            }
        }
        for (i, f) in frames.enumerated() where drops == nil || i > 0 {
            let flags: Int32 = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            let rc = f.withUnsafeBytes { zmq_send(handle, $0.baseAddress, f.count, flags) }
            if rc < 0 { throw WireError.lastZMQ("zmq_send") }
        }
    }

    /// Receives one multipart message, or throws `timeout` after `timeoutMs` milliseconds.
    public func receive(timeoutMs: Int) throws -> [[UInt8]] {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, timeoutMs)
        if rc < 0 { throw WireError.lastZMQ("zmq_poll") }
        if rc == 0 { throw WireError.timeout(operation: "receive", milliseconds: timeoutMs) }
        var frames: [[UInt8]] = []
        let msg = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1) // must not move while in use
        defer { msg.deallocate() }
        while true {
            zmq_msg_init(msg)
            defer { zmq_msg_close(msg) }
            if zmq_msg_recv(msg, handle, 0) < 0 { throw WireError.lastZMQ("zmq_msg_recv") }
            // A ROUTER's identity frame carries no metadata: the role comes from the frames after it.
            if frames.isEmpty { lastPeerRole = nil; lastPeerKey = nil }
            if lastPeerRole == nil { lastPeerRole = peerRole(of: msg) }
            if lastPeerKey == nil { lastPeerKey = peerKey(of: msg) }
            let size = zmq_msg_size(msg)
            let data = zmq_msg_data(msg)
            frames.append(size > 0 ? Array(UnsafeRawBufferPointer(start: data, count: size)) : [])
            if zmq_msg_more(msg) == 0 { break }
        }
        return frames
    }
}
