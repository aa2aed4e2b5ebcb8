import Foundation
import PrecisWire

/// What the coordinator does when the membership changes: welcome or refuse, tell the workers the
/// new view, and hand a lost member's work to the others.
extension Coordinator {
    /// `key`: the public key the `register` came with (nil without keys); the member is bound to it.
    func register(_ r: RegisterMessage, peer: [UInt8], key: String? = nil) throws {
        switch membership.register(r, identity: peer, key: key, phase: phase) {
        case .alreadyMember(let m):
            // It stopped hearing from this coordinator (a stall longer than heartbeat_timeout) and
            // dropped its work and its heartbeats: that incarnation is gone, and a new one joins now
            // (it would otherwise wait without an answer until lost, then 10 s more to register).
            guard let gone = membership.lose(m.id) else { return }
            try memberGone(gone, because: "registered again (it had stopped hearing from the coordinator)")
            try register(r, peer: peer, key: key)
        case .client:
            return
        case .refused(let reason, let transient):
            // A transient refusal suggests registering again once a dead member would have been noticed.
            let retry = transient ? min(10, max(0.5, cfg.cluster.heartbeatTimeout / 2)) : nil
            // The name and host as far as a member may have them (a refused one may be megabytes long).
            let name = r.name.utf8.count > ControlChecks.maxNameBytes ? String(decoding: r.name.utf8.prefix(64), as: UTF8.self) + "…" : r.name
            let host = r.host.utf8.count > ControlChecks.maxNameBytes ? String(decoding: r.host.utf8.prefix(64), as: UTF8.self) + "…" : r.host
            log("refused \(r.role.rawValue) \(name) (pid \(r.pid) on \(host)): \(reason)\(retry.map { String(format: "; it may try again in %.1f s", $0) } ?? "")")
            try router.send(to: peer, Control.frames(.refused, RefusedMessage(reason: reason, retryAfter: retry)))
        case .joined(let m, let count):
            try router.send(to: peer, Control.frames(.registered, RegisteredMessage(
                id: m.id, name: m.name, config: configText, configFile: options.config,
                modelConfig: String(decoding: try model.configJSON(), as: UTF8.self),
                heartbeatInterval: cfg.cluster.heartbeatInterval, heartbeatTimeout: cfg.cluster.heartbeatTimeout, dataDigest: plan.digest,
                outputDir: cfg.training.outputDir, partitionBytes: cfg.cluster.partitionBytes)))
            log("\(m.roleName) \(m.name) joined (pid \(r.pid) on \(r.host), \(r.threads) thread(s)"
                + "\(r.endpoint.map { ", data on \($0)" } ?? "")); \(count) \(m.roleName)(s), epoch \(membership.epoch)")
            if m.role == .server && phase == .recovering && membership.allServersAlive {
                try rollBack(reason: "server \(m.name) replaces the lost one")
            }
            if m.role == .worker && phase == .training {
                let handovers = scheduler.workerJoined(m.id, workers: membership.aliveWorkers)
                try sendView()
                // Contributions left without a worker (every worker had gone) go to the newcomer.
                try send(handovers: handovers)
            }
        }
    }

    func checkHeartbeats() throws {
        // The coordinator's own stall is not the members' silence (see `loopTurned`).
        membership.loopTurned()
        guard !membership.overdue().isEmpty else { return }
        // This loop may have been busy (a checkpoint prepared, an evaluation scored, the CPU taken
        // by others) while the members' heartbeats queued up: read what is waiting before judging.
        try receive(timeoutMs: 0)
        for (id, silence) in membership.overdue() {
            guard let m = membership.lose(id) else { continue }
            try memberGone(m, because: "lost: no heartbeat for \(String(format: "%.1f", silence)) s")
        }
    }

    /// A member left or was lost (the membership has marked it dead).
    func memberGone(_ m: ClusterMember, because why: String) throws {
        if m.role == .worker {
            status.workerGone(m.id)
            // The membership forgets its oldest dead members: so do the workers' paces.
            status.forget(workersNotIn: Set(membership.all.map(\.id)))
        }
        log("\(m.roleName) \(m.name) (pid \(m.pid) on \(m.host)) \(why); epoch \(membership.epoch)")
        if m.role == .server {
            switch phase {
            case .training, .initializing, .recovering: try serverLost(m)
            case .waiting: membership.removeServer(m.id)
            case .finishing: break
            }
            return
        }
        try reassignExternalEval(from: m.id)
        guard phase == .training else { return }
        try sendView()
        try reassignEval(from: m.id)
        let outcome = scheduler.workerLost(m.id, workers: membership.aliveWorkers)
        try send(handovers: outcome.handedOver)
        if let t = outcome.requeued { log("task of step \(t.step) goes back to the queue") }
        if let closed = outcome.closed { stepClosed(closed) }
    }

    /// sync: contributions that changed worker.
    func send(handovers: [Assignment]) throws {
        for a in handovers {
            log("contribution \(a.task.contribution) of step \(a.task.step) handed to \(membership[a.worker]?.name ?? "?")")
            try sendTask(a)
        }
    }

    /// `view` to every living worker: the servers (index, endpoint, partitions), the workers, the attempt.
    func sendView() throws {
        guard let p = layout.plan else { return }
        // The servers first: a worker's first pull should find itself announced.
        let members = Control.frames(.members, membersMessage(), epoch: membership.epoch)
        for sid in membership.servers { if let s = membership[sid], s.alive { try router.send(to: s.identity, members) } }
        let servers = membership.servers.enumerated().compactMap { index, sid in
            membership[sid].map { ServerInfo(id: index, name: $0.name, endpoint: $0.endpoint ?? "", partitions: p.partitions(of: index)) }
        }
        let workers = membership.aliveWorkers
        var v = ViewMessage(epoch: membership.epoch, servers: servers, plan: p, workers: workers.compactMap { membership[$0]?.name },
                            consistency: consistency, codec: Codec(name: cfg.cluster.codec), pullCodec: Codec(name: cfg.cluster.pullCodec),
                            attempt: attempt)
        v.layoutEpoch = layout.epoch
        for w in workers { try router.send(to: membership[w]!.identity, Control.frames(.view, v, epoch: membership.epoch)) }
    }

    /// Who the servers take data messages from: the coordinator's data connections and the living workers.
    func membersMessage() -> MembersMessage {
        MembersMessage(epoch: membership.epoch, coordinator: layout.dataIdentity,
                       workers: membership.aliveWorkers.compactMap { membership[$0]?.identity })
    }

    func broadcastShutdown(_ reason: String, code: Int32) {
        for m in membership.all where m.alive {
            try? router.send(to: m.identity, Control.frames(.shutdown, ShutdownMessage(reason: reason, exitCode: code)))
        }
        try? router.set(ZMQSocket.linger, 2000)
    }
}
