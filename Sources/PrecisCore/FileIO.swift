import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum FileIOError: Error, CustomStringConvertible, Equatable {
    case io(path: String, operation: String, errno: Int32)
    case notRegular(path: String)

    public var description: String {
        switch self {
        case let .io(path, op, e):
            return "\(path): \(op) failed: \(String(cString: strerror(e)))"
        case let .notRegular(path):
            return "\(path): not a regular file"
        }
    }
}

/// Crash-safe file writes: write a temporary file beside the target, fsync it, rename it over the
/// target, then fsync the directory. A crash at any moment leaves either the old or the new file.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { fd in
            try data.withUnsafeBytes { raw in try writeAll(fd, raw, path: path) }
        }
    }

    /// Calls `body` with a file descriptor open for writing to a temporary file, then publishes it.
    public static func write(to path: String, _ body: (Int32) throws -> Void) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw FileIOError.io(path: tmp, operation: "open", errno: errno) }
        do {
            try body(fd)
            if fsync(fd) != 0 { throw FileIOError.io(path: tmp, operation: "fsync", errno: errno) }
            if close(fd) != 0 { throw FileIOError.io(path: tmp, operation: "close", errno: errno) }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw FileIOError.io(path: path, operation: "rename", errno: e)
        }
        syncDirectory(of: path)
    }

    public static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError.io(path: path, operation: "write", errno: errno)
            }
            done += n
        }
    }

    /// fsync the directory holding `path`, so a rename in it is durable.
    public static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

/// Files read whole (a config, a cluster file, a JSON settings file; a dataset, with a larger
/// limit), only when they are a regular file (a FIFO would block the read for ever) of at most
/// `limit` bytes (a huge one, or a link to /dev/zero, would fill memory before anything looked at it).
public enum SmallFile {
    public enum Problem: Error, CustomStringConvertible, Equatable {
        case missing
        case notRegular
        case tooLarge(limit: Int)
        case unreadable(String)

        public var description: String {
            switch self {
            case .missing: return "no such file"
            case .notRegular: return "not a regular file"
            case .tooLarge(let limit): return "larger than the \(limit) bytes such a file may have"
            case .unreadable(let why): return "cannot be read: \(why)"
            }
        }
    }

    /// A descriptor of `path` once it is known to be a regular file, and its size then. Opened
    /// non-blocking, so that opening a FIFO returns at once (fstat then refuses it).
    private static func openRegular(_ path: String) throws(Problem) -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw errno == ENOENT || errno == ENOTDIR ? .missing : .unreadable(String(cString: strerror(errno)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw .unreadable(why)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .notRegular
        }
        return (fd, Int(st.st_size))
    }

    /// At most the first `count` bytes of a regular file of any size (a note scanned for a word).
    public static func head(_ path: String, count: Int) throws(Problem) -> Data {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: min(max(0, count), size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            done += n
        }
        return Data(bytes[..<done])
    }

    /// The file's bytes, or the problem that kept them from being read.
    public static func read(_ path: String, limit: Int) throws(Problem) -> Data {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        guard size <= limit else { throw .tooLarge(limit: limit) }
        return try readToEnd(fd, expected: size, limit: limit)
    }

    /// A stream to its end (standard input: a pipe, a terminal, a file), refused once it passes
    /// `limit` bytes: `yes | precis summarize` fails instead of growing until the process is killed.
    public static func read(fileDescriptor fd: Int32, limit: Int) throws(Problem) -> Data {
        try readToEnd(fd, expected: 1 << 16, limit: limit)
    }

    /// `fd` to its end, in room for `expected` bytes and one more that doubles as needed, up to
    /// one byte past `limit` (a file that grew since its size was taken is read on).
    private static func readToEnd(_ fd: Int32, expected: Int, limit: Int) throws(Problem) -> Data {
        var bytes = [UInt8](repeating: 0, count: min(expected, limit) + 1)
        var count = 0
        while true {
            if count == bytes.count {
                guard bytes.count <= limit else { throw .tooLarge(limit: limit) }
                bytes += [UInt8](repeating: 0, count: min(bytes.count, limit + 1 - bytes.count))
            }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            count += n
        }
        guard count <= limit else { throw .tooLarge(limit: limit) }
        return Data(bytes[..<count])
    }
}
