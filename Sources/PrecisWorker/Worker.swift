import Foundation
import PrecisCore
import PrecisData
import PrecisModels
import PrecisObservability
import PrecisTrain
import PrecisWire

/// `precis-worker`: registers with the coordinator, learns the run (config, model config, servers),
/// then repeatedly takes a task (a contribution: micro-batches of dataset indices of one step), pulls
/// the parameters it needs from the servers, runs forward/backward, pushes the gradient partitions
/// to their servers and reports. In sync mode it asks for the next version's parameters as soon as
/// its pushes are out, so the pull overlaps the other workers' last pushes and the servers' update,
/// and (`overlap_pull`) starts forward once the embeddings' partitions are in: the later layers'
/// partitions arrive while forward runs (`OverlappedPull`).
public final class Worker {
    public struct Options: Sendable {
        public var coordinator: String
        public var host = "127.0.0.1"
        public var name = "worker"
        public var threads = 1
        /// The cluster's keys (the worker role's): CURVE to the coordinator and the servers.
        public var keys: ClusterKeys?
        /// Where to serve Prometheus metrics (nil: no listener).
        public var metrics: MetricsEndpoint?
        /// For checks and diagnosis: at exit, write this worker's parameter copy, the versions of its
        /// partitions and the last `bf16-delta` each value got to this safetensors file (`dumpParametersIfAsked`).
        public var dumpParameters: String?
        /// Seconds within which the first registration must succeed (the coordinator may start
        /// later); then the worker exits 1.
        public var connectTimeout = 120.0
        public init(coordinator: String) { self.coordinator = coordinator }
    }

    enum Stop: Error { case exit(Int32) }

    let options: Options
    let context: ZMQContext
    let control: ZMQSocket
    let identity: [UInt8]
    var link: CoordinatorLink
    var id = -1

    var config: TrainingConfig?
    var model: (any Seq2SeqModel)?
    var plan: TrainingPlan?
    var collator: Collator?

    var view: ViewMessage?
    var servers: [Int: ZMQSocket] = [:]
    var serverEndpoints: [Int: String] = [:]
    /// The version each partition of `model.params` holds (-1: none yet).
    var partitionVersion: [Int] = []
    /// `bf16-delta`: the epoch stamped on the reply that last set each partition's copy (a delta is
    /// added only to a copy from a reply of the same assignment epoch).
    var copyEpoch: [UInt32] = []
    /// `bf16-delta`: a delta decodes here before it is added to the copy (the largest partition).
    var deltaScratch: FloatBuffer?
    /// With `dumpParameters`: the last delta each value was given.
    var lastDelta: FloatBuffer?
    /// A delta that did not fit the copy arrived: pull again now (full replies) instead of after the retry time.
    var pullAgain = false
    /// `bf16-delta` replies taken so far: deltas added, full replies (logged at exit).
    var deltaReplies = 0, fullReplies = 0
    /// `overlap_pull`: contributions whose forward started before all their partitions were in,
    /// and the seconds their forwards waited for partitions (logged at exit).
    var overlappedForwards = 0, forwardWaitSeconds = 0.0
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
    /// The gradient path: pushes partitions beside backward (made with the first contribution).
    var pusher: GradientPusher?
    /// The epoch of the view that brought the current partition layout: parameters stamped earlier are stale.
    var layoutEpoch: UInt32 = 0
    var attempt = 0
    var resets = 0
    /// When the last contribution's report went out (sync: the worker idles from then until the
    /// next version's parameters are in, and that idle time is communication).
    var lastDoneAt: Double?
    /// A step is running (`runMicroBatches`): a `registered` from the coordinator waits until it ends
    /// (setting up again would change the model under the running step).
    var stepRunning = false
    var deferredControl: [[[UInt8]]] = []
    /// The Prometheus metrics (updated once per contribution) and their listener.
    let observed: WorkerMetrics
    var metricsServer: MetricsServer?

    public init(_ options: Options) throws {
        self.options = options
        link = CoordinatorLink(connectTimeout: options.connectTimeout)
        context = try ZMQContext()
        control = try ZMQSocket(context, .dealer)
        identity = Array("\(options.name)/\(getpid())".utf8)
        try control.set(ZMQSocket.routingID, bytes: identity)
        try options.keys?.secureToCoordinator(control)
        try control.limitForControl()
        observed = WorkerMetrics(name: options.name)
    }

    func log(_ s: String) { Member.log(options.name, s) }

    public func run() -> Int32 {
        Member.installSignalHandlers()
        Compute.setThreads(options.threads)
        // Before connecting: a listener that cannot start ends the worker with nothing to undo.
        if let endpoint = options.metrics {
            do { metricsServer = try MetricsServer.start(endpoint, metrics: observed, role: options.name) } catch {
                log("error: \(error)")
                return 1
            }
            log("metrics on \(metricsServer!.url)")
        }
        do {
            try control.connect(options.coordinator)
            log("registering with \(options.coordinator)")
            try register()
            try loop()
            return 0
        } catch Stop.exit(let code) {
            link.stop()
            if deltaReplies + fullReplies > 0 { log("bf16-delta pulls: \(deltaReplies) deltas added, \(fullReplies) full replies") }
            if overlappedForwards > 0 {
                log("overlapped pulls: \(overlappedForwards) forward(s) started before their parameters were all in, waiting \(String(format: "%.3f", forwardWaitSeconds)) s in all for partitions")
            }
            if code == 0 { dumpParametersIfAsked() }
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
        case .registerNow:
            if !link.everRegistered {
                log("not admitted by the coordinator at \(options.coordinator) after \(Int(link.waited)) s: registering again (giving up after \(Int(link.connectTimeout)) s, --connect-timeout)")
            }
            try register()
        case .giveUp:
            log("no coordinator at \(options.coordinator) for \(Int(link.giveUpAfter)) s: stopping")
            throw Stop.exit(3)
        case .noCoordinator:
            log("error: no coordinator at \(options.coordinator) admitted this worker within \(Int(link.connectTimeout)) s (--connect-timeout): is it running and reachable from here?")
            throw Stop.exit(1)
        case .fine: break
        }
    }

    func register() throws {
        try control.send(Control.frames(.register, RegisterMessage(role: .worker, name: options.name, host: options.host,
                                                                   pid: getpid(), threads: options.threads)))
    }

    /// Tells the coordinator this worker leaves (giving `reason`) and stops with `exitCode`.
    func leave(_ reason: String, exitCode: Int32 = 0) throws -> Never {
        log("leaving (\(reason)) after \(tasksDone) contribution(s)\(tasks.isEmpty ? "" : "; \(tasks.count) queued task(s) handed back")")
        try? control.send(Control.frames(.leave, LeaveMessage(id: id, reason: reason)))
        try? control.set(ZMQSocket.linger, 2000)
        link.stop()
        throw Stop.exit(exitCode)
    }

    /// Waits up to `timeoutMs` for messages from the coordinator and the servers and handles them.
    func pump(timeoutMs: Int) throws {
        if !stepRunning { try handleDeferredControl() }
        let socks = [control] + servers.keys.sorted().map { servers[$0]! }
        let ready = try ZMQPoll.wait(socks, timeoutMs: timeoutMs)
        if ready[0] { while let f = try control.tryReceive() { try handleControl(f) } }
        for (i, s) in socks.enumerated().dropFirst() where ready[i] {
            while try s.receiveInPlace({ m, _ in handleData(m) }) {}
        }
    }

    /// Handles the control messages put off while a step ran (a `registered` during a step).
    func handleDeferredControl() throws {
        let deferred = deferredControl
        deferredControl = []
        for frames in deferred { try handleControl(frames) }
    }

    /// Whether every partition of this worker's copy is at `version`.
    func partitionsAt(_ version: Int) -> Bool { partitionVersion.allSatisfy { $0 == version } }

    // MARK: control

    func handleControl(_ frames: [[UInt8]]) throws {
        let m: DataMessage
        do { m = try DataMessage(frames: frames) } catch {
            log("dropped a message from the coordinator: \(error)")
            return
        }
        // Set up again only between steps (this waits, undecoded, for the step to end).
        if m.header.type == .registered && stepRunning { return deferredControl.append(frames) }
        switch WorkerControl.read(m, facts: facts) {
        case .drop(let why): log("dropped a \(m.header.type) from the coordinator: \(why)")
        case .stop(let why):
            log("error: \(why)")
            try leave(why, exitCode: 1)
        case .ignore: log("ignored an unexpected \(m.header.type) from the coordinator")
        case .registered(let r): try setUp(r)
        case .refused(let r):
            log("the coordinator refused this worker: \(r.reason)")
            throw Stop.exit(2)
        case .view(let v): try apply(view: v)
        case .task(let t): tasks.append(t)
        case .evalTask(let t): evalTasks.append(t)
        case .shutdown(let s):
            log("shutting down: \(s.reason)")
            link.stop()
            throw Stop.exit(s.exitCode)
        }
    }

    /// What a `view` and a `task` are checked against (nil before `registered`).
    var facts: WorkerFacts? {
        guard let model, let plan else { return nil }
        return WorkerFacts(parameters: model.params.count, examples: plan.dataset.count, perDevice: plan.perDevice,
                           microPerStep: plan.microPerStep)
    }

    func setUp(_ r: RegisteredMessage) throws {
        id = r.id
        link.registered(context: context, coordinator: options.coordinator, id: id, interval: r.heartbeatInterval,
                        heartbeatTimeout: r.heartbeatTimeout, name: options.name, keys: options.keys)
        var cfg = try TrainingConfig.parse(r.config, file: r.configFile)
        cfg.training.outputDir = r.outputDir
        let m = try ModelRegistry.model(config: Data(r.modelConfig.utf8), file: "config.json from the coordinator")
        let p = try TrainingPlan(cfg, model: ModelShape(m.facts), plannedWorkers: cfg.cluster.workers,
                                 asyncUpdates: cfg.cluster.consistency != "sync")
        guard p.digest == r.dataDigest else {
            log("this worker's training data (\(cfg.training.trainFile), digest \(p.digest)) differs from the coordinator's (\(r.dataDigest)): refusing to train")
            try? control.send(Control.frames(.leave, LeaveMessage(id: id, reason: "different training data")))
            link.stop()
            throw Stop.exit(2)
        }
        config = cfg; plan = p
        if model == nil || model!.params.count != m.params.count { model = m }
        if let v = view, v.plan.total != model!.params.count {
            // A view checked against the model this worker had (a `registered` put off during a step).
            log("dropped the view of epoch \(v.epoch): its plan cuts \(v.plan.total) values, the model now has \(model!.params.count)")
            view = nil
        }
        do {
            try BF16Setting.apply(cfg, to: model!)
        } catch {
            // The config asks for bf16 products and this CPU has no bf16 kernel: this worker cannot train it.
            log("error: \(error)")
            try leave("no bf16 kernel on this CPU (training.bf16)", exitCode: 1)
        }
        collator = p.collator(padId: m.facts.padTokenId)
        if cfg.cluster.codec == "bf16" { errorFeedback = FloatBuffer(count: m.params.count) }
        if options.dumpParameters != nil && lastDelta?.count != m.params.count { lastDelta = FloatBuffer(count: m.params.count) }
        log("registered as \(r.name) (id \(id)); \(m.params.count) parameters, \(p.dataset.count) examples, \(options.threads) thread(s), products \(BF16Setting.describe(model!))")
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
            // An endpoint ZeroMQ cannot connect to drops the view (the connections made for it close).
            do {
                let sock = try ZMQSocket(context, .dealer)
                try sock.set(ZMQSocket.routingID, bytes: identity)
                try options.keys?.secureToServer(sock)
                try sock.limitForData(partitionFloats: WireLimits.largestPartition(v.plan))
                try sock.connect(s.endpoint)
                connected[s.id] = sock
            } catch {
                return log("dropped the view of epoch \(v.epoch): server \(s.id) at '\(s.endpoint)': \(error)")
            }
        }
        servers = connected     // connections to servers no longer in the view close here
        serverEndpoints = Dictionary(v.servers.map { ($0.id, $0.endpoint) }, uniquingKeysWith: { a, _ in a })
        if view?.plan != v.plan || v.attempt != view?.attempt || v.layoutEpoch != view?.layoutEpoch {
            partitionVersion = Array(repeating: -1, count: v.plan.count)
            copyEpoch = Array(repeating: 0, count: v.plan.count)
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
        guard let version = Int(exactly: m.header.step) else {
            return log("dropped parameters for partition \(p): version \(m.header.step) is not a step")
        }
        // During a step (an overlapped pull) a second answer for a partition already at its version
        // is not written again: forward may be reading those values (the server's bytes are the same).
        if stepRunning && partitionVersion[p] == version && p < copyEpoch.count && copyEpoch[p] == m.header.epoch {
            partitionsReceived += 1
            return
        }
        if m.header.codec == .bf16Delta {
            guard addDelta(m, version: version, partition: p, range: r, into: model) else { return }
        } else {
            do { try m.decode(into: model.params.pointer + r.lowerBound, capacity: r.count, using: codec) } catch {
                partitionVersion[p] = -1
                return log("dropped parameters for partition \(p): \(error)")
            }
            if let lastDelta { (lastDelta.pointer + r.lowerBound).update(repeating: 0, count: r.count) }
            if v.pullCodec == .bf16Delta { fullReplies += 1 }
        }
        partitionVersion[p] = version
        if p < copyEpoch.count { copyEpoch[p] = m.header.epoch }
        Member.trace(options.name, "parameters p\(p) v\(m.header.step)")
        partitionsReceived += 1
        pulledWire += WireHeader.size + m.payload.count
        pulledRaw += r.count * 4
    }

    /// Brings `model.params` to the version the task needs: exactly `step` (sync) or fresh (ssp/async).
    func ensureParameters(_ t: TaskMessage) throws -> Bool {
        guard view != nil else { return false }
        if t.exactVersion {
            guard try startPull(t) else { return false }
        } else {
            try pull(version: t.minVersion)
        }
        return try waitForParameters(t, partitions: nil)
    }

    /// Sync: asks for version `step` unless every partition is at it or a pull for it is out;
    /// false when the servers have moved past it (the contribution is skipped).
    func startPull(_ t: TaskMessage) throws -> Bool {
        if partitionsAt(t.step) { return true }
        if partitionVersion.contains(where: { $0 > t.step }) { return false }
        if pullInFlight != t.step { try pull(version: t.step) }
        return true
    }

    /// Takes replies until the task's parameters are in: `partitions` (sync only) or all of them.
    /// False when the contribution must be abandoned: the worker was reset or re-planned, or (sync)
    /// the servers moved past the step.
    func waitForParameters(_ t: TaskMessage, partitions wanted: [Int]?) throws -> Bool {
        guard let v = view else { return false }
        let before = partitionsReceived
        let resetsBefore = resets
        var lastNote = Member.now()
        // A reply can be lost (a server restarted, or dropped it for a full queue): ask again when
        // nothing has come for a while; the servers answer a repeated pull with the same bytes.
        var lastProgress = (at: Member.now(), received: partitionsReceived)
        while true {
            if resets != resetsBefore || view?.plan != v.plan { return false }
            if t.exactVersion {
                if let wanted, wanted.allSatisfy({ partitionVersion[$0] == t.step }) { break }
                if partitionsAt(t.step) { break }
                if partitionVersion.contains(where: { $0 > t.step }) { return false }
            } else if partitionsReceived - before >= v.plan.count && partitionVersion.allSatisfy({ $0 >= t.minVersion }) {
                break
            }
            try checkAlive()
            if Member.terminationSignal != 0 { tasks.insert(t, at: 0); try leave("signal \(Member.terminationSignal)") }
            try pump(timeoutMs: 50)
            if pullAgain { try pull(version: t.exactVersion ? t.step : t.minVersion) }
            if partitionsReceived != lastProgress.received {
                lastProgress = (Member.now(), partitionsReceived)
            } else if Member.now() - lastProgress.at > Self.pullRetrySeconds {
                lastProgress = (Member.now(), partitionsReceived)
                log("no parameters for \(Int(Self.pullRetrySeconds)) s: pulling version \(t.exactVersion ? t.step : t.minVersion) again")
                try pull(version: t.exactVersion ? t.step : t.minVersion)
            }
            if Member.now() - lastNote > 30 {
                lastNote = Member.now()
                log("still waiting for the parameters of version \(t.step) (have \(partitionVersion.filter { $0 == t.step }.count) of \(v.plan.count) partitions)")
            }
        }
        if wanted == nil || partitionsAt(t.step) { pullInFlight = nil }
        return true
    }

    /// Sync with `overlap_pull`, during the task's first forward (`Seq2SeqModel.onParametersNeeded`,
    /// on a compute thread while the worker's thread waits in the step): returns once the
    /// partitions overlapping `range` are at the task's version. A failure (the worker reset, the
    /// servers moved past the step, a shutdown) abandons the contribution: forward runs on with
    /// whatever the buffer holds, and nothing of it is pushed (`perform`).
    func partitionsNeeded(_ t: TaskMessage, _ range: Range<Int>, _ pulling: OverlappedPull) {
        guard !pulling.abandoned else { return }
        guard let v = view else { return pulling.abandon() }
        let wanted = (0..<v.plan.count).filter { v.plan.range($0).overlaps(range) }
        if wanted.allSatisfy({ partitionVersion[$0] == t.step }) { return }
        let t0 = Member.now()
        defer { pulling.waited += Member.now() - t0 }
        do {
            if try !waitForParameters(t, partitions: wanted) { pulling.abandon() }
        } catch {
            pulling.error = error
            pulling.abandon()
        }
    }

    /// Seconds without a parameter reply before a pull is sent again.
    static let pullRetrySeconds = 10.0

    func pull(version: Int) throws {
        // The header's codec is the codec wanted for the reply; bf16-delta names the copy's version.
        let codec = view?.pullCodec ?? .fp32
        var h = WireHeader(type: .pullParameters, codec: codec, epoch: view?.epoch ?? 0, step: UInt64(version), partition: UInt32.max,
                           count: 0, payloadLength: 0, checksum: 0)   // CRC-32C of no bytes is 0
        for (index, s) in servers {
            h.slot = codec == .bf16Delta ? PullDelta.slot(base: deltaBase(server: index)) : 0
            try s.send(header: h)
        }
        pullInFlight = version
        pullAgain = false
    }

    /// `bf16-delta`: the version every partition this worker holds of server `index` is at, from
    /// replies of one assignment epoch (nil when they differ or one is missing: the server answers in full).
    func deltaBase(server index: Int) -> Int? {
        guard let info = view?.servers.first(where: { $0.id == index }), let first = info.partitions.first,
              first >= 0, first < partitionVersion.count, first < copyEpoch.count else { return nil }
        let version = partitionVersion[first], epoch = copyEpoch[first]
        guard version >= 0 else { return nil }
        for p in info.partitions {
            guard p >= 0, p < partitionVersion.count, p < copyEpoch.count, partitionVersion[p] == version, copyEpoch[p] == epoch else { return nil }
        }
        return version
    }

    /// A `bf16-delta` reply: added to the copy when the copy is the delta's base (same version, same
    /// assignment epoch), so the copy becomes the server's shadow bit for bit. A repeated reply to a
    /// copy already at its version is ignored; any other is dropped and the worker pulls again (the
    /// server then answers in full). Decoded into scratch first: a bad payload leaves the copy as it was.
    func addDelta(_ m: InPlaceMessage, version: Int, partition p: Int, range r: Range<Int>, into model: any Seq2SeqModel) -> Bool {
        guard let base = PullDelta.base(slot: m.header.slot) else {
            log("dropped a bf16-delta for partition \(p) that names no base version")
            return false
        }
        if partitionVersion[p] == version { return false }   // a second answer to a repeated pull
        guard partitionVersion[p] == base, base < version, p < copyEpoch.count, copyEpoch[p] == m.header.epoch else {
            log("dropped a bf16-delta for partition \(p) from version \(base) to \(version): this copy is at version \(partitionVersion[p]); pulling in full")
            pullAgain = true
            return false
        }
        if deltaScratch == nil || deltaScratch!.count < r.count { deltaScratch = FloatBuffer(count: max(1, r.count)) }
        let scratch = deltaScratch!
        do { try m.decode(into: scratch.pointer, capacity: r.count, using: codec) } catch {
            log("dropped a bf16-delta for partition \(p): \(error)")
            pullAgain = true
            return false
        }
        PullDelta.add(scratch.pointer, to: model.params.pointer + r.lowerBound, count: r.count)
        if let lastDelta { (lastDelta.pointer + r.lowerBound).update(from: scratch.pointer, count: r.count) }
        deltaReplies += 1
        return true
    }

    /// With `--dump-parameters`: once the last pull's replies are in (10 s at most), writes the copy,
    /// the partitions' versions and the last delta each value got (`parameters`, `versions`,
    /// `last_delta`) to a safetensors file, atomically.
    func dumpParametersIfAsked() {
        guard let path = options.dumpParameters, let model else { return }
        let deadline = Member.now() + 10
        if let wanted = pullInFlight {
            while Member.now() < deadline && !partitionVersion.allSatisfy({ $0 >= wanted }) {
                let socks = servers.keys.sorted().map { servers[$0]! }
                guard let ready = try? ZMQPoll.wait(socks, timeoutMs: 50) else { break }
                for (i, s) in socks.enumerated() where ready[i] {
                    while (try? s.receiveInPlace({ m, _ in handleData(m) })) == true {}
                }
            }
        }
        var w = SafeTensorsWriter()
        w.add("parameters", floats: UnsafeBufferPointer(start: model.params.pointer, count: model.params.count), shape: [model.params.count])
        let delta = lastDelta.map { Array(UnsafeBufferPointer(start: $0.pointer, count: model.params.count)) }
            ?? [Float](repeating: 0, count: model.params.count)
        w.add("last_delta", floats: delta, shape: [model.params.count])
        w.add("versions", int64s: partitionVersion.map(Int64.init), shape: [partitionVersion.count])
        do {
            try w.write(to: path)
            log("parameters written to \(path) (versions \(partitionVersion.min() ?? -1)…\(partitionVersion.max() ?? -1))")
        } catch { log("could not write the parameters to \(path): \(error)") }
    }

    // MARK: a contribution

    /// A task: the parameters it needs, its micro-batches' gradient pushed to the servers, the report.
    func perform(_ t: TaskMessage) throws {
        guard let model, let cfg = config, let v = view, plan != nil, collator != nil else { return }
        let t0 = Member.now()
        // Sync with overlap_pull: forward starts now and waits for each layer's partitions as it reaches them.
        let overlap = t.exactVersion && cfg.cluster.overlapPull
        guard try overlap ? startPull(t) : ensureParameters(t) else { return try reportSkipped(t) }
        let pulling = overlap && !partitionsAt(t.step) ? OverlappedPull() : nil
        let tStart = Member.now()
        Member.trace(options.name, "compute-start step \(t.step)")
        let pusher = beginPush(t, view: v, codec: Codec(name: cfg.cluster.codec), model: model)
        model.zeroGradients()
        // Sync: the servers clip, so each partition can go as soon as its gradient is final (during
        // the last micro-batch's backward: decoder partitions first), overlapping the rest of backward.
        let sums = try runMicroBatches(t, pushingDuringBackward: t.exactVersion && t.clipNorm == 0 ? pusher : nil, pulling: pulling)
        try handleDeferredControl()
        if let pulling {
            if let error = pulling.error { throw error }
            if pulling.abandoned {
                log("abandoned contribution \(t.contribution) of step \(t.step): its parameters did not arrive during forward")
                return try reportSkipped(t)
            }
        }
        // Waiting for parameters: since the previous report when the worker went straight on to this
        // task (what a sync step costs beyond compute), else since this task began; with the pull
        // overlapped, the time forward waited for a partition too.
        let forwardWait = pulling?.waited ?? 0
        if pulling != nil { overlappedForwards += 1; forwardWaitSeconds += forwardWait }
        let tWait = tStart - min(t0, lastDoneAt ?? t0) + forwardWait
        let earlyPartitions = pusher.sentCount
        let norm = clipOwnGradient(t, model)
        // ssp/async: a non-finite update would be applied on arrival; it is not pushed, and the
        // report (its loss and norm) stops the run (sync: the coordinator holds the step back).
        let loss = sums.figures.meanLoss
        let withheld = !t.exactVersion && cfg.training.stopOnNonfinite && !(loss.isFinite && norm.isFinite)
        if withheld { log("step \(t.step + 1): loss \(loss), gradient norm \(norm): not pushed (stop_on_nonfinite)") }
        // Whatever was not pushed during backward: last partitions (the decoder) first.
        if !withheld { pusher.pushRemaining(figures: sums.figures) }
        if earlyPartitions > 0 && tasksDone == 0 {
            log("\(earlyPartitions) of \(v.plan.count) gradient partitions went out during backward")
        }
        let tCompute = Member.now()
        Member.trace(options.name, "backward-end step \(t.step)")
        // The push thread and this thread finish what backward's end left (the encoding not overlapped).
        let pushed = pusher.finish { self.servers[$0] }
        if let e = pushed.error { throw WireError.pushFailed(e) }
        let tPush = Member.now()
        Member.trace(options.name, "pushed step \(t.step)")
        try reportDone(t, sums, gradNorm: norm, pushed: pushed,
                       seconds: (compute: tCompute - tStart - forwardWait, wait: tWait, encode: tPush - tCompute))
    }

    /// A task whose parameters the worker could not get. When the servers applied its step without
    /// us, the gradient came from the contribution's previous worker, which left after pushing and
    /// before reporting: say so, or the coordinator would wait for this contribution forever.
    func reportSkipped(_ t: TaskMessage) throws {
        guard t.exactVersion, partitionVersion.contains(where: { $0 > t.step }) else { return }
        log("skipped contribution \(t.contribution) of step \(t.step): the servers have moved past it")
        try control.send(Control.frames(.contributionDone, DoneMessage(
            step: t.step, contribution: t.contribution, lossSum: 0, tokens: 0, examples: 0, computeSeconds: 0,
            waitSeconds: 0, wireBytes: 0, rawBytes: 0, gradNorm: 0, attempt: t.attempt ?? 0, skipped: true)))
    }

    /// The gradient path for this contribution (the push thread starts with the first one); logs a
    /// push an earlier, abandoned contribution left failing.
    func beginPush(_ t: TaskMessage, view v: ViewMessage, codec: Codec, model: any Seq2SeqModel) -> GradientPusher {
        let pusher = self.pusher ?? GradientPusher(context: context, identity: identity, name: options.name, keys: options.keys)
        self.pusher = pusher
        let steps = (0..<v.plan.count).map { UInt64(t.exactVersion ? t.step : max(0, partitionVersion[$0])) }
        let earlier = pusher.begin(GradientContribution(
            plan: v.plan, gradients: model.grads.pointer, errorFeedback: errorFeedback?.pointer, endpoints: serverEndpoints,
            codec: codec, epoch: v.epoch, steps: steps, slot: UInt32(t.contribution)))
        if let e = earlier.error { log("an earlier push failed: \(e)") }
        return pusher
    }

    /// What a contribution's micro-batches added up to.
    struct ContributionSums {
        var lossSum = 0.0, tokens = 0, examples = 0, paddedTokens = 0
        /// What the contribution's pushes carry.
        var figures: ContributionFigures { ContributionFigures(lossSum: lossSum, tokens: tokens, examples: examples) }
    }

    /// Forward and backward over the task's micro-batches, each normalised by the whole step's label
    /// tokens, accumulating into the model's gradients. With `pusher`, the last micro-batch's
    /// backward hands each partition to it as soon as its gradient is final. With `pulling`, the
    /// first micro-batch's forward waits for each range's partitions as it reaches it; an
    /// abandoned contribution hands nothing to the pusher.
    func runMicroBatches(_ t: TaskMessage, pushingDuringBackward pusher: GradientPusher?,
                         pulling: OverlappedPull? = nil) throws -> ContributionSums {
        guard let model, let plan, let collator, let cfg = config else { return ContributionSums() }
        var sums = ContributionSums()
        stepRunning = true
        defer { stepRunning = false }
        for (i, mb) in t.micro.enumerated() {
            let batch = try collator.batch(mb, from: plan.dataset, step: t.step)
            let tokens = batch.labels.reduce(0) { $0 + ($1 == Seq2SeqBatch.ignoreIndex ? 0 : 1) }
            if let pulling, i == 0 {
                // Called on a compute thread while this thread waits inside `step`, one call at a
                // time (`ParameterGate`'s lock): the worker's state has one user at a time.
                model.onParametersNeeded = { [unowned self] range in self.partitionsNeeded(t, range, pulling) }
            }
            if let pusher, i == t.micro.count - 1 {
                // Every push carries the contribution's figures: the earlier micro-batches' and this one's loss.
                let before = sums, examples = mb.count, push = pusher.onGradientsFinal
                model.onGradientsFinal = { range, loss in
                    if pulling?.abandoned == true { return }
                    push(range, ContributionFigures(lossSum: before.lossSum + loss.lossSum, tokens: before.tokens + tokens,
                                                    examples: before.examples + examples))
                }
            }
            defer { model.onGradientsFinal = nil; model.onParametersNeeded = nil }
            let r = try model.step(batch, options: StepOptions(training: true, labelSmoothing: Float(cfg.training.labelSmoothingFactor),
                                                               seed: plan.dropoutSeed(step: t.step, micro: t.firstMicro + i),
                                                               lossNormalizer: max(1, t.normalizer)), logitsOut: nil)
            sums.lossSum += r.lossSum
            sums.tokens += tokens
            sums.examples += mb.count
            sums.paddedTokens += batch.batchSize * (batch.sourceLength + batch.targetLength)
        }
        return sums
    }

    /// ssp/async: the worker clips its own gradient to the task's norm (sync: the servers clip, with
    /// the whole step's norm). Returns the gradient's norm (0 when not computed).
    func clipOwnGradient(_ t: TaskMessage, _ model: any Seq2SeqModel) -> Double {
        guard !t.exactVersion || t.clipNorm > 0 else { return 0 }
        let norm = GradClip.norm(model.grads.pointer, count: model.grads.count)
        if t.clipNorm > 0 {
            let coef = GradClip.coefficient(totalNorm: norm, maxNorm: t.clipNorm)
            if coef != 1 { Vec.scale(model.grads.pointer, coef, model.grads.count) }
        }
        return norm
    }

    /// Tells the coordinator the contribution is pushed (loss, timings, bytes); in sync mode asks for
    /// the next version right away (the servers answer once it exists).
    func reportDone(_ t: TaskMessage, _ sums: ContributionSums, gradNorm: Double, pushed: PushTotals,
                    seconds: (compute: Double, wait: Double, encode: Double)) throws {
        try control.send(Control.frames(.contributionDone, DoneMessage(
            step: t.step, contribution: t.contribution, lossSum: sums.lossSum, tokens: sums.tokens, examples: sums.examples,
            computeSeconds: seconds.compute, waitSeconds: seconds.wait, wireBytes: pushed.wireBytes, rawBytes: pushed.rawBytes,
            gradNorm: gradNorm, paddedTokens: sums.paddedTokens, pullWireBytes: pulledWire, pullRawBytes: pulledRaw,
            attempt: t.attempt ?? 0, encodeSeconds: seconds.encode)))
        lastDoneAt = t.exactVersion ? Member.now() : nil
        observed.contributionDone(computeSeconds: seconds.compute, waitSeconds: seconds.wait, encodeSeconds: seconds.encode,
                                  pushedBytes: pushed.wireBytes, pulledBytes: pulledWire, tokens: sums.paddedTokens, examples: sums.examples)
        pulledWire = 0; pulledRaw = 0
        tasksDone += 1
        if t.exactVersion && tasks.isEmpty { try pull(version: t.step + 1) }
    }
}
