import ArgumentParser
import Foundation
import PrecisLauncher
import PrecisTrain
import PrecisWire

// `precis cluster up|down|status|scale`: starts the coordinator, parameter servers and workers a
// cluster file describes (this machine directly, other hosts over ssh), detached from the CLI, and
// keeps track of them in RUN_DIR/cluster.json. The work is `ClusterOperations` (PrecisLauncher);
// this file parses arguments and prints. See docs/operations.md ("Running a cluster").

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

        /// The operations on this cluster file, narrating on stdout.
        func operations() throws -> ClusterOperations {
            ClusterOperations(spec: try ClusterFile.load(cluster), clusterPath: cluster, say: { print($0) })
        }
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
        @Option(name: .customLong("log-format"), help: "Every role's log lines as text or json (one object per line); `scale` keeps it for new workers.")
        var logFormat = "text"

        func validate() throws {
            do { _ = try LogFormat.parse(logFormat) } catch { throw ValidationError("\(error)") }
            try requireSeconds(startTimeout, "--start-timeout")
        }

        func run() throws {
            do {
                try file.operations().up(config: config, outputDir: outputDir, maxSteps: maxSteps, startTimeout: startTimeout,
                                         logFormat: try LogFormat.parse(logFormat))
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

        func validate() throws { try requireSeconds(timeout, "--timeout") }

        func run() throws {
            do {
                try file.operations().down(timeout: timeout)
            } catch { throw fail(error) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "One line per process (alive or dead, where its log is) and the coordinator's own view when it answers.",
            discussion: "--json prints the coordinator's status reply exactly (docs/operations.md lists its fields); exit status 1 when it does not answer.")

        @OptionGroup var file: FileOption
        @Option(help: "Seconds to wait for the coordinator's status reply.")
        var timeout = 2.0
        /// The old spelling, in milliseconds (kept so scripts do not break).
        @Option(name: .customLong("query-timeout"), help: .hidden)
        var queryTimeoutMs: Int?

        func validate() throws {
            try requireSeconds(timeout, "--timeout", most: 3600)
            if let ms = queryTimeoutMs, ms <= 0 || ms > 3_600_000 { throw ValidationError("--query-timeout must be in 1…3600000 ms, not \(ms)") }
        }
        @Flag(help: "Print the coordinator's status reply (JSON) as it came, nothing else.")
        var json = false
        @Flag(help: "With --json: include the training curve (`history`: step, loss, lr, grad_norm, examples/s; at most 2000 points).")
        var history = false

        func run() throws {
            let view: ClusterStatusView
            do {
                let ops = try file.operations()
                view = try ops.status(queryTimeoutMs: queryTimeoutMs ?? Int((timeout * 1000).rounded()), history: json && history)
            } catch { throw fail(error) }
            guard json else { return printStatus(view) }
            guard let text = view.coordinatorJSON else {
                let why: String
                switch view.coordinator {
                case .notRunning(let log, _): why = "the coordinator is not running (its log: \(log))"
                case .noEndpoint: why = "no coordinator endpoint recorded (it never started listening)"
                case let .unreachable(endpoint, reason): why = "the coordinator at \(endpoint) did not answer: \(reason)"
                case .answered: why = "no reply"
                }
                throw fail(ClusterStatusUnavailable(description: why))
            }
            print(text)
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
            if !(0...ClusterFile.maxPerHost).contains(workers) { throw ValidationError("--workers must be between 0 and \(ClusterFile.maxPerHost), not \(workers)") }
            try requireSeconds(timeout, "--timeout")
        }

        func run() throws {
            do {
                try file.operations().scale(to: workers, timeout: timeout)
            } catch { throw fail(error) }
        }
    }
}

// MARK: - Printing the status

/// The status as people read it: where the list comes from, one row per process, then the
/// coordinator's own view.
func printStatus(_ view: ClusterStatusView) {
    switch view.source {
    case .stateFile(let state):
        print("cluster from \(state.clusterFile), config \(state.config), started \(state.started)")
    case let .pidFiles(runDir, stateFile):
        print("no \(stateFile); showing the pid files in \(runDir)")
    }
    let header = ["NAME", "ROLE", "HOST", "PID", "STATE", "LOG"]
    var table = [header]
    for (p, l) in view.processes {
        var state = l.word
        if p.leaving == true { state += " (leaving)" }
        table.append([p.name, p.role.rawValue, p.host + (p.ssh.map { " (ssh \($0))" } ?? ""), String(p.pid), state, p.logLocation])
    }
    let widths = (0..<header.count).map { c in table.map { $0[c].count }.max() ?? 0 }
    for row in table {
        print(row.enumerated().map { c, s in c == row.count - 1 ? s : s.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
            .joined(separator: "  "))
    }
    for (p, l) in view.processes { if case let .unknown(why) = l { print("\(p.name): could not ask \(p.ssh ?? p.host): \(why)") } }
    print("\(view.aliveCount) of \(view.processes.count) process(es) alive (\(view.liveWorkers) worker(s))")

    switch view.coordinator {
    case let .notRunning(log, lastLines):
        print("coordinator: not running; the last line of its log \(log):\n" + lastLines.map { "  | " + $0 }.joined(separator: "\n"))
    case .noEndpoint:
        print("coordinator: no endpoint recorded (it never started listening)")
    case let .answered(endpoint, report):
        print("coordinator at \(endpoint): " + describe(report))
    case let .unreachable(endpoint, reason):
        print("coordinator at \(endpoint) is unreachable (\(reason)); the states above come from the pid files")
    }
}

struct ClusterStatusUnavailable: Error, CustomStringConvertible { let description: String }

/// The coordinator's view as lines: `training, step 12/100, …`, the latest figures (loss, lr, ETA,
/// ex/s), evaluations, checkpoints, pushes, then a table of the servers and workers (a straggler
/// marked), then its consistency.
func describe(_ r: StatusReport) -> String {
    var line = "\(r.phase.map { $0 == r.state.rawValue ? $0 : "\(r.state.rawValue) (\($0))" } ?? r.state.rawValue), step \(r.step)/\(r.maxSteps)"
    if r.maxSteps > 0 { line += String(format: " (%.1f%%)", 100 * Double(r.step) / Double(r.maxSteps)) }
    if let e = r.trainEpoch { line += String(format: ", epoch %.2f", e) }
    line += ", membership epoch \(r.epoch)"
    if let loss = r.loss {
        var figures = String(format: "loss %.4f", loss)
        if let lr = r.learningRate { figures += String(format: "  lr %.3e", lr) }
        if let g = r.gradNorm { figures += String(format: "  grad_norm %.3f", g) }
        if let x = r.examplesPerSecond { figures += String(format: "  %.1f ex/s", x) }
        if let e = r.elapsedSeconds { figures += "  elapsed \(duration(e))" }
        if let eta = r.etaSeconds { figures += "  ETA \(duration(eta))" }
        line += "\n  " + figures
    }
    if let last = r.evaluations.last {
        let keys = ["eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len"]
        let shown = keys.compactMap { k in last.metrics[k].map { String(format: "%@ %.4g", String(k.dropFirst(5)), $0) } }
        line += "\n  evaluations: \(r.evaluations.count), the latest at step \(last.step): " + shown.joined(separator: ", ")
    }
    if !r.checkpoints.isEmpty {
        let saved = r.checkpoints.filter { $0.path != nil }
        line += "\n  checkpoints: \(saved.count) saved" + (r.checkpoints.count > saved.count ? ", \(r.checkpoints.count - saved.count) failed" : "")
            + (saved.last.map { ", the latest \($0.path ?? "") (step \($0.step))" } ?? "")
    }
    if !r.pushes.isEmpty {
        let counts = Dictionary(grouping: r.pushes, by: \.outcome).mapValues(\.count)
        line += "\n  hub pushes: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }
    for (key, members) in [("servers", r.servers), ("workers", r.workers)] {
        line += "\n  \(key): \(members.filter(\.alive).count)/\(members.count) alive"
    }
    let members = r.servers + r.workers
    if !members.isEmpty {
        var table = [["NAME", "ROLE", "HOST", "STATE", "HEARD", "CONTRIB", "EX/S", "S/CONTRIB", "TASK AGE", ""]]
        for m in members {
            let worker = m.role == "worker" || (m.role.isEmpty && m.endpoint.isEmpty)
            table.append([m.name, m.role.isEmpty ? (worker ? "worker" : "server") : m.role, m.host, m.state,
                          String(format: "%.1fs ago", m.secondsSinceHeartbeat),
                          worker ? String(m.contributions) : "-", worker ? String(format: "%.1f", m.examplesPerSecond) : "-",
                          worker ? String(format: "%.3f", m.secondsPerContribution) : "-", worker ? String(format: "%.1f", m.taskAgeSeconds) : "-",
                          m.straggler ? "<- straggler" : ""])
        }
        let widths = (0..<table[0].count).map { c in table.map { $0[c].count }.max() ?? 0 }
        for row in table {
            line += "\n    " + row.enumerated().map { c, s in c == row.count - 1 ? s : s.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
    }
    return line + "\n  consistency: \(r.consistency)"
}

/// `1h 02m 03s`, `4m 05s`, `6s`.
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh %02dm %02ds", s / 3600, s % 3600 / 60, s % 60) }
    if s >= 60 { return String(format: "%dm %02ds", s / 60, s % 60) }
    return "\(s)s"
}

/// A duration option: finite, above 0 and at most `most` seconds (a day by default), so that no
/// deadline is NaN (never reached) or overflows when it becomes an integer.
func requireSeconds(_ value: Double, _ option: String, most: Double = 86_400) throws {
    guard value.isFinite, value > 0, value <= most else {
        throw ValidationError("\(option) must be in (0, \(Int(most))] seconds, not \(value)")
    }
}
