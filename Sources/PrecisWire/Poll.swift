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
