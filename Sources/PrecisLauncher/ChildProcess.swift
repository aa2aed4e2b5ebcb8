import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// From a `waitpid` status word.
    init(waitStatus s: Int32) {
        self = (s & 0x7f) == 0 ? .exited((s >> 8) & 0xff) : .signaled(s & 0x7f)
    }

    /// As a shell reports it: the exit code, or 128 + the signal.
    public var code: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "killed by signal \(s)"
        }
    }
}

/// A process this one started on this machine and is the parent of: its pid, whether it still
/// runs or how it ended (from `waitpid`, so exactly), its output as lines when piped here, and
/// stopping it.
///
/// Not Sendable: one owner (one thread) starts, watches, reads and stops it, and the compiler keeps
/// it there. Dropping it neither stops nor waits for the process (a detached role outlives it).
public final class ChildProcess {
    /// Where the process's stdout (or stderr) goes.
    public enum Output: Sendable, Equatable {
        /// /dev/null.
        case null
        /// A file, created or truncated.
        case file(String)
        /// A pipe to this process, read line by line with `readLines`.
        case lines
    }

    public let pid: Int32
    /// The program (argv[0]).
    public let program: String
    private var ended: ExitStatus?
    /// The read end of the output pipe (-1: no pipe, or closed at end of file).
    private var outputFD: Int32 = -1
    private var partialLine: [UInt8] = []

    /// Starts `argv` (`argv[0]` a path, or a name looked up in PATH with `searchPath`), stdin from
    /// /dev/null. `errors` is where stderr goes (nil: with stdout). `detached`: a session of its
    /// own, so it outlives this process and its terminal; otherwise it is in this process's group.
    public init(_ argv: [String], output: Output = .null, errors: Output? = nil, detached: Bool = false,
                searchPath: Bool = false) throws {
        program = argv.first ?? ""
        var pipeEnds: (read: Int32, write: Int32)?
        if output == .lines || errors == .lines { pipeEnds = try closeOnExecPipe() }
        func redirect(_ o: Output) -> Redirect {
            switch o {
            case .null: return .null
            case .file(let path): return .file(path)
            case .lines: return .descriptor(pipeEnds!.write)
            }
        }
        do {
            pid = try spawn(argv, stdout: redirect(output), stderr: errors.map(redirect) ?? .standardOutput,
                            newSession: detached, searchPath: searchPath)
        } catch {
            if let p = pipeEnds { close(p.read); close(p.write) }
            throw error
        }
        if let p = pipeEnds {
            close(p.write)  // the child holds its copy: end of file comes when it (and what it started) closes it
            outputFD = p.read
        }
    }

    deinit {
        if outputFD >= 0 { close(outputFD) }
    }

    /// How it ended, or nil while it runs (does not block).
    public var exitStatus: ExitStatus? {
        if ended == nil { reap(block: false) }
        return ended
    }

    public var isRunning: Bool { exitStatus == nil }

    /// Waits until it ends (nil `timeout`: however long that takes); nil if it still runs at the timeout.
    @discardableResult
    public func wait(timeout: Double? = nil) -> ExitStatus? {
        guard let timeout else {
            while ended == nil { reap(block: true) }
            return ended
        }
        let deadline = Date().addingTimeInterval(timeout)
        while ended == nil {
            reap(block: false)
            if ended != nil || Date() >= deadline { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return ended
    }

    /// Sends `signal` (nothing once it has ended and been reaped: the pid may belong to another process by then).
    public func signal(_ signal: Int32) {
        if exitStatus == nil { _ = kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL if it still runs after `timeout` seconds; returns how it ended.
    @discardableResult
    public func stop(timeout: Double) -> ExitStatus {
        Self.stop([self], timeout: timeout)
        return ended!
    }

    /// Stops several at once: SIGTERM to all, up to `timeout` seconds for them to end, SIGKILL to
    /// those still running. Returns those that needed SIGKILL.
    @discardableResult
    public static func stop(_ children: [ChildProcess], timeout: Double) -> [ChildProcess] {
        for c in children { c.signal(SIGTERM) }
        let deadline = Date().addingTimeInterval(timeout)
        var left = children.filter(\.isRunning)
        while !left.isEmpty && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
            left = left.filter(\.isRunning)
        }
        for c in left {
            c.signal(SIGKILL)
            c.wait()
        }
        return left
    }

    /// Hands each line of output (stdout and stderr, as piped with `.lines`; without the newline)
    /// to `onLine`, in order, on this thread. Returns true at the end of the output (a last line
    /// without a newline is handed too). With a `timeout` it returns false once that many seconds
    /// pass without the end; what is already there is read first (`timeout: 0` takes what the
    /// process has written so far, up to 64 KiB).
    @discardableResult
    public func readLines(timeout: Double? = nil, _ onLine: (String) -> Void) -> Bool {
        guard outputFD >= 0 else { return true }
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let waitMs = deadline.map { Int32(max(0, min($0.timeIntervalSinceNow * 1000, 1_000_000)).rounded(.up)) } ?? -1
            var p = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, waitMs)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { return false }
            let got = ready < 0 ? -1 : read(outputFD, &buffer, buffer.count)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 {
                // End of output (or a broken pipe, which ends it as well).
                if !partialLine.isEmpty { onLine(String(decoding: partialLine, as: UTF8.self)) }
                partialLine = []
                close(outputFD)
                outputFD = -1
                return true
            }
            var start = 0
            for i in 0..<got where buffer[i] == 0x0A {
                partialLine += buffer[start..<i]
                onLine(String(decoding: partialLine, as: UTF8.self))
                partialLine.removeAll(keepingCapacity: true)
                start = i + 1
            }
            partialLine += buffer[start..<got]
            if let deadline, Date() >= deadline { return false }
        }
    }

    private func reap(block: Bool) {
        var status: Int32 = 0
        let r = waitpid(pid, &status, block ? 0 : WNOHANG)
        if r == pid {
            ended = ExitStatus(waitStatus: status)
        } else if r < 0 && errno == ECHILD {
            // Reaped elsewhere (cannot happen for a child only this object waits for): count it as gone.
            ended = ended ?? .exited(-1)
        }
    }
}
