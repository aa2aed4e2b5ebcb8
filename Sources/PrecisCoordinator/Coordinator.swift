import Foundation
import PrecisCore
import PrecisData
import PrecisEval
import PrecisModels
import PrecisTrain
import PrecisWire

/// `precis-coordinator`: the one address everyone knows. Keeps membership (register, heartbeats,
/// leave, declared dead after `heartbeat_timeout`), publishes the view (servers, their partitions,
/// active workers) with an epoch that changes on every membership change, owns the schedule (global
/// step, epoch, learning rate), and hands out the data: each step's micro-batches (dataset indices of
/// the epoch's order) go to the active workers as contributions; a contribution whose worker dies is
/// handed to another, so nothing is lost and nothing counts twice. In sync mode it also closes each
/// step: the servers report the sum of squares of their part of the summed gradient, it computes the
/// global norm and tells them the clip coefficient.
public final class Coordinator {
    public struct Options: Sendable {
        public var config: String
        public var bind: String?
        public var endpointFile: String?
        public var outputDir: String?
        public var maxSteps: Int?
        /// Print one machine-readable `@progress {json}` line per step (for `precis train`).
        public var progressLines = false
        /// Resume from the latest valid checkpoint in output_dir when there is one (a restarted coordinator).
        public var resume = false
        /// When a parameter server is lost, spread its partitions over the survivors instead of waiting for a replacement.
        public var reshard = false
        public init(config: String) { self.config = config }
    }

    struct MemberInfo {
        var id: Int
        var role: RegisterMessage.Role
        var name: String
        var host: String
        var pid: Int32
        var identity: [UInt8]
        var endpoint: String?
        var threads: Int
        var lastSeen: Double
        var alive = true
        var contributions = 0
    }

    struct Contribution {
        var micro: [[Int]]
        var firstMicro: Int
        var worker: Int
        var done = false
    }

    enum Phase: String { case waiting, initializing, training, recovering, finishing }

    let options: Options
    var cfg: TrainingConfig
    let configText: String
    let model: BartModel
    let plan: TrainingPlan
    let consistency: Consistency
    let context: ZMQContext
    let router: ZMQSocket
    public private(set) var endpoint = ""

    var members: [Int: MemberInfo] = [:]
    /// Member ids start at a random base, so a restarted coordinator never mistakes a heartbeat that
    /// carries an id from its predecessor for one of its own members (which would keep that member
    /// from registering again).
    var nextId = Int.random(in: 1_000...1_000_000_000) * 1_000
    var epoch: UInt32 = 1
    var phase = Phase.waiting
    var servers: [Int] = []                 // member ids by server index
    var serverData: [Int: ZMQSocket] = [:]  // server index → DEALER to its data endpoint
    var partitionPlan: PartitionPlan?
    var initDone = Set<Int>()
    var waitingSince = 0.0
    var pausedNoted = false

    // Sync.
    var step = 0
    var current: [Contribution] = []
    var currentNormalizer = 0
    var norms: [Int: Double] = [:]
    var applied = 0
    var stepOpen = false
    var epochCache: (epoch: Int, batches: [[Int]])?

    // ssp / async.
    var clocks: [Int: Int] = [:]
    var outstanding: [Int: TaskMessage] = [:]
    var requeue: [TaskMessage] = []
    var issued = 0
    var completed = 0
    var cursor = (epoch: 0, offset: 0)
    var largestGap = 0

    // Reporting.
    var t0 = 0.0
    var examples = 0
    var windowLoss = 0.0, windowTokens = 0
    var windowCompute = 0.0, windowWait = 0.0, windowWire = 0, windowRaw = 0, windowSteps = 0, windowPullWire = 0, windowPullRaw = 0
    var lastNorm = 0.0
    /// Whole-run totals for the summary line (from the first step that is not a warm-up).
    var totals = (steps: 0, compute: 0.0, wait: 0.0, wire: 0, raw: 0, pullWire: 0, pullRaw: 0, padded: 0, startedAt: 0.0,
                  encode: 0.0, lastStepAt: 0.0)
    /// The step's slowest contribution: its forward + backward, its gradient encoding, and its wait for parameters.
    var stepCompute = 0.0, stepWait = 0.0, stepEncode = 0.0
    var lastLoss = 0.0
    var history: [[String: Double]] = []

    // Checkpoints, evaluation, hub.
    var snapshot: SnapshotInProgress?
    let saveResults = SaveResults()
    var savesInFlight = 0
    var lastCheckpoint: String?
    var best: (value: Double, step: Int, path: String?)?
    var pushingFolder: String?
    var resumeMoments: (m: FloatBuffer, v: FloatBuffer)?
    var startStep = 0
    var draining = false
    var hub: HubState?
    var evaluation: EvalRun?
    var evalPlan: EvaluationPlan?
    var evalCounter = 0
    var externalEval: ExternalEval?
    var snapshotComplete = false
    var pendingSave = false
    var pendingEval = false
    /// Grows on every rollback to a checkpoint (a parameter server was lost).
    var attempt = 0
    var layoutEpoch: UInt32 = 0

    public init(_ options: Options) throws {
        self.options = options
        guard let text = FileManager.default.contents(atPath: options.config).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw ConfigError.unreadable(file: options.config, reason: "no such file")
        }
        configText = text
        cfg = try TrainingConfig.parse(text, file: options.config)
        if let o = options.outputDir { cfg.training.outputDir = o }
        if let s = options.maxSteps { cfg.training.maxSteps = s }
        consistency = Consistency(rawValue: cfg.cluster.consistency) ?? .sync
        Compute.setThreads(1)
        model = try LocalTrainer.loadModel(cfg.training.model, seed: cfg.training.seed)
        plan = try TrainingPlan(cfg, model: ModelShape(model.config), plannedWorkers: cfg.cluster.workers,
                                asyncUpdates: consistency != .sync)
        context = try ZMQContext()
        router = try ZMQSocket(context, .router)
        if options.resume && cfg.training.resumeFromCheckpoint == nil && CheckpointStore(outputDir: cfg.training.outputDir).latest() != nil {
            cfg.training.resumeFromCheckpoint = "latest"
        }
        if let r = cfg.training.resumeFromCheckpoint {
            startStep = try loadCheckpoint(r)
            step = startStep; completed = startStep; issued = startStep
        }
        hub = try makeHub()
        try router.setUnboundedQueues()
    }

    func log(_ s: String) { Member.log("coordinator", s) }

    public func run() -> Int32 {
        Member.installSignalHandlers()
        do {
            endpoint = try router.bind(options.bind ?? cfg.cluster.coordinator)
            if let f = options.endpointFile { try AtomicFile.write(Data((endpoint + "\n").utf8), to: f) }
            log("listening on \(endpoint); protocol version \(WireHeader.version)")
            log(plan.loadSummary)
            log("\(model.table.count) parameters, \(plan.dataset.count) examples, \(plan.stepsPerEpoch) steps per epoch, \(plan.totalSteps) steps, "
                + "\(consistency.rawValue)\(consistency == .ssp ? " (staleness \(cfg.cluster.staleness))" : ""), codec \(cfg.cluster.codec); "
                + "waiting for \(cfg.cluster.servers) server(s) and \(cfg.cluster.workers) worker(s)")
            waitingSince = Member.now()
            return try loop()
        } catch {
            log("error: \(error)")
            broadcastShutdown("the coordinator failed: \(error)", code: 1)
            return 1
        }
    }

    // MARK: the event loop

    func loop() throws -> Int32 {
        while true {
            if Member.terminationSignal != 0 {
                log("signal \(Member.terminationSignal): ending the run")
                broadcastShutdown("the coordinator was stopped", code: 1)
                return 1
            }
            let dataSockets = serverData.keys.sorted().map { serverData[$0]! }
            let ready = try ZMQPoll.wait([router] + dataSockets, timeoutMs: 50)
            if ready[0] { while let f = try router.tryReceive() { try handle(f) } }
            for (i, s) in dataSockets.enumerated() where ready[i + 1] {
                while let f = try s.tryReceive() {
                    guard let m = try? DataMessage(frames: f) else { continue }
                    if snapshot != nil && (m.header.type == .parameters || m.header.type == .moments) { receiveSnapshotShard(m) }
                }
            }
            if saveResults.pending > 0 { collectSaves() }
            if draining && outstanding.isEmpty && consistency != .sync && phase == .training {
                if pendingEval && evaluation == nil { try startEval(step: completed); if evaluation == nil { pendingEval = false } }
                if pendingSave && snapshot == nil { pendingSave = false; requestSnapshot(step: completed) }
                if !pendingEval && !pendingSave && snapshot == nil && evaluation == nil { draining = false }
            }
            try checkHeartbeats()
            switch phase {
            case .waiting: try maybeStart()
            case .initializing, .recovering: break
            case .training:
                if consistency == .sync {
                    if !stepOpen && step < plan.totalSteps && evaluation == nil { try openStep() }
                } else {
                    try handOutTasks()
                }
                if (consistency == .sync ? step : completed) >= plan.totalSteps && snapshot == nil && evaluation == nil && !pendingEval
                    && (consistency == .sync || outstanding.isEmpty) { phase = .finishing }
            case .finishing:
                try finish()
                return 0
            }
        }
    }

    func handle(_ frames: [[UInt8]]) throws {
        guard frames.count >= 2 else { return }
        let peer = frames[0]
        let m: DataMessage
        do { m = try DataMessage(frames: Array(frames.dropFirst())) } catch let e as WireError {
            if case .wrongVersion(let got, let mine) = e {
                log("refused \(peerName(peer)): it speaks protocol version \(got), this coordinator speaks \(mine)")
                try router.send(to: peer, Control.frames(.refused, RefusedMessage(
                    reason: "protocol version \(got) is not supported: this coordinator speaks version \(mine)")))
            } else {
                log("dropped a message from \(peerName(peer)): \(e)")
            }
            return
        }
        let sender = members.values.first { $0.identity == peer }?.id
        if let s = sender { members[s]?.lastSeen = Member.now() }
        switch m.header.type {
        case .register: try register(Control.decode(RegisterMessage.self, m), peer: peer)
        case .heartbeat:
            let h = try Control.decode(HeartbeatMessage.self, m)
            // Only members this coordinator knows are acknowledged: one that it declared dead, or that
            // registered with a coordinator before a restart, hears nothing and registers again.
            if members[h.id]?.alive == true {
                members[h.id]?.lastSeen = Member.now()
                try router.send(to: peer, Control.frames(.heartbeatAck, Empty()))
            }
        case .statusRequest: try router.send(to: peer, Control.frames(.statusReply, json: Array(statusJSON().utf8)))
        case .leave:
            let l = try Control.decode(LeaveMessage.self, m)
            if let w = members[l.id], w.alive, w.identity == peer { try lose(l.id, because: "left (\(l.reason))") }
        case .initDone:
            guard members[sender ?? -1]?.role == .server else { return }
            let d = try Control.decode(InitDoneMessage.self, m)
            initDone.insert(d.server)
            if phase == .initializing && initDone.count == servers.count { try startTraining() }
        case .contributionDone:
            guard let s = sender else { return }
            try done(Control.decode(DoneMessage.self, m), worker: s)
        case .normReport: if phase == .training { try norm(Control.decode(NormMessage.self, m)) }
        case .evalResult:
            let r = try Control.decode(EvalResultMessage.self, m)
            if r.id >= Self.externalEvalBase { try externalResult(r) } else { try evalResult(r) }
        case .evaluateRequest: try startExternalEval(Control.decode(EvaluateRequest.self, m), client: peer)
        case .applied:
            let a = try Control.decode(AppliedMessage.self, m)
            if a.version == step { applied += 1 }
        default:
            log("dropped an unexpected \(m.header.type) from \(peerName(peer))")
        }
    }

    func peerName(_ id: [UInt8]) -> String {
        if let m = members.values.first(where: { $0.identity == id }) { return "\(m.name) (pid \(m.pid) on \(m.host))" }
        let s = String(decoding: id, as: UTF8.self)
        return s.allSatisfy({ $0.isASCII && !$0.isWhitespace }) && !s.isEmpty ? s : "peer " + id.map { String($0, radix: 16) }.joined()
    }

    // MARK: membership

    func register(_ r: RegisterMessage, peer: [UInt8]) throws {
        func refuse(_ reason: String) throws {
            log("refused \(r.role.rawValue) \(r.name) (pid \(r.pid) on \(r.host)): \(reason)")
            try router.send(to: peer, Control.frames(.refused, RefusedMessage(reason: reason)))
        }
        if let existing = members.values.first(where: { $0.identity == peer && $0.alive }) {
            log("\(existing.name) registered again; keeping id \(existing.id)")
            return
        }
        switch r.role {
        case .client: return
        case .server:
            guard r.endpoint != nil else { return try refuse("a server must give its data endpoint") }
            let deadSlot = servers.firstIndex { members[$0]?.alive != true }
            guard (phase == .waiting && servers.count < cfg.cluster.servers) || deadSlot != nil else {
                return try refuse("the cluster already has its \(servers.count) server(s)")
            }
        case .worker:
            guard phase != .finishing else { return try refuse("the run is finishing") }
        }
        let id = nextId
        nextId += 1
        let info = MemberInfo(id: id, role: r.role, name: uniqueName(r.name), host: r.host, pid: r.pid, identity: peer, endpoint: r.endpoint,
                              threads: r.threads, lastSeen: Member.now())
        if r.role == .server {
            if let slot = servers.firstIndex(where: { members[$0]?.alive != true }) {
                servers[slot] = id
            } else {
                servers.append(id)
            }
        }
        members[id] = info
        epoch += 1
        try router.send(to: peer, Control.frames(.registered, RegisteredMessage(
            id: id, name: info.name, config: configText, configFile: options.config,
            modelConfig: String(decoding: try model.configJSON(), as: UTF8.self),
            heartbeatInterval: cfg.cluster.heartbeatInterval, heartbeatTimeout: cfg.cluster.heartbeatTimeout, dataDigest: plan.digest,
            outputDir: cfg.training.outputDir)))
        let count = members.values.filter { $0.role == r.role && $0.alive }.count
        log("\(r.role == .server ? "server" : "worker") \(info.name) joined (pid \(r.pid) on \(r.host), \(r.threads) thread(s)"
            + "\(r.endpoint.map { ", data on \($0)" } ?? "")); \(count) \(r.role == .server ? "server" : "worker")(s), epoch \(epoch)")
        if r.role == .server && phase == .recovering && servers.allSatisfy({ members[$0]?.alive == true }) {
            try rollBack(reason: "server \(info.name) replaces the lost one")
        }
        if r.role == .worker && (phase == .training) {
            clocks[id] = minClock()
            try sendView()
            // Contributions left without a worker (every worker had gone) go to the newcomer.
            if consistency == .sync { try reassign(from: -1) }
        }
    }

    func uniqueName(_ n: String) -> String {
        let names = Set(members.values.filter(\.alive).map(\.name))
        if !names.contains(n) { return n }
        var i = 2
        while names.contains("\(n)-\(i)") { i += 1 }
        return "\(n)-\(i)"
    }

    var aliveWorkers: [Int] { members.values.filter { $0.role == .worker && $0.alive }.map(\.id).sorted() }

    func checkHeartbeats() throws {
        let now = Member.now()
        for m in members.values where m.alive && m.role != .client && now - m.lastSeen > cfg.cluster.heartbeatTimeout {
            try lose(m.id, because: "lost: no heartbeat for \(String(format: "%.1f", now - m.lastSeen)) s")
        }
    }

    func lose(_ id: Int, because why: String) throws {
        guard var m = members[id], m.alive else { return }
        m.alive = false
        members[id] = m
        epoch += 1
        log("\(m.role == .server ? "server" : "worker") \(m.name) (pid \(m.pid) on \(m.host)) \(why); epoch \(epoch)")
        if m.role == .server {
            guard phase == .training || phase == .initializing || phase == .recovering else {
                if phase == .waiting { servers.removeAll { $0 == id } }
                return
            }
            try serverLost(m)
            return
        }
        try reassignExternalEval(from: id)
        guard phase == .training else { return }
        try sendView()
        try reassignEval(from: id)
        if consistency == .sync {
            try reassign(from: id)
            closeStepIfComplete()
        } else if let t = outstanding.removeValue(forKey: id) {
            requeue.insert(t, at: 0)
            log("task of step \(t.step) goes back to the queue")
        }
    }

    func sendView() throws {
        guard let plan = partitionPlan else { return }
        // A server's index is its position in `servers` (resharding over the survivors renumbers them).
        var v = ViewMessage(epoch: epoch, servers: servers.enumerated().compactMap { index, sid in
            members[sid].map { ServerInfo(id: index, name: $0.name, endpoint: $0.endpoint ?? "", partitions: plan.partitions(of: index)) }
        }, plan: plan, workers: aliveWorkers.compactMap { members[$0]?.name }, consistency: consistency,
            codec: Codec(name: cfg.cluster.codec), pullCodec: Codec(name: cfg.cluster.pullCodec), attempt: attempt)
        v.layoutEpoch = layoutEpoch
        for w in aliveWorkers { try router.send(to: members[w]!.identity, Control.frames(.view, v, epoch: epoch)) }
    }

    // MARK: start

    func maybeStart() throws {
        let nServers = servers.filter { members[$0]?.alive == true }.count
        let nWorkers = aliveWorkers.count
        guard nServers == cfg.cluster.servers else { return }
        let waited = Member.now() - waitingSince
        guard nWorkers >= cfg.cluster.workers || (nWorkers > 0 && waited > cfg.cluster.startTimeout) else { return }
        if nWorkers < cfg.cluster.workers {
            log("starting with \(nWorkers) of \(cfg.cluster.workers) planned workers after \(Int(waited)) s; the others can join later")
        }
        try assignServers()
    }

    /// Cuts the flat buffer over the current servers, tells each its partitions and sends the
    /// initial values (and, resuming, the AdamW moments) over a data connection to each.
    func assignServers() throws {
        phase = .initializing
        initDone = []
        serverData = [:]
        let p = PartitionPlan(total: model.table.count, servers: servers.count, partitionFloats: max(256, cfg.cluster.partitionBytes / 4),
                              cuts: model.gradientCuts)
        partitionPlan = p
        let a = cfg.training
        let segments = model.table.decaySegments(in: 0..<model.table.count).map { DecaySegment(lower: $0.range.lowerBound, upper: $0.range.upperBound, decay: $0.decay) }
        let codec = ShardCodec()
        for (index, sid) in servers.enumerated() {
            let m = members[sid]!
            var assignment = AssignMessage(
                server: index, partitions: p.partitions(of: index), plan: p, segments: segments,
                beta1: a.adamBeta1, beta2: a.adamBeta2, eps: a.adamEpsilon, weightDecay: a.weightDecay,
                schedule: a.lrSchedulerType, learningRate: a.learningRate, warmupSteps: plan.warmupSteps, totalSteps: plan.totalSteps,
                consistency: consistency, pullCodec: Codec(name: cfg.cluster.pullCodec), startStep: startStep)
            assignment.epoch = epoch
            layoutEpoch = epoch
            try router.send(to: m.identity, Control.frames(.assign, assignment, epoch: epoch))
            let sock = try ZMQSocket(context, .dealer)
            try sock.set(ZMQSocket.routingID, bytes: Array("coordinator/\(getpid())/\(attempt)".utf8))
            try sock.setUnboundedQueues()
            try sock.connect(m.endpoint!)
            serverData[index] = sock
            for part in p.partitions(of: index) {
                let r = p.range(part)
                if let (mm, vv) = resumeMoments {
                    for (type, buf) in [(MessageType.initMomentM, mm), (.initMomentV, vv)] {
                        let msg = try DataMessage.make(type: type, codec: .fp32, epoch: epoch, step: UInt64(startStep), partition: UInt32(part),
                                                       values: UnsafeBufferPointer(start: buf.pointer + r.lowerBound, count: r.count), using: codec)
                        try sock.send(msg.frames)
                    }
                }
                let msg = try DataMessage.make(type: .initParameters, codec: .fp32, epoch: epoch, step: 0, partition: UInt32(part),
                                               values: UnsafeBufferPointer(start: model.params.pointer + r.lowerBound, count: r.count), using: codec)
                try sock.send(msg.frames)
            }
        }
        log("\(p.count) partitions of about \(p.range(0).count * 4 / 1024) KiB over \(servers.count) server(s); sending the initial parameters")
    }

    func startTraining() throws {
        phase = .training
        if t0 == 0 { t0 = Member.now() }
        for w in aliveWorkers { clocks[w] = startStep }
        try sendView()
        log("training: \(aliveWorkers.count) worker(s), \(plan.totalSteps) steps")
    }

    // MARK: sync steps

    func epochBatches(_ e: Int) -> [[Int]] {
        if let c = epochCache, c.epoch == e { return c.batches }
        let b = plan.microBatches(epoch: e)
        epochCache = (e, b)
        return b
    }

    func openStep() throws {
        let workers = aliveWorkers
        guard !workers.isEmpty else {
            if !pausedNoted { log("no workers: paused at step \(step) until one joins"); pausedNoted = true }
            return
        }
        pausedNoted = false
        let micro = Array(plan.stepMicroBatches(step: step, epochBatches: epochBatches(step / plan.stepsPerEpoch)))
        let k = min(workers.count, micro.count)
        current = []
        var start = 0
        for c in 0..<k {
            let n = micro.count / k + (c < micro.count % k ? 1 : 0)
            current.append(Contribution(micro: Array(micro[start..<start + n]), firstMicro: start, worker: workers[c]))
            start += n
        }
        currentNormalizer = plan.labelTokens(micro.joined())
        norms = [:]
        applied = 0
        stepOpen = true
        for sid in servers { try router.send(to: members[sid]!.identity, Control.frames(.plan, PlanMessage(step: step, contributions: k), epoch: epoch)) }
        for c in current.indices { try sendTask(c) }
    }

    func sendTask(_ c: Int) throws {
        let con = current[c]
        guard let w = members[con.worker] else { return }
        try router.send(to: w.identity, Control.frames(.task, TaskMessage(
            step: step, contribution: c, micro: con.micro, firstMicro: con.firstMicro, normalizer: currentNormalizer,
            exactVersion: true, minVersion: step, clipNorm: 0, attempt: attempt), epoch: epoch, step: UInt64(step)))
    }

    func reassign(from dead: Int) throws {
        guard stepOpen, norms.count < servers.count else { return }
        let alive = aliveWorkers
        // Done ones too: a report can reach the coordinator before the pushes reach the servers (a
        // killed worker's unsent pushes are lost). If the servers have it, the new worker skips it
        // and reports `skipped`.
        for c in current.indices where current[c].worker == dead {
            guard !alive.isEmpty else { current[c].worker = -1; continue }
            let load = Dictionary(grouping: current.indices.filter { current[$0].worker >= 0 }, by: { current[$0].worker }).mapValues(\.count)
            let to = alive.min { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }!
            current[c].worker = to
            current[c].done = false
            log("contribution \(c) of step \(step) handed to \(members[to]!.name)")
            try sendTask(c)
        }
    }

    func done(_ d: DoneMessage, worker: Int) throws {
        guard (d.attempt ?? 0) == attempt, phase == .training else { return }
        if d.skipped == true {
            // Handed over after its first worker had pushed it: the servers have it, nothing to record.
            guard consistency == .sync, stepOpen, d.step == step, d.contribution < current.count else { return }
            current[d.contribution].done = true
            return closeStepIfComplete()
        }
        members[worker]?.contributions += 1
        if consistency != .sync { return try doneAsync(d, worker: worker) }
        guard stepOpen, d.step == step, d.contribution < current.count, !current[d.contribution].done else { return }
        current[d.contribution].done = true
        record(d)
        closeStepIfComplete()
    }

    /// A step is over when the servers have its norm (they are applying it) and every contribution
    /// has reported (or its worker is gone); then the next one opens.
    func closeStepIfComplete() {
        guard stepOpen, norms.count == servers.count,
              current.allSatisfy({ $0.done || members[$0.worker]?.alive != true }) else { return }
        let lr = plan.schedule.lr(at: step)
        step += 1
        stepOpen = false
        windowSteps += 1
        report(step: step, lr: lr)
        if isEvalStep(step) {
            do { try startEval(step: step) } catch { log("evaluation at step \(step) skipped: \(error)") }
        }
    }

    func record(_ d: DoneMessage) {
        if d.computeSeconds + (d.encodeSeconds ?? 0) >= stepCompute + stepEncode {
            stepCompute = d.computeSeconds; stepEncode = d.encodeSeconds ?? 0; stepWait = d.waitSeconds
        }
        totals.wire += d.wireBytes; totals.raw += d.rawBytes; totals.pullWire += d.pullWireBytes; totals.pullRaw += d.pullRawBytes
        totals.padded += d.paddedTokens
        windowLoss += d.lossSum; windowTokens += d.tokens
        windowCompute = max(windowCompute, d.computeSeconds); windowWait = max(windowWait, d.waitSeconds)
        windowWire += d.wireBytes; windowRaw += d.rawBytes; windowPullWire += d.pullWireBytes; windowPullRaw += d.pullRawBytes
        examples += d.examples
        lastLoss = d.tokens > 0 ? d.lossSum / Double(d.tokens) : lastLoss
    }

    func norm(_ n: NormMessage) throws {
        guard stepOpen, n.step == step else { return }
        norms[n.server] = n.sumOfSquares
        guard norms.count == servers.count else { return }
        // Unassigned contributions (no worker was alive) would still be missing: norms only come once all are in.
        let total = (0..<servers.count).reduce(0.0) { $0 + (norms[$1] ?? 0) }.squareRoot()
        let clip: Float = cfg.training.maxGradNorm > 0 ? GradClip.coefficient(totalNorm: total, maxNorm: cfg.training.maxGradNorm) : 1
        let save = isSaveStep(step + 1)
        if save { beginSnapshot(step: step + 1) }
        for sid in servers {
            try router.send(to: members[sid]!.identity, Control.frames(.apply, ApplyMessage(step: step, clip: clip, snapshot: save), epoch: epoch))
        }
        lastNorm = total
        closeStepIfComplete()
    }

    // MARK: ssp / async

    func minClock() -> Int { aliveWorkers.compactMap { clocks[$0] }.min() ?? 0 }

    func nextTask() -> TaskMessage? {
        if !requeue.isEmpty { return requeue.removeFirst() }
        guard issued < plan.totalSteps else { return nil }
        var micro: [[Int]] = []
        while micro.count < plan.microPerStep {
            let b = epochBatches(cursor.epoch)
            if cursor.offset >= b.count { cursor = (cursor.epoch + 1, 0); if !micro.isEmpty { break } else { continue } }
            micro.append(b[cursor.offset])
            cursor.offset += 1
        }
        let t = TaskMessage(step: issued, contribution: 0, micro: micro, firstMicro: 0, normalizer: plan.labelTokens(micro.joined()),
                            exactVersion: false, minVersion: 0, clipNorm: cfg.training.maxGradNorm, attempt: attempt)
        issued += 1
        return t
    }

    func handOutTasks() throws {
        let workers = aliveWorkers
        let slowest = minClock()
        if draining { return }
        for w in workers where outstanding[w] == nil {
            let clock = clocks[w] ?? slowest
            if consistency == .ssp && clock - slowest > cfg.cluster.staleness { continue }
            guard let t = nextTask() else { return }
            largestGap = max(largestGap, clock - slowest)
            outstanding[w] = t
            try router.send(to: members[w]!.identity, Control.frames(.task, t, epoch: epoch, step: UInt64(t.step)))
        }
    }

    func doneAsync(_ d: DoneMessage, worker: Int) throws {
        guard let t = outstanding[worker], t.step == d.step else { return }
        outstanding[worker] = nil
        clocks[worker, default: 0] += 1
        completed += 1
        record(d)
        lastNorm = d.gradNorm
        windowSteps += 1
        report(step: completed, lr: plan.schedule.lr(at: d.step))
        if isSaveStep(completed) { pendingSave = true; draining = true }
        if isEvalStep(completed) { pendingEval = true; draining = true }
    }

    // MARK: reporting

    func report(step s: Int, lr: Double) {
        // The summary leaves out the first two steps (start-up: first pulls, workspace allocation).
        if s == startStep + 2 { totals = (0, 0, 0, 0, 0, 0, 0, 0, Member.now(), 0, Member.now()) }
        if s > startStep + 2 {
            totals.steps += 1; totals.compute += stepCompute; totals.wait += stepWait; totals.encode += stepEncode
            totals.lastStepAt = Member.now()
        }
        stepCompute = 0; stepWait = 0; stepEncode = 0
        let elapsed = Member.now() - t0
        let total = plan.totalSteps
        let ep = Double(s) / Double(plan.stepsPerEpoch)
        if options.progressLines {
            let eta = s > 0 ? elapsed / Double(s) * Double(total - s) : 0
            Member.emit(ReportLine.progress(ProgressReport(step: s, total: total, epoch: ep, loss: lastLoss, learningRate: lr,
                                                           examplesPerSecond: Double(examples) / max(elapsed, 1e-9), elapsed: elapsed,
                                                           eta: eta, workers: aliveWorkers.count)))
        }
        guard s % cfg.training.loggingSteps == 0 || s == total else { return }
        let loss = windowTokens > 0 ? windowLoss / Double(windowTokens) : 0
        let steps = max(1, windowSteps)
        let wire = Double(windowWire) / Double(steps), raw = Double(windowRaw) / Double(steps)
        let pullWire = Double(windowPullWire) / Double(steps), pullRaw = Double(windowPullRaw) / Double(steps)
        // The wire figures go into trainer_state.json's log_history beside the loss.
        history.append(["step": Double(s), "epoch": (ep * 100).rounded() / 100, "loss": loss, "learning_rate": lr, "grad_norm": lastNorm,
                        "gradient_wire_mb_per_step": (wire / 1e4).rounded() / 100, "gradient_compression_ratio": (raw / max(wire, 1) * 100).rounded() / 100,
                        "parameter_wire_mb_per_step": (pullWire / 1e4).rounded() / 100,
                        "parameter_compression_ratio": (pullRaw / max(pullWire, 1) * 100).rounded() / 100])
        log(String(format: "step %d/%d epoch %.2f loss %.4f lr %.3e grad_norm %.3f | %.1f ex/s, %d worker(s), gradients %.2f MB/step on the wire (%.2f MB raw, %.2fx), parameters %.2f MB/step (%.2fx)",
                   s, total, ep, loss, lr, lastNorm, Double(examples) / max(elapsed, 1e-9), aliveWorkers.count, wire / 1e6, raw / 1e6,
                   raw / max(wire, 1), pullWire / 1e6, pullRaw / max(pullWire, 1)))
        windowLoss = 0; windowTokens = 0; windowWire = 0; windowRaw = 0; windowSteps = 0; windowCompute = 0; windowWait = 0
        windowPullWire = 0; windowPullRaw = 0
    }

    func statusJSON() -> String {
        func member(_ m: MemberInfo) -> [String: Any] {
            ["name": m.name, "host": m.host, "pid": Int(m.pid), "alive": m.alive, "contributions": m.contributions, "endpoint": m.endpoint ?? "",
             "seconds_since_heartbeat": ((Member.now() - m.lastSeen) * 10).rounded() / 10]
        }
        let all = members.values.sorted { $0.id < $1.id }
        let obj: [String: Any] = [
            "state": phase.rawValue, "step": consistency == .sync ? step : completed, "max_steps": plan.totalSteps, "epoch": Int(epoch),
            "consistency": consistency.rawValue, "endpoint": endpoint,
            "servers": all.filter { $0.role == .server }.map(member), "workers": all.filter { $0.role == .worker }.map(member),
        ]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
    }

    // MARK: the end

    func finish() throws {
        guard let p = partitionPlan else { return }
        let want = consistency == .sync ? step : plan.totalSteps
        let h = WireHeader(type: .pullParameters, codec: .none, epoch: epoch, step: UInt64(want), partition: UInt32.max, count: 0,
                           payloadLength: 0, checksum: CRC32C.checksum([]))
        for (_, s) in serverData { try s.send([h.bytes(), []]) }
        var got = Set<Int>()
        let codec = ShardCodec()
        let deadline = Member.now() + max(60, cfg.cluster.heartbeatTimeout * 3)
        while got.count < p.count {
            guard Member.now() < deadline else {
                throw CoordinatorError.timeout("the final parameters: \(p.count - got.count) partition(s) missing from "
                                               + Set((0..<p.count).filter { !got.contains($0) }.map { p.owner[$0] }).sorted().map { members[servers[$0]]!.name }.joined(separator: ", "))
            }
            let socks = serverData.keys.sorted().map { serverData[$0]! }
            let ready = try ZMQPoll.wait(socks, timeoutMs: 100)
            for (i, s) in socks.enumerated() where ready[i] {
                while let f = try s.tryReceive() {
                    let m = try DataMessage(frames: f)
                    let part = Int(m.header.partition)
                    guard m.header.type == .parameters, part < p.count else { continue }
                    try m.decode(into: model.params.pointer + p.range(part).lowerBound, capacity: p.range(part).count, using: codec)
                    got.insert(part)
                }
            }
            // Keep answering heartbeats while waiting.
            while let f = try router.tryReceive() {
                if let m = try? DataMessage(frames: Array(f.dropFirst())), m.header.type == .heartbeat {
                    try router.send(to: f[0], Control.frames(.heartbeatAck, Empty()))
                }
            }
        }
        // Let checkpoints being written finish first.
        while savesInFlight > 0 {
            Thread.sleep(forTimeInterval: 0.05)
            if saveResults.pending > 0 { collectSaves() }
        }
        let seconds = Member.now() - t0
        let steps = consistency == .sync ? step : completed
        try LocalTrainer.save(model: model, tokenizerFile: cfg.training.tokenizer, to: cfg.training.outputDir, step: steps,
                              epochs: Double(steps) / Double(plan.stepsPerEpoch), history: history, seconds: seconds, examples: examples)
        if cfg.training.loadBestModelAtEnd, let b = best, let bp = b.path {
            _ = try ModelFolder.loadWeights(into: model, folder: bp)
            try ModelFolder.save(model, to: cfg.training.outputDir)
            log("load_best_model_at_end: the model in \(cfg.training.outputDir) is \(bp) (\(cfg.training.bestMetric?.key ?? "") \(b.value))")
        }
        var finalState = trainerState(globalStep: steps)
        finalState.logHistory.append(["step": Double(steps), "train_runtime": seconds,
                                      "train_samples_per_second": Double(examples) / max(seconds, 1e-9)])
        try finalState.write(to: (cfg.training.outputDir as NSString).appendingPathComponent("trainer_state.json"))
        log("saved \(cfg.training.outputDir) after \(steps) steps in \(String(format: "%.1f", seconds)) s")
        if totals.steps > 0 {
            // From the end of the last warm-up step to the end of the last step (not the final pull and save).
            let n = Double(totals.steps), wall = totals.lastStepAt - totals.startedAt
            let r = RunSummary(stepsTimed: totals.steps, secondsPerStep: wall / n, computeSecondsPerStep: totals.compute / n,
                               waitingSecondsPerStep: totals.wait / n, encodeSecondsPerStep: totals.encode / n,
                               gradientWireMBPerStep: Double(totals.wire) / n / 1e6, gradientRawMBPerStep: Double(totals.raw) / n / 1e6,
                               parameterWireMBPerStep: Double(totals.pullWire) / n / 1e6, parameterRawMBPerStep: Double(totals.pullRaw) / n / 1e6,
                               tokensPerSecond: Double(totals.padded) / max(wall, 1e-9))
            log(String(format: "summary: %d steps timed, %.4f s/step, compute %.4f s/step (slowest worker's forward + backward), "
                       + "waiting %.4f s/step (for parameters, from its previous report), "
                       + "gradients %.3f MB/step on the wire (%.3f MB raw, %.2fx), parameters %.3f MB/step on the wire (%.3f MB raw, %.2fx), %.1f tokens/s, "
                       + "gradient encoding %.4f s/step (on its compute thread)",
                       r.stepsTimed, r.secondsPerStep, r.computeSecondsPerStep, r.waitingSecondsPerStep, r.gradientWireMBPerStep,
                       r.gradientRawMBPerStep, r.gradientCompression, r.parameterWireMBPerStep, r.parameterRawMBPerStep,
                       r.parameterCompression, r.tokensPerSecond, r.encodeSecondsPerStep))
            if options.progressLines { Member.emit(ReportLine.summary(r)) }
        }
        log("contributions per worker: " + members.values.filter { $0.role == .worker }.sorted { $0.id < $1.id }
            .map { "\($0.name) \($0.contributions)" }.joined(separator: ", ")
            + (consistency == .ssp ? "; largest clock gap \(largestGap) (staleness \(cfg.cluster.staleness))" : ""))
        hubAtEnd()
        broadcastShutdown("training finished", code: 0)
    }

    func broadcastShutdown(_ reason: String, code: Int32) {
        for m in members.values where m.alive {
            try? router.send(to: m.identity, Control.frames(.shutdown, ShutdownMessage(reason: reason, exitCode: code)))
        }
        try? router.set(ZMQSocket.linger, 2000)
    }
}

public enum CoordinatorError: Error, CustomStringConvertible {
    case serverLost(String)
    case timeout(String)
    case checkpoint(String)
    public var description: String {
        switch self {
        case .serverLost(let n): return "parameter server \(n) was lost"
        case .timeout(let what): return "timed out waiting for \(what)"
        case .checkpoint(let why): return why
        }
    }
}
