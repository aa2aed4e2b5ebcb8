import Foundation
import PrecisCore
import PrecisTrain

/// RUN_DIR/cluster.json: what `precis cluster up` started where, so later runs of `precis cluster`
/// (status, scale, down) find the processes again.
public struct ClusterState: Codable, Sendable, Equatable {
    public var clusterFile: String
    public var config: String
    public var runDir: String
    public var binDir: String
    /// The endpoint members connect to (from the coordinator's endpoint file).
    public var endpoint: String?
    /// ISO 8601.
    public var started: String
    public var processes: [ProcessRecord]
    /// The `--log-format` `up` gave every role (`text` or `json`); `scale` starts new workers with the
    /// same. Absent in state files written before it existed (read as text).
    public var logFormat: String?

    public init(clusterFile: String, config: String, runDir: String, binDir: String, endpoint: String? = nil,
                started: String, processes: [ProcessRecord] = [], logFormat: String? = nil) {
        self.clusterFile = clusterFile; self.config = config; self.runDir = runDir; self.binDir = binDir
        self.endpoint = endpoint; self.started = started; self.processes = processes; self.logFormat = logFormat
    }

    enum CodingKeys: String, CodingKey {
        case clusterFile = "cluster_file", config, runDir = "run_dir", binDir = "bin_dir", endpoint, started, processes
        case logFormat = "log_format"
    }

    /// RUN_DIR/cluster.json.
    public static func path(runDir: String) -> String { runDir + "/cluster.json" }

    /// The most bytes cluster.json may have (a few hundred a process).
    public static let fileLimit = 16 << 20
    /// The most bytes the coordinator's endpoint file may have (one endpoint on a line).
    public static let endpointFileLimit = 4096

    /// The state in `path`, or nil when there is no such file.
    public static func load(_ path: String) throws -> ClusterState? {
        let d: Data
        do { d = try SmallFile.read(path, limit: fileLimit) } catch .missing { return nil } catch {
            throw LaunchError.badStateFile(path: path, reason: error.description)
        }
        let state: ClusterState
        do { state = try JSONDecoder().decode(ClusterState.self, from: d) } catch {
            throw LaunchError.badStateFile(path: path, reason: "\(error)")
        }
        if let problem = state.problem { throw LaunchError.badStateFile(path: path, reason: problem) }
        return state
    }

    /// What makes this state unfit to act on (`down` signals its pids and removes its pid files,
    /// `status` reads its logs, both over its ssh destinations), or nil: every process is one
    /// `up` or `scale` starts (coordinator, psN, wN with the role its name says), its pid file and
    /// log are RUN_DIR/NAME.pid and .log, and its host, ssh destination and work folder are words
    /// a command line can take — so a file edited by hand or by someone else cannot make `down`
    /// remove another path, or ssh read `-oProxyCommand=…` as an option.
    public var problem: String? {
        if let p = ClusterFile.folderProblem(runDir) { return "run_dir '\(runDir)' \(p)" }
        var names = Set<String>()
        for (i, r) in processes.enumerated() {
            let at = "processes[\(i)]"
            guard Self.isProcessName(r.name), Role(processName: r.name) == r.role else {
                return "\(at): '\(r.name)' (\(r.role.rawValue)) is not a process cluster up starts (coordinator, psN, wN)"
            }
            guard names.insert(r.name).inserted else { return "\(at): '\(r.name)' is listed twice" }
            guard r.pid > 1 else { return "\(at) (\(r.name)): pid \(r.pid) is not a process of its own" }
            for (field, path, want) in [("pid_file", r.pidFile, "\(runDir)/\(r.name).pid"), ("log", r.log, "\(runDir)/\(r.name).log")]
            where path != want {
                return "\(at) (\(r.name)): \(field) '\(path)' is not \(want)"
            }
            for (field, value) in [("host", r.host), ("ssh", r.ssh)] {
                if let v = value, let p = ClusterFile.commandWordProblem(v) { return "\(at) (\(r.name)): \(field) '\(v)' \(p)" }
            }
            if let w = r.workdir, let p = ClusterFile.folderProblem(w) { return "\(at) (\(r.name)): workdir '\(w)' \(p)" }
            if let s = r.started, ProcessIdentity.parse(s) != s { return "\(at) (\(r.name)): started '\(s)' is not BOOT_ID:TICKS" }
        }
        return nil
    }

    /// `coordinator`, `ps<N>` or `w<N>` (N at most six digits).
    static func isProcessName(_ name: String) -> Bool {
        if name == "coordinator" { return true }
        let digits = name.hasPrefix("ps") ? name.dropFirst(2) : name.hasPrefix("w") ? name.dropFirst(1) : ""
        return (1...6).contains(digits.count) && digits.allSatisfy { ("0"..."9").contains($0) }
    }

    /// Writes it to `path` atomically (pretty-printed, sorted keys).
    public func save(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(self) + Data("\n".utf8), to: path)
    }
}
