import Foundation
import Testing
import PrecisCore
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `SmallFile.read` on real files: a regular file up to the limit is read whole; a missing path, a
/// FIFO (opening it must not wait for a writer), a character device behind a link (/dev/zero) and a
/// file over the limit are refused, each for its own reason, without reading them.
@Suite struct SmallFileTests {
    @Test func readsSmallRegularFilesAndRefusesEverythingElse() throws {
        let dir = TestData.tempDir("smallfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/config.yaml"
        let text = Data("training:\n  seed: 1\n".utf8)
        try text.write(to: URL(fileURLWithPath: path))
        #expect(try SmallFile.read(path, limit: text.count) == text)
        #expect(try SmallFile.read(path, limit: 1 << 20) == text)
        #expect(throws: SmallFile.Problem.tooLarge(limit: text.count - 1)) { try SmallFile.read(path, limit: text.count - 1) }
        #expect(throws: SmallFile.Problem.missing) { try SmallFile.read(dir + "/nothing.yaml", limit: 100) }
        #expect(throws: SmallFile.Problem.missing) { try SmallFile.read(path + "/below-a-file", limit: 100) }
        #expect(throws: SmallFile.Problem.notRegular) { try SmallFile.read(dir, limit: 100) }

        let fifo = dir + "/fifo.yaml"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: SmallFile.Problem.notRegular) { try SmallFile.read(fifo, limit: 100) }
        let zero = dir + "/zero.yaml"
        try FileManager.default.createSymbolicLink(atPath: zero, withDestinationPath: "/dev/zero")
        #expect(throws: SmallFile.Problem.notRegular) { try SmallFile.read(zero, limit: 100) }
        #expect("\(SmallFile.Problem.tooLarge(limit: 7))" == "larger than the 7 bytes such a file may have")

        // `head`: the first bytes of a regular file of any size, with the same refusals.
        #expect(try SmallFile.head(path, count: 9) == text.prefix(9))
        #expect(try SmallFile.head(path, count: 1 << 20) == text)
        #expect(throws: SmallFile.Problem.notRegular) { try SmallFile.head(fifo, count: 100) }
        #expect(throws: SmallFile.Problem.notRegular) { try SmallFile.head(zero, count: 100) }
        #expect(throws: SmallFile.Problem.missing) { try SmallFile.head(dir + "/nothing.yaml", count: 100) }
    }

    /// A stream (standard input's kind: a pipe) is read to its end up to the limit and refused one
    /// byte past it, however the writes cut it; /dev/zero, which never ends, is refused at the limit.
    @Test func readsAStreamUpToTheLimit() throws {
        for (size, limit) in [(0, 0), (100, 100), (100, 99), (200_000, 200_000), (200_000, 70_000)] {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            let (r, w) = (fds[0], fds[1])
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            // The writer feeds the pipe in pieces from another thread while this one reads it.
            let writer = Thread {
                var done = 0
                while done < payload.count {
                    let n = payload.withUnsafeBytes { write(w, $0.baseAddress! + done, min(4_096, payload.count - done)) }
                    if n <= 0 { break }
                    done += n
                }
                close(w)
            }
            writer.start()
            let result = Result { () throws(SmallFile.Problem) in try SmallFile.read(fileDescriptor: r, limit: limit) }
            // What a refused read left in the pipe is drained, so the writer ends (no SIGPIPE).
            var sink = [UInt8](repeating: 0, count: 4_096)
            while read(r, &sink, 4_096) > 0 {}
            close(r)
            if size <= limit {
                #expect(try result.get() == Data(payload), "\(size) bytes, limit \(limit)")
            } else {
                #expect(throws: SmallFile.Problem.tooLarge(limit: limit)) { try result.get() }
            }
        }
        let zero = open("/dev/zero", O_RDONLY)
        defer { close(zero) }
        #expect(throws: SmallFile.Problem.tooLarge(limit: 1 << 20)) { try SmallFile.read(fileDescriptor: zero, limit: 1 << 20) }
    }
}
