import Foundation
import PrecisCore
import PrecisObservability
import PrecisWire

/// `precis-ps`: owns a contiguous run of partitions of the flat parameter buffer, its fp32 master
/// copy and AdamW moments. Receives gradient shards, sums them (in contribution order, so the sum is
/// the same bits whatever order they arrive in), reports the sum's norm to the coordinator, applies
/// AdamW when told the clip coefficient (sync), or applies each shard as it arrives (ssp, async), and
/// serves parameters. One thread runs the event loop; AdamW uses the compute threads.
///
/// Three layers, as in ps-lite: this type is the transport (sockets, messages, logs) and holds the
/// parameters; `ContributionSlots` is the bookkeeping of a sync step (which contribution delivered
/// which partition, the sums in contribution order, Σg²); `UpdateRule` is the optimizer.
public final class ParameterServer {
    public struct Options: Sendable {
        public var coordinator: String
        public var host = "127.0.0.1"
        public var name = "ps"
        public var threads = 1
        /// The cluster's keys (the server role's): CURVE on every socket. Nil: no authentication,
        /// allowed only on a loopback address unless `insecure`.
        public var keys: ClusterKeys?
        public var insecure = false
        /// Where to serve Prometheus metrics (nil: no listener).
        public var metrics: MetricsEndpoint?
        /// Seconds within which the first registration must succeed (the coordinator may start
        /// later, or refuse for a while); then the server exits 1.
        public var connectTimeout = 120.0
        public init(coordinator: String) { self.coordinator = coordinator }
    }

    let options: Options
    let context: ZMQContext
    let control: ZMQSocket
    let data: ZMQSocket
    var dataEndpoint: String
    var link: CoordinatorLink
    var id = -1

    // Set by `assign`.
    var assignment: AssignMessage?
    var layout: OwnedPartitions?
    /// The fp32 master copy of the owned values.
    var params: FloatBuffer?
    var rule: UpdateRule?
    /// Sync: the current step's contributions and sums.
    var slots: ContributionSlots?
    /// ssp/async: where an arriving shard is decoded before it is applied.
    var arrival: FloatBuffer?
    var initialised: [Bool] = []

    /// The version: optimizer steps applied (sync: every partition together; ssp/async: the fewest
    /// any partition has had).
    var version = 0
    var updates = 0
    let replies = ParameterReplies()
    /// Decodes pushes and initial values; encodes snapshots.
    let codec = ShardCodec()
    /// The coordinator's data connection (it sends the initial values; snapshots go back to it).
    var coordinatorPeer: [UInt8]?
    /// The routing ids of the peers seen so far: a message's id is looked up here, so the steady
    /// state keeps no copy of it per message.
    var peers: [[UInt8]] = []
    /// Admits CURVE clients by key (with keys only).
    let zap: ZAPHandler?
    /// Who may use the data socket (the coordinator's `members`).
    var announced = AnnouncedPeers()
    /// Data messages dropped so far (for the log's rate limit).
    var refusals = DropLog()
    /// The Prometheus metrics (atomic updates from this loop) and their listener.
    let observed: ServerMetrics
    var metricsServer: MetricsServer?

    public init(_ options: Options) throws {
        self.options = options
        link = CoordinatorLink(connectTimeout: options.connectTimeout)
        context = try ZMQContext()
        control = try ZMQSocket(context, .dealer)
        try control.set(ZMQSocket.routingID, bytes: Array("\(options.name)/\(getpid())".utf8))
        try options.keys?.secureToCoordinator(control)
        try control.limitForControl()
        data = try ZMQSocket(context, .router)
        // The control bound (16 MiB) until `registered` says how large partitions are: enough for
        // any partition the config allows (`partition_bytes` ≤ 8 MiB; `limitData` checks it).
        try data.limitForControl()
        try data.set(ZMQSocket.sendHighWaterMark, WireLimits.dataHighWaterMark)
        try data.set(ZMQSocket.receiveHighWaterMark, WireLimits.dataHighWaterMark)
        try data.reportUndeliverable()
        try data.allowHandover()
        let bind = "tcp://\(options.host):*"
        try BindPolicy.check(bind, keys: options.keys, insecure: options.insecure)
        if let keys = options.keys {
            zap = try ZAPHandler(context: context, keys: keys, name: options.name)
            try data.secureAsServer(keys)
        } else { zap = nil }
        dataEndpoint = try data.bind(bind)
        observed = ServerMetrics(name: options.name)
    }

    func log(_ s: String) { Member.log(options.name, s) }

    /// Runs until the coordinator ends the run; returns the process exit status.
    public func run() -> Int32 {
        // The ZAP thread holds a socket, and so the context, until it is stopped.
        defer { zap?.stop() }
        Member.installSignalHandlers()
        Compute.setThreads(options.threads)
        do {
            if let endpoint = options.metrics {
                metricsServer = try MetricsServer.start(endpoint, metrics: observed, role: options.name)
                log("metrics on \(metricsServer!.url)")
            }
            try control.connect(options.coordinator)
            log("serving parameters on \(dataEndpoint)\(options.keys == nil ? "" : " (CURVE, keys from \(options.keys!.dir))"); registering with \(options.coordinator)")
            try register()
            return try loop()
        } catch {
            log("error: \(error)")
            return 1
        }
    }

    func register() throws {
        try control.send(Control.frames(.register, RegisterMessage(role: .server, name: options.name, host: options.host,
                                                                   pid: getpid(), endpoint: dataEndpoint, threads: options.threads)))
    }

    func loop() throws -> Int32 {
        while true {
            if Member.terminationSignal != 0 {
                log("signal \(Member.terminationSignal): stopping")
                link.stop()
                return 0
            }
            switch link.check() {
            case .lost(let seconds):
                // Keep the parameters; a restarted coordinator re-initialises them from its checkpoint.
                log("the coordinator at \(options.coordinator) has not answered for \(Int(seconds)) s: registering again")
            case .registerNow:
                if !link.everRegistered {
                    log("not admitted by the coordinator at \(options.coordinator) after \(Int(link.waited)) s: registering again (giving up after \(Int(link.connectTimeout)) s, --connect-timeout)")
                }
                try register()
            case .giveUp:
                log("no coordinator at \(options.coordinator) for \(Int(link.giveUpAfter)) s: stopping")
                return 3
            case .noCoordinator:
                log("error: no coordinator at \(options.coordinator) admitted this server within \(Int(link.connectTimeout)) s (--connect-timeout): is it running, reachable from here, and expecting this server?")
                return 1
            case .fine: break
            }
            let ready = try ZMQPoll.wait([control, data], timeoutMs: 100)
            if ready[0] {
                while let frames = try control.tryReceive() {
                    if let code = try handleControl(frames) { link.stop(); return code }
                }
            }
            if ready[1] {
                while try data.receiveInPlace({ m, identity in try handleData(m, from: interned(identity)) }) {}
            }
            reportUndelivered()
        }
    }

    // MARK: control (from the coordinator)

    func handleControl(_ frames: [[UInt8]]) throws -> Int32? {
        let m: DataMessage
        do { m = try DataMessage(frames: frames) } catch {
            log("dropped a message from the coordinator: \(error)")
            return nil
        }
        switch ServerControl.read(m) {
        case .drop(let why):
            log("dropped a \(m.header.type) from the coordinator: \(why)")
        case .stop(let why):
            log("error: \(why)")
            return 1
        case .ignore:
            log("ignored an unexpected \(m.header.type) message from the coordinator")
        case .registered(let r):
            id = r.id
            link.registered(context: context, coordinator: options.coordinator, id: id, interval: r.heartbeatInterval,
                            heartbeatTimeout: r.heartbeatTimeout, name: options.name, keys: options.keys)
            log("registered as server \(r.name) (id \(id))")
            if let b = r.partitionBytes { try limitData(partitionFloats: WireLimits.largestPartition(partitionBytes: b)) }
        case .refused(let r):
            // A transient refusal (the coordinator still counts a dead predecessor as alive): again later.
            if let hint = r.retryAfter, hint.isFinite, hint >= 0, !link.isRegistered {
                if let delay = link.retry(after: hint) {
                    log("the coordinator refused this server for now: \(r.reason); registering again in \(String(format: "%.1f", delay)) s (giving up after \(Int(link.connectTimeout)) s, --connect-timeout)")
                    return nil
                }
                log("error: the coordinator still refuses this server after \(Int(link.waited)) s (--connect-timeout \(Int(link.connectTimeout))): \(r.reason)")
                return 1
            }
            log("the coordinator refused this server: \(r.reason)")
            return 2
        case .assign(let a):
            try assign(a)
        case .plan(let p):
            slots?.expect(step: p.step, contributions: p.contributions)
            try reportNormIfComplete()
        case .apply(let a):
            try apply(a)
        case .snapshot:
            try sendSnapshot()
        case .members(let members):
            announced.announce(members)
            for pull in announced.takeAdmitted(keyed: options.keys != nil) { try serve(pull) }
        case .shutdown(let s):
            log("shutting down: \(s.reason)")
            return s.exitCode
        }
        return nil
    }

    /// Checks that the data socket takes the frames of partitions of `partitionFloats` values. It is
    /// bound with the control bound (16 MiB; a listener keeps the bound it was bound with), which
    /// every partition the config allows fits (`partition_bytes` ≤ 8 MiB): a larger one is an error,
    /// not a socket bound again under its connected peers.
    func limitData(partitionFloats: Int) throws {
        let needed = WireLimits.dataMessageBytes(partitionFloats: partitionFloats)
        guard needed <= WireLimits.controlMessageBytes else {
            throw WireError.badControl(type: "registered", reason: "partitions of \(partitionFloats) values need frames of \(needed) bytes, more than the \(WireLimits.controlMessageBytes)-byte bound (cluster.partition_bytes is at most \(WireLimits.maxPartitionBytes))")
        }
        log("data messages up to \(WireLimits.controlMessageBytes) bytes (partitions of \(partitionFloats) values need \(needed))")
    }

    /// A new assignment (also a rollback): everything is reset to its partitions at `startStep`.
    func assign(_ a: AssignMessage) throws {
        let owned = OwnedPartitions(plan: a.plan, server: a.server, partitions: a.partitions)
        assignment = a
        layout = owned
        params = FloatBuffer(count: owned.count)
        rule = UpdateRule(layout: owned, assignment: a)
        if a.consistency == .sync {
            slots = ContributionSlots(layout: owned, maxContributions: a.maxContributions); arrival = nil
        } else {
            arrival = FloatBuffer(count: owned.count); slots = nil
        }
        version = a.startStep
        observed.assigned(partitions: owned.partitions.count, version: version)
        initialised = Array(repeating: false, count: owned.partitions.count)
        replies.reset()
        announced.reset()
        log("owns partitions \(owned.partitions.first ?? 0)...\(owned.partitions.last ?? 0) (\(owned.count) values, \(owned.count * 4 / 1_048_576) MiB), \(a.consistency.rawValue), version \(version)")
    }

    /// Sync: once every partition's contributions are in and summed, the Σg² goes to the coordinator.
    func reportNormIfComplete() throws {
        guard let a = assignment, let slots, let ss = slots.sumCompleted(step: version) else { return }
        Member.trace(options.name, "norm step \(version)")
        try control.send(Control.frames(.normReport, NormMessage(step: version, server: a.server, sumOfSquares: ss,
                                                                 contributions: slots.contributionFigures(step: version))))
    }

    /// Sync: applies the step with the coordinator's clip coefficient. Pulls already waiting for the
    /// new version are answered partition by partition as AdamW finishes each: the first partitions
    /// travel (and the workers decode them) while the server still updates and encodes the rest.
    func apply(_ msg: ApplyMessage) throws {
        guard let a = assignment, let layout, let params, let rule else { return }
        guard msg.step == version, let slots, slots.reported else {
            let complete = slots?.reported ?? false
            return log("ignored apply for step \(msg.step): at version \(version)\(complete ? "" : ", gradients incomplete")")
        }
        let next = version + 1
        Member.trace(options.name, "apply step \(msg.step)")
        let waiting = replies.takeAnswered(by: next)
        replies.invalidate()
        let started = Member.now()
        try rule.applyAll(params: params.pointer, gradient: slots.sum.pointer, clip: msg.clip) { local in
            let p = layout.partitions[local]
            Member.trace(options.name, "adamw p\(p)")
            for pull in waiting where pull.partition == UInt32.max || pull.partition == UInt32(p) {
                try sendParameters(to: pull.peer, local: local, version: next, codec: pull.codec, base: pull.base)
            }
            Member.trace(options.name, "sent p\(p) to \(waiting.count)")
        }
        version = next
        updates += 1
        observed.applied(seconds: Member.now() - started, version: version)
        slots.finish(step: msg.step)
        try control.send(Control.frames(.applied, AppliedMessage(server: a.server, version: version, updates: updates)))
        if msg.snapshot == true { try sendSnapshot() }
        try answerWaitingPulls()
    }

    // MARK: data (workers and the coordinator)

    func peerName(_ id: [UInt8]) -> String {
        let s = String(decoding: id, as: UTF8.self)
        return s.allSatisfy({ $0.isASCII && !$0.isWhitespace }) && !s.isEmpty ? s : id.map { String($0, radix: 16) }.joined()
    }

    func interned(_ id: UnsafeRawBufferPointer) -> [UInt8] {
        for p in peers where p.count == id.count {
            if id.count == 0 || p.withUnsafeBytes({ memcmp($0.baseAddress!, id.baseAddress!, id.count) == 0 }) { return p }
        }
        let p = Array(id)
        peers.append(p)
        return p
    }

    /// A data message, read in place (the payload is decoded straight from ZeroMQ's buffer). Who
    /// sent it and every header field are checked before anything else (`AnnouncedPeers`,
    /// `DataHeaderRules`).
    func handleData(_ received: Result<InPlaceMessage, WireError>, from peer: [UInt8]) throws {
        let m: InPlaceMessage
        switch received {
        case .success(let x): m = x
        case .failure(let error): return log("dropped a message from \(peerName(peer)): \(error)")
        }
        observed.received(bytes: WireHeader.size + m.payload.count)
        guard let a = assignment, let layout else {
            log("dropped a \(m.header.type) from \(peerName(peer)): no partitions assigned yet")
            return
        }
        let h = m.header, role = data.lastPeerRole, keyed = options.keys != nil
        let need: AnnouncedPeers.Need
        switch h.type {
        case .initParameters, .initMomentM, .initMomentV, .pullMoments: need = .coordinator
        case .pullParameters: need = .member
        case .pushGradient: need = .worker
        default: return refuse(h, from: peer, "not a message a server takes")
        }
        let rules = DataHeaderRules(layout: layout, assignmentEpoch: a.epoch, announcedEpoch: announced.epoch, totalSteps: a.totalSteps)
        if let why = announced.refusal(peer, role: role, keyed: keyed, need: need) {
            // A worker's first pull may overtake its announcement: a few wait for it.
            if h.type == .pullParameters && (!keyed || role == .worker) && rules.refusal(h) == nil {
                let pull = ParameterReplies.Pull(peer: peer, version: Int(h.step), partition: h.partition, codec: h.codec, role: role,
                                                 base: PullDelta.base(slot: h.slot))
                refuse(h, from: peer, "\(why) (yet): held until it is (\(AnnouncedPeers.parkedLimit) such pulls at most)")
                if let pushedOut = announced.park(pull) { refuse(h, from: pushedOut.peer, "never announced: its held pull is dropped") }
                return
            }
            return refuse(h, from: peer, why)
        }
        if let why = rules.refusal(h) { return refuse(h, from: peer, why) }
        let p = Int(h.partition)
        switch h.type {
        case .initParameters, .initMomentM, .initMomentV:
            coordinatorPeer = peer
            guard let local = layout.local(p) else { return }
            try initialise(m, local: local, from: peer)
        case .pushGradient:
            guard let local = layout.local(p) else { return }
            if a.consistency == .sync {
                try store(m, local: local, from: peer)
            } else {
                try applyOnArrival(m, local: local, from: peer)
            }
        case .pullParameters:
            try serve(.init(peer: peer, version: Int(h.step), partition: h.partition, codec: h.codec, role: role, base: PullDelta.base(slot: h.slot)))
        default:
            try sendMoments(to: peer, epoch: h.epoch)
        }
    }

    /// Answers a pull now, or when its version exists. Found by the chaos soak: between an
    /// `assign` (a rollback) and the last initial values, the server is at the checkpoint's
    /// version with parameters not yet loaded; a pull from before the rollback that arrived then
    /// was answered with them (zeros), and a worker computed its step on them. Such a pull waits
    /// for the initial values now.
    func serve(_ pull: ParameterReplies.Pull) throws {
        if pull.version > version || !initialised.allSatisfy({ $0 }) {
            if !replies.wait(pull) {
                log("dropped a pull from \(peerName(pull.peer)): \(ParameterReplies.waitingLimit) pulls already wait")
            }
        } else {
            try sendParameters(to: pull.peer, partition: pull.partition, codec: pull.codec, base: pull.base)
        }
    }

    /// Data messages the ROUTER could not hand to a peer (its queue full, or it is gone): one line
    /// per peer. The worker pulls again when it needs the parameters; a full queue also drops the
    /// pulls it has waiting here, so nothing more is queued for it.
    func reportUndelivered() {
        guard let drops = data.drops else { return }
        for r in drops.takeNew() {
            log(PeerDrops.line(r, peerName: peerName(r.peer)))
            if case .queueFull = r.reason { replies.drop(peer: r.peer) }
        }
    }

    /// Logs a dropped data message (every one of the first 100, then one in 1000: a flood cannot
    /// fill the disk).
    func refuse(_ h: WireHeader, from peer: [UInt8], _ why: String) {
        guard let suffix = refusals.drop() else { return }
        log("dropped a \(h.type) (step \(h.step), partition \(h.partition), slot \(h.slot), epoch \(h.epoch)) from \(peerName(peer)): \(why)"
            + suffix)
    }

    /// Initial values (or, resuming, moments) of a partition from the coordinator.
    func initialise(_ m: InPlaceMessage, local: Int, from peer: [UInt8]) throws {
        guard let a = assignment, let layout, let params, let rule else { return }
        let r = layout.range(local: local)
        do {
            switch m.header.type {
            case .initParameters:
                try m.decode(into: params.pointer + r.lowerBound, capacity: r.count, using: codec)
                initialised[local] = true
            case .initMomentM: try m.decode(into: rule.optimizers[local].m.pointer, capacity: r.count, using: codec)
            default: try m.decode(into: rule.optimizers[local].v.pointer, capacity: r.count, using: codec)
            }
        } catch { return log("dropped \(m.header.type) for partition \(layout.partitions[local]) from \(peerName(peer)): \(error)") }
        replies.replaced()
        if m.header.type == .initParameters && initialised.allSatisfy({ $0 }) {
            try control.send(Control.frames(.initDone, InitDoneMessage(server: a.server, version: version)))
            log("initial parameters loaded")
            try answerWaitingPulls()
        }
    }

    /// Sync: a contribution's partition goes into its slot; the norm is reported once all are in.
    func store(_ m: InPlaceMessage, local: Int, from peer: [UInt8]) throws {
        guard let layout, let slots else { return }
        let p = layout.partitions[local], r = layout.range(local: local)
        let step = Int(m.header.step)
        if step != version {
            log("dropped a gradient for \(step < version ? "stale" : "future") step \(step) partition \(p) from \(peerName(peer)) (at version \(version))")
            return
        }
        // Already complete: a copy of a contribution that was handed to a second worker.
        if slots.reported { return }
        let c = Int(m.header.slot)
        guard slots.accepts(contribution: c, step: step) else {
            return log("dropped a gradient with contribution index \(c) for step \(step) from \(peerName(peer)): the step has fewer contributions")
        }
        guard Int(m.header.count) == r.count else {
            return log("dropped a gradient for partition \(p) from \(peerName(peer)): \(m.header.count) values, the partition has \(r.count)")
        }
        let started = Member.now()
        do {
            let figures = try m.figures()
            try slots.store(contribution: c, local: local, figures: figures) { try m.decode(into: $0, capacity: r.count, using: codec) }
        } catch {
            return log("dropped a gradient for step \(step) partition \(p) from \(peerName(peer)): \(error)")
        }
        observed.pushed(decodeSeconds: Member.now() - started)
        Member.trace(options.name, "push p\(p) c\(c) step \(step)")
        try reportNormIfComplete()
    }

    /// ssp/async: the shard is one update of its partition (the worker clipped it), applied now.
    func applyOnArrival(_ m: InPlaceMessage, local: Int, from peer: [UInt8]) throws {
        guard let layout, let params, let rule, let arrival else { return }
        let p = layout.partitions[local], r = layout.range(local: local)
        let started = Member.now()
        do { try m.decode(into: arrival.pointer + r.lowerBound, capacity: r.count, using: codec) } catch {
            return log("dropped a gradient for partition \(p) from \(peerName(peer)): \(error)")
        }
        guard Int(m.header.count) == r.count else {
            return log("dropped a gradient for partition \(p) from \(peerName(peer)): \(m.header.count) values, the partition has \(r.count)")
        }
        let decoded = Member.now()
        observed.pushed(decodeSeconds: decoded - started)
        rule.apply(local: local, params: params.pointer, gradient: arrival.pointer, clip: 1)
        replies.invalidate(local: local)
        updates += 1
        version = rule.steps
        observed.applied(seconds: Member.now() - decoded, version: version)
        try answerWaitingPulls()
    }

    func answerWaitingPulls() throws {
        for pull in replies.takeAnswered(by: version) { try sendParameters(to: pull.peer, partition: pull.partition, codec: pull.codec, base: pull.base) }
    }

    /// Sends the owned partitions a pull asks for, in the codec it asks for (workers ask for
    /// `pull_codec`; the coordinator asks for `none`, so the model it saves is the fp32 master copy).
    func sendParameters(to peer: [UInt8], partition: UInt32, codec: Codec, base: Int? = nil) throws {
        guard let a = assignment, let layout, let rule else { return }
        for (local, p) in layout.partitions.enumerated() where partition == UInt32.max || partition == UInt32(p) {
            try sendParameters(to: peer, local: local, version: a.consistency == .sync ? version : rule.optimizers[local].steps, codec: codec,
                               base: base)
        }
    }

    /// Sends local partition `local` as of version `v` (encoded once per version and codec; `bf16-delta`:
    /// a delta against the puller's copy at `base`, or the chain's shadow in full, `DeltaChains`).
    func sendParameters(to peer: [UInt8], local: Int, version v: Int, codec kind: Codec, base: Int? = nil) throws {
        guard let a = assignment, let layout, let params else { return }
        let r = layout.range(local: local)
        let reply = try replies.reply(local: local, partition: layout.partitions[local],
                                      values: UnsafeBufferPointer(start: params.pointer + r.lowerBound, count: r.count),
                                      version: v, codec: kind, base: base, epoch: a.epoch ?? 0)
        try data.send(to: peer, header: reply.header, payload: reply.payload)
        observed.sentParameters(bytes: WireHeader.size + reply.payload.count, codec: reply.header.codec.name)
    }

    /// The AdamW moments of every owned partition (a `pullMoments`).
    func sendMoments(to peer: [UInt8], epoch: UInt32) throws {
        guard let layout, let rule else { return }
        for (local, p) in layout.partitions.enumerated() {
            let o = rule.optimizers[local]
            // Never negative (an `assign`'s startStep is checked, and steps only grow): an exact
            // conversion all the same, as this module is built -Ounchecked.
            guard let step = UInt64(exactly: o.steps) else { log("moments of partition \(p) not sent: step \(o.steps)"); continue }
            for (slot, buf) in [o.m, o.v].enumerated() {
                let msg = try DataMessage.make(type: .moments, codec: .fp32, epoch: epoch, step: step,
                                               partition: UInt32(p), slot: UInt32(slot),
                                               values: UnsafeBufferPointer(start: buf.pointer, count: buf.count), using: codec)
                let frames = msg.frames
                try data.send(to: peer, frames)
                observed.sent(bytes: frames.reduce(0) { $0 + $1.count })
            }
        }
    }

    /// Sends the parameters and AdamW moments of every owned partition, as they are now, to the
    /// coordinator, uncompressed: the event loop stops only for the copies into the messages.
    func sendSnapshot() throws {
        guard let layout, let params, let rule, let peer = coordinatorPeer else { return log("snapshot requested before the initial parameters") }
        for (local, p) in layout.partitions.enumerated() {
            let r = layout.range(local: local)
            let o = rule.optimizers[local]
            guard let step = UInt64(exactly: o.steps) else { log("snapshot of partition \(p) not sent: step \(o.steps)"); continue }
            let parts: [(MessageType, UInt32, UnsafeMutablePointer<Float>)] = [(.parameters, 0, params.pointer + r.lowerBound),
                                                                                (.moments, 0, o.m.pointer), (.moments, 1, o.v.pointer)]
            for (type, slot, ptr) in parts {
                let msg = try DataMessage.make(type: type, codec: .none, epoch: 0, step: step, partition: UInt32(p), slot: slot,
                                               values: UnsafeBufferPointer(start: ptr, count: r.count), using: codec)
                let frames = msg.frames
                try data.send(to: peer, frames)
                observed.sent(bytes: frames.reduce(0) { $0 + $1.count })
            }
        }
    }
}
