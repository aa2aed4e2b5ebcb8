import Foundation
import Testing
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// `SmallFile.read` on real files: a regular file up to the limit is read whole; a missing path, a
/// FIFO (opening it must not wait for a writer), a character device behind a link (/dev/zero) and a
/// file over the limit are refused, each for its own reason, without reading them.
@Suite struct SmallFileTests {
    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "precis-smallfile-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func readsSmallRegularFilesAndRefusesEverythingElse() throws {
        let dir = tempDir()
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
}
