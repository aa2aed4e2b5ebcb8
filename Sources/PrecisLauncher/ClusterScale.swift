import Foundation
import PrecisTrain
import PrecisWire

extension ClusterOperations {
    /// Starts or stops workers until `wanted` are alive: new ones round-robin over the hosts that
    /// run workers (the fewest first, file order on ties); leaving ones newest first, gracefully
    /// (SIGTERM: they finish or hand back their step and deregister), up to `timeout` seconds.
    public func scale(to wanted: Int, timeout: Double) throws {
        guard var state = try loadState() else { throw LaunchError.noCluster(stateFile: statePath) }
        let live = launcher.liveness(state.processes).filter { $0.1 == .alive }.map { $0.0 }
        let workers = live.filter { $0.role == .worker && $0.leaving != true }
        if wanted == workers.count {
            say("\(workers.count) worker(s) alive already")
            return
        }
        if wanted > workers.count {
            guard let co = state.processes.first(where: { $0.role == .coordinator }), live.contains(co) else {
                throw LaunchError.coordinatorNotRunning(stateFile: statePath)
            }
            guard let endpoint = state.endpoint else { throw LaunchError.noEndpointRecorded(stateFile: statePath) }
            let candidates = spec.hosts.filter { $0.workers > 0 }
            var perHost = candidates.map { h in workers.filter { $0.host == h.address && $0.ssh == h.ssh }.count }
            var next = (state.processes.filter { $0.role == .worker }.map(\.index).max() ?? -1) + 1
            for _ in workers.count..<wanted {
                // Round-robin: the host with the fewest live workers, in file order on ties.
                let i = perHost.indices.min { perHost[$0] < perHost[$1] || (perHost[$0] == perHost[$1] && $0 < $1) }!
                let p = try startWorker(index: next, on: candidates[i], endpoint: endpoint,
                                        metrics: ClusterFile.memberMetrics(trainingConfig: state.config),
                                        logFormat: state.logFormat.flatMap(LogFormat.init(rawValue:)) ?? .text)
                next += 1
                perHost[i] += 1
                state.processes.append(p)
                try save(state)
                started(p)
            }
            say("\(wanted) worker(s) now")
            return
        }
        // Fewer: the newest leave first.
        let leaving = Array(workers.sorted { $0.index > $1.index }.prefix(workers.count - wanted))
        for i in state.processes.indices where leaving.contains(where: { $0.name == state.processes[i].name }) {
            state.processes[i].leaving = true
        }
        try save(state)
        launcher.signal(leaving, .term)
        say("SIGTERM → " + leaving.map(\.label).joined(separator: ", "))
        let stuck = launcher.waitGone(leaving, timeout: timeout)
        let gone = leaving.filter { l in !stuck.contains { $0.name == l.name } }
        launcher.removePidFiles(gone)
        state.processes.removeAll { p in gone.contains { $0.name == p.name } }
        try save(state)
        if !gone.isEmpty { say("left: " + gone.map(\.name).joined(separator: ", ")) }
        if !stuck.isEmpty {
            say("still leaving after \(Int(timeout)) s: " + stuck.map(\.label).joined(separator: ", ")
                + " (marked leaving in \(statePath); `precis cluster down` stops them)")
        }
        say("\(wanted) worker(s) now")
    }
}
