import Foundation
import PrecisCore
import PrecisData
import PrecisModels
import PrecisTrain
import PrecisWire

/// `precis-worker`: registers with the coordinator, learns the run (config, model config, servers),
/// then repeatedly takes a task (a contribution: micro-batches of dataset indices of one step), pulls
/// the parameters it needs from the servers, runs forward/backward, pushes the gradient partitions
/// to their servers and reports. In sync mode it asks for the next version's parameters as soon as
/// its pushes are out, so the pull overlaps the other workers' last pushes and the servers' update.
public final class Worker {
    public struct Options: Sendable {
        public var coordinator: String
        public var host = "127.0.0.1"
        public var name = "worker"
        public var threads = 1
        public init(coordinator: String) { self.coordinator = coordinator }
    }

    enum Stop: Error { case exit(Int32) }

    let options: Options
    let context: ZMQContext
    let control: ZMQSocket
    let identity: [UInt8]
    var link = CoordinatorLink()
    var id = -1

    var config: TrainingConfig?
    var model: BartModel?
    var plan: TrainingPlan?
    var collator: Collator?

    var view: ViewMessage?
    var servers: [Int: ZMQSocket] = [:]
    var serverEndpoints: [Int: String] = [:]
    /// The version each partition of `model.params` holds (-1: none yet).
    var partitionVersion: [Int] = []
    var partitionsReceived = 0
    var pulledWire = 0, pulledRaw = 0
    var pullInFlight: Int?
    var errorFeedback: FloatBuffer?
    let codec = ShardCodec()
    var tasks: [TaskMessage] = []
    var evalTasks: [EvalTaskMessage] = []
    var tasksDone = 0
    var evalPlan: EvaluationPlan?
    var evalEncoder: TokenizerEncoder?
    /// Encodes and sends gradient partitions beside backward (made with the first contribution).
    var pusher: PushThread?
    /// The worker's own push buffers per partition, for the partitions it encodes itself at the end of backward.
    var pushBuffers: [UInt32: [WireBuffer]] = [:]
    /// The epoch of the view that brought the current partition layout: parameters stamped earlier are stale.
    var layoutEpoch: UInt32 = 0
    var attempt = 0
    var resets = 0
    /// When the last contribution's report went out (sync: the worker idles from then until the
    /// next version's parameters are in, and that idle time is communication).
    var lastDoneAt: Double?

    public init(_ options: Options) throws {
        self.options = options
        context = try ZMQContext()
        control = try ZMQSocket(context, .dealer)
        identity = Array("\(options.name)/\(getpid())".utf8)
        try control.set(ZMQSocket.routingID, bytes: identity)
    }

    func log(_ s: String) { Member.log(options.name, s) }

    public func run() -> Int32 {
        Member.installSignalHandlers()
        Compute.setThreads(options.threads)
        do {
            try control.connect(options.coordinator)
            log("registering with \(options.coordinator)")
            try register()
            try loop()
            return 0
        } catch Stop.exit(let code) {
            link.stop()
            return code
        } catch {
            log("error: \(error)")
            try? control.send(Control.frames(.leave, LeaveMessage(id: id, reason: "error: \(error)")))
            link.stop()
            return 1
        }
    }

    func loop() throws {
        while true {
            try checkAlive()
            if Member.terminationSignal != 0 { try leave("signal \(Member.terminationSignal)") }
            if view != nil, !evalTasks.isEmpty {
                lastDoneAt = nil
                try evaluate(evalTasks.removeFirst())
                continue
            }
            if view != nil, !tasks.isEmpty {
                let t = tasks.removeFirst()
                try perform(t)
                continue
            }
            try pump(timeoutMs: 100)
        }
    }

    /// A coordinator that stops answering heartbeats is gone (or restarted and no longer knows us):
    /// drop the work in hand and register again; after `reconnect_timeout` without one, give up.
    func checkAlive() throws {
        switch link.check() {
        case .lost(let seconds):
            log("the coordinator at \(options.coordinator) has not answered for \(Int(seconds)) s: registering again")
            tasks.removeAll(); evalTasks.removeAll()
            view = nil
            servers = [:]; serverEndpoints = [:]
            lastDoneAt = nil
            resets += 1
        case .registerNow: try register()
        case .giveUp:
            log("no coordinator at \(options.coordinator) for \(Int(link.giveUpAfter)) s: stopping")
            throw Stop.exit(3)
        case .fine: break
        }
    }

    func register() throws {
        try control.send(Control.frames(.register, RegisterMessage(role: .worker, name: options.name, host: options.host,
                                                                   pid: getpid(), threads: options.threads)))
    }

    func leave(_ reason: String) throws -> Never {
        log("leaving (\(reason)) after \(tasksDone) contribution(s)\(tasks.isEmpty ? "" : "; \(tasks.count) queued task(s) handed back")")
        try? control.send(Control.frames(.leave, LeaveMessage(id: id, reason: reason)))
        try? control.set(ZMQSocket.linger, 2000)
        link.stop()
        throw Stop.exit(0)
    }

    /// Waits up to `timeoutMs` for messages from the coordinator and the servers and handles them.
    func pump(timeoutMs: Int) throws {
        let socks = [control] + servers.keys.sorted().map { servers[$0]! }
        let ready = try ZMQPoll.wait(socks, timeoutMs: timeoutMs)
        if ready[0] { while let f = try control.tryReceive() { try handleControl(f) } }
        for (i, s) in socks.enumerated().dropFirst() where ready[i] {
            while try s.receiveInPlace({ m, _ in handleData(m) }) {}
        }
    }

    // MARK: control

    func handleControl(_ frames: [[UInt8]]) throws {
        let m: DataMessage
        do { m = try DataMessage(frames: frames) } catch {
            log("dropped a message from the coordinator: \(error)")
            return
        }
        switch m.header.type {
        case .registered: try setUp(try Control.decode(RegisteredMessage.self, m))
        case .refused:
            log("the coordinator refused this worker: \(try Control.decode(RefusedMessage.self, m).reason)")
            throw Stop.exit(2)
        case .view: try apply(view: try Control.decode(ViewMessage.self, m))
        case .task: tasks.append(try Control.decode(TaskMessage.self, m))
        case .evalTask: evalTasks.append(try Control.decode(EvalTaskMessage.self, m))
        case .shutdown:
            let s = try Control.decode(ShutdownMessage.self, m)
            log("shutting down: \(s.reason)")
            link.stop()
            throw Stop.exit(s.exitCode)
        default: log("ignored an unexpected \(m.header.type) from the coordinator")
        }
    }

    func setUp(_ r: RegisteredMessage) throws {
        id = r.id
        link.registered(context: context, coordinator: options.coordinator, id: id, interval: r.heartbeatInterval,
                        timeout: r.heartbeatTimeout, name: options.name)
        var cfg = try TrainingConfig.parse(r.config, file: r.configFile)
        cfg.training.outputDir = r.outputDir
        guard let m = try ModelRegistry.model(config: Data(r.modelConfig.utf8), file: "config.json from the coordinator") as? BartModel else {
            throw ModelError.invalidConfig(file: "config.json from the coordinator", field: "model_type", reason: "only BART trains today")
        }
        let p = try TrainingPlan(cfg, model: ModelShape(m.config), plannedWorkers: cfg.cluster.workers,
                                 asyncUpdates: cfg.cluster.consistency != "sync")
        guard p.digest == r.dataDigest else {
            log("this worker's training data (\(cfg.training.trainFile), digest \(p.digest)) differs from the coordinator's (\(r.dataDigest)): refusing to train")
            try? control.send(Control.frames(.leave, LeaveMessage(id: id, reason: "different training data")))
            link.stop()
            throw Stop.exit(2)
        }
        config = cfg; plan = p
        if model == nil || model!.params.count != m.params.count { model = m }
        collator = Collator(padId: Int32(m.config.padTokenId))
        if cfg.cluster.codec == "bf16" { errorFeedback = FloatBuffer(count: m.params.count) }
        log("registered as \(r.name) (id \(id)); \(m.params.count) parameters, \(p.dataset.count) examples, \(options.threads) thread(s)")
    }

    func apply(view v: ViewMessage) throws {
        if let a = v.attempt, a != attempt {
            // The run rolled back to a checkpoint: everything queued belongs to the abandoned future.
            log("the run restarts from a checkpoint (attempt \(a)): dropping \(tasks.count + evalTasks.count) queued task(s)")
            attempt = a
            tasks.removeAll(); evalTasks.removeAll()
            partitionVersion = Array(repeating: -1, count: partitionVersion.count)
            pullInFlight = nil
            lastDoneAt = nil
            resets += 1
        }
        // One connection per server endpoint, kept when the server's index changes (resharding over
        // the survivors renumbers them): a second DEALER with this worker's routing id would be
        // refused by the server's ROUTER while the first is still connected, and what it sent lost.
        var byEndpoint: [String: ZMQSocket] = [:]
        for (index, endpoint) in serverEndpoints { byEndpoint[endpoint] = servers[index] }
        var connected: [Int: ZMQSocket] = [:]
        for s in v.servers {
            if let sock = byEndpoint[s.endpoint] { connected[s.id] = sock; continue }
            let sock = try ZMQSocket(context, .dealer)
            try sock.set(ZMQSocket.routingID, bytes: identity)
            try sock.setUnboundedQueues()
            try sock.connect(s.endpoint)
            connected[s.id] = sock
        }
        servers = connected     // connections to servers no longer in the view close here
        serverEndpoints = Dictionary(v.servers.map { ($0.id, $0.endpoint) }, uniquingKeysWith: { a, _ in a })
        if view?.plan != v.plan || v.attempt != view?.attempt || v.layoutEpoch != view?.layoutEpoch {
            partitionVersion = Array(repeating: -1, count: v.plan.count)
            pullInFlight = nil
            layoutEpoch = v.layoutEpoch ?? 0
        }
        view = v
    }

    // MARK: data

    /// A server's data message, read in place (no copy of the payload before decoding it).
    func handleData(_ received: Result<InPlaceMessage, WireError>) {
        guard let v = view, let model else { return }
        let m: InPlaceMessage
        switch received {
        case .success(let x): m = x
        case .failure(let error): return log("dropped a message from a server: \(error)")
        }
        guard m.header.type == .parameters else { return log("dropped an unexpected \(m.header.type) from a server") }
        guard m.header.epoch >= layoutEpoch || m.header.epoch == 0 else { return }   // a reply to a pull from before a rollback
        let p = Int(m.header.partition)
        guard p < v.plan.count else { return log("dropped parameters for unknown partition \(p)") }
        let r = v.plan.range(p)
        guard Int(m.header.count) == r.count else {
            return log("dropped parameters for partition \(p): \(m.header.count) values, the partition has \(r.count)")
        }
        do { try m.decode(into: model.params.pointer + r.lowerBound, capacity: r.count, using: codec) } catch {
            partitionVersion[p] = -1
            return log("dropped parameters for partition \(p): \(error)")
        }
        partitionVersion[p] = Int(m.header.step)
        Member.trace(options.name, "parameters p\(p) v\(m.header.step)")
        partitionsReceived += 1
        pulledWire += WireHeader.size + m.payload.count
        pulledRaw += r.count * 4
    }

    /// Brings `model.params` to the version the task needs: exactly `step` (sync) or fresh (ssp/async).
    func ensureParameters(_ t: TaskMessage) throws -> Bool {
        guard let v = view else { return false }
        if t.exactVersion {
            if partitionVersion.allSatisfy({ $0 == t.step }) { return true }
            if partitionVersion.contains(where: { $0 > t.step }) { return false }
            if pullInFlight != t.step { try pull(version: t.step) }
        } else {
            try pull(version: t.minVersion)
        }
        let before = partitionsReceived
        let resetsBefore = resets
        var lastNote = Member.now()
        while true {
            if resets != resetsBefore { return false }
            if t.exactVersion {
                if partitionVersion.allSatisfy({ $0 == t.step }) { break }
                if partitionVersion.contains(where: { $0 > t.step }) { return false }
            } else if partitionsReceived - before >= v.plan.count && partitionVersion.allSatisfy({ $0 >= t.minVersion }) {
                break
            }
            try checkAlive()
            if Member.terminationSignal != 0 { tasks.insert(t, at: 0); try leave("signal \(Member.terminationSignal)") }
            try pump(timeoutMs: 50)
            if Member.now() - lastNote > 30 {
                lastNote = Member.now()
                log("still waiting for the parameters of version \(t.step) (have \(partitionVersion.filter { $0 == t.step }.count) of \(v.plan.count) partitions)")
            }
        }
        pullInFlight = nil
        return true
    }

    func pull(version: Int) throws {
        // The header's codec is the codec wanted for the reply.
        let h = WireHeader(type: .pullParameters, codec: view?.pullCodec ?? .fp32, epoch: view?.epoch ?? 0, step: UInt64(version), partition: UInt32.max,
                           count: 0, payloadLength: 0, checksum: 0)   // CRC-32C of no bytes is 0
        for (_, s) in servers { try s.send(header: h) }
        pullInFlight = version
    }

    func perform(_ t: TaskMessage) throws {
        guard let model, let plan, let collator, let v = view, let cfg = config else { return }
        let t0 = Member.now()
        guard try ensureParameters(t) else {
            guard t.exactVersion, partitionVersion.contains(where: { $0 > t.step }) else { return }
            // The servers applied this step without us: the gradient came from the contribution's
            // previous worker, which left after pushing and before reporting. Say so, or the
            // coordinator would wait for this contribution forever.
            log("skipped contribution \(t.contribution) of step \(t.step): the servers have moved past it")
            try control.send(Control.frames(.contributionDone, DoneMessage(
                step: t.step, contribution: t.contribution, lossSum: 0, tokens: 0, examples: 0, computeSeconds: 0,
                waitSeconds: 0, wireBytes: 0, rawBytes: 0, gradNorm: 0, attempt: t.attempt ?? 0, skipped: true)))
            return
        }
        let tStart = Member.now()
        Member.trace(options.name, "compute-start step \(t.step)")
        // Waiting for parameters: since the previous report when the worker went straight on to this
        // task (what a sync step costs beyond compute), else since this task began.
        let tWait = tStart - min(t0, lastDoneAt ?? t0)
        pusher?.drain().error.map { log("an earlier push failed: \($0)") }
        model.zeroGradients()
        var lossSum = 0.0, tokens = 0, examples = 0, padded = 0
        // Sync: the servers clip, so each partition can go as soon as its gradient is final (during
        // the last micro-batch's backward: decoder partitions first), overlapping the rest of backward.
        let early = t.exactVersion && t.clipNorm == 0
        var push = PushState(plan: v.plan)
        let codecKind = Codec(name: cfg.cluster.codec)
        if pusher == nil { pusher = PushThread(context: context, identity: identity, name: options.name) }
        let pusher = pusher!
        // Only hands the partition to the push thread: errors come back from `drain`.
        func send(_ p: Int) {
            guard !push.sent[p], let endpoint = serverEndpoints[v.plan.owner[p]] else { return }
            push.sent[p] = true
            let r = v.plan.range(p)
            let step = t.exactVersion ? t.step : max(0, partitionVersion[p])
            Member.trace(options.name, "final p\(p)")
            pusher.enqueue(PushThread.Job(values: model.grads.pointer + r.lowerBound, count: r.count,
                                          errorFeedback: errorFeedback.map { $0.pointer + r.lowerBound }, endpoint: endpoint, codec: codecKind,
                                          epoch: v.epoch, step: UInt64(step), partition: UInt32(p), slot: UInt32(t.contribution)))
        }
        for (i, mb) in t.micro.enumerated() {
            let batch = try collator.batch(mb, from: plan.dataset)
            if early && i == t.micro.count - 1 {
                model.onGradientsFinal = { range in
                    for p in push.covered(range) { send(p) }
                }
            }
            defer { model.onGradientsFinal = nil }
            let r = try model.step(batch, options: StepOptions(training: true, labelSmoothing: Float(cfg.training.labelSmoothingFactor),
                                                               seed: plan.dropoutSeed(step: t.step, micro: t.firstMicro + i),
                                                               lossNormalizer: max(1, t.normalizer)), logitsOut: nil)
            lossSum += r.lossSum
            tokens += batch.labels.reduce(0) { $0 + ($1 == Seq2SeqBatch.ignoreIndex ? 0 : 1) }
            examples += mb.count
            padded += batch.batchSize * (batch.sourceLength + batch.targetLength)
        }
        let earlyPartitions = push.sent.filter { $0 }.count
        var norm = 0.0
        if !t.exactVersion || t.clipNorm > 0 {
            norm = GradClip.norm(model.grads.pointer, count: model.grads.count)
            if t.clipNorm > 0 {
                let coef = GradClip.coefficient(totalNorm: norm, maxNorm: t.clipNorm)
                if coef != 1 { Vec.scale(model.grads.pointer, coef, model.grads.count) }
            }
        }
        // Whatever was not pushed during backward: last partitions (the decoder) first.
        for p in (0..<v.plan.count).reversed() { send(p) }
        if earlyPartitions > 0 && tasksDone == 0 {
            log("\(earlyPartitions) of \(v.plan.count) gradient partitions went out during backward")
        }
        // The push thread finishes what backward's end left it (the encoding not overlapped).
        let tCompute = Member.now()
        Member.trace(options.name, "backward-end step \(t.step)")
        let pushed = pusher.drain { job in
            guard let sock = self.servers[v.plan.owner[Int(job.partition)]] else {
                throw WireError.pushFailed("no connection to the server of partition \(job.partition)")
            }
            let r = try PushThread.push(job, codec: self.codec, buffers: &self.pushBuffers[job.partition, default: []], socket: sock)
            Member.trace(self.options.name, "worker sent p\(job.partition) (\(String(format: "%.1f", r.seconds * 1000)) ms)")
            return r
        }
        if let e = pushed.error { throw WireError.pushFailed(e) }
        let tPush = Member.now()
        Member.trace(options.name, "pushed step \(t.step)")
        let wire = pushed.wireBytes, raw = pushed.rawBytes, encodeSeconds = tPush - tCompute
        try control.send(Control.frames(.contributionDone, DoneMessage(
            step: t.step, contribution: t.contribution, lossSum: lossSum, tokens: tokens, examples: examples,
            computeSeconds: tCompute - tStart, waitSeconds: tWait, wireBytes: wire, rawBytes: raw, gradNorm: norm,
            paddedTokens: padded, pullWireBytes: pulledWire, pullRawBytes: pulledRaw, attempt: t.attempt ?? 0, encodeSeconds: encodeSeconds)))
        lastDoneAt = t.exactVersion ? Member.now() : nil
        pulledWire = 0; pulledRaw = 0
        tasksDone += 1
        // Sync: ask for the next version now; the servers answer once it exists.
        if t.exactVersion && tasks.isEmpty { try pull(version: t.step + 1) }
    }
}



/// Which partitions of one contribution have their final gradient and which are pushed.
struct PushState {
    let plan: PartitionPlan
    var sent: [Bool]
    var coveredCount: [Int]

    init(plan: PartitionPlan) {
        self.plan = plan
        sent = Array(repeating: false, count: plan.count)
        coveredCount = Array(repeating: 0, count: plan.count)
    }

    /// Marks `range` final; returns the partitions that just became entirely final.
    mutating func covered(_ range: Range<Int>) -> [Int] {
        guard !range.isEmpty else { return [] }
        var done: [Int] = []
        // Partitions are sorted by offset: find the first that can overlap.
        var lo = 0, hi = plan.count
        while lo < hi { let mid = (lo + hi) / 2; if plan.bounds[mid + 1] <= range.lowerBound { lo = mid + 1 } else { hi = mid } }
        var p = lo
        while p < plan.count && plan.bounds[p] < range.upperBound {
            let r = plan.range(p)
            let overlap = min(r.upperBound, range.upperBound) - max(r.lowerBound, range.lowerBound)
            if overlap > 0 && coveredCount[p] < r.count {
                coveredCount[p] = min(r.count, coveredCount[p] + overlap)
                if coveredCount[p] == r.count { done.append(p) }
            }
            p += 1
        }
        return done
    }
}
