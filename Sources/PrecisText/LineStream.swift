import Glibc

/// The lines of standard input or of a regular file, read a piece at a time and handed on as each
/// is complete, with the line numbers and splitting of `LineReader`: input of any length, in memory
/// bounded by the longest line, which may have at most `maxLineBytes` bytes (a CR before its LF
/// counted). An endless line (`/dev/zero` on stdin) fails naming the file and line instead of
/// growing until the process is killed.
public struct LineStream {
    /// A line's bound: a whole tokenizer file's (`FileBytes.limit`), so any line of a file the
    /// whole-file reading took is still taken.
    public static let defaultMaxLineBytes = FileBytes.limit

    /// `"-"` for standard input, else a regular file's path.
    public let path: String
    /// The name errors give: `<stdin>` or the path.
    public var name: String { path == "-" ? "<stdin>" : path }
    public var maxLineBytes: Int
    /// Bytes asked of each `read` (the buffer grows beyond it only for a longer line).
    public var chunkBytes: Int

    public init(path: String, maxLineBytes: Int = LineStream.defaultMaxLineBytes, chunkBytes: Int = 1 << 20) {
        self.path = path
        self.maxLineBytes = min(max(1, maxLineBytes), Int.max / 2)
        self.chunkBytes = max(1, chunkBytes)
    }

    /// Calls `body(line, number)` for every line, numbered from 1 (split on LF, one trailing CR
    /// dropped, no line after a final LF), while the input is still being read.
    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws(TokenizerError) -> Void) throws(TokenizerError) {
        let fd: Int32
        if path == "-" { fd = 0 } else { fd = try FileBytes.openRegular(path).fd }
        defer { if fd != 0 { close(fd) } }
        // [0, end) holds the bytes not handed on yet: the start of a line, without its LF.
        var capacity = min(chunkBytes, maxLineBytes + 1)
        var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        var end = 0, number = 0
        while true {
            if end == capacity {
                // A full buffer without an LF: the line is longer than any chunk so far.
                guard capacity <= maxLineBytes else {
                    throw .unreadableFile(file: "\(name):\(number + 1)", reason: "a line longer than the \(maxLineBytes) bytes a line may have")
                }
                capacity = capacity > maxLineBytes / 2 ? maxLineBytes + 1 : capacity * 2
                let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
                grown.update(from: buffer, count: end)
                buffer.deallocate()
                buffer = grown
            }
            let n = read(fd, buffer + end, capacity - end)
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadableFile(file: name, reason: String(cString: strerror(errno)))
            }
            if n == 0 {
                // The last line, without an LF.
                if end > 0 {
                    number += 1
                    try LineReader.forEachLine(UnsafeBufferPointer(start: buffer, count: end)) { (line, _) throws(TokenizerError) in
                        try body(line, number)
                    }
                }
                return
            }
            let before = end
            end += n
            // Only the bytes just read can hold an LF; complete lines run up to the last one.
            var lastLF = end - 1
            while lastLF >= before && buffer[lastLF] != 0x0A { lastLF -= 1 }
            guard lastLF >= before else { continue }
            let first = number
            try LineReader.forEachLine(UnsafeBufferPointer(start: buffer, count: lastLF + 1)) { (line, k) throws(TokenizerError) in
                number = first + k
                try body(line, number)
            }
            let rest = end - (lastLF + 1)
            if rest > 0 { memmove(buffer, buffer + lastLF + 1, rest) }
            end = rest
        }
    }
}
