import Foundation
import PrecisTrain
import PrecisWire

/// `precis cluster up|down|status|scale` over a cluster file: which roles to start on which host
/// (the `Launcher` starts, watches and stops them) and the record of it in RUN_DIR/cluster.json.
/// What it does it tells through `say`, one line at a time (the CLI prints them).
public struct ClusterOperations {
    public let spec: ClusterFile
    /// The cluster file's path, for messages and the state file.
    public let clusterPath: String
    public let launcher: Launcher
    let say: (String) -> Void

    public init(spec: ClusterFile, clusterPath: String, here: String = FileManager.default.currentDirectoryPath,
                shell: RemoteShell = RemoteShell(), say: @escaping (String) -> Void) {
        self.spec = spec
        self.clusterPath = clusterPath
        self.say = say
        launcher = Launcher(runDir: spec.runDir, binDir: spec.binDir, here: here, shell: shell, warn: say)
    }

    public var runDir: String { spec.runDir }
    public var statePath: String { ClusterState.path(runDir: runDir) }
    /// Where the coordinator writes the endpoint it bound (on its host).
    public var endpointFile: String { runDir + "/coordinator.endpoint" }

    /// The coordinator's host entry (this machine when the file lists none at its address).
    var coordinatorHost: ClusterFile.Host { spec.coordinatorHostEntry ?? ClusterFile.Host(address: spec.coordinatorHost) }

    func loadState() throws -> ClusterState? { try ClusterState.load(statePath) }
    func save(_ state: ClusterState) throws { try state.save(statePath) }

    /// A wildcard bind address (0.0.0.0, *) is replaced by the coordinator's address.
    public func reachableEndpoint(_ e: String) -> String {
        for wild in ["tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"] where e.hasPrefix(wild) {
            return "tcp://\(spec.coordinatorHost):" + e.dropFirst(wild.count)
        }
        return e
    }

    /// The processes of the state file, or of the pid files in RUN_DIR when there is none.
    func recordedProcesses() throws -> (state: ClusterState?, processes: [ProcessRecord]) {
        if let state = try loadState() { return (state, state.processes) }
        return (nil, PidFile.records(in: runDir))
    }

    /// Starts worker `w<index>` on `host`, logging in `logFormat`, and records it; with the config's
    /// `metrics` port, its listener is on metrics_port + 1 + (servers + index).
    func startWorker(index: Int, on host: ClusterFile.Host, endpoint: String, metrics: (port: Int?, bind: String?),
                     logFormat: LogFormat) throws -> ProcessRecord {
        let name = "w\(index)"
        let keys = FileManager.default.fileExists(atPath: ClusterKeys.authorizedFile(keysDir)) ? keysDir : nil
        return try launcher.start(.worker(coordinator: endpoint, name: name, host: host.address, threads: host.threadsPerWorker, keys: keys,
                                          metricsPort: RoleCommand.memberMetricsPort(base: metrics.port, index: spec.totalServers + index),
                                          metricsBind: metrics.bind).logging(logFormat),
                                  name: name, on: host, threads: host.threadsPerWorker)
    }

    func started(_ p: ProcessRecord) {
        say("started \(p.name) on \(p.host) (pid \(p.pid)), log \(p.logLocation)")
    }

    static func quoted(_ lines: [String]) -> String { lines.map { "  | " + $0 }.joined(separator: "\n") }
}
