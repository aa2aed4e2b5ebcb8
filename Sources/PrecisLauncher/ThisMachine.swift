import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// This machine: roles started with posix_spawn, asked about through /proc and kill(2).
struct ThisMachine: RoleHost {
    func startDetached(_ argv: [String], log: String, pidFile: String) throws -> Int32 {
        let dir = (log as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let child = try ChildProcess(argv, output: .file(log), detached: true)
        try PidFile.write(child.pid, to: pidFile)
        return child.pid
    }

    func running(_ pids: [Int32]) -> Result<Set<Int32>, HostFailure> {
        .success(Set(pids.filter { Self.isRunning($0, commandContains: "precis") }))
    }

    func signal(_ pids: [Int32], _ signal: StopSignal) -> HostFailure? {
        for pid in pids where pid > 0 { _ = kill(pid, signal.number) }
        return nil
    }

    func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    func tail(_ path: String, lines: Int) -> String {
        guard let text = read(path) else { return "" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
    }

    func remove(_ paths: [String]) {
        for p in paths { try? FileManager.default.removeItem(atPath: p) }
    }

    /// Whether `pid` runs here: it exists, is not a zombie (one of this process's own children that
    /// ended is reaped here), and, when `commandContains` is given, its command line contains it.
    static func isRunning(_ pid: Int32, commandContains: String?) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }  // our child, and it ended
        if let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat") {
            let s = String(decoding: stat, as: UTF8.self)
            if let close = s.lastIndex(of: ")"), s[s.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") {
                return false
            }
        }
        if let word = commandContains, let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !cmd.isEmpty,
           !String(decoding: cmd, as: UTF8.self).contains(word) {
            return false  // the pid was reused by something else
        }
        return true
    }
}
