import Foundation
import PrecisCore

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
        do { return try JSONDecoder().decode(ClusterState.self, from: d) } catch {
            throw LaunchError.badStateFile(path: path, reason: "\(error)")
        }
    }

    /// Writes it to `path` atomically (pretty-printed, sorted keys).
    public func save(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(self) + Data("\n".utf8), to: path)
    }
}
