@preconcurrency import Glibc

public enum Stdio {
    /// Line-buffers standard output so the output of parent and child processes interleaves by line.
    public static func lineBufferStdout() {
        setvbuf(stdout, nil, _IOLBF, 0)
    }
}
