import Foundation
import PrecisCore
import PrecisHub
import PrecisModels
import PrecisObservability
import PrecisTrain
import PrecisWire

/// `precis-coordinator`: the one address everyone knows. It runs the event loop over its ROUTER
/// socket (and, for final parameters and checkpoint shards, one DEALER per server) and wires the
/// parts that do the thinking:
///
/// - `Membership` — who is in the cluster, heartbeats, losses, the epoch (Membership.swift; the
///   coordinator's reactions in Members.swift);
/// - `Scheduler` — who computes what: `SyncScheduler` or `StalenessScheduler` (Training.swift sends
///   what they decide);
/// - `RunMetrics` — the log lines, log_history, progress lines and the summary;
/// - the services: checkpoints (`CheckpointState`, Checkpoints.swift), evaluation
///   (`EvaluationState`, Evaluation.swift), the hub (`HubState`, Hub.swift), recovery from a lost
///   server (Recovery.swift);
/// - the run's start (Startup.swift: partitions to the servers) and end (Finish.swift).
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
        /// The cluster's keys (the coordinator role's): CURVE on the ROUTER and the data connections
        /// to the servers. Nil: no authentication, allowed only on a loopback address unless `insecure`.
        public var keys: ClusterKeys?
        public var insecure = false
        /// Override `cluster.metrics_port` / `cluster.metrics_bind` (the Prometheus listener).
        public var metricsPort: Int?
        public var metricsBind: String?
        public init(config: String) { self.config = config }
    }

    // What the run is.
    let options: Options
    var cfg: TrainingConfig
    /// The config file as members get it: without its secret keys (`TrainingConfig.redacted`).
    let configText: String
    let model: any Seq2SeqModel
    let plan: TrainingPlan
    let consistency: Consistency

    // The sockets.
    let context: ZMQContext
    let router: ZMQSocket
    /// Admits CURVE clients by key (with keys only).
    var zap: ZAPHandler?
    public private(set) var endpoint = ""

    // The parts.
    var phase = RunPhase.waiting
    var membership: Membership
    var scheduler: any Scheduler
    var metrics: RunMetrics
    var layout = ServerLayout()
    var checkpoints = CheckpointState()
    var evaluations = EvaluationState()
    var hub: HubState?
    /// trainer_state.json and the TensorBoard event file, kept current at every logging step (LiveLogs.swift).
    var liveLogs = LiveLogs()
    /// The Prometheus metrics (Observability.swift), kept whether or not a listener serves them.
    let observed = CoordinatorMetrics()
    var observedState = ObservedState()
    var metricsServer: MetricsServer?
    /// Extra pages of the metrics listener beside `/metrics` (`GET /`, `/status.json`, …): a route
    /// set here, before or during `run`, is served once the listener is up (`cluster.metrics_port`).
    /// Its closure runs on the listener's threads: it may read only what is safe from another thread.
    public let routes = HTTPRoutes()
    /// The status reply's figures beyond membership and step (StatusTracker.swift, Status.swift).
    var status = StatusTracker()
    /// The latest step's progress figures (nil before the first step).
    var lastProgress: ProgressReport?
    /// Hub pushes and their outcomes (written by the uploader's thread too).
    let pushLog = PushLog()
    /// The latest status for other threads (an HTTP listener's `status.json`): `statusBoard.statusJSON()`.
    /// The only part of the coordinator another thread may use; the event loop publishes to it.
    public let statusBoard = StatusBoard()
    var lastStatusPublished = 0.0

    // Starts and restarts.
    /// When the coordinator began waiting for its members (for `start_timeout`).
    var waitingSince = 0.0
    /// Control messages a `HeartbeatStandIn` received while the loop was busy, to handle before
    /// what the router has (they came first).
    var held = HeldMessages()
    /// Data messages from the servers dropped so far (for the log's rate limit).
    var droppedData = DropLog()

    /// The step training (re)started at: 0, a resumed checkpoint's, or a rollback's.
    var startStep = 0
    /// Grows on every rollback to a checkpoint (a parameter server was lost).
    var attempt = 0
    /// A non-finite loss or gradient norm was reported (stop_on_nonfinite): the run ends (NonFinite.swift).
    var nonFinite: NonFiniteStop?

    public init(_ options: Options) throws {
        self.options = options
        var text = try TrainingConfig.readText(options.config)
        let parsed = try TrainingConfig.parse(text, file: options.config)
        // A model or tokenizer named as a Hub repository is downloaded by the coordinator alone;
        // members get the config pointing at the local copies (ModelSource.trainingOverrides).
        let hubSources = try ModelSource.trainingOverrides(model: parsed.training.model, tokenizer: parsed.training.tokenizer,
                                                           trainsTokenizer: parsed.training.tokenizerModel != nil,
                                                           log: { Member.log("coordinator", $0) })
        if !hubSources.isEmpty { text = try TrainingConfig.applying(hubSources, to: text, file: options.config) }
        cfg = try TrainingConfig.parse(text, file: options.config)
        // Members get the config without its secrets (the hub token is the coordinator's alone).
        configText = try TrainingConfig.redacted(text)
        if let o = options.outputDir { cfg.training.outputDir = o }
        if let s = options.maxSteps { cfg.training.maxSteps = s }
        if options.outputDir != nil || options.maxSteps != nil { try cfg.validate() }   // the overrides too
        consistency = Consistency(rawValue: cfg.cluster.consistency) ?? .sync
        Compute.setThreads(1)
        model = try LocalTrainer.loadModel(cfg.training.model, seed: cfg.training.seed)
        plan = try TrainingPlan(cfg, model: ModelShape(model.facts), plannedWorkers: cfg.cluster.workers,
                                asyncUpdates: consistency != .sync)
        context = try ZMQContext()
        router = try ZMQSocket(context, .router)
        membership = Membership(plannedServers: cfg.cluster.servers, heartbeatTimeout: cfg.cluster.heartbeatTimeout)
        switch consistency {
        case .sync: scheduler = SyncScheduler(source: plan, contributions: cfg.cluster.workers)
        case .ssp: scheduler = StalenessScheduler(source: plan, bound: .steps(cfg.cluster.staleness), clipNorm: cfg.training.maxGradNorm)
        case .async: scheduler = StalenessScheduler(source: plan, bound: .unbounded, clipNorm: cfg.training.maxGradNorm)
        }
        metrics = RunMetrics(totalSteps: plan.totalSteps, stepsPerEpoch: plan.stepsPerEpoch, loggingSteps: cfg.training.loggingSteps)
        for p in StaleTemporaries.clean(outputDir: cfg.training.outputDir) {
            Member.log("coordinator", "removed \(p): the temporary file of a write its process (gone) never finished")
        }
        if options.resume && cfg.training.resumeFromCheckpoint == nil && CheckpointStore(outputDir: cfg.training.outputDir).latest() != nil {
            cfg.training.resumeFromCheckpoint = "latest"
        }
        if let r = cfg.training.resumeFromCheckpoint { restart(from: try loadCheckpoint(verified: try verifiedCheckpoint(r))) }
        hub = try makeHub()
        observed.planned(totalSteps: plan.totalSteps, step: startStep)
        try router.limitForControl()
        try router.reportUndeliverable()
    }

    func log(_ s: String) { Member.log("coordinator", s) }
    /// Logs a dropped data message within `droppedData`'s rate limit.
    func dropData(_ line: String) {
        if let suffix = droppedData.drop() { log(line + suffix) }
    }

    public func run() -> Int32 {
        let code = runUntilTheEnd()
        closeTransport()
        return code
    }

    /// Closes every socket and terminates the context, so the `shutdown` just broadcast (queued on
    /// the router, whose linger `broadcastShutdown` raised) reaches every member before the process
    /// exits; bounded, so a member that cannot be reached delays the exit by 3 s at most.
    func closeTransport() {
        zap?.stop()
        for s in layout.dataSockets.values { s.close() }
        router.close()
        if !context.terminate(waitingAtMost: 3) { log("warning: the last messages to the members may not have gone out (3 s)") }
    }

    func runUntilTheEnd() -> Int32 {
        Member.installSignalHandlers()
        do {
            let bind = options.bind ?? cfg.cluster.coordinator
            try BindPolicy.check(bind, keys: options.keys, insecure: options.insecure)
            if let keys = options.keys {
                zap = try ZAPHandler(context: context, keys: keys, name: "coordinator")
                try router.secureAsServer(keys)
            }
            endpoint = try router.bind(bind)
            try startMetricsServer()
            if let f = options.endpointFile { try AtomicFile.write(Data((endpoint + "\n").utf8), to: f) }
            log("listening on \(endpoint)\(options.keys.map { " (CURVE, keys from \($0.dir))" } ?? ""); protocol version \(WireHeader.version)")
            for w in cfg.warnings { log("warning: \(w)") }
            log(plan.loadSummary)
            log("\(model.table.count) parameters, \(plan.dataset.count) examples, \(plan.stepsPerEpoch) steps per epoch, \(plan.totalSteps) steps, "
                + "\(consistency.rawValue)\(consistency == .ssp ? " (staleness \(cfg.cluster.staleness))" : ""), codec \(cfg.cluster.codec); "
                + "waiting for \(cfg.cluster.servers) server(s) and \(cfg.cluster.workers) worker(s)")
            waitingSince = Member.now()
            defer { publishStatus(force: true) }
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
            try receive(timeoutMs: 50)
            try checkUndelivered()
            observeState()
            publishStatus()
            if let stop = nonFinite { return stopForNonFinite(stop) }
            if checkpoints.writes.pending > 0 { collectSaves() }
            try advanceDrain()
            try checkHeartbeats()
            switch phase {
            case .waiting: try maybeStart()
            case .initializing, .recovering: break
            case .training:
                // No new step while an evaluation runs (sync evaluates between two steps; in
                // ssp/async the drain holds the tasks back anyway).
                if evaluations.current == nil { try send(scheduler.nextWork(workers: membership.aliveWorkers)) }
                if scheduler.isFinished && checkpoints.snapshot == nil && evaluations.current == nil { phase = .finishing }
            case .finishing:
                publishStatus(force: true)
                try finish()
                return 0
            }
        }
    }

    /// Waits up to `timeoutMs` for messages: control messages on the ROUTER, checkpoint shards from the servers.
    func receive(timeoutMs: Int) throws {
        let dataSockets = layout.dataSockets.keys.sorted().map { layout.dataSockets[$0]! }
        let ready = try ZMQPoll.wait([router] + dataSockets, timeoutMs: held.isEmpty ? timeoutMs : 0)
        if ready[0] || !held.isEmpty {
            // At most `controlPerTurn` a turn: a peer that sends without pause cannot keep the loop
            // from its other work (ZeroMQ reads its peers in turn, so the members' messages still
            // come through); what is left waits for the next turn, which does not wait.
            var n = 0
            while n < Self.controlPerTurn, let m = try nextControlMessage() {
                n += 1
                try handle(m.frames, role: m.role, key: m.key)
            }
        }
        for (i, s) in dataSockets.enumerated() where ready[i + 1] {
            while let f = try s.tryReceive() {
                let m: DataMessage
                do { m = try DataMessage(frames: f) } catch {
                    dropData("dropped a data message from a server: \(error)")
                    continue
                }
                if checkpoints.snapshot != nil && (m.header.type == .parameters || m.header.type == .moments) { receiveSnapshotShard(m) }
            }
        }
    }

    /// The most control messages one turn of the loop handles.
    static let controlPerTurn = 1000

    /// The next control message: one a stand-in held first, then the router's.
    func nextControlMessage() throws -> HeartbeatStandIn.Held? {
        if let h = held.pop() { return h }
        guard let f = try router.tryReceive() else { return nil }
        return HeartbeatStandIn.Held(frames: f, role: router.lastPeerRole, key: router.lastPeerKey)
    }

    /// Runs `work`, something long done in one go (`what` names it in the log), while a
    /// `HeartbeatStandIn` keeps the members' heartbeats acknowledged and answers status requests;
    /// the other messages it received are handled next, before the router's. `work` must not use
    /// the router.
    func standingIn<T>(_ what: String, _ work: () throws -> T) throws -> T {
        let answers = HeartbeatStandIn.Answers(members: membership.livingKeys, keyed: options.keys != nil,
                                               status: Control.frames(.statusReply, statusReport()),
                                               statusWithHistory: Control.frames(.statusReply, statusReport(history: true)))
        let (result, o) = try HeartbeatStandIn.during(router, answers: answers, work)
        for id in o.heartbeats.sorted() { _ = membership.heartbeat(id, key: answers.members[id] ?? nil) }
        held.push(o.held)
        if o.dropped > 0 {
            log("while \(what): dropped \(o.dropped) control message(s) beyond the \(answers.limitBytes >> 20) MiB held for later")
        }
        if let f = o.failure { log("while \(what): heartbeats went unanswered after a socket error: \(f)") }
        return result
    }

    /// One control message: who sent it, then what it asks. A message that cannot be decoded, or
    /// that its sender may not send, is logged with the peer and dropped: no peer can end the run.
    /// `role`: the key the peer authenticated with (nil without keys).
    /// `key`: that key itself (Z85), which binds a member to the key it registered with.
    func handle(_ frames: [[UInt8]], role: KeyRole?, key: String? = nil) throws {
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
        if let why = ControlPermissions.refusal(m.header.type, role: role, keyed: options.keys != nil) {
            return log("dropped a \(m.header.type) from \(peerName(peer)): \(why)")
        }
        do { try dispatch(m, from: peer, role: role, key: key) } catch let e as WireError {
            guard case .badControl = e else { throw e }
            log("dropped a malformed \(m.header.type) from \(peerName(peer)): \(e)")
        } catch let e as CoordinatorError {
            guard case .invalidRequest = e else { throw e }
            log("dropped a \(m.header.type) from \(peerName(peer)): \(e)")
        }
    }

    func dispatch(_ m: DataMessage, from peer: [UInt8], role: KeyRole?, key: String? = nil) throws {
        let sender = membership.heard(from: peer, key: key)
        if sender == nil, m.header.type != .register, let other = membership.member(identity: peer), other.key != key {
            return foreignKey(m.header.type, member: other, from: peer)
        }
        switch m.header.type {
        case .register:
            let r = try Control.decode(RegisterMessage.self, m)
            if let role, let why = ControlPermissions.refusal(register: r.role, role: role) { throw CoordinatorError.invalidRequest(why) }
            try register(r, peer: peer, key: key)
        case .heartbeat:
            let id = try Control.decode(HeartbeatMessage.self, m).id
            if let member = membership[id], member.alive, !membership.holdsKey(id, key) { return foreignKey(.heartbeat, member: member, from: peer) }
            if membership.heartbeat(id, key: key) {
                try router.send(to: peer, Control.frames(.heartbeatAck, Empty()))
            }
        case .statusRequest:
            // An older client sends `{}`; anything that does not decode is asked for the plain view.
            let wantsHistory = (try? Control.decode(StatusRequest.self, m))?.history == true
            try router.send(to: peer, Control.frames(.statusReply, statusReport(history: wantsHistory)))
        case .leave:
            let l = try Control.decode(LeaveMessage.self, m)
            if let gone = membership.leave(l.id, identity: peer, key: key) { try memberGone(gone, because: "left (\(l.reason))") }
        case .initDone:
            guard let s = sender, membership[s]?.role == .server else { return }
            try serverInitialized(Control.decode(InitDoneMessage.self, m), from: s)
        case .contributionDone:
            guard let s = sender else { return }
            try contributionDone(Control.decode(DoneMessage.self, m), from: s)
        case .normReport:
            guard let s = sender, membership[s]?.role == .server else { throw CoordinatorError.invalidRequest("not a server of this cluster") }
            if phase == .training { try serverNorm(Control.decode(NormMessage.self, m), from: s) }
        case .evalResult:
            guard let s = sender, membership[s]?.role == .worker else { throw CoordinatorError.invalidRequest("not a worker of this cluster") }
            let r = try Control.decode(EvalResultMessage.self, m)
            if isExternalResult(r) { try externalResult(r, from: s) } else { try evalResult(r, from: s) }
        case .evaluateRequest: try startExternalEval(Control.decode(EvaluateRequest.self, m), client: peer)
        case .applied: break   // a sync step closes on the servers' norms; `applied` only confirms
        default:
            log("dropped an unexpected \(m.header.type) from \(peerName(peer))")
        }
    }

    /// A message for (or from the routing id of) a member that came with another key than the one it
    /// registered with: dropped and logged (the first 20, then one in 1000).
    func foreignKey(_ type: MessageType, member m: ClusterMember, from peer: [UInt8]) {
        let n = membership.countForeignKey()
        guard n <= 20 || n % 1000 == 0 else { return }
        log("dropped a \(type) for \(m.roleName) \(m.name) (id \(m.id)) from \(peerName(peer)): it comes with another key than the member registered with"
            + (n == 20 ? " (from now on one such message in 1000 is logged)" : ""))
    }

    /// A peer for log lines: the member's name, pid and host, or its routing id.
    func peerName(_ id: [UInt8]) -> String {
        if let m = membership.member(identity: id) { return "\(m.name) (pid \(m.pid) on \(m.host))" }
        let s = String(decoding: id, as: UTF8.self)
        return s.allSatisfy({ $0.isASCII && !$0.isWhitespace }) && !s.isEmpty ? s : "peer " + id.map { String($0, radix: 16) }.joined()
    }
}

public enum CoordinatorError: Error, CustomStringConvertible {
    case serverLost(String)
    case timeout(String)
    case checkpoint(String)
    case invalidRequest(String)
    public var description: String {
        switch self {
        case .serverLost(let n): return "parameter server \(n) was lost"
        case .timeout(let what): return "timed out waiting for \(what)"
        case .checkpoint(let why): return why
        case .invalidRequest(let why): return why
        }
    }
}
