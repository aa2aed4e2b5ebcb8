#if canImport(Glibc)
import Glibc
#endif

/// The signals the launcher stops processes with.
public enum StopSignal: Sendable {
    /// Asks a role to finish cleanly (a worker finishes or hands back its step and deregisters).
    case term
    /// Ends it at once.
    case kill

    public var number: Int32 { self == .term ? SIGTERM : SIGKILL }
    /// As `kill -NAME` and messages spell it.
    public var name: String { self == .term ? "TERM" : "KILL" }
}

/// Why a host could not do what was asked (ssh failed, the remote command failed).
struct HostFailure: Error {
    var status: Int32
    var message: String
}

/// A machine role processes run on, as the launcher reaches it: this one directly, another over ssh.
/// Paths are as seen on that machine (relative ones from its working directory).
protocol RoleHost {
    /// Starts `argv` detached (a session of its own, stdin from /dev/null, stdout and stderr to
    /// `log`, truncated) and writes its pid to `pidFile`. Returns the pid and, where the host's
    /// /proc says, its `ProcessIdentity`.
    func startDetached(_ argv: [String], log: String, pidFile: String) throws -> (pid: Int32, started: String?)
    /// Which of these pids run a Precis program: alive, not a zombie, `precis` in the command line
    /// and, where an identity was recorded, still that process (a reused pid does not count).
    func running(_ processes: [(pid: Int32, started: String?)]) -> Result<Set<Int32>, HostFailure>
    /// Sends `signal` to `pids` (those already gone are skipped).
    func signal(_ pids: [Int32], _ signal: StopSignal) -> HostFailure?
    /// A file's text, or nil when it cannot be read.
    func read(_ path: String) -> String?
    /// Up to `lines` last lines of a file ("" when it cannot be read).
    func tail(_ path: String, lines: Int) -> String
    func remove(_ paths: [String])
}
