/// What can go wrong starting, watching or stopping role processes; each message names what to
/// look at or do next.
public enum LaunchError: Error, CustomStringConvertible, Equatable {
    /// posix_spawn (or the pipe before it) failed.
    case spawnFailed(program: String, reason: String)
    /// Starting a role on a host over ssh failed.
    case remoteStartFailed(name: String, host: String, ssh: String, status: Int32, output: String)
    /// A host reached over ssh is not ready to run roles (no directory, a missing executable or config).
    case hostNotReady(host: String, ssh: String, reason: String)
    /// The cluster file names no training config and none was given.
    case noTrainingConfig(clusterFile: String)
    case missingTrainingConfig(path: String)
    case missingExecutable(path: String, clusterFile: String)
    /// `up` while the state file lists live processes.
    case alreadyUp(stateFile: String, live: [String])
    /// No RUN_DIR/cluster.json (status with no pid files either, scale).
    case noCluster(stateFile: String)
    case badStateFile(path: String, reason: String)
    case coordinatorNotRunning(stateFile: String)
    case noEndpointRecorded(stateFile: String)
    /// The coordinator ended before writing its endpoint file; `logTail` is its log's last lines.
    case coordinatorExitedEarly(log: String, logTail: String)
    /// The coordinator runs but wrote no endpoint file in time.
    case coordinatorNotListening(pid: Int32, endpointFile: String, seconds: Int, log: String, clusterFile: String, logTail: String)
    /// `precis train`'s local coordinator wrote no endpoint file in time.
    case localCoordinatorNotListening(seconds: Int)

    public var description: String {
        switch self {
        case let .spawnFailed(program, reason):
            return "could not start \(program): \(reason)"
        case let .remoteStartFailed(name, host, ssh, status, output):
            return "starting \(name) on \(host) (ssh \(ssh)) failed (status \(status)): \(output)"
        case let .hostNotReady(host, ssh, reason):
            return "host \(host) (ssh \(ssh)): \(reason); binaries and data must be on every host (see cluster/hosts.example.yaml)"
        case let .noTrainingConfig(clusterFile):
            return "\(clusterFile): no training config: set `config:` there or pass --config"
        case let .missingTrainingConfig(path):
            return "the training config \(path) does not exist"
        case let .missingExecutable(path, clusterFile):
            return "\(path) not found or not executable (bin_dir in \(clusterFile)); build first: make build"
        case let .alreadyUp(stateFile, live):
            return "the cluster is already up (\(stateFile) lists \(live.count) live process(es): \(live.joined(separator: ", "))); use `precis cluster down` first"
        case let .noCluster(stateFile):
            return "no cluster here: \(stateFile) does not exist (start one with `precis cluster up`)"
        case let .badStateFile(path, reason):
            return "\(path): not a cluster state file (\(reason)); remove it if no cluster is running"
        case let .coordinatorNotRunning(stateFile):
            return "the coordinator is not running (\(stateFile)); start the cluster with `precis cluster up`"
        case let .noEndpointRecorded(stateFile):
            return "\(stateFile) records no coordinator endpoint"
        case let .coordinatorExitedEarly(log, logTail):
            return "the coordinator exited before it was listening; see its log \(log):\n" + logTail
        case let .coordinatorNotListening(pid, endpointFile, seconds, log, clusterFile, logTail):
            return "the coordinator (pid \(pid)) did not write \(endpointFile) within \(seconds) s; see its log \(log) "
                + "(it is still running: `precis cluster down --cluster \(clusterFile)` stops it):\n" + logTail
        case let .localCoordinatorNotListening(seconds):
            return "the coordinator did not start listening within \(seconds) s"
        }
    }
}
