@preconcurrency import Glibc

public enum Stdio {
    /// Line-buffers standard output so the output of parent and child processes interleaves by line.
    public static func lineBufferStdout() {
        setvbuf(stdout, nil, _IOLBF, 0)
    }

    /// Writes `text` to standard error (fd 2, unbuffered), whole or as much as the fd takes. A
    /// failed write (stderr on a full disk, a closed fd) is dropped: there is nowhere
    /// left to report it, and the command's own exit status still says how it ended.
    /// (`FileHandle.standardError.write(_:)` would stop the process with a trap instead.)
    public static func writeStderr(_ text: String) {
        Array(text.utf8).withUnsafeBytes { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(2, buf.baseAddress! + offset, buf.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }

    /// Flushes standard output: nil when everything printed reached it, else why not (a full
    /// disk, a file system error; an earlier failed write leaves only its mark, not its reason). A
    /// command whose output was cut short has not done its job, so its caller reports this and
    /// exits 1.
    public static func finishStdout() -> String? {
        if fflush(stdout) != 0 { return String(cString: strerror(errno)) }
        return ferror(stdout) != 0 ? "a write failed" : nil
    }
}
