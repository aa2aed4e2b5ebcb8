import CZMQ

extension ZMQSocket {
    /// Receives one multipart message if one is waiting, without blocking.
    public func tryReceive() throws -> [[UInt8]]? {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, 0)
        if rc < 0 { throw WireError.lastZMQ("zmq_poll") }
        if rc == 0 { return nil }
        return try receive(timeoutMs: 0)
    }

    /// Sends a message to a ROUTER peer: routing id first, then the frames.
    public func send(to identity: [UInt8], _ frames: [[UInt8]]) throws {
        try send([identity] + frames)
    }
}

/// Waits on several sockets at once.
public enum ZMQPoll {
    /// Returns which sockets have a message waiting (all false after `timeoutMs`).
    public static func wait(_ sockets: [ZMQSocket], timeoutMs: Int) throws -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let rc = zmq_poll(&items, Int32(items.count), timeoutMs)
        if rc < 0 {
            if zmq_errno() == EINTR { return Array(repeating: false, count: sockets.count) }
            throw WireError.lastZMQ("zmq_poll")
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}

/// A data message read in place: the frames stay in ZeroMQ's buffers (no copy, no allocation on our
/// side) and are valid only inside the `receiveInPlace` body.
public struct InPlaceMessage {
    public let header: WireHeader
    public let payload: UnsafeRawBufferPointer

    /// Decodes the shard into `out` (header.count values), checking the length.
    public func decode(into out: UnsafeMutablePointer<Float>, capacity: Int, using shardCodec: ShardCodec) throws {
        guard Int(header.count) <= capacity else {
            throw WireError.lengthMismatch(field: "shard", expected: capacity, got: Int(header.count))
        }
        try shardCodec.decode(header.shard(of: payload), codec: header.codec, count: Int(header.count), into: out)
    }

    /// A gradient push's contribution figures (the end of its payload).
    public func figures() throws -> ContributionFigures { try ContributionFigures(trailerOf: payload) }
}

extension ZMQSocket {
    /// Receives one waiting data message without blocking and without copying it: `body` gets the
    /// verified message (header parsed, payload length and CRC-32C checked) or the error that made
    /// it unreadable, with the sender's routing id when there is one. Returns false when no message
    /// was waiting. ROUTER sockets expect [identity, header, payload], others [header, payload].
    public func receiveInPlace(_ body: (Result<InPlaceMessage, WireError>, UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        let msgs = inPlaceFrames
        let want = kind == .router ? 3 : 2
        var n = 0
        defer { for i in 0..<min(n, 4) { zmq_msg_close(msgs + i) } }
        while true {
            let slot = msgs + min(n, 3)
            if n >= 4 { zmq_msg_close(slot) }        // frames past the fourth are read and dropped
            zmq_msg_init(slot)
            if zmq_msg_recv(slot, handle, n == 0 ? ZMQ_DONTWAIT : 0) < 0 {
                if n < 4 { zmq_msg_close(slot) }     // from the fifth frame on, slot 3 is the defer's to close
                if n == 0 && zmq_errno() == EAGAIN { return false }
                throw WireError.lastZMQ("zmq_msg_recv")
            }
            if n == 0 { lastPeerRole = nil }
            if lastPeerRole == nil { lastPeerRole = peerRole(of: slot) }
            n += 1
            if zmq_msg_more(slot) == 0 { break }
        }
        func frame(_ i: Int) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(start: zmq_msg_data(msgs + i), count: zmq_msg_size(msgs + i))
        }
        let identity = kind == .router && n >= 1 ? frame(0) : UnsafeRawBufferPointer(start: nil, count: 0)
        guard n == want else {
            try body(.failure(.lengthMismatch(field: "frames", expected: want - (kind == .router ? 1 : 0),
                                              got: n - (kind == .router ? 1 : 0))), identity)
            return true
        }
        let h = frame(want - 2), payload = frame(want - 1)
        let result: Result<InPlaceMessage, WireError>
        do {
            result = .success(InPlaceMessage(header: try WireHeader(parsing: h, verifying: payload), payload: payload))
        } catch let e as WireError {
            result = .failure(e)
        } catch {
            result = .failure(.badControl(type: "data", reason: "\(error)"))
        }
        try body(result, identity)
        return true
    }
}
