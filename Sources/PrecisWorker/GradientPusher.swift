import Dispatch
import Foundation
import PrecisWire
import Synchronization

/// Encodes and sends gradient partitions on a thread of its own, so backward goes on while a
/// finished partition is rounded, compressed, checksummed and handed to ZeroMQ. It has its own
/// DEALER socket per server (ZeroMQ sockets belong to one thread), with the identity
/// `NAME/PID/push`: servers take pushes from any peer and answer pulls on the worker's main socket.
///
/// The worker enqueues a partition once backward has written its final gradient and calls
/// `drain()` before it reads or writes the gradient or error-feedback buffers again (the next
/// contribution's `zeroGradients`).
final class PushThread: Sendable {
    /// One partition to push.
    struct Job: @unchecked Sendable {
        // @unchecked: `values` and `errorFeedback` address a partition of the worker's gradient and bf16
        // error-feedback buffers that backward has finished writing; the worker touches neither range
        // again until `drain()` has returned, which happens after this thread is done with the job.
        var values: UnsafePointer<Float>
        var count: Int
        var errorFeedback: UnsafeMutablePointer<Float>?
        var endpoint: String
        var codec: Codec
        var epoch: UInt32
        var step: UInt64
        var partition: UInt32
        var slot: UInt32
    }

    /// What the pushes since the last `drain()` cost.
    struct Totals: Sendable {
        var wireBytes = 0, rawBytes = 0
        /// Time this thread spent encoding (overlapped with backward, mostly).
        var encodeSeconds = 0.0
        var error: String?
    }

    private struct State {
        var queue: [Job] = []
        var stop = false
        var totals = Totals()
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// Jobs enqueued and not yet waited for (only the worker's thread uses it).
    private let outstanding = Atomic<Int>(0)

    init(context: ZMQContext, identity: [UInt8], name: String) {
        let thread = Thread { [self] in self.run(context: context, identity: identity, name: name) }
        thread.name = "push"
        thread.start()
    }

    func enqueue(_ job: Job) {
        outstanding.add(1, ordering: .relaxed)
        state.withLock { $0.queue.append(job) }
        wake.signal()
    }

    /// Waits until every enqueued partition has gone to ZeroMQ; returns what they cost. `help`, when
    /// given, is called on the caller's thread with queued jobs this thread has not started (the
    /// worker encodes them itself rather than wait: the last partitions of backward come together).
    func drain(help: ((Job) throws -> (seconds: Double, wireBytes: Int))? = nil) -> Totals {
        if let help {
            while let job = state.withLock({ $0.queue.isEmpty ? nil : $0.queue.removeFirst() }) {
                do {
                    let r = try help(job)
                    state.withLock { s in
                        s.totals.encodeSeconds += r.seconds; s.totals.wireBytes += r.wireBytes; s.totals.rawBytes += job.count * 4
                    }
                } catch {
                    record(error, job)
                }
                finished.signal()
            }
        }
        let n = outstanding.exchange(0, ordering: .relaxed)
        for _ in 0..<n { finished.wait() }
        return state.withLock { s in
            let t = s.totals
            s.totals = Totals()
            return t
        }
    }

    private func record(_ error: Error, _ job: Job) {
        state.withLock { s in
            if s.totals.error == nil { s.totals.error = "pushing partition \(job.partition) to \(job.endpoint): \(error)" }
        }
    }

    /// Encodes `job` into a free buffer of `buffers` and sends it on `socket` without a copy.
    static func push(_ job: Job, codec: ShardCodec, buffers: inout [WireBuffer], socket: ZMQSocket) throws -> (seconds: Double, wireBytes: Int) {
        let t0 = Member.now()
        let buf = WireBuffer.free(in: &buffers)
        let header = try codec.encode(UnsafeBufferPointer(start: job.values, count: job.count), codec: job.codec, into: buf,
                                      type: .pushGradient, epoch: job.epoch, step: job.step, partition: job.partition,
                                      slot: job.slot, errorFeedback: job.errorFeedback)
        let seconds = Member.now() - t0
        try socket.send(header: header, payload: buf)
        return (seconds, WireHeader.size + buf.count)
    }

    func stop() {
        state.withLock { $0.stop = true }
        wake.signal()
    }

    private func run(context: ZMQContext, identity: [UInt8], name: String) {
        var sockets: [String: ZMQSocket] = [:]
        var buffers: [UInt32: [WireBuffer]] = [:]
        let codec = ShardCodec()
        while true {
            wake.wait()
            enum Next { case job(Job), none, stop }
            let next = state.withLock { s -> Next in s.stop ? .stop : s.queue.isEmpty ? .none : .job(s.queue.removeFirst()) }
            guard case .job(let job) = next else {
                if case .stop = next { return }
                continue    // the worker took this one itself (`drain(help:)`)
            }
            do {
                let sock: ZMQSocket
                if let s = sockets[job.endpoint] { sock = s } else {
                    sock = try ZMQSocket(context, .dealer)
                    try sock.set(ZMQSocket.routingID, bytes: identity + Array("/push".utf8))
                    try sock.setUnboundedQueues()
                    try sock.set(ZMQSocket.linger, 0)
                    try sock.connect(job.endpoint)
                    sockets[job.endpoint] = sock
                }
                let r = try Self.push(job, codec: codec, buffers: &buffers[job.partition, default: []], socket: sock)
                Member.trace(name, "push-thread sent p\(job.partition) (\(String(format: "%.1f", r.seconds * 1000)) ms)")
                state.withLock { s in
                    s.totals.encodeSeconds += r.seconds; s.totals.wireBytes += r.wireBytes; s.totals.rawBytes += job.count * 4
                }
            } catch {
                record(error, job)
            }
            finished.signal()
        }
    }
}
