import Foundation

extension ClusterOperations {
    /// Stops every process of the state file (or, without one, of the pid files in RUN_DIR): SIGTERM
    /// role by role (workers, servers, coordinator), SIGKILL after `timeout`; then removes the pid
    /// files and the endpoint file.
    public func down(timeout: Double) throws {
        let (state, procs) = try recordedProcesses()
        if state == nil {
            if procs.isEmpty {
                say("nothing to stop: no \(statePath) and no pid files in \(runDir)")
                return
            }
            say("no \(statePath); stopping the processes of the pid files in \(runDir)")
        }
        let stoppedAny = launcher.stop(procs, timeout: timeout) { event in
            switch event {
            case .terminated(let ps):
                say("SIGTERM → " + ps.map(\.label).joined(separator: ", "))
            case let .killed(ps, after):
                say("SIGKILL → " + ps.map { "\($0.label): still running after \(Int(after)) s" }.joined(separator: ", "))
            case .survived(let p):
                say("warning: \(p.label) on \(p.host) did not exit after SIGKILL")
            }
        }
        launcher.removePidFiles(procs)
        try? FileManager.default.removeItem(atPath: endpointFile)
        if let co = procs.first(where: { $0.role == .coordinator }), let dest = co.ssh {
            launcher.remove(endpointFile, on: .init(address: co.host, ssh: dest, workdir: co.workdir))
        }
        say(stoppedAny ? "cluster down" : "cluster already down (no live process)")
    }
}
