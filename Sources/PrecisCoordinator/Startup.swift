import Foundation
import PrecisCore
import PrecisWire

/// The servers' share of the flat buffer as last assigned, and the coordinator's data connections
/// to them (initial values out; final parameters and checkpoint shards in).
struct ServerLayout {
    /// The partitions and their owners; nil until the run starts.
    var plan: PartitionPlan?
    /// The membership epoch the servers got this layout at (their replies carry it).
    var epoch: UInt32 = 0
    /// Servers (by index) that have every partition's initial values.
    var initialized = Set<Int>()
    /// Server index → DEALER to its data endpoint.
    var dataSockets: [Int: ZMQSocket] = [:]
    /// The routing id of those DEALERs (announced to the servers in `members`; a random part
    /// makes it unguessable).
    var dataIdentity: [UInt8] = []
}

/// Starting the run: once the planned servers and workers are there (or some workers after
/// `start_timeout`), the flat buffer is cut into partitions over the servers and each gets its
/// partitions' initial values; training starts when every server has them.
extension Coordinator {
    func maybeStart() throws {
        guard membership.aliveServerCount == cfg.cluster.servers else { return }
        let nWorkers = membership.aliveWorkers.count
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
        let servers = membership.servers
        let p = PartitionPlan(total: model.table.count, servers: servers.count, partitionFloats: max(256, cfg.cluster.partitionBytes / 4),
                              cuts: model.gradientCuts)
        layout = ServerLayout(plan: p, epoch: membership.epoch)
        let a = cfg.training
        let segments = model.table.decaySegments(in: 0..<model.table.count).map { DecaySegment(lower: $0.range.lowerBound, upper: $0.range.upperBound, decay: $0.decay) }
        let codec = ShardCodec()
        layout.dataIdentity = Array("coordinator/\(getpid())/\(attempt)/\(UInt64.random(in: 0...UInt64.max))".utf8)
        for (index, sid) in servers.enumerated() {
            let m = membership[sid]!
            var assignment = AssignMessage(
                server: index, partitions: p.partitions(of: index), plan: p, segments: segments,
                beta1: a.adamBeta1, beta2: a.adamBeta2, eps: a.adamEpsilon, weightDecay: a.weightDecay,
                schedule: a.lrSchedulerType, learningRate: a.learningRate, warmupSteps: plan.warmupSteps, totalSteps: plan.totalSteps,
                consistency: consistency, pullCodec: Codec(name: cfg.cluster.pullCodec), startStep: startStep)
            assignment.epoch = membership.epoch
            assignment.maxContributions = plan.microPerStep
            try router.send(to: m.identity, Control.frames(.assign, assignment, epoch: membership.epoch))
            try router.send(to: m.identity, Control.frames(.members, membersMessage(), epoch: membership.epoch))
            let sock = try ZMQSocket(context, .dealer)
            try sock.set(ZMQSocket.routingID, bytes: layout.dataIdentity)
            try options.keys?.secureToServer(sock)
            try sock.limitForData(partitionFloats: WireLimits.largestPartition(p))
            try sock.connect(m.endpoint!)
            layout.dataSockets[index] = sock
            for part in p.partitions(of: index) {
                let r = p.range(part)
                if let (mm, vv) = checkpoints.resumeMoments {
                    for (type, buf) in [(MessageType.initMomentM, mm), (.initMomentV, vv)] {
                        let msg = try DataMessage.make(type: type, codec: .fp32, epoch: membership.epoch, step: UInt64(startStep), partition: UInt32(part),
                                                       values: UnsafeBufferPointer(start: buf.pointer + r.lowerBound, count: r.count), using: codec)
                        try sock.send(msg.frames)
                    }
                }
                let msg = try DataMessage.make(type: .initParameters, codec: .fp32, epoch: membership.epoch, step: 0, partition: UInt32(part),
                                               values: UnsafeBufferPointer(start: model.params.pointer + r.lowerBound, count: r.count), using: codec)
                try sock.send(msg.frames)
            }
        }
        log("\(p.count) partitions of about \(p.range(0).count * 4 / 1024) KiB over \(servers.count) server(s); sending the initial parameters")
    }

    /// A server has all its partitions' initial values. `sender`: the member it came from; it must be the server of the slot the message names, and
    /// the servers must be getting their initial values now, or it is dropped (thrown: logged).
    func serverInitialized(_ d: InitDoneMessage, from sender: Int?) throws {
        if let why = d.dropReason(senderSlot: sender.flatMap(membership.serverIndex(of:))) { throw CoordinatorError.invalidRequest(why) }
        guard phase == .initializing else { throw CoordinatorError.invalidRequest("the run is \(phase.rawValue), not initializing") }
        layout.initialized.insert(d.server)
        if phase == .initializing && layout.initialized.count == membership.servers.count { try startTraining() }
    }

    func startTraining() throws {
        phase = .training
        metrics.trainingStarted(at: Member.now())
        scheduler.trainingStarts(workers: membership.aliveWorkers, servers: membership.servers.count)
        try sendView()
        log("training: \(membership.aliveWorkers.count) worker(s), \(plan.totalSteps) steps")
    }
}
