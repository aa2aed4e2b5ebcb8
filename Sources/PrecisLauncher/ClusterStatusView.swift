import Foundation
import PrecisCore
import PrecisWire

/// What `precis cluster status` shows: each recorded process and whether it runs, and the
/// coordinator's own view when it answers.
public struct ClusterStatusView: Sendable {
    /// Where the process list came from.
    public enum Source: Sendable {
        /// RUN_DIR/cluster.json.
        case stateFile(ClusterState)
        /// No state file: the pid files in RUN_DIR.
        case pidFiles(runDir: String, stateFile: String)
    }

    /// The coordinator, as far as it can be asked.
    public enum Coordinator: Sendable {
        /// Its process is dead: the last line of its log.
        case notRunning(log: String, lastLines: [String])
        /// No endpoint was ever recorded (it never started listening).
        case noEndpoint
        case answered(endpoint: String, StatusReport)
        case unreachable(endpoint: String, reason: String)
    }

    public var source: Source
    public var processes: [(record: ProcessRecord, liveness: Liveness)]
    public var coordinator: Coordinator
    /// The coordinator's reply exactly as it came (JSON), when it answered.
    public var coordinatorJSON: String?

    public var aliveCount: Int { processes.filter { $0.liveness == .alive }.count }
    /// Live workers not on their way out.
    public var liveWorkers: Int {
        processes.filter { $0.liveness == .alive && $0.record.role == .worker && $0.record.leaving != true }.count
    }
}

extension ClusterOperations {
    /// Each process's liveness and the coordinator's status query (`queryTimeoutMs` for its reply;
    /// with its training curve when `history`).
    public func status(queryTimeoutMs: Int, history: Bool = false) throws -> ClusterStatusView {
        let (state, procs) = try recordedProcesses()
        var endpoint = state?.endpoint
        let source: ClusterStatusView.Source
        if let state {
            source = .stateFile(state)
        } else {
            if procs.isEmpty { throw LaunchError.noCluster(stateFile: statePath) }
            source = .pidFiles(runDir: runDir, stateFile: statePath)
        }
        if endpoint == nil, let d = try? SmallFile.read(endpointFile, limit: ClusterState.endpointFileLimit) {
            endpoint = reachableEndpoint(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let rows = launcher.liveness(procs)
        let coordinator: ClusterStatusView.Coordinator
        var json: String?
        if let co = rows.first(where: { $0.0.role == .coordinator }), co.1 == .dead {
            coordinator = .notRunning(log: co.0.logLocation, lastLines: launcher.logTail(co.0, lines: 1))
        } else if let endpoint {
            do {
                let text = try ClusterStatus.query(endpoint: endpoint, timeoutMs: queryTimeoutMs, keys: operatorKeys(), history: history)
                let report: StatusReport
                do { report = try JSONDecoder.statusDecoder.decode(StatusReport.self, from: Data(text.utf8)) } catch {
                    throw WireError.badControl(type: "statusReply", reason: "\(error)")
                }
                coordinator = .answered(endpoint: endpoint, report)
                json = text
            } catch {
                coordinator = .unreachable(endpoint: endpoint, reason: "\(error)")
            }
        } else {
            coordinator = .noEndpoint
        }
        return ClusterStatusView(source: source, processes: rows.map { (record: $0.0, liveness: $0.1) }, coordinator: coordinator,
                                 coordinatorJSON: json)
    }
}
