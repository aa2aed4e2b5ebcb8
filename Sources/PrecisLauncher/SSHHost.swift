import Foundation

/// Another machine, reached with `ssh DEST SCRIPT` (`RemoteShell`); every script first changes to
/// the host's working directory (its checkout), so relative paths are the same as here.
struct SSHHost: RoleHost {
    let shell: RemoteShell
    let destination: String
    let workdir: String

    /// Runs `script` in the working directory.
    func run(_ script: String) -> CommandResult {
        shell.run(destination, "cd \(shellQuote(workdir)) && " + script)
    }

    /// The remote command that starts `argv` detached and prints its pid.
    static func startScript(_ argv: [String], log: String, pidFile: String) -> String {
        let dir = (log as NSString).deletingLastPathComponent
        let cmd = argv.map(shellQuote).joined(separator: " ")
        return "mkdir -p \(shellQuote(dir.isEmpty ? "." : dir)) && { setsid nohup \(cmd) > \(shellQuote(log)) 2>&1 < /dev/null & "
            + "p=$!; echo $p > \(shellQuote(pidFile)); \(ProcessIdentity.shellFunction); echo $p; pid_identity $p; }"
    }

    /// The pid (the second-last line the start script prints) and its identity (the last).
    func startDetached(_ argv: [String], log: String, pidFile: String) throws -> (pid: Int32, started: String?) {
        let r = run(Self.startScript(argv, log: log, pidFile: pidFile))
        let lines = r.out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard r.status == 0, lines.count >= 2, let pid = Int32(lines[lines.count - 2]), pid > 1 else {
            throw HostFailure(status: r.status, message: (r.out + r.err).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return (pid, ProcessIdentity.parse(lines[lines.count - 1]))
    }

    func running(_ processes: [(pid: Int32, started: String?)]) -> Result<Set<Int32>, HostFailure> {
        guard !processes.isEmpty else { return .success([]) }
        // ours PID [IDENTITY]: alive, not a zombie, a Precis program, and (given) still that process.
        let ours = "ours() { kill -0 $1 2>/dev/null && [ \"$(sed 's/^.*) //' /proc/$1/stat | cut -c1)\" != Z ] "
            + "&& tr '\\0' ' ' < /proc/$1/cmdline | grep -q precis && { [ -z \"$2\" ] || [ \"$(pid_identity $1)\" = \"$2\" ]; }; }"
        let checks = processes.map { "ours \($0.pid) \(shellQuote($0.started ?? "")) && echo \($0.pid)" }
        let script = ([ProcessIdentity.shellFunction, ours] + checks + ["true"]).joined(separator: "; ")
        let r = shell.run(destination, script)
        guard r.status == 0 else {
            let why = r.err.trimmingCharacters(in: .whitespacesAndNewlines)
            return .failure(HostFailure(status: r.status, message: why.isEmpty ? "ssh status \(r.status)" : why))
        }
        return .success(Set(r.out.split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }))
    }

    func signal(_ pids: [Int32], _ signal: StopSignal) -> HostFailure? {
        let r = shell.run(destination, "kill -\(signal.name) \(pids.map(String.init).joined(separator: " ")) 2>/dev/null; true")
        return r.status == 0 ? nil : HostFailure(status: r.status, message: r.err.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func read(_ path: String) -> String? {
        let r = run("test -f \(shellQuote(path)) && head -c 65536 \(shellQuote(path)) 2>/dev/null")
        return r.status == 0 ? r.out : nil
    }

    func tail(_ path: String, lines: Int) -> String {
        run("tail -n \(lines) \(shellQuote(path))").out
    }

    func remove(_ paths: [String]) {
        guard !paths.isEmpty else { return }
        _ = run("rm -f " + paths.map(shellQuote).joined(separator: " "))
    }
}
