import Foundation
import PrecisWire

extension StatusReport {
    /// The coordinator's answer to `statusRequest`: the run's phase and progress, and every server and
    /// worker it ever admitted (by id), with the seconds since each was last heard (one decimal) and
    /// its state (`silentAfter`: seconds of silence after which a living member is `silent`).
    package init(phase: RunPhase, stepsDone: Int, maxSteps: Int, consistency: Consistency, endpoint: String, membership: Membership, now: Double,
                 silentAfter: Double = SilentMember.seconds(heartbeatInterval: 1)) {
        func status(_ m: ClusterMember) -> MemberStatus {
            let silence = now - m.lastSeen
            let state = m.alive ? (silence > silentAfter ? "silent" : "alive") : (m.left ? "left" : "lost")
            return MemberStatus(name: m.name, host: m.host, pid: m.pid, alive: m.alive, contributions: m.contributions, endpoint: m.endpoint ?? "",
                                secondsSinceHeartbeat: (silence * 10).rounded() / 10, role: m.roleName, state: state)
        }
        let all = membership.all
        self.init(state: phase, step: stepsDone, maxSteps: maxSteps, epoch: membership.epoch, consistency: consistency.rawValue,
                  endpoint: endpoint, servers: all.filter { $0.role == .server }.map(status),
                  workers: all.filter { $0.role == .worker }.map(status))
    }

    /// The workers' figures from `tracker` (paces, rates, straggler flags among the living), at `now`.
    package mutating func addPaces(_ tracker: StatusTracker, membership: Membership, now: Double) {
        let ids = membership.all.filter { $0.role == .worker }.map(\.id)
        let flags = tracker.stragglers(membership.aliveWorkers, now: now)
        for (i, id) in ids.enumerated() where i < workers.count {
            guard let p = tracker.workers[id] else { continue }
            func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
            workers[i].examples = p.examples
            workers[i].computeSeconds = round3(p.computeSeconds)
            workers[i].examplesPerSecond = round3(Double(p.examples) / max(p.computeSeconds, 1e-9))
            if let first = p.firstTaskAt, now > first { workers[i].contributionsPerSecond = round3(Double(workers[i].contributions) / (now - first)) }
            workers[i].secondsPerContribution = round3(p.secondsPerContribution ?? 0)
            workers[i].taskAgeSeconds = workers[i].alive ? (p.taskAge(now: now) * 10).rounded() / 10 : 0
            workers[i].straggler = flags[id] ?? false
        }
    }
}

extension Coordinator {
    /// What the run is doing: the state, or within training what holds it.
    var activity: String {
        guard phase == .training else { return phase.rawValue }
        if evaluations.current != nil { return "evaluating" }
        if checkpoints.snapshot != nil { return "checkpointing" }
        if membership.aliveWorkers.isEmpty { return "paused" }
        return "training"
    }

    /// `statusRequest`'s answer (with the training curve when `history`).
    func statusReport(history: Bool = false) -> StatusReport {
        let now = Member.now()
        var r = StatusReport(phase: phase, stepsDone: scheduler.stepsDone, maxSteps: plan.totalSteps, consistency: consistency, endpoint: endpoint,
                             membership: membership, now: now, silentAfter: SilentMember.seconds(heartbeatInterval: cfg.cluster.heartbeatInterval))
        r.addPaces(status, membership: membership, now: now)
        r.phase = activity
        r.time = Logging.now()
        r.heartbeatTimeout = cfg.cluster.heartbeatTimeout
        r.trainEpoch = (Double(scheduler.stepsDone) / Double(max(1, plan.stepsPerEpoch)) * 1000).rounded() / 1000
        if let p = lastProgress {
            r.loss = status.latest?.loss ?? p.loss
            r.learningRate = p.learningRate
            r.gradNorm = status.latest?.gradNorm
            r.examplesPerSecond = (p.examplesPerSecond * 100).rounded() / 100
            r.elapsedSeconds = (metrics.elapsed(now: now) * 10).rounded() / 10
            r.etaSeconds = (p.eta * 10).rounded() / 10
        }
        r.evaluations = status.evaluations
        r.checkpoints = status.checkpoints
        r.pushes = pushLog.all
        if history { r.history = status.curve }
        return r
    }

    /// Publishes the status for other threads (`statusBoard`) at most every `interval` seconds (and always when `force`).
    func publishStatus(force: Bool = false, interval: Double = 0.5) {
        let now = Member.now()
        guard force || now - lastStatusPublished >= interval else { return }
        lastStatusPublished = now
        statusBoard.publish(statusReport(history: true))
    }
}
