@preconcurrency import Glibc

public enum Stdio {
    /// Line-buffers standard output so the output of parent and child processes interleaves by line.
    public static func lineBufferStdout() {
        setvbuf(stdout, nil, _IOLBF, 0)
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
