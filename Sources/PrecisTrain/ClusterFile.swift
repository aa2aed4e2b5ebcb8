import Foundation

/// A cluster file (`cluster/local.yaml`, `cluster/hosts.example.yaml`): which hosts run how many
/// parameter servers and workers, where the coordinator listens, and where the training config,
/// the executables and the run directory (logs, pid files) are. `precis cluster up|down|status|scale`
/// read it. Relative paths are relative to the directory `precis cluster` runs in (the repository
/// root) here, and to `workdir` on hosts reached over ssh.
///
/// ```yaml
/// config: configs/train-samsum.yaml
/// run_dir: run
/// bin_dir: .build/release
/// coordinator: {host: 127.0.0.1, port: 5555}     # port "*" lets the coordinator pick a free one
/// hosts:
///   - address: 127.0.0.1
///     ssh: null            # null/absent: this machine; otherwise an ssh destination (user@host)
///     workdir: null        # the checkout on that host (default: the same path as here)
///     servers: 1
///     workers: 2
///     threads_per_worker: 1
/// ```
///
/// Unknown keys, values of the wrong type and impossible values are errors naming the file and the
/// key (`ConfigError`).
public struct ClusterFile: Sendable, Equatable {
    /// One host entry.
    public struct Host: Sendable, Equatable {
        /// The address the roles on this host bind and advertise (`--host`).
        public var address: String
        /// An ssh destination (`user@host`), or nil for this machine.
        public var ssh: String?
        /// The working directory on a remote host (its checkout); nil means the same path as here.
        public var workdir: String?
        public var servers = 0
        public var workers = 0
        public var threadsPerWorker = 1

        public init(address: String, ssh: String? = nil, workdir: String? = nil, servers: Int = 0, workers: Int = 0,
                    threadsPerWorker: Int = 1) {
            self.address = address; self.ssh = ssh; self.workdir = workdir
            self.servers = servers; self.workers = workers; self.threadsPerWorker = threadsPerWorker
        }

        /// Whether the roles of this host are started over ssh.
        public var isRemote: Bool { ssh != nil }
    }

    /// The file this was read from (for messages).
    public var file = "(defaults)"
    /// The training config (its `cluster:` section sets consistency, codec, heartbeats); nil if the
    /// file does not name one (`precis cluster up --config` must then).
    public var config: String?
    public var runDir = "run"
    public var binDir = ".build/release"
    /// The coordinator's address: it binds `tcp://host:port` and every member connects there.
    public var coordinatorHost = "127.0.0.1"
    /// nil: `*` (the coordinator picks a free port and writes it to its endpoint file).
    public var coordinatorPort: Int? = 5555
    public var hosts: [Host] = []

    public init() {}

    /// `tcp://host:port` (or `tcp://host:*`), what the coordinator is told to bind.
    public var coordinatorBind: String { "tcp://\(coordinatorHost):\(coordinatorPort.map(String.init) ?? "*")" }

    /// The host entry the coordinator runs on: the first whose address is `coordinator.host`; nil
    /// means this machine.
    public var coordinatorHostEntry: Host? { hosts.first { $0.address == coordinatorHost } }

    /// Why `word` cannot stand as one argument of a command line (an ssh destination, an address),
    /// or nil: it must not start with '-' nor hold blanks or control characters.
    /// The most servers, workers or threads one host entry may ask for (far beyond a real host; a
    /// bound keeps the sums and the ports derived from them from overflowing).
    public static let maxPerHost = 4096

    /// What makes `path` unfit for a folder a command line names (a run, bin or work folder), or nil.
    public static func folderProblem(_ path: String) -> String? {
        if path.isEmpty { return "empty" }
        if path.hasPrefix("-") { return "starts with '-' (it would be read as an option)" }
        if path.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return "holds control characters" }
        return nil
    }

    public static func commandWordProblem(_ word: String) -> String? {
        if word.hasPrefix("-") { return "starts with '-' (it would be read as an option)" }
        if word.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) {
            return "holds blanks or control characters"
        }
        return nil
    }

    public var totalServers: Int { hosts.reduce(0) { $0 + $1.servers } }
    public var totalWorkers: Int { hosts.reduce(0) { $0 + $1.workers } }

    public static func load(_ path: String) throws -> ClusterFile {
        try parse(try TrainingConfig.readText(path), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> ClusterFile {
        let root = try TrainingConfig.loadYAML(text, file: file)
        guard let top = root as? [String: Any] else {
            throw ConfigError.unreadable(file: file, reason: root == nil
                ? "empty; a cluster file needs at least `hosts:`"
                : "the top level must be a mapping (config, run_dir, bin_dir, coordinator, hosts)")
        }
        var c = ClusterFile()
        c.file = file
        var r = KeyReader(top, file: file, prefix: "")
        c.config = try r.optionalString("config")
        c.runDir = try r.optionalString("run_dir") ?? c.runDir
        c.binDir = try r.optionalString("bin_dir") ?? c.binDir
        for (key, value) in [("run_dir", c.runDir), ("bin_dir", c.binDir)] {
            if let problem = folderProblem(value) { throw ConfigError.invalid(file: file, key: key, reason: "'\(value)' \(problem)") }
        }
        let coordinator = try r.optionalMapping("coordinator")
        guard let hostList = r.take("hosts") else {
            throw ConfigError.invalid(file: file, key: "hosts", reason: "missing: list at least one host (address, servers, workers)")
        }
        try r.rejectUnknown()

        guard let list = hostList as? [Any] else { throw ConfigError.wrongType(file: file, key: "hosts", expected: "a list of hosts") }
        guard !list.isEmpty else { throw ConfigError.invalid(file: file, key: "hosts", reason: "empty: list at least one host") }
        for (i, item) in list.enumerated() {
            let key = "hosts[\(i)]"
            guard let d = item as? [String: Any] else { throw ConfigError.wrongType(file: file, key: key, expected: "a mapping") }
            var h = KeyReader(d, file: file, prefix: key + ".")
            guard let address = try h.optionalString("address"), !address.isEmpty else {
                throw ConfigError.invalid(file: file, key: key + ".address", reason: "missing: the address the roles on this host bind")
            }
            var host = Host(address: address)
            host.ssh = try h.optionalString("ssh")
            host.workdir = try h.optionalString("workdir")
            host.servers = try h.optionalInt("servers") ?? 0
            host.workers = try h.optionalInt("workers") ?? 0
            host.threadsPerWorker = try h.optionalInt("threads_per_worker") ?? 1
            try h.rejectUnknown()
            if let s = host.ssh, s.isEmpty { throw ConfigError.invalid(file: file, key: key + ".ssh", reason: "empty (use null for this machine)") }
            // Both reach command lines: a leading '-' would be read as an option (ssh's
            // `-oProxyCommand=…` runs a command on this machine), blanks would split a word.
            for (field, value) in [("address", host.address), ("ssh", host.ssh)] {
                if let v = value, let problem = Self.commandWordProblem(v) {
                    throw ConfigError.invalid(file: file, key: key + "." + field, reason: "'\(v)' \(problem)")
                }
            }
            if host.workdir != nil && host.ssh == nil {
                throw ConfigError.invalid(file: file, key: key + ".workdir", reason: "only for hosts reached over ssh (roles on this machine run in the current directory)")
            }
            // `cd WORKDIR` on the host: a leading '-' would be cd's option (`-P` leaves for $HOME).
            if let w = host.workdir, let problem = folderProblem(w) {
                throw ConfigError.invalid(file: file, key: key + ".workdir", reason: "'\(w)' \(problem)")
            }
            for (field, n, least) in [("servers", host.servers, 0), ("workers", host.workers, 0), ("threads_per_worker", host.threadsPerWorker, 1)] {
                guard (least...Self.maxPerHost).contains(n) else {
                    throw ConfigError.invalid(file: file, key: key + "." + field, reason: "\(n) is not between \(least) and \(Self.maxPerHost)")
                }
            }
            c.hosts.append(host)
        }
        guard c.totalServers > 0 else { throw ConfigError.invalid(file: file, key: "hosts", reason: "no host runs a parameter server (servers: N)") }
        guard c.totalWorkers > 0 else { throw ConfigError.invalid(file: file, key: "hosts", reason: "no host runs a worker (workers: N)") }

        c.coordinatorHost = c.hosts[0].address
        if let co = coordinator {
            var k = KeyReader(co, file: file, prefix: "coordinator.")
            if let host = try k.optionalString("host") {
                guard !host.isEmpty else { throw ConfigError.invalid(file: file, key: "coordinator.host", reason: "empty") }
                c.coordinatorHost = host
            }
            if let p = k.take("port") {
                if let s = p as? String, s == "*" {
                    c.coordinatorPort = nil
                } else if let n = p as? Int {
                    guard (1...65535).contains(n) else {
                        throw ConfigError.invalid(file: file, key: "coordinator.port", reason: "\(n) is not a TCP port (1–65535, or \"*\")")
                    }
                    c.coordinatorPort = n
                } else {
                    throw ConfigError.wrongType(file: file, key: "coordinator.port", expected: "a port number or \"*\"")
                }
            }
            try k.rejectUnknown()
        }
        if isLoopback(c.coordinatorHost), let i = c.hosts.firstIndex(where: { $0.isRemote }) {
            throw ConfigError.invalid(file: file, key: "coordinator.host",
                                      reason: "\(c.coordinatorHost) is a loopback address, but hosts[\(i)] (\(c.hosts[i].address)) is reached over ssh and could not connect to it; use an address the other hosts can reach")
        }
        for (i, h) in c.hosts.enumerated() where h.isRemote && isLoopback(h.address) {
            throw ConfigError.invalid(file: file, key: "hosts[\(i)].address",
                                      reason: "\(h.address) is a loopback address on a host reached over ssh; use an address the other hosts can reach")
        }
        return c
    }

    /// 127.0.0.0/8, ::1 and localhost.
    public static func isLoopback(_ address: String) -> Bool {
        address == "localhost" || address == "::1" || address.hasPrefix("127.")
    }

    /// The `cluster.servers` and `cluster.workers` a training config plans for (nil where it does
    /// not say), read without validating the rest, so `cluster up` can warn when the cluster file
    /// starts a different number.
    public static func plannedMembers(trainingConfig path: String) -> (servers: Int?, workers: Int?) {
        let cluster = clusterSection(trainingConfig: path)
        return (cluster["servers"] as? Int, cluster["workers"] as? Int)
    }

    /// `cluster.metrics_port` and `cluster.metrics_bind` of a training config (nil when absent or
    /// unreadable: the coordinator validates the file itself), for the members a launcher starts.
    public static func memberMetrics(trainingConfig path: String) -> (port: Int?, bind: String?) {
        let cluster = clusterSection(trainingConfig: path)
        let port = (cluster["metrics_port"] as? Int).flatMap { (0...65_535).contains($0) ? $0 : nil }   // the coordinator refuses others
        return (port, cluster["metrics_bind"] as? String)
    }

    /// The `cluster:` mapping of a training config, empty when the file is missing, unreadable or has none.
    private static func clusterSection(trainingConfig path: String) -> [String: Any] {
        guard let text = try? TrainingConfig.readText(path),
              let root = try? TrainingConfig.loadYAML(text, file: path) as? [String: Any],
              let cluster = root["cluster"] as? [String: Any] else { return [:] }
        return cluster
    }
}

/// Reads the keys of one YAML mapping, remembering which were used; errors name `prefix + key`.
private struct KeyReader {
    let dict: [String: Any]
    let file: String
    let prefix: String
    var unused: Set<String>

    init(_ dict: [String: Any], file: String, prefix: String) {
        self.dict = dict; self.file = file; self.prefix = prefix; unused = Set(dict.keys)
    }

    /// The value of `k`, nil when absent or null.
    mutating func take(_ k: String) -> Any? {
        unused.remove(k)
        guard let v = dict[k], !(v is NSNull) else { return nil }
        return v
    }

    mutating func optionalString(_ k: String) throws -> String? {
        guard let v = take(k) else { return nil }
        guard let s = v as? String else { throw ConfigError.wrongType(file: file, key: prefix + k, expected: ConfigError.expectedString(v)) }
        return s
    }

    mutating func optionalInt(_ k: String) throws -> Int? {
        guard let v = take(k) else { return nil }
        guard let i = v as? Int else { throw ConfigError.wrongType(file: file, key: prefix + k, expected: "an integer") }
        return i
    }

    mutating func optionalMapping(_ k: String) throws -> [String: Any]? {
        guard let v = take(k) else { return nil }
        guard let m = v as? [String: Any] else { throw ConfigError.wrongType(file: file, key: prefix + k, expected: "a mapping") }
        return m
    }

    func rejectUnknown() throws {
        if let k = unused.sorted().first { throw ConfigError.unknownKey(file: file, key: prefix + k) }
    }
}
