import Dispatch
import Foundation
import PrecisWire
import Synchronization

/// One contribution's gradient as `GradientPusher` sends it: where the values are, which server
/// gets each partition, and the header fields.
package struct GradientContribution: @unchecked Sendable {
    // @unchecked: `gradients` and `errorFeedback` point into the worker's gradient and bf16
    // error-feedback buffers. A partition's push reads (and, with bf16, writes) only that
    // partition's range of them, and only after backward has finished writing it; the worker
    // touches neither buffer again until `GradientPusher.finish` (or the next `begin`) has waited
    // for every push of the contribution.
    package var plan: PartitionPlan
    /// The whole flat gradient buffer.
    package var gradients: UnsafePointer<Float>
    /// bf16 only: the rounding error kept per value and added to the next gradient sent.
    package var errorFeedback: UnsafeMutablePointer<Float>?
    /// Each server's data endpoint. A partition whose server has none is reported as an error.
    package var endpoints: [Int: String]
    package var codec: Codec
    package var epoch: UInt32
    /// The header's step per partition (sync: the step; ssp/async: the version it was computed on).
    package var steps: [UInt64]
    /// The contribution index (the header's slot).
    package var slot: UInt32

    package init(plan: PartitionPlan, gradients: UnsafePointer<Float>, errorFeedback: UnsafeMutablePointer<Float>?,
                 endpoints: [Int: String], codec: Codec, epoch: UInt32, steps: [UInt64], slot: UInt32) {
        precondition(steps.count == plan.count, "one step per partition")
        self.plan = plan; self.gradients = gradients; self.errorFeedback = errorFeedback; self.endpoints = endpoints
        self.codec = codec; self.epoch = epoch; self.steps = steps; self.slot = slot
    }

    /// Partition `p` as a push to `endpoint`, carrying the contribution's `figures`.
    func job(_ p: Int, endpoint: String, figures: ContributionFigures) -> PushJob {
        let r = plan.range(p)
        return PushJob(values: gradients + r.lowerBound, count: r.count, errorFeedback: errorFeedback.map { $0 + r.lowerBound },
                       endpoint: endpoint, server: plan.owner[p], codec: codec, epoch: epoch, step: steps[p],
                       partition: UInt32(p), slot: slot, figures: figures)
    }
}

/// One partition to push.
struct PushJob: @unchecked Sendable {
    // @unchecked: the pointers address one partition of the buffers a `GradientContribution`
    // names, under the rule given there.
    var values: UnsafePointer<Float>
    var count: Int
    var errorFeedback: UnsafeMutablePointer<Float>?
    var endpoint: String
    var server: Int
    var codec: Codec
    var epoch: UInt32
    var step: UInt64
    var partition: UInt32
    var slot: UInt32
    /// The contribution's loss, tokens and examples: every push carries them (`ContributionFigures`).
    var figures: ContributionFigures
}

/// What a contribution's pushes cost.
package struct PushTotals: Sendable {
    package var wireBytes = 0, rawBytes = 0
    /// Time spent encoding, on either thread (overlapped with backward, mostly).
    package var encodeSeconds = 0.0
    /// The first push that failed, and why.
    package var error: String?
}

/// The worker's gradient path: which partitions of a contribution are final and pushed
/// (`PushState`), a push thread that encodes and sends partitions while backward runs, and the
/// encoding of what is left at the end of backward on the worker's own thread.
///
/// The worker, on its own thread: `begin` a contribution, hands `onGradientsFinal` to the model for
/// the backward that may push early, then `pushRemaining` and `finish` (which returns what the
/// pushes cost). `onGradientsFinal` may run on any thread (the model calls it from its compute
/// threads); what it touches — the push state and the queue — lives in one `Mutex` inside this type.
///
/// The push thread has its own DEALER socket per server (ZeroMQ sockets belong to one thread), with
/// the identity `NAME/PID/push`: servers take pushes from any peer and answer pulls on the worker's
/// main socket. Partitions the push thread has not started when backward ends are encoded by the
/// worker's thread instead, on the worker's sockets (the last partitions of backward come together).
package final class GradientPusher {
    private let queue: PushQueue
    /// The worker thread's encoder (the push thread has its own).
    private let sender = PartitionSender(label: "worker")

    /// Starts the push thread. `identity` is the worker's routing id; `name` labels traces.
    package init(context: ZMQContext, identity: [UInt8], name: String, keys: ClusterKeys? = nil) {
        let queue = PushQueue(name: name)
        self.queue = queue
        let thread = Thread { PushQueue.runPushThread(queue, context: context, identity: identity + Array("/push".utf8), keys: keys) }
        thread.name = "push"
        thread.start()
    }

    deinit { queue.stop() }

    /// Starts a contribution. First waits for anything an earlier contribution left in flight (a
    /// task abandoned by an error): returns what that cost, with its error if a push failed.
    package func begin(_ contribution: GradientContribution) -> PushTotals {
        let earlier = queue.waitForAll()
        queue.begin(contribution)
        return earlier
    }

    /// For `Seq2SeqModel.onGradientsFinal`: `range` of the gradient is final; the partitions it
    /// completes go to the push thread, each carrying `figures` (the contribution's, its last
    /// micro-batch's loss included: the model reports the loss with the range). Safe on any thread.
    package var onGradientsFinal: @Sendable (Range<Int>, ContributionFigures) -> Void {
        { [queue] range, figures in queue.gradientsFinal(range, figures: figures) }
    }

    /// Partitions of this contribution handed on so far.
    package var sentCount: Int { queue.sentCount }

    /// Hands on every partition not pushed yet, last first (the decoder's), each carrying `figures`.
    package func pushRemaining(figures: ContributionFigures) { queue.pushRemaining(figures: figures) }

    /// Encodes and sends, on the caller's thread and its sockets (`socket(server)`), the partitions
    /// the push thread has not started; waits for the rest. Returns what this contribution's pushes
    /// cost (its `error` says which failed). Afterwards the gradient buffers are the worker's again.
    package func finish(socket: (Int) -> ZMQSocket?) -> PushTotals {
        while let job = queue.takeQueued() {
            sender.send(job, queue: queue) {
                guard let s = socket(job.server) else {
                    throw WireError.pushFailed("no connection to the server of partition \(job.partition)")
                }
                return s
            }
        }
        return queue.waitForAll()
    }
}

/// The state the worker's thread, the compute threads (readiness) and the push thread share, with
/// the one lock that guards it.
private final class PushQueue: Sendable {
    private struct State {
        var contribution: GradientContribution?
        var readiness: PushState?
        /// Partitions handed on and not started by either thread.
        var jobs: [PushJob] = []
        /// Jobs handed on since the last `waitForAll` (each signals `done` once, sent or failed).
        var handedOn = 0
        var totals = PushTotals()
        var stop = false
    }

    private let state = Mutex(State())
    /// One signal per job handed on (and one to stop): the push thread's wake-up.
    private let wake = DispatchSemaphore(value: 0)
    /// One signal per job finished, by whichever thread ran it.
    private let done = DispatchSemaphore(value: 0)
    let name: String

    init(name: String) { self.name = name }

    func begin(_ c: GradientContribution) {
        state.withLock { s in
            s.contribution = c
            s.readiness = PushState(plan: c.plan)
        }
    }

    func gradientsFinal(_ range: Range<Int>, figures: ContributionFigures) {
        let handed = state.withLock { s -> [Int] in
            guard s.readiness != nil else { return [] }
            var handed: [Int] = []
            for p in s.readiness!.covered(range) where Self.handOn(p, figures: figures, &s) { handed.append(p) }
            return handed
        }
        announce(handed)
    }

    func pushRemaining(figures: ContributionFigures) {
        let handed = state.withLock { s -> [Int] in
            var handed: [Int] = []
            for p in s.readiness?.unsent ?? [] where Self.handOn(p, figures: figures, &s) { handed.append(p) }
            return handed
        }
        announce(handed)
    }

    var sentCount: Int { state.withLock { $0.readiness?.sentCount ?? 0 } }

    /// Queues partition `p` unless it was handed on already. A partition whose server is not in the
    /// worker's view is an error the contribution reports (never a push silently left out: the
    /// server would wait for it for ever).
    private static func handOn(_ p: Int, figures: ContributionFigures, _ s: inout State) -> Bool {
        guard let c = s.contribution, s.readiness!.markSent(p) else { return false }
        guard let endpoint = c.endpoints[c.plan.owner[p]] else {
            if s.totals.error == nil {
                s.totals.error = "partition \(p) belongs to server \(c.plan.owner[p]), which is not in this worker's view"
            }
            return false
        }
        s.jobs.append(c.job(p, endpoint: endpoint, figures: figures))
        s.handedOn += 1
        return true
    }

    private func announce(_ partitions: [Int]) {
        for p in partitions {
            Member.trace(name, "final p\(p)")
            wake.signal()
        }
    }

    /// The oldest queued job nobody has started.
    func takeQueued() -> PushJob? {
        state.withLock { $0.jobs.isEmpty ? nil : $0.jobs.removeFirst() }
    }

    /// Records what a job cost, or why it failed, and counts it done.
    func finished(_ job: PushJob, _ result: Result<(seconds: Double, wireBytes: Int), any Error>) {
        state.withLock { s in
            switch result {
            case .success(let r):
                s.totals.encodeSeconds += r.seconds; s.totals.wireBytes += r.wireBytes; s.totals.rawBytes += job.count * 4
            case .failure(let error):
                if s.totals.error == nil { s.totals.error = "pushing partition \(job.partition) to \(job.endpoint): \(error)" }
            }
        }
        done.signal()
    }

    /// Waits until every job handed on has finished; returns their totals (and starts new ones).
    func waitForAll() -> PushTotals {
        let n = state.withLock { s in
            let n = s.handedOn
            s.handedOn = 0
            return n
        }
        for _ in 0..<n { done.wait() }
        return state.withLock { s in
            let t = s.totals
            s.totals = PushTotals()
            return t
        }
    }

    func stop() {
        state.withLock { $0.stop = true }
        wake.signal()
    }

    /// Waits for a job; nil once stopped.
    private func nextForPushThread() -> PushJob? {
        while true {
            wake.wait()
            enum Next { case job(PushJob), none, stop }
            let next = state.withLock { s -> Next in s.stop ? .stop : s.jobs.isEmpty ? .none : .job(s.jobs.removeFirst()) }
            switch next {
            case .job(let job): return job
            case .stop: return nil
            case .none: continue    // the worker's thread took this one (`GradientPusher.finish`)
            }
        }
    }

    /// The push thread: its own sockets (one per server endpoint) and encoder.
    static func runPushThread(_ queue: PushQueue, context: ZMQContext, identity: [UInt8], keys: ClusterKeys?) {
        let sender = PartitionSender(label: "push-thread")
        var sockets: [String: ZMQSocket] = [:]
        while let job = queue.nextForPushThread() {
            sender.send(job, queue: queue) {
                if let s = sockets[job.endpoint] { return s }
                let s = try ZMQSocket(context, .dealer)
                try s.set(ZMQSocket.routingID, bytes: identity)
                try keys?.secureToServer(s)
                try s.limitForSending()
                try s.set(ZMQSocket.linger, 0)
                try s.connect(job.endpoint)
                sockets[job.endpoint] = s
                return s
            }
        }
    }
}

/// Encodes partitions and hands them to ZeroMQ without a copy. One per sending thread: its codec
/// scratch and payload buffers are not shared.
private final class PartitionSender {
    private let codec = ShardCodec()
    /// Payload buffers per partition; one whose earlier sends have left is reused.
    private var buffers: [UInt32: [WireBuffer]] = [:]
    /// Who sends, for traces.
    private let label: String

    init(label: String) { self.label = label }

    /// The one encode-and-send path, for the push thread and the worker's thread alike: encodes
    /// `job` into a free buffer, sends it on the socket `socket` gives, and tells `queue` what it
    /// cost or why it failed (which counts the job done).
    func send(_ job: PushJob, queue: PushQueue, socket: () throws -> ZMQSocket) {
        do {
            let sock = try socket()
            let t0 = Member.now()
            let buf = WireBuffer.free(in: &buffers[job.partition, default: []])
            let header = try codec.encode(UnsafeBufferPointer(start: job.values, count: job.count), codec: job.codec, into: buf,
                                          type: .pushGradient, epoch: job.epoch, step: job.step, partition: job.partition,
                                          slot: job.slot, errorFeedback: job.errorFeedback, figures: job.figures)
            let seconds = Member.now() - t0
            try sock.send(header: header, payload: buf)
            Member.trace(queue.name, "\(label) sent p\(job.partition) (\(String(format: "%.1f", seconds * 1000)) ms)")
            queue.finished(job, .success((seconds, WireHeader.size + buf.count)))
        } catch {
            queue.finished(job, .failure(error))
        }
    }
}
