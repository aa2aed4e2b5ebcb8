import Foundation
import PrecisTrain

/// Starts role processes detached on the hosts of a cluster file (this machine directly, others
/// over ssh), watches them and stops them. Each process logs to RUN_DIR/NAME.log and has its pid in
/// RUN_DIR/NAME.pid on its own host; what was started comes back as a `ProcessRecord`.
///
/// A value type with no state of its own: every answer comes from the hosts (kill(2) and /proc
/// here, a shell script over ssh elsewhere), so any later run of `precis` sees the same.
public struct Launcher {
    /// RUN_DIR, as seen from this directory here and from each host's working directory there.
    public let runDir: String
    /// Where the role executables are (relative: to this directory, or to a remote host's workdir).
    public let binDir: String
    /// This directory: the working directory of roles started here, and of remote ones with no workdir.
    public let here: String
    public let shell: RemoteShell
    /// Where warnings go (a host that could not be signalled).
    public let warn: (String) -> Void

    public init(runDir: String, binDir: String, here: String = FileManager.default.currentDirectoryPath,
                shell: RemoteShell = RemoteShell(), warn: @escaping (String) -> Void = { print($0) }) {
        self.runDir = runDir; self.binDir = binDir; self.here = here; self.shell = shell; self.warn = warn
    }

    // MARK: where things are

    /// A role's executable: absolute here (so it does not depend on the directory), as given remotely.
    public func executable(_ role: Role, remote: Bool) -> String {
        let p = binDir + "/" + role.executable
        return p.hasPrefix("/") || remote ? p : here + "/" + p
    }

    /// The directory a host's roles run in.
    public func workdir(_ host: ClusterFile.Host) -> String { host.workdir ?? here }

    public func logPath(_ name: String) -> String { "\(runDir)/\(name).log" }
    public func pidPath(_ name: String) -> String { "\(runDir)/\(name).pid" }

    func access(_ host: ClusterFile.Host) -> any RoleHost {
        host.ssh.map { SSHHost(shell: shell, destination: $0, workdir: workdir(host)) } ?? ThisMachine()
    }

    func access(_ record: ProcessRecord) -> any RoleHost {
        record.ssh.map { SSHHost(shell: shell, destination: $0, workdir: record.workdir ?? here) } ?? ThisMachine()
    }

    // MARK: start

    /// Starts `command` as process `name` on `host`, detached, stdout and stderr to RUN_DIR/NAME.log,
    /// its pid to RUN_DIR/NAME.pid.
    public func start(_ command: RoleCommand, name: String, on host: ClusterFile.Host, threads: Int? = nil) throws -> ProcessRecord {
        let argv = [executable(command.role, remote: host.isRemote)] + command.arguments
        let log = logPath(name), pidFile = pidPath(name)
        let pid: Int32, started: String?
        do { (pid, started) = try access(host).startDetached(argv, log: log, pidFile: pidFile) } catch let f as HostFailure {
            throw LaunchError.remoteStartFailed(name: name, host: host.address, ssh: host.ssh ?? "", status: f.status, output: f.message)
        }
        return ProcessRecord(name: name, role: command.role, host: host.address, ssh: host.ssh,
                             workdir: host.isRemote ? workdir(host) : nil, pid: pid, log: log, pidFile: pidFile, threads: threads,
                             started: started)
    }

    // MARK: watch

    /// Whether each process runs, in the order given (one ssh call per remote host).
    public func liveness(_ records: [ProcessRecord]) -> [(ProcessRecord, Liveness)] {
        var result = [Int: Liveness]()
        let byHost = Dictionary(grouping: records.indices, by: { records[$0].ssh ?? "" })
        for (_, indices) in byHost {
            switch access(records[indices[0]]).running(indices.map { (records[$0].pid, records[$0].started) }) {
            case .success(let up):
                for i in indices { result[i] = up.contains(records[i].pid) ? .alive : .dead }
            case .failure(let f):
                for i in indices { result[i] = .unknown(f.message) }
            }
        }
        return records.indices.map { (records[$0], result[$0] ?? .dead) }
    }

    /// Waits until every process is dead; returns those still running (or unknown) at the timeout.
    public func waitGone(_ records: [ProcessRecord], timeout: Double) -> [ProcessRecord] {
        let deadline = Date().addingTimeInterval(timeout)
        var left = records
        while true {
            left = liveness(left).filter { $0.1 != .dead }.map { $0.0 }
            if left.isEmpty || Date() > deadline { return left }
            Thread.sleep(forTimeInterval: left.contains(where: \.isRemote) ? 1 : 0.1)
        }
    }

    /// `lines` last lines of a process's log (fewer if it is shorter).
    public func logTail(_ record: ProcessRecord, lines: Int = 20) -> [String] {
        let text = access(record).tail(record.log, lines: lines)
        let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
        return tail.split(separator: "\n").map(String.init)
    }

    /// A file's text on a host (nil when it cannot be read).
    public func read(_ path: String, on host: ClusterFile.Host) -> String? { access(host).read(path) }

    public func remove(_ path: String, on host: ClusterFile.Host) { access(host).remove([path]) }

    // MARK: stop

    /// Sends `signal` to every process (one ssh call per remote host); warns about hosts it could not reach.
    public func signal(_ records: [ProcessRecord], _ signal: StopSignal) {
        for (_, group) in Dictionary(grouping: records, by: { $0.ssh ?? "" }) {
            if let f = access(group[0]).signal(group.map(\.pid), signal) {
                warn("warning: could not signal \(group.map(\.name).joined(separator: ", ")) on \(group[0].ssh ?? group[0].host): \(f.message)")
            }
        }
    }

    /// What `stop` did, step by step.
    public enum StopEvent: Sendable, Equatable {
        /// SIGTERM sent to these (one role's live processes).
        case terminated([ProcessRecord])
        /// SIGKILL sent to these: still running `after` seconds after SIGTERM.
        case killed([ProcessRecord], after: Double)
        /// Still running after SIGKILL.
        case survived(ProcessRecord)
    }

    /// Stops the processes role by role — workers, then servers, then the coordinator: SIGTERM to
    /// the live ones of a role, up to `timeout` seconds for them to exit, SIGKILL to the rest (and 5 s
    /// more). Returns whether any was running.
    @discardableResult
    public func stop(_ records: [ProcessRecord], timeout: Double, report: (StopEvent) -> Void = { _ in }) -> Bool {
        var stoppedAny = false
        for group in Role.stopGroups(records, role: \.role) {
            let live = liveness(group).filter { $0.1 != .dead }.map { $0.0 }
            guard !live.isEmpty else { continue }
            stoppedAny = true
            signal(live, .term)
            report(.terminated(live))
            let left = waitGone(live, timeout: timeout)
            guard !left.isEmpty else { continue }
            signal(left, .kill)
            report(.killed(left, after: timeout))
            for p in waitGone(left, timeout: 5) { report(.survived(p)) }
        }
        return stoppedAny
    }

    /// Removes the processes' pid files (one ssh call per remote host and directory).
    public func removePidFiles(_ records: [ProcessRecord]) {
        for (_, group) in Dictionary(grouping: records, by: { ($0.ssh ?? "") + "\u{0}" + ($0.workdir ?? "") }) {
            access(group[0]).remove(group.map(\.pidFile))
        }
    }
}
