import Foundation
import PrecisCore
import PrecisTrain
import PrecisWire

/// A whole cluster on this host for one run (`precis train`, `precis bench cluster`): the
/// coordinator, `cluster.servers` parameter servers and `cluster.workers` workers as child
/// processes over TCP loopback, in this process's group (Ctrl-C reaches them all). The
/// coordinator's output comes here line by line (with `--progress-lines`: its `@progress` and
/// `@summary` lines too); the others log to `output_dir/logs/<name>.log`.
public struct LocalCluster {
    public let config: TrainingConfig
    public let configPath: String
    public let outputDir: String
    public let maxSteps: Int?
    /// Threads per worker (nil: cluster.threads_per_worker, else the cores shared among the workers).
    public let threads: Int?
    /// Where the role executables are.
    public let binDir: String
    /// How long the coordinator may take to listen (it loads and tokenizes the data first).
    public var listenTimeout = 600.0
    /// After the coordinator exits, how long the members get to exit by themselves (it tells them
    /// to) before they are stopped, and how long each role then gets between SIGTERM and SIGKILL.
    public var memberExitTimeout = 10.0
    /// How every role logs (`--log-format`); this launcher's own lines follow it too.
    public var logFormat = LogFormat.text

    public init(config: TrainingConfig, configPath: String, outputDir: String, maxSteps: Int? = nil, threads: Int? = nil,
                binDir: String = LocalCluster.executableDirectory) {
        self.config = config; self.configPath = configPath; self.outputDir = outputDir; self.maxSteps = maxSteps
        self.threads = threads; self.binDir = binDir
    }

    /// The directory of the running executable: the role executables are built beside `precis`.
    public static var executableDirectory: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    public var logDirectory: String { (outputDir as NSString).appendingPathComponent("logs") }

    /// Threads each worker runs.
    public var workerThreads: Int {
        let c = config.cluster
        return max(1, threads ?? c.threadsPerWorker ?? max(1, Compute.availableCores / c.workers))
    }

    /// Starts everything, hands each line of the coordinator's output to `onLine` (on this thread)
    /// and returns how the coordinator ended. Members still running after it are stopped (workers,
    /// servers), also when this throws.
    ///
    /// SIGINT or SIGTERM to this process stops the run: the coordinator is asked to end it (it tells
    /// the members to shut down), and whatever still runs after that is stopped as above, so nothing
    /// this started outlives it.
    public func run(onLine: (String) -> Void) throws -> ExitStatus {
        func note(_ s: String) -> String { logFormat == .json ? Logging.line("precis", s) : s }
        Member.installSignalHandlers()
        let logs = logDirectory
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let endpointFile = (logs as NSString).appendingPathComponent("coordinator.endpoint")
        try? FileManager.default.removeItem(atPath: endpointFile)

        let command = RoleCommand.coordinator(config: configPath, bind: "tcp://127.0.0.1:*", endpointFile: endpointFile,
                                              outputDir: outputDir, maxSteps: maxSteps, progressLines: true).logging(logFormat)
        let coordinator = try ChildProcess(command.argv(binDir: binDir), output: .lines)
        var members: [(role: Role, process: ChildProcess)] = []
        defer {
            for group in Role.stopGroups(members, role: \.role) { ChildProcess.stop(group.map(\.process), timeout: memberExitTimeout) }
            if coordinator.isRunning { coordinator.stop(timeout: memberExitTimeout) }
        }

        // Wait for the coordinator to listen, passing on what it prints meanwhile.
        var endpoint = ""
        let deadline = Date().addingTimeInterval(listenTimeout)
        while endpoint.isEmpty {
            if let d = try? SmallFile.read(endpointFile, limit: ClusterState.endpointFileLimit) {
                endpoint = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if endpoint.isEmpty, let ended = coordinator.exitStatus {
                coordinator.readLines(onLine)
                return ended
            }
            if Date() > deadline { throw LaunchError.localCoordinatorNotListening(seconds: Int(listenTimeout)) }
            if Member.terminationSignal != 0 { return coordinator.stop(timeout: memberExitTimeout) }
            if endpoint.isEmpty, coordinator.readLines(timeout: 0.05, onLine) {
                Thread.sleep(forTimeInterval: 0.01)  // its output ended; it is about to exit
            }
        }

        coordinator.readLines(timeout: 0, onLine)  // what it printed before it wrote the endpoint file

        let c = config.cluster
        func start(_ command: RoleCommand, _ name: String) throws {
            let log = (logs as NSString).appendingPathComponent("\(name).log")
            members.append((command.role, try ChildProcess(command.logging(logFormat).argv(binDir: binDir), output: .file(log))))
        }
        // cluster.metrics_port: the members' listeners by RoleCommand.memberMetricsPort (ps0, ps1, …, w0, …).
        for i in 0..<c.servers {
            try start(.server(coordinator: endpoint, name: "ps\(i)", threads: 1,
                              metricsPort: RoleCommand.memberMetricsPort(base: c.metricsPort, index: i)), "ps\(i)")
        }
        for i in 0..<c.workers {
            try start(.worker(coordinator: endpoint, name: "w\(i)", threads: workerThreads,
                              metricsPort: RoleCommand.memberMetricsPort(base: c.metricsPort, index: c.servers + i)), "w\(i)")
        }
        onLine(note("cluster on this host: coordinator \(endpoint), \(c.servers) server(s), \(c.workers) worker(s) × \(workerThreads) thread(s); logs in \(logs)"))

        var stopping = false
        while !coordinator.readLines(timeout: 0.2, onLine) {
            let signal = Member.terminationSignal
            guard signal != 0, !stopping else { continue }
            stopping = true
            onLine(note("signal \(signal): stopping the cluster"))
            coordinator.signal(SIGTERM)
        }
        let status = coordinator.wait()!
        // Members exit when the coordinator tells them to; give them a moment (the rest is `defer`'s).
        let until = Date().addingTimeInterval(memberExitTimeout)
        while members.contains(where: { $0.process.isRunning }) && Date() < until { Thread.sleep(forTimeInterval: 0.05) }
        return status
    }
}
