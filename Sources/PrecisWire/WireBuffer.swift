import CZMQ
import Synchronization

/// A payload buffer that ZeroMQ sends without copying (`zmq_msg_init_data`). The sender keeps a
/// few per partition and reuses one whose earlier sends have all left, so the steady state
/// allocates nothing for payloads.
public final class WireBuffer: @unchecked Sendable {
    // @unchecked: `storage` and `count` are written only by the owning thread, and only while no
    // send is in flight (`isFree`); ZeroMQ's I/O thread only reads the bytes while a send is in
    // flight and then only touches the atomic counter (in `releaseWireBuffer`).
    public private(set) var storage: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    public internal(set) var count = 0
    let inFlight = Atomic<Int>(0)

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(64, capacity)
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 64)
    }

    deinit { storage.deallocate() }

    /// No send of these bytes is still waiting in ZeroMQ.
    public var isFree: Bool { inFlight.load(ordering: .acquiring) == 0 }

    func reserve(_ n: Int) {
        precondition(isFree, "a WireBuffer is rewritten while ZeroMQ still sends it")
        if n > capacity {
            storage.deallocate()
            capacity = n
            storage = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count) }

    /// A buffer of `pool` that is free, or a new one added to it.
    public static func free(in pool: inout [WireBuffer]) -> WireBuffer {
        if let b = pool.first(where: \.isFree) { return b }
        let b = WireBuffer(capacity: pool.first?.capacity ?? 1 << 16)
        pool.append(b)
        return b
    }
}

/// ZeroMQ's free callback for zero-copy sends: one send of the buffer is done.
private let releaseWireBuffer: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    guard let hint else { return }
    let b = Unmanaged<WireBuffer>.fromOpaque(hint).takeRetainedValue()
    b.inFlight.subtract(1, ordering: .releasing)
}

extension ShardCodec {
    /// Encodes `values` into `out` (reusing its storage) and returns the header to send with it. A
    /// `pushGradient` needs its contribution's `figures` (written after the shard); other types take none.
    public func encode(_ values: UnsafeBufferPointer<Float>, codec: Codec, into out: WireBuffer, type: MessageType, epoch: UInt32,
                       step: UInt64, partition: UInt32, slot: UInt32 = 0, errorFeedback: UnsafeMutablePointer<Float>? = nil,
                       figures: ContributionFigures? = nil) throws -> WireHeader {
        precondition((type == .pushGradient) == (figures != nil), "a pushGradient carries its contribution's figures, nothing else does")
        let n = values.count
        out.reserve(Self.bound(count: n, codec: codec) + (figures == nil ? 0 : ContributionFigures.size))
        out.count = try encode(values, codec: codec, errorFeedback: errorFeedback, into: out.storage)
        if let figures {
            figures.write(into: out.storage + out.count)
            out.count += ContributionFigures.size
        }
        return WireHeader(type: type, codec: codec, epoch: epoch, step: step, partition: partition, slot: slot, count: UInt32(n),
                          payloadLength: UInt32(out.count), checksum: CRC32C.checksum(out.bytes))
    }
}

extension ZMQSocket {
    /// Sends [identity?] + header + payload; the payload goes without a copy and `payload` stays
    /// busy until ZeroMQ has sent it.
    /// Sends a header with an empty payload (a pull), allocating nothing.
    public func send(header: WireHeader) throws {
        let rc = header.withBytes { zmq_send(handle, $0.baseAddress, $0.count, ZMQ_SNDMORE) }
        if rc < 0 || zmq_send(handle, nil, 0, 0) < 0 { throw WireError.lastZMQ("zmq_send") }
    }

    public func send(to identity: [UInt8]? = nil, header: WireHeader, payload: WireBuffer) throws {
        if let identity {
            guard try sendIdentity(identity) else { return }   // dropped: counted in `drops`
        }
        let rc = header.withBytes { zmq_send(handle, $0.baseAddress, $0.count, ZMQ_SNDMORE) }
        if rc < 0 { throw WireError.lastZMQ("zmq_send") }
        let msg = sendFrame   // this socket's message struct for zero-copy sends (it must not move while in use)
        payload.inFlight.add(1, ordering: .relaxed)
        let hint = Unmanaged.passRetained(payload).toOpaque()
        if zmq_msg_init_data(msg, payload.storage, payload.count, releaseWireBuffer, hint) != 0 {
            Unmanaged<WireBuffer>.fromOpaque(hint).release()
            payload.inFlight.subtract(1, ordering: .relaxed)
            throw WireError.lastZMQ("zmq_msg_init_data")
        }
        if zmq_msg_send(msg, handle, 0) < 0 {
            let e = WireError.lastZMQ("zmq_msg_send")
            zmq_msg_close(msg) // runs the free callback
            throw e
        }
    }
}
