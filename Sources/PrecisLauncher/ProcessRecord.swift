/// One role process the launcher started, as RUN_DIR/cluster.json records it: enough to find it
/// again from another `precis` run (its host, pid, pid file and log).
public struct ProcessRecord: Codable, Sendable, Equatable {
    /// `coordinator`, `ps0`, `w3`.
    public var name: String
    public var role: Role
    /// The address it binds (its host entry's address).
    public var host: String
    /// The ssh destination it was started through; nil on this machine.
    public var ssh: String?
    /// The directory it runs in on a remote host (nil on this machine: the directory `up` ran in).
    public var workdir: String?
    public var pid: Int32
    /// Its log, on its host (relative to workdir for remote processes).
    public var log: String
    public var pidFile: String
    public var threads: Int?
    /// Sent SIGTERM by `scale` and not yet gone; not counted as a live worker.
    public var leaving: Bool?
    /// Which process the pid named when it started (`BOOT_ID:START_TICKS`, `ProcessIdentity`): a
    /// process with that pid but another identity is not this one (the pid was reused), so `status`
    /// shows it dead and `down` leaves it alone. Nil in state files written before it was recorded.
    public var started: String?

    public init(name: String, role: Role, host: String, ssh: String? = nil, workdir: String? = nil, pid: Int32, log: String,
                pidFile: String, threads: Int? = nil, leaving: Bool? = nil, started: String? = nil) {
        self.name = name; self.role = role; self.host = host; self.ssh = ssh; self.workdir = workdir; self.pid = pid
        self.log = log; self.pidFile = pidFile; self.threads = threads; self.leaving = leaving; self.started = started
    }

    enum CodingKeys: String, CodingKey {
        case name, role, host, ssh, workdir, pid, log, threads, leaving, started
        case pidFile = "pid_file"
    }

    public func encode(to encoder: Encoder) throws {
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
        try c.encodeIfPresent(started, forKey: .started)
    }

    public var isRemote: Bool { ssh != nil }

    /// Where its log is, for people: `run/w0.log` or `user@host:/srv/precis/run/w0.log`.
    public var logLocation: String {
        guard let ssh else { return log }
        return "\(ssh):" + (log.hasPrefix("/") ? log : "\(workdir ?? ".")/\(log)")
    }

    /// Workers are w0, w1, …: the number, for ordering and for the next free name.
    public var index: Int { Int(name.drop { !$0.isNumber }) ?? -1 }

    /// `NAME (pid PID)`, as messages name a process.
    public var label: String { "\(name) (pid \(pid))" }
}

/// Whether a recorded process runs.
public enum Liveness: Sendable, Equatable {
    case alive, dead
    /// Its host could not be asked (ssh failed): why.
    case unknown(String)

    public var word: String {
        switch self {
        case .alive: return "alive"
        case .dead: return "dead"
        case .unknown: return "unknown"
        }
    }
}
