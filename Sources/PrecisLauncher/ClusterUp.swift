import Foundation
import PrecisTrain
import PrecisWire

extension ClusterOperations {
    /// Starts the coordinator, waits for its endpoint, then every host's servers and workers, all
    /// detached, each logging in `logFormat`; records each in RUN_DIR/cluster.json as it starts.
    /// Refuses while the state file lists live processes.
    public func up(config: String?, outputDir: String?, maxSteps: Int?, startTimeout: Double, logFormat: LogFormat = .text) throws {
        guard let configPath = config ?? spec.config else { throw LaunchError.noTrainingConfig(clusterFile: clusterPath) }
        if let old = try loadState() {
            let rows = launcher.liveness(old.processes)
            for (p, l) in rows { if case let .unknown(why) = l {
                say("warning: could not check \(p.label) on \(p.ssh ?? p.host): \(why); it may still be running")
            } }
            let live = rows.filter { $0.1 == .alive }.map { $0.0.label }
            if !live.isEmpty { throw LaunchError.alreadyUp(stateFile: statePath, live: live) }
        }
        try preflight(configPath: configPath)
        let keys = try prepareKeys()
        try distributeKeys()

        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        var state = ClusterState(clusterFile: clusterPath, config: configPath, runDir: runDir, binDir: spec.binDir,
                                 started: ISO8601DateFormatter().string(from: Date()), logFormat: logFormat.rawValue)

        // The coordinator first; the members need its endpoint.
        let coordHost = coordinatorHost
        try? FileManager.default.removeItem(atPath: endpointFile)
        if coordHost.isRemote { launcher.remove(endpointFile, on: coordHost) }
        let command = RoleCommand.coordinator(config: configPath, bind: spec.coordinatorBind, endpointFile: endpointFile,
                                              outputDir: outputDir, maxSteps: maxSteps, keys: keys).logging(logFormat)
        let coordinator = try launcher.start(command, name: "coordinator", on: coordHost)
        state.processes.append(coordinator)
        try save(state)
        say("started coordinator on \(coordinator.host) (pid \(coordinator.pid)), log \(coordinator.logLocation)")

        let endpoint = try waitForEndpoint(coordinator, on: coordHost, timeout: startTimeout)
        state.endpoint = endpoint
        try save(state)
        say("coordinator listening at \(endpoint)")

        // cluster.metrics_port: member i (servers first) serves on metrics_port + 1 + i, on metrics_bind.
        let metrics = ClusterFile.memberMetrics(trainingConfig: configPath)
        var psIndex = 0, wIndex = 0
        for h in spec.hosts {
            for _ in 0..<h.servers {
                let name = "ps\(psIndex)"
                let p = try launcher.start(.server(coordinator: endpoint, name: name, host: h.address, keys: keys,
                                                   metricsPort: RoleCommand.memberMetricsPort(base: metrics.port, index: psIndex),
                                                   metricsBind: metrics.bind).logging(logFormat), name: name, on: h)
                psIndex += 1
                state.processes.append(p)
                try save(state)
                started(p)
            }
        }
        for h in spec.hosts {
            for _ in 0..<h.workers {
                let p = try startWorker(index: wIndex, on: h, endpoint: endpoint, metrics: metrics, logFormat: logFormat)
                wIndex += 1
                state.processes.append(p)
                try save(state)
                started(p)
            }
        }
        say("cluster up: 1 coordinator, \(psIndex) server(s), \(wIndex) worker(s); state in \(statePath); `precis cluster status --cluster \(clusterPath)` shows progress")
    }

    /// The executables (and, where the coordinator runs, the training config) in place on every host.
    func preflight(configPath: String) throws {
        let coordRemote = spec.coordinatorHostEntry?.isRemote ?? false
        if spec.hosts.contains(where: { !$0.isRemote }) || !coordRemote {
            for r in Role.allCases where !FileManager.default.isExecutableFile(atPath: launcher.executable(r, remote: false)) {
                throw LaunchError.missingExecutable(path: launcher.executable(r, remote: false), clusterFile: clusterPath)
            }
        }
        if !coordRemote {
            guard FileManager.default.fileExists(atPath: configPath) else { throw LaunchError.missingTrainingConfig(path: configPath) }
            let planned = ClusterFile.plannedMembers(trainingConfig: configPath)
            let servers = planned.servers ?? 1, workers = planned.workers ?? 2
            if servers != spec.totalServers || workers != spec.totalWorkers {
                say("note: \(clusterPath) starts \(spec.totalServers) server(s) and \(spec.totalWorkers) worker(s); \(configPath) plans cluster.servers \(servers), cluster.workers \(workers)")
            }
        }
        var checked = Set<String>()
        for h in spec.hosts where h.isRemote {
            guard let dest = h.ssh, checked.insert(dest + "\u{0}" + launcher.workdir(h)).inserted else { continue }
            var script = "cd \(shellQuote(launcher.workdir(h))) || exit 3; "
            for r in Role.allCases {
                let exe = shellQuote(launcher.executable(r, remote: true))
                script += "test -x \(exe) || { echo \(shellQuote("missing " + launcher.executable(r, remote: true))); exit 4; }; "
            }
            if h.address == spec.coordinatorHost {
                script += "test -f \(shellQuote(configPath)) || { echo \(shellQuote("missing " + configPath)); exit 4; }; "
            }
            let r = launcher.shell.run(dest, script)
            if r.status != 0 {
                let why = r.status == 3 ? "no directory \(launcher.workdir(h))" : (r.out + r.err).trimmingCharacters(in: .whitespacesAndNewlines)
                throw LaunchError.hostNotReady(host: h.address, ssh: dest, reason: why.isEmpty ? "ssh failed (status \(r.status))" : why)
            }
        }
    }

    /// Polls for the coordinator's endpoint file; fails early if the coordinator exits.
    func waitForEndpoint(_ coordinator: ProcessRecord, on host: ClusterFile.Host, timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let t = launcher.read(endpointFile, on: host)?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty {
                return reachableEndpoint(t)
            }
            if launcher.liveness([coordinator])[0].1 == .dead {
                throw LaunchError.coordinatorExitedEarly(log: coordinator.logLocation, logTail: Self.quoted(launcher.logTail(coordinator)))
            }
            if Date() > deadline {
                throw LaunchError.coordinatorNotListening(pid: coordinator.pid, endpointFile: endpointFile, seconds: Int(timeout),
                                                          log: coordinator.logLocation, clusterFile: clusterPath,
                                                          logTail: Self.quoted(launcher.logTail(coordinator)))
            }
            Thread.sleep(forTimeInterval: coordinator.isRemote ? 1 : 0.2)
        }
    }
}
