import ArgumentParser
import Foundation
import PrecisCore
import PrecisTrain
import PrecisWire
#if canImport(Glibc)
import Glibc
#endif

// `precis cluster up|down|status|scale`: starts the coordinator, parameter servers and workers a
// cluster file describes (this machine directly, other hosts over ssh), detached from the CLI, and
// keeps track of them in RUN_DIR/cluster.json. See docs/operations.md ("Running a cluster").

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Start, inspect, scale and stop a coordinator + parameter servers + workers described by a cluster file.",
        discussion: """
            The cluster file (cluster/local.yaml, cluster/hosts.example.yaml) lists the hosts, how many servers and \
            workers each runs, and where the coordinator listens. Processes run detached; logs and pid files go to \
            RUN_DIR/NAME.log and RUN_DIR/NAME.pid on each process's host, and RUN_DIR/cluster.json (here) records \
            what was started where. Hosts with `ssh:` are reached with `ssh DEST` ($PRECIS_SSH overrides the ssh \
            command, default "ssh -o BatchMode=yes -o ConnectTimeout=10").
            """,
        subcommands: [Up.self, Down.self, Status.self, Scale.self])

    struct FileOption: ParsableArguments {
        @Option(name: .customLong("cluster"), help: "The cluster file (YAML).")
        var cluster = "cluster/local.yaml"
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Start the coordinator, then every host's parameter servers and workers, in the background.")

        @OptionGroup var file: FileOption
        @Option(help: "The training config (overrides the cluster file's `config:`).")
        var config: String?
        @Option(name: .customLong("output-dir"), help: "Passed to the coordinator (overrides training.output_dir).")
        var outputDir: String?
        @Option(name: .customLong("max-steps"), help: "Passed to the coordinator (overrides training.max_steps).")
        var maxSteps: Int?
        @Option(name: .customLong("start-timeout"), help: "Seconds to wait for the coordinator to write its endpoint file.")
        var startTimeout = 120.0

        func run() throws {
            do {
                let spec = try ClusterFile.load(file.cluster)
                var ops = ClusterOps(spec: spec, clusterPath: file.cluster)
                try ops.up(config: config, outputDir: outputDir, maxSteps: maxSteps, startTimeout: startTimeout)
            } catch { throw fail(error) }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down",
            abstract: "Stop every process of the cluster: SIGTERM (workers, then servers, then the coordinator), SIGKILL after the timeout.")

        @OptionGroup var file: FileOption
        @Option(help: "Seconds each group (workers, servers, coordinator) gets to exit after SIGTERM before SIGKILL.")
        var timeout = 30.0

        func run() throws {
            do {
                let spec = try ClusterFile.load(file.cluster)
                var ops = ClusterOps(spec: spec, clusterPath: file.cluster)
                try ops.down(timeout: timeout)
            } catch { throw fail(error) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "One line per process (alive or dead, where its log is) and the coordinator's own view when it answers.")

        @OptionGroup var file: FileOption
        @Option(name: .customLong("query-timeout"), help: "Milliseconds to wait for the coordinator's status reply.")
        var queryTimeout = 2000

        func run() throws {
            do {
                let spec = try ClusterFile.load(file.cluster)
                var ops = ClusterOps(spec: spec, clusterPath: file.cluster)
                try ops.status(queryTimeoutMs: queryTimeout)
            } catch { throw fail(error) }
        }
    }

    struct Scale: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scale",
            abstract: "Start or stop workers until N are alive (new ones round-robin over the hosts; the newest leave first, gracefully).")

        @OptionGroup var file: FileOption
        @Option(help: "The number of live workers wanted.")
        var workers: Int
        @Option(help: "Seconds to wait for leaving workers to exit (they finish or hand back their step first).")
        var timeout = 60.0

        func validate() throws {
            if workers < 0 { throw ValidationError("--workers must not be negative") }
        }

        func run() throws {
            do {
                let spec = try ClusterFile.load(file.cluster)
                var ops = ClusterOps(spec: spec, clusterPath: file.cluster)
                try ops.scale(to: workers, timeout: timeout)
            } catch { throw fail(error) }
        }
    }
}

// MARK: - The coordinator's own view

/// The coordinator's status (a JSON text) from its status query, or why it did not answer.
/// The one place that talks to the coordinator.
func queryCoordinatorStatus(endpoint: String, timeoutMs: Int) -> Result<String, Error> {
    Result { try ClusterStatus.query(endpoint: endpoint, timeoutMs: timeoutMs) }
}

// MARK: - State: RUN_DIR/cluster.json

struct ClusterError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One started process.
struct ClusterProcess: Codable, Equatable {
    var name: String
    /// coordinator, ps or worker.
    var role: String
    /// The address it binds (its host entry's address).
    var host: String
    /// The ssh destination it was started through; nil on this machine.
    var ssh: String?
    /// The directory it runs in on a remote host (nil on this machine: the directory `up` ran in).
    var workdir: String?
    var pid: Int32
    /// Its log, on its host (relative to workdir for remote processes).
    var log: String
    var pidFile: String
    var threads: Int?
    /// Sent SIGTERM by `scale` and not yet gone; not counted as a live worker.
    var leaving: Bool?

    enum CodingKeys: String, CodingKey {
        case name, role, host, ssh, workdir, pid, log, threads, leaving
        case pidFile = "pid_file"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(role, forKey: .role)
        try c.encode(host, forKey: .host)
        try c.encode(ssh, forKey: .ssh)  // null for this machine
        try c.encodeIfPresent(workdir, forKey: .workdir)
        try c.encode(pid, forKey: .pid)
        try c.encode(log, forKey: .log)
        try c.encode(pidFile, forKey: .pidFile)
        try c.encodeIfPresent(threads, forKey: .threads)
        if leaving == true { try c.encode(true, forKey: .leaving) }
    }

    var isRemote: Bool { ssh != nil }
    /// Where its log is, for people: `run/w0.log` or `user@host:/srv/precis/run/w0.log`.
    var logLocation: String {
        guard let ssh else { return log }
        return "\(ssh):" + (log.hasPrefix("/") ? log : "\(workdir ?? ".")/\(log)")
    }
    /// Workers are w0, w1, …: the number, for ordering and for the next free name.
    var index: Int { Int(name.drop { !$0.isNumber }) ?? -1 }
    /// Stop order: workers, then servers, then the coordinator.
    var stopGroup: Int { role == "worker" ? 0 : role == "ps" ? 1 : 2 }
}

struct ClusterState: Codable {
    var clusterFile: String
    var config: String
    var runDir: String
    var binDir: String
    /// The endpoint members connect to (from the coordinator's endpoint file).
    var endpoint: String?
    var started: String
    var processes: [ClusterProcess]

    enum CodingKeys: String, CodingKey {
        case clusterFile = "cluster_file", config, runDir = "run_dir", binDir = "bin_dir", endpoint, started, processes
    }
}

enum Liveness: Equatable {
    case alive, dead
    /// Its host could not be asked (ssh failed).
    case unknown(String)

    var word: String {
        switch self {
        case .alive: return "alive"
        case .dead: return "dead"
        case .unknown: return "unknown"
        }
    }
}

// MARK: - Operations

struct ClusterOps {
    let spec: ClusterFile
    let clusterPath: String
    let here = FileManager.default.currentDirectoryPath
    let sshCommand: [String]

    init(spec: ClusterFile, clusterPath: String) {
        self.spec = spec
        self.clusterPath = clusterPath
        let env = ProcessInfo.processInfo.environment["PRECIS_SSH"].map { $0.split(separator: " ").map(String.init) } ?? []
        sshCommand = env.isEmpty ? ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"] : env
    }

    var runDir: String { spec.runDir }
    var statePath: String { runDir + "/cluster.json" }
    var endpointFile: String { runDir + "/coordinator.endpoint" }

    // MARK: up

    mutating func up(config: String?, outputDir: String?, maxSteps: Int?, startTimeout: Double) throws {
        guard let configPath = config ?? spec.config else {
            throw ClusterError("\(clusterPath): no training config: set `config:` there or pass --config")
        }
        if let old = try loadState() {
            let rows = liveness(old.processes)
            let live = rows.filter { $0.1 == .alive }.map { "\($0.0.name) (pid \($0.0.pid))" }
            for (p, l) in rows { if case let .unknown(why) = l {
                print("warning: could not check \(p.name) (pid \(p.pid)) on \(p.ssh ?? p.host): \(why); it may still be running")
            } }
            if !live.isEmpty {
                throw ClusterError("the cluster is already up (\(statePath) lists \(live.count) live process(es): \(live.joined(separator: ", "))); use `precis cluster down` first")
            }
        }
        let coordHost = spec.coordinatorHostEntry
        let coordRemote = coordHost?.isRemote ?? false

        // Preflight: executables (and, where the coordinator runs, the training config) in place.
        let roles = ["precis-coordinator", "precis-ps", "precis-worker"]
        let localHosts = spec.hosts.filter { !$0.isRemote }
        if !localHosts.isEmpty || !coordRemote {
            for r in roles where !FileManager.default.isExecutableFile(atPath: binPath(r, remote: false)) {
                throw ClusterError("\(binPath(r, remote: false)) not found or not executable (bin_dir in \(clusterPath)); build first: make build")
            }
        }
        if !coordRemote {
            guard FileManager.default.fileExists(atPath: configPath) else {
                throw ClusterError("the training config \(configPath) does not exist")
            }
            let planned = ClusterFile.plannedMembers(trainingConfig: configPath)
            let servers = planned.servers ?? 1, workers = planned.workers ?? 2
            if servers != spec.totalServers || workers != spec.totalWorkers {
                print("note: \(clusterPath) starts \(spec.totalServers) server(s) and \(spec.totalWorkers) worker(s); \(configPath) plans cluster.servers \(servers), cluster.workers \(workers)")
            }
        }
        var checked = Set<String>()
        for h in spec.hosts where h.isRemote {
            let key = h.ssh! + "\u{0}" + workdir(h)
            guard checked.insert(key).inserted else { continue }
            var script = "cd \(q(workdir(h))) || exit 3; "
            for r in roles { script += "test -x \(q(binPath(r, remote: true))) || { echo \(q("missing " + binPath(r, remote: true))); exit 4; }; " }
            if h.address == spec.coordinatorHost {
                script += "test -f \(q(configPath)) || { echo \(q("missing " + configPath)); exit 4; }; "
            }
            let r = ssh(h.ssh!, script)
            if r.status != 0 {
                let why = r.status == 3 ? "no directory \(workdir(h))" : (r.out + r.err).trimmingCharacters(in: .whitespacesAndNewlines)
                throw ClusterError("host \(h.address) (ssh \(h.ssh!)): \(why.isEmpty ? "ssh failed (status \(r.status))" : why); binaries and data must be on every host (see cluster/hosts.example.yaml)")
            }
        }

        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        var state = ClusterState(clusterFile: clusterPath, config: configPath, runDir: runDir, binDir: spec.binDir, endpoint: nil,
                                 started: ISO8601DateFormatter().string(from: Date()), processes: [])

        // The coordinator first; the members need its endpoint.
        try? FileManager.default.removeItem(atPath: endpointFile)
        if coordRemote, let h = coordHost { _ = ssh(h.ssh!, "cd \(q(workdir(h))) && rm -f \(q(endpointFile))") }
        var args = ["--config", configPath, "--bind", spec.coordinatorBind, "--endpoint-file", endpointFile]
        if let outputDir { args += ["--output-dir", outputDir] }
        if let maxSteps { args += ["--max-steps", String(maxSteps)] }
        let coordinatorHostEntry = coordHost ?? ClusterFile.Host(address: spec.coordinatorHost)
        let coordinator = try start(name: "coordinator", role: "coordinator", binary: "precis-coordinator", args: args,
                                    on: coordinatorHostEntry, threads: nil)
        state.processes.append(coordinator)
        try save(state)
        print("started coordinator on \(coordinator.host) (pid \(coordinator.pid)), log \(coordinator.logLocation)")

        let endpoint = try waitForEndpoint(coordinator, timeout: startTimeout)
        state.endpoint = endpoint
        try save(state)
        print("coordinator listening at \(endpoint)")

        var psIndex = 0, wIndex = 0
        for h in spec.hosts {
            for _ in 0..<h.servers {
                let p = try start(name: "ps\(psIndex)", role: "ps", binary: "precis-ps",
                                  args: ["--coordinator", endpoint, "--host", h.address, "--name", "ps\(psIndex)"], on: h, threads: nil)
                psIndex += 1
                state.processes.append(p)
                try save(state)
                print("started \(p.name) on \(p.host) (pid \(p.pid)), log \(p.logLocation)")
            }
        }
        for h in spec.hosts {
            for _ in 0..<h.workers {
                let p = try startWorker(index: wIndex, on: h, endpoint: endpoint)
                wIndex += 1
                state.processes.append(p)
                try save(state)
                print("started \(p.name) on \(p.host) (pid \(p.pid)), log \(p.logLocation)")
            }
        }
        print("cluster up: 1 coordinator, \(psIndex) server(s), \(wIndex) worker(s); state in \(statePath); `precis cluster status --cluster \(clusterPath)` shows progress")
    }

    func startWorker(index: Int, on h: ClusterFile.Host, endpoint: String) throws -> ClusterProcess {
        let name = "w\(index)"
        return try start(name: name, role: "worker", binary: "precis-worker",
                         args: ["--coordinator", endpoint, "--host", h.address, "--name", name, "--threads", String(h.threadsPerWorker)],
                         on: h, threads: h.threadsPerWorker)
    }

    /// Polls for the coordinator's endpoint file; fails early if the coordinator exits.
    func waitForEndpoint(_ coordinator: ClusterProcess, timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var text: String?
            if let ssh = coordinator.ssh {
                let r = self.ssh(ssh, "cd \(q(coordinator.workdir ?? here)) && cat \(q(endpointFile)) 2>/dev/null")
                if r.status == 0 { text = r.out }
            } else if let d = FileManager.default.contents(atPath: endpointFile) {
                text = String(decoding: d, as: UTF8.self)
            }
            if let t = text?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty {
                return reachableEndpoint(t)
            }
            if liveness([coordinator])[0].1 == .dead {
                throw ClusterError("the coordinator exited before it was listening; see its log \(coordinator.logLocation):\n" + logTail(coordinator))
            }
            if Date() > deadline {
                throw ClusterError("the coordinator (pid \(coordinator.pid)) did not write \(endpointFile) within \(Int(timeout)) s; see its log \(coordinator.logLocation) (it is still running: `precis cluster down --cluster \(clusterPath)` stops it):\n" + logTail(coordinator))
            }
            Thread.sleep(forTimeInterval: coordinator.isRemote ? 1 : 0.2)
        }
    }

    /// A wildcard bind address (0.0.0.0, *) is replaced by the coordinator's address.
    func reachableEndpoint(_ e: String) -> String {
        for wild in ["tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"] where e.hasPrefix(wild) {
            return "tcp://\(spec.coordinatorHost):" + e.dropFirst(wild.count)
        }
        return e
    }

    // MARK: down

    mutating func down(timeout: Double) throws {
        var procs: [ClusterProcess]
        if let state = try loadState() {
            procs = state.processes
        } else {
            procs = pidFileProcesses()
            if procs.isEmpty {
                print("nothing to stop: no \(statePath) and no pid files in \(runDir)")
                return
            }
            print("no \(statePath); stopping the processes of the pid files in \(runDir)")
        }
        var stoppedAny = false
        for group in 0...2 {
            let members = procs.filter { $0.stopGroup == group }
            let live = liveness(members).filter { $0.1 != .dead }.map { $0.0 }
            guard !live.isEmpty else { continue }
            stoppedAny = true
            signal(live, "TERM")
            print("SIGTERM → " + live.map { "\($0.name) (pid \($0.pid))" }.joined(separator: ", "))
            let left = waitGone(live, timeout: timeout)
            if !left.isEmpty {
                signal(left, "KILL")
                print("SIGKILL → " + left.map { "\($0.name) (pid \($0.pid)): still running after \(Int(timeout)) s" }.joined(separator: ", "))
                let stuck = waitGone(left, timeout: 5)
                for p in stuck { print("warning: \(p.name) (pid \(p.pid)) on \(p.host) did not exit after SIGKILL") }
            }
        }
        removePidFiles(procs)
        try? FileManager.default.removeItem(atPath: endpointFile)
        if let co = procs.first(where: { $0.role == "coordinator" }), let ssh = co.ssh {
            _ = self.ssh(ssh, "cd \(q(co.workdir ?? here)) && rm -f \(q(endpointFile))")
        }
        print(stoppedAny ? "cluster down" : "cluster already down (no live process)")
    }

    /// Local processes named by RUN_DIR/*.pid (when cluster.json is missing).
    func pidFileProcesses() -> [ClusterProcess] {
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: runDir) else { return [] }
        return files.filter { $0.hasSuffix(".pid") }.sorted().compactMap { f in
            let name = String(f.dropLast(4))
            guard let d = FileManager.default.contents(atPath: "\(runDir)/\(f)"),
                  let pid = Int32(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
            let role = name == "coordinator" ? "coordinator" : name.hasPrefix("ps") ? "ps" : "worker"
            return ClusterProcess(name: name, role: role, host: "(this machine)", ssh: nil, workdir: nil, pid: pid,
                                  log: "\(runDir)/\(name).log", pidFile: "\(runDir)/\(f)", threads: nil, leaving: nil)
        }
    }

    // MARK: status

    mutating func status(queryTimeoutMs: Int) throws {
        let procs: [ClusterProcess]
        var endpoint: String?
        if let state = try loadState() {
            procs = state.processes
            endpoint = state.endpoint
            print("cluster from \(state.clusterFile), config \(state.config), started \(state.started)")
        } else {
            procs = pidFileProcesses()
            if procs.isEmpty { throw ClusterError("no cluster here: \(statePath) does not exist (start one with `precis cluster up`)") }
            print("no \(statePath); showing the pid files in \(runDir)")
        }
        if endpoint == nil, let d = FileManager.default.contents(atPath: endpointFile) {
            endpoint = reachableEndpoint(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let rows = liveness(procs)
        let header = ["NAME", "ROLE", "HOST", "PID", "STATE", "LOG"]
        var table = [header]
        for (p, l) in rows {
            var state = l.word
            if p.leaving == true { state += " (leaving)" }
            table.append([p.name, p.role, p.host + (p.ssh.map { " (ssh \($0))" } ?? ""), String(p.pid), state, p.logLocation])
        }
        let widths = (0..<header.count).map { c in table.map { $0[c].count }.max() ?? 0 }
        for row in table {
            print(row.enumerated().map { c, s in c == row.count - 1 ? s : s.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
        }
        for (p, l) in rows { if case let .unknown(why) = l { print("\(p.name): could not ask \(p.ssh ?? p.host): \(why)") } }
        let alive = rows.filter { $0.1 == .alive }
        let liveWorkers = alive.filter { $0.0.role == "worker" && $0.0.leaving != true }.count
        print("\(alive.count) of \(rows.count) process(es) alive (\(liveWorkers) worker(s))")

        if let co = rows.first(where: { $0.0.role == "coordinator" }), co.1 == .dead {
            print("coordinator: not running; the last line of its log \(co.0.logLocation):\n" + logTail(co.0, lines: 1))
            return
        }
        guard let endpoint else {
            print("coordinator: no endpoint recorded (it never started listening)")
            return
        }
        switch queryCoordinatorStatus(endpoint: endpoint, timeoutMs: queryTimeoutMs) {
        case .success(let json):
            print("coordinator at \(endpoint): " + describeCoordinatorStatus(json))
        case .failure(let error):
            print("coordinator at \(endpoint) is unreachable (\(error)); the states above come from the pid files")
        }
    }

    /// `{"state":"training","step":12,"max_steps":100,"epoch":3,"servers":[…],"workers":[…]}` as lines.
    func describeCoordinatorStatus(_ json: String) -> String {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else { return json }
        func num(_ k: String) -> String? {
            guard let v = o[k] else { return nil }
            if let d = v as? Double, d != d.rounded() { return String(format: "%.2f", d) }
            return "\(v)"
        }
        var line = "\(o["state"] ?? "?")"
        if let s = num("step") { line += ", step \(s)" + (num("max_steps").map { "/\($0)" } ?? "") }
        if let e = num("epoch") { line += ", membership epoch \(e)" }
        for key in ["servers", "workers"] {
            guard let members = o[key] as? [[String: Any]] else { continue }
            let live = members.filter { ($0["alive"] as? Bool) ?? true }.count
            let names = members.map { m -> String in
                var s = "\(m["name"] ?? "?")@\(m["host"] ?? "?")"
                if (m["alive"] as? Bool) == false { s += " (gone)" }
                if let st = m["step"] { s += " step \(st)" }
                if key == "workers", let c = m["contributions"] { s += " \(c) contribution(s)" }
                if let hb = m["seconds_since_heartbeat"] as? Double, hb >= 2 { s += String(format: " (no heartbeat for %.1f s)", hb) }
                return s
            }
            line += "\n  \(key): \(live)/\(members.count) alive: " + names.joined(separator: ", ")
        }
        for (k, v) in o.sorted(by: { $0.key < $1.key }) where !["state", "step", "max_steps", "epoch", "servers", "workers", "endpoint"].contains(k) {
            line += "\n  \(k): \(v)"
        }
        return line
    }

    // MARK: scale

    mutating func scale(to wanted: Int, timeout: Double) throws {
        guard var state = try loadState() else {
            throw ClusterError("no cluster here: \(statePath) does not exist (start one with `precis cluster up`)")
        }
        let rows = liveness(state.processes)
        let live = rows.filter { $0.1 == .alive }.map { $0.0 }
        let workers = live.filter { $0.role == "worker" && $0.leaving != true }
        if wanted == workers.count {
            print("\(workers.count) worker(s) alive already")
            return
        }
        if wanted > workers.count {
            guard let co = state.processes.first(where: { $0.role == "coordinator" }), live.contains(co) else {
                throw ClusterError("the coordinator is not running (\(statePath)); start the cluster with `precis cluster up`")
            }
            guard let endpoint = state.endpoint else { throw ClusterError("\(statePath) records no coordinator endpoint") }
            let candidates = spec.hosts.filter { $0.workers > 0 }
            var perHost = candidates.map { h in workers.filter { $0.host == h.address && $0.ssh == h.ssh }.count }
            var next = (state.processes.filter { $0.role == "worker" }.map(\.index).max() ?? -1) + 1
            for _ in workers.count..<wanted {
                // Round-robin: the host with the fewest live workers, in file order on ties.
                let i = perHost.indices.min { perHost[$0] < perHost[$1] || (perHost[$0] == perHost[$1] && $0 < $1) }!
                let p = try startWorker(index: next, on: candidates[i], endpoint: endpoint)
                next += 1
                perHost[i] += 1
                state.processes.append(p)
                try save(state)
                print("started \(p.name) on \(p.host) (pid \(p.pid)), log \(p.logLocation)")
            }
            print("\(wanted) worker(s) now")
            return
        }
        // Fewer: the newest leave first, gracefully (SIGTERM: finish or hand back the step, deregister).
        let leaving = workers.sorted { $0.index > $1.index }.prefix(workers.count - wanted).map { $0 }
        for i in state.processes.indices where leaving.contains(where: { $0.name == state.processes[i].name }) {
            state.processes[i].leaving = true
        }
        try save(state)
        signal(leaving, "TERM")
        print("SIGTERM → " + leaving.map { "\($0.name) (pid \($0.pid))" }.joined(separator: ", "))
        let stuck = waitGone(leaving, timeout: timeout)
        let gone = leaving.filter { l in !stuck.contains { $0.name == l.name } }
        removePidFiles(gone)
        state.processes.removeAll { p in gone.contains { $0.name == p.name } }
        try save(state)
        if !gone.isEmpty { print("left: " + gone.map(\.name).joined(separator: ", ")) }
        if !stuck.isEmpty {
            print("still leaving after \(Int(timeout)) s: " + stuck.map { "\($0.name) (pid \($0.pid))" }.joined(separator: ", ")
                  + " (marked leaving in \(statePath); `precis cluster down` stops them)")
        }
        print("\(wanted) worker(s) now")
    }

    // MARK: processes

    func binPath(_ name: String, remote: Bool) -> String {
        let p = spec.binDir + "/" + name
        return p.hasPrefix("/") || remote ? p : here + "/" + p
    }

    func workdir(_ h: ClusterFile.Host) -> String { h.workdir ?? here }

    /// Starts one role on its host, detached, stdout+stderr to RUN_DIR/NAME.log, pid to RUN_DIR/NAME.pid.
    func start(name: String, role: String, binary: String, args: [String], on h: ClusterFile.Host, threads: Int?) throws -> ClusterProcess {
        let log = "\(runDir)/\(name).log", pidFile = "\(runDir)/\(name).pid"
        if let dest = h.ssh {
            let cmd = ([binPath(binary, remote: true)] + args).map(q).joined(separator: " ")
            let script = "cd \(q(workdir(h))) && mkdir -p \(q(runDir)) && { setsid nohup \(cmd) > \(q(log)) 2>&1 < /dev/null & echo $! > \(q(pidFile)); echo $!; }"
            let r = ssh(dest, script)
            guard r.status == 0, let pid = r.out.split(separator: "\n").last.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) else {
                throw ClusterError("starting \(name) on \(h.address) (ssh \(dest)) failed (status \(r.status)): \((r.out + r.err).trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            return ClusterProcess(name: name, role: role, host: h.address, ssh: dest, workdir: workdir(h), pid: pid, log: log,
                                  pidFile: pidFile, threads: threads, leaving: nil)
        }
        let pid = try spawnDetached(binPath(binary, remote: false), args, log: log)
        try AtomicFile.write(Data("\(pid)\n".utf8), to: pidFile)
        return ClusterProcess(name: name, role: role, host: h.address, ssh: nil, workdir: nil, pid: pid, log: log,
                              pidFile: pidFile, threads: threads, leaving: nil)
    }

    /// Whether each process runs (a pid that exists, is not a zombie, and runs a precis executable).
    func liveness(_ procs: [ClusterProcess]) -> [(ClusterProcess, Liveness)] {
        var result = [String: Liveness]()
        for p in procs where !p.isRemote { result[p.name] = localAlive(p.pid) ? .alive : .dead }
        let remote = Dictionary(grouping: procs.filter(\.isRemote), by: { $0.ssh! })
        for (dest, ps) in remote {
            let pids = ps.map { String($0.pid) }.joined(separator: " ")
            let script = "for p in \(pids); do if kill -0 $p 2>/dev/null && [ \"$(sed 's/^.*) //' /proc/$p/stat | cut -c1)\" != Z ] && tr '\\0' ' ' < /proc/$p/cmdline | grep -q precis; then echo $p; fi; done"
            let r = ssh(dest, script)
            if r.status != 0 {
                let why = r.err.trimmingCharacters(in: .whitespacesAndNewlines)
                for p in ps { result[p.name] = .unknown(why.isEmpty ? "ssh status \(r.status)" : why) }
            } else {
                let up = Set(r.out.split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) })
                for p in ps { result[p.name] = up.contains(p.pid) ? .alive : .dead }
            }
        }
        return procs.map { ($0, result[$0.name] ?? .dead) }
    }

    func localAlive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        if let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat") {
            let s = String(decoding: stat, as: UTF8.self)
            if let close = s.lastIndex(of: ")"), s[s.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") {
                return false
            }
        }
        if let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !cmd.isEmpty,
           !String(decoding: cmd, as: UTF8.self).contains("precis") {
            return false  // the pid was reused by something else
        }
        return true
    }

    func signal(_ procs: [ClusterProcess], _ sig: String) {
        let number = sig == "KILL" ? SIGKILL : SIGTERM
        for p in procs where !p.isRemote { _ = kill(p.pid, number) }
        for (dest, ps) in Dictionary(grouping: procs.filter(\.isRemote), by: { $0.ssh! }) {
            let r = ssh(dest, "kill -\(sig) \(ps.map { String($0.pid) }.joined(separator: " ")) 2>/dev/null; true")
            if r.status != 0 { print("warning: could not signal \(ps.map(\.name).joined(separator: ", ")) on \(dest): \(r.err)") }
        }
    }

    /// Waits until every process is dead; returns those still running at the timeout.
    func waitGone(_ procs: [ClusterProcess], timeout: Double) -> [ClusterProcess] {
        let deadline = Date().addingTimeInterval(timeout)
        var left = procs
        while true {
            left = liveness(left).filter { $0.1 != .dead }.map { $0.0 }
            if left.isEmpty || Date() > deadline { return left }
            Thread.sleep(forTimeInterval: left.contains(where: \.isRemote) ? 1 : 0.1)
        }
    }

    func removePidFiles(_ procs: [ClusterProcess]) {
        for p in procs where !p.isRemote { try? FileManager.default.removeItem(atPath: p.pidFile) }
        for (dest, ps) in Dictionary(grouping: procs.filter(\.isRemote), by: { $0.ssh! }) {
            let wd = ps[0].workdir ?? here
            _ = ssh(dest, "cd \(q(wd)) && rm -f " + ps.map { q($0.pidFile) }.joined(separator: " "))
        }
    }

    func logTail(_ p: ClusterProcess, lines: Int = 20) -> String {
        let text: String
        if let dest = p.ssh {
            text = ssh(dest, "cd \(q(p.workdir ?? here)) && tail -n \(lines) \(q(p.log))").out
        } else {
            text = FileManager.default.contents(atPath: p.log).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
        return tail.split(separator: "\n").map { "  | " + $0 }.joined(separator: "\n")
    }

    // MARK: state file

    func loadState() throws -> ClusterState? {
        guard let d = FileManager.default.contents(atPath: statePath) else { return nil }
        do { return try JSONDecoder().decode(ClusterState.self, from: d) } catch {
            throw ClusterError("\(statePath): not a cluster state file (\(error)); remove it if no cluster is running")
        }
    }

    func save(_ state: ClusterState) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(state) + Data("\n".utf8), to: statePath)
    }

    // MARK: ssh

    /// Runs `script` with /bin/sh on `dest` (one ssh argument: the remote shell runs it).
    func ssh(_ dest: String, _ script: String) -> (status: Int32, out: String, err: String) {
        runCommand(sshCommand + [dest, script])
    }
}

/// Single-quotes a word for a POSIX shell.
func q(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+=:@,%".contains($0) }), s.allSatisfy(\.isASCII) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Runs a command (PATH lookup), stdin from /dev/null, capturing its output. Returns once the command
/// exits, even if something it started in the background still holds its output pipes.
func runCommand(_ argv: [String]) -> (status: Int32, out: String, err: String) {
    var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
    guard pipe(&outPipe) == 0 else { return (127, "", "pipe: \(String(cString: strerror(errno)))") }
    guard pipe(&errPipe) == 0 else {
        close(outPipe[0]); close(outPipe[1])
        return (127, "", "pipe: \(String(cString: strerror(errno)))")
    }
    let actions = SpawnActions()
    posix_spawn_file_actions_addopen(&actions.raw, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions.raw, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions.raw, errPipe[1], 2)
    markDescriptorsCloseOnExec()
    let attr = SpawnAttributes(newSession: false)
    let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for a in cargv { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, argv[0], &actions.raw, &attr.raw, cargv, environ)
    close(outPipe[1]); close(errPipe[1])
    guard rc == 0 else {
        close(outPipe[0]); close(errPipe[0])
        return (127, "", "could not run \(argv[0]): \(String(cString: strerror(rc)))")
    }
    var out = [UInt8](), err = [UInt8]()
    var fds = [pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)]
    var open = 2
    var status: Int32 = 0
    var exited = false
    var buffer = [UInt8](repeating: 0, count: 65536)
    while open > 0 {
        if !exited {
            let w = waitpid(pid, &status, WNOHANG)
            if w == pid { exited = true }
        }
        let n = poll(&fds, nfds_t(fds.count), exited ? 0 : 100)
        if n == 0 && exited { break }  // exited and nothing left to read (a background child may hold the pipes)
        if n < 0 { if errno == EINTR { continue } else { break } }
        for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
            let got = read(fds[i].fd, &buffer, buffer.count)
            if got > 0 {
                if i == 0 { out += buffer[0..<got] } else { err += buffer[0..<got] }
            } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                close(fds[i].fd); fds[i].fd = -1; open -= 1
            }
        }
    }
    for f in fds where f.fd >= 0 { close(f.fd) }
    if !exited { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
    // Exited: the code; killed by a signal: 128 + the signal, as shells report it.
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// Marks every descriptor above stderr close-on-exec, so spawned processes inherit only 0, 1 and 2
/// (a detached role must not keep this CLI's pipes open; glibc's closefrom file action is not
/// imported into Swift).
func markDescriptorsCloseOnExec() {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) }
        ?? Array(3..<1024)
    for fd in fds where fd > 2 {
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }
}

/// posix_spawn file actions, destroyed with their owner.
final class SpawnActions {
    var raw = posix_spawn_file_actions_t()
    init() { posix_spawn_file_actions_init(&raw) }
    deinit { posix_spawn_file_actions_destroy(&raw) }
}

/// posix_spawn attributes: an empty signal mask, default dispositions for the signals that matter,
/// optionally a new session.
final class SpawnAttributes {
    var raw = posix_spawnattr_t()
    init(newSession: Bool) {
        posix_spawnattr_init(&raw)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&raw, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&raw, &defaults)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= spawnSetsid }
        posix_spawnattr_setflags(&raw, Int16(flags))
    }
    deinit { posix_spawnattr_destroy(&raw) }
}

#if os(Linux)
private let spawnSetsid: Int32 = 0x80  // POSIX_SPAWN_SETSID (glibc's spawn.h; not imported into Swift)
#else
private let spawnSetsid = Int32(POSIX_SPAWN_SETSID)
#endif

/// Starts `path args` in a new session (so it outlives this CLI and its terminal), stdin from
/// /dev/null, stdout and stderr to `log` (truncated), no other descriptors, default signal dispositions.
func spawnDetached(_ path: String, _ args: [String], log: String) throws -> Int32 {
    let actions = SpawnActions()
    posix_spawn_file_actions_addopen(&actions.raw, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions.raw, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions.raw, 1, 2)
    markDescriptorsCloseOnExec()
    let attr = SpawnAttributes(newSession: true)
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions.raw, &attr.raw, argv, environ)
    guard rc == 0 else { throw ClusterError("could not start \(path): \(String(cString: strerror(rc)))") }
    return pid
}
