import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// This machine: roles started with posix_spawn, asked about through /proc and kill(2).
struct ThisMachine: RoleHost {
    func startDetached(_ argv: [String], log: String, pidFile: String) throws -> (pid: Int32, started: String?) {
        let dir = (log as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let child = try ChildProcess(argv, output: .file(log), detached: true)
        try PidFile.write(child.pid, to: pidFile)
        return (child.pid, ProcessIdentity.of(child.pid))
    }

    func running(_ processes: [(pid: Int32, started: String?)]) -> Result<Set<Int32>, HostFailure> {
        .success(Set(processes.filter { p in
            Self.isRunning(p.pid, commandContains: "precis") && (p.started == nil || ProcessIdentity.of(p.pid) == p.started)
        }.map(\.pid)))
    }

    func signal(_ pids: [Int32], _ signal: StopSignal) -> HostFailure? {
        for pid in pids where pid > 0 { _ = kill(pid, signal.number) }
        return nil
    }

    /// A small file (an endpoint file): nil unless it is a regular file of at most 64 KiB.
    func read(_ path: String) -> String? {
        (try? SmallFile.read(path, limit: 64 << 10)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The last `lines` lines among a log's last 64 KiB (a long run's log is not read whole; a FIFO
    /// or a device in its place gives nothing).
    func tail(_ path: String, lines: Int) -> String {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return "" }
        let window = min(Int(st.st_size), 64 << 10)
        guard lseek(fd, off_t(Int(st.st_size) - window), SEEK_SET) >= 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: window)
        var done = 0
        while done < window {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, window - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
        let text = String(decoding: bytes[..<done], as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
    }

    /// Removes pid files: unlink(2), which never removes a folder.
    func remove(_ paths: [String]) {
        for p in paths { unlink(p) }
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
