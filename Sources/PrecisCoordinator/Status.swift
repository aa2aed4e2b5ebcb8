import PrecisWire

extension StatusReport {
    /// The coordinator's answer to `statusRequest`: the run's phase and progress, and every server and
    /// worker it ever admitted (by id), with the seconds since each was last heard (one decimal).
    package init(phase: RunPhase, stepsDone: Int, maxSteps: Int, consistency: Consistency, endpoint: String, membership: Membership, now: Double) {
        func status(_ m: ClusterMember) -> MemberStatus {
            MemberStatus(name: m.name, host: m.host, pid: m.pid, alive: m.alive, contributions: m.contributions, endpoint: m.endpoint ?? "",
                         secondsSinceHeartbeat: ((now - m.lastSeen) * 10).rounded() / 10)
        }
        let all = membership.all
        self.init(state: phase, step: stepsDone, maxSteps: maxSteps, epoch: membership.epoch, consistency: consistency.rawValue,
                  endpoint: endpoint, servers: all.filter { $0.role == .server }.map(status),
                  workers: all.filter { $0.role == .worker }.map(status))
    }
}
