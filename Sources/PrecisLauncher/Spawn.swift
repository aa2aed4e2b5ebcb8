import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// posix_spawn with the descriptors and signal state a role process needs: stdin from /dev/null,
// stdout and stderr where asked, no other descriptor of this process, an empty signal mask and
// default dispositions, and optionally a session of its own.

/// Where a spawned process's stdout or stderr goes.
enum Redirect {
    case null
    /// A file, created or truncated.
    case file(String)
    /// A descriptor of this process (a pipe's write end).
    case descriptor(Int32)
    /// stderr only: wherever stdout goes.
    case standardOutput
}

/// Starts `argv` and returns its pid. `searchPath`: look `argv[0]` up in PATH (posix_spawnp).
/// `newSession`: the process gets a session (and process group) of its own, so it outlives this
/// process and its terminal; otherwise it stays in this process's group (Ctrl-C reaches it too).
/// `stdin`: a descriptor to read from instead of /dev/null.
func spawn(_ argv: [String], stdout: Redirect, stderr: Redirect, newSession: Bool, searchPath: Bool = false, stdin: Int32? = nil) throws -> pid_t {
    precondition(!argv.isEmpty, "spawn needs a program")
    let actions = SpawnFileActions()
    if let stdin { posix_spawn_file_actions_adddup2(&actions.raw, stdin, 0) } else { actions.open(0, "/dev/null", O_RDONLY) }
    actions.redirect(1, stdout)
    actions.redirect(2, stderr)
    let attributes = SpawnAttributes(newSession: newSession)
    let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for a in cargv { free(a) } }
    var pid: pid_t = 0
    let rc = spawnLock.withLock { _ in
        markDescriptorsCloseOnExec()
        return searchPath
            ? posix_spawnp(&pid, argv[0], &actions.raw, &attributes.raw, cargv, environ)
            : posix_spawn(&pid, argv[0], &actions.raw, &attributes.raw, cargv, environ)
    }
    guard rc == 0 else { throw LaunchError.spawnFailed(program: argv[0], reason: String(cString: strerror(rc))) }
    return pid
}

/// Held while this library creates a pipe (and marks it close-on-exec) and while it spawns, so no
/// process it spawns from another thread inherits a pipe end in between. (Descriptors other code
/// opens are marked close-on-exec just before each spawn.)
let spawnLock = Mutex(())

/// A pipe whose two ends are closed on exec (a spawned process gets only what is dup2'ed onto its
/// 0, 1 and 2, so it never holds another process's pipe open).
func closeOnExecPipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    // pipe2(O_CLOEXEC) is not imported into Swift: pipe, then mark, under the lock `spawn` holds.
    let rc = spawnLock.withLock { _ in
        let rc = pipe(&fds)
        if rc == 0 { for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } }
        return rc
    }
    guard rc == 0 else {
        throw LaunchError.spawnFailed(program: "pipe", reason: String(cString: strerror(errno)))
    }
    return (fds[0], fds[1])
}

/// Marks every descriptor above stderr close-on-exec, so spawned processes inherit only 0, 1 and 2
/// (a detached role must not keep this process's pipes or sockets open; glibc's closefrom file
/// action is not imported into Swift).
func markDescriptorsCloseOnExec() {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) }
        ?? Array(3..<1024)
    for fd in fds where fd > 2 {
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }
}

/// posix_spawn file actions, destroyed with their owner.
final class SpawnFileActions {
    var raw = posix_spawn_file_actions_t()
    init() { posix_spawn_file_actions_init(&raw) }
    deinit { posix_spawn_file_actions_destroy(&raw) }

    func open(_ fd: Int32, _ path: String, _ flags: Int32, mode: mode_t = 0) {
        posix_spawn_file_actions_addopen(&raw, fd, path, flags, mode)
    }

    func redirect(_ fd: Int32, _ target: Redirect) {
        switch target {
        case .null: open(fd, "/dev/null", O_WRONLY)
        case .file(let path): open(fd, path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        case .descriptor(let source): posix_spawn_file_actions_adddup2(&raw, source, fd)
        case .standardOutput: posix_spawn_file_actions_adddup2(&raw, 1, fd)
        }
    }
}

/// posix_spawn attributes: an empty signal mask, default dispositions for the signals that matter,
/// optionally a new session.
final class SpawnAttributes {
    var raw = posix_spawnattr_t()
    init(newSession: Bool) {
        posix_spawnattr_init(&raw)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&raw, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&raw, &defaults)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= spawnSetsid }
        posix_spawnattr_setflags(&raw, Int16(flags))
    }
    deinit { posix_spawnattr_destroy(&raw) }
}

#if os(Linux)
private let spawnSetsid: Int32 = 0x80  // POSIX_SPAWN_SETSID (glibc's spawn.h; not imported into Swift)
#else
private let spawnSetsid = Int32(POSIX_SPAWN_SETSID)
#endif
