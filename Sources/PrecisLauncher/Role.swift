import PrecisWire

// The three cluster roles and the command line each one takes.

/// A cluster role: each is its own executable (`precis-coordinator`, `precis-ps`, `precis-worker`).
/// The raw value is the role's name in RUN_DIR/cluster.json and in `precis cluster status`.
public enum Role: String, Codable, Sendable, CaseIterable {
    case coordinator
    case server = "ps"
    case worker

    /// The executable that plays this role.
    public var executable: String {
        switch self {
        case .coordinator: return "precis-coordinator"
        case .server: return "precis-ps"
        case .worker: return "precis-worker"
        }
    }

    /// Stopping goes in this order: workers first (they finish or hand back their step and
    /// deregister), then the servers, then the coordinator.
    public var stopOrder: Int {
        switch self {
        case .worker: return 0
        case .server: return 1
        case .coordinator: return 2
        }
    }

    /// The role a process name stands for (`coordinator`, `ps0`, `w3`), as pid files are named.
    public init(processName name: String) {
        self = name == "coordinator" ? .coordinator : name.hasPrefix("ps") ? .server : .worker
    }

    /// `items` cut into groups of one role each, in stop order (workers, servers, coordinator);
    /// empty groups left out, each group in the order given.
    public static func stopGroups<T>(_ items: [T], role: (T) -> Role) -> [[T]] {
        Dictionary(grouping: items, by: { role($0).stopOrder }).sorted { $0.key < $1.key }.map(\.value)
    }
}

/// One role's executable and arguments: what runs on a host, however it is started there.
public struct RoleCommand: Sendable, Equatable {
    public let role: Role
    public let arguments: [String]

    public init(role: Role, arguments: [String]) {
        self.role = role
        self.arguments = arguments
    }

    /// The coordinator: the training config, where it binds (`tcp://HOST:PORT`, port `*` for any),
    /// the file it writes its bound endpoint to, and the overrides `precis` passes on.
    /// `progressLines`: one `@progress {json}` line per step and an `@summary {json}` line at the
    /// end, for a program that reads its output.
    public static func coordinator(config: String, bind: String, endpointFile: String, outputDir: String? = nil,
                                   maxSteps: Int? = nil, progressLines: Bool = false, keys: String? = nil) -> RoleCommand {
        var args = ["--config", config, "--bind", bind, "--endpoint-file", endpointFile]
        if let keys { args += ["--keys", keys] }
        if let outputDir { args += ["--output-dir", outputDir] }
        if let maxSteps { args += ["--max-steps", String(maxSteps)] }
        if progressLines { args.append("--progress-lines") }
        return RoleCommand(role: .coordinator, arguments: args)
    }

    /// A parameter server: the coordinator's endpoint, its name, the address it binds and
    /// advertises (`--host`; nil: the role's default) and its compute threads.
    /// `metricsPort`: serve Prometheus metrics there (`--metrics-port`; nil: no listener).
    public static func server(coordinator: String, name: String, host: String? = nil, threads: Int? = nil, keys: String? = nil,
                              metricsPort: Int? = nil, metricsBind: String? = nil) -> RoleCommand {
        RoleCommand(role: .server, arguments: memberArguments(coordinator: coordinator, name: name, host: host, threads: threads, keys: keys,
                                                              metricsPort: metricsPort, metricsBind: metricsBind))
    }

    /// A worker: as a server.
    public static func worker(coordinator: String, name: String, host: String? = nil, threads: Int? = nil, keys: String? = nil,
                              metricsPort: Int? = nil, metricsBind: String? = nil) -> RoleCommand {
        RoleCommand(role: .worker, arguments: memberArguments(coordinator: coordinator, name: name, host: host, threads: threads, keys: keys,
                                                              metricsPort: metricsPort, metricsBind: metricsBind))
    }

    /// The metrics port of member `index` (servers first, then workers) of a cluster whose config
    /// says `cluster.metrics_port: base`: the coordinator has `base`, member i `base + 1 + i`; with
    /// `base` 0 every member picks a free port (and logs it). nil: no metrics, or past port 65535.
    public static func memberMetricsPort(base: Int?, index: Int) -> Int? {
        guard let base else { return nil }
        if base == 0 { return 0 }
        let port = base + 1 + index
        return port <= 65_535 ? port : nil
    }

    private static func memberArguments(coordinator: String, name: String, host: String?, threads: Int?, keys: String? = nil,
                                        metricsPort: Int? = nil, metricsBind: String? = nil) -> [String] {
        var args = ["--coordinator", coordinator]
        if let host { args += ["--host", host] }
        args += ["--name", name]
        if let threads { args += ["--threads", String(threads)] }
        if let keys { args += ["--keys", keys] }
        if let metricsPort {
            args += ["--metrics-port", String(metricsPort)]
            if let metricsBind { args += ["--metrics-bind", metricsBind] }
        }
        return args
    }

    /// The same command logging in `format` (`--log-format json`; the text format is every role's default, so nothing is added for it).
    public func logging(_ format: LogFormat) -> RoleCommand {
        format == .text ? self : RoleCommand(role: role, arguments: arguments + ["--log-format", format.rawValue])
    }

    /// The whole command line, the executable taken from `binDir`.
    public func argv(binDir: String) -> [String] {
        [binDir + "/" + role.executable] + arguments
    }
}
