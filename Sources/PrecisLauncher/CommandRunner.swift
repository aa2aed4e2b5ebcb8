import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A finished command: its exit code (128 + the signal if one killed it) and what it printed.
public struct CommandResult: Sendable, Equatable {
    public var status: Int32
    public var out: String
    public var err: String

    public init(status: Int32, out: String, err: String) {
        self.status = status; self.out = out; self.err = err
    }
}

/// Runs a command (`argv[0]` looked up in PATH), stdin from /dev/null, capturing stdout and stderr.
/// Returns once the command exits, even if something it started in the background still holds its
/// output pipes (`ssh host 'nohup role &'` must not wait for the role).
/// `input` (at most a pipe's buffer, 64 KiB): what the command reads on stdin instead of nothing.
public func runCommand(_ argv: [String], input: [UInt8]? = nil) -> CommandResult {
    let outPipe: (read: Int32, write: Int32), errPipe: (read: Int32, write: Int32)
    var inPipe: (read: Int32, write: Int32)?
    if let input {
        precondition(input.count <= 65536, "runCommand input is written before the command reads it")
        guard let p = try? closeOnExecPipe() else { return CommandResult(status: 127, out: "", err: "could not make a pipe") }
        inPipe = p
    }
    defer { if let inPipe { close(inPipe.read) } }
    do {
        outPipe = try closeOnExecPipe()
        do { errPipe = try closeOnExecPipe() } catch {
            close(outPipe.read); close(outPipe.write)
            throw error
        }
    } catch { return CommandResult(status: 127, out: "", err: "\(error)") }
    let pid: pid_t
    do {
        pid = try spawn(argv, stdout: .descriptor(outPipe.write), stderr: .descriptor(errPipe.write), newSession: false, searchPath: true,
                        stdin: inPipe?.read)
    } catch {
        for fd in [outPipe.read, outPipe.write, errPipe.read, errPipe.write] { close(fd) }
        let reason = if case let LaunchError.spawnFailed(_, why) = error { why } else { "\(error)" }
        return CommandResult(status: 127, out: "", err: "could not run \(argv[0]): \(reason)")
    }
    close(outPipe.write); close(errPipe.write)
    if let inPipe, let input {
        _ = input.withUnsafeBytes { write(inPipe.write, $0.baseAddress, $0.count) }
        close(inPipe.write)
    }

    var out = [UInt8](), err = [UInt8]()
    var fds = [pollfd(fd: outPipe.read, events: Int16(POLLIN), revents: 0), pollfd(fd: errPipe.read, events: Int16(POLLIN), revents: 0)]
    var open = 2
    var status: Int32 = 0
    var exited = false
    var buffer = [UInt8](repeating: 0, count: 65536)
    while open > 0 {
        if !exited && waitpid(pid, &status, WNOHANG) == pid { exited = true }
        let n = poll(&fds, nfds_t(fds.count), exited ? 0 : 100)
        if n == 0 && exited { break }  // exited and nothing left to read (a background child may hold the pipes)
        if n < 0 { if errno == EINTR { continue } else { break } }
        for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
            let got = read(fds[i].fd, &buffer, buffer.count)
            if got > 0 {
                if i == 0 { out += buffer[0..<got] } else { err += buffer[0..<got] }
            } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                close(fds[i].fd); fds[i].fd = -1; open -= 1
            }
        }
    }
    for f in fds where f.fd >= 0 { close(f.fd) }
    if !exited { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
    return CommandResult(status: ExitStatus(waitStatus: status).code, out: String(decoding: out, as: UTF8.self),
                         err: String(decoding: err, as: UTF8.self))
}

/// Single-quotes a word for a POSIX shell (plain words stay as they are).
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+=:@,%".contains($0) }), s.allSatisfy(\.isASCII) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
