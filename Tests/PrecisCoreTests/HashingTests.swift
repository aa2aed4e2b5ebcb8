import Foundation
import Testing
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

@Suite struct HashingTests {
    static let msg448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    static let msg896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"

    func sha256(_ s: String) -> String { Hashing.hex(SHA256.hash(Array(s.utf8))) }
    func sha1(_ s: String) -> String { Hashing.hex(SHA1.hash(Array(s.utf8))) }

    @Test func sha256NISTVectors() {
        #expect(sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(sha256(Self.msg448) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(sha256(Self.msg896) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(Hashing.hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func sha1NISTVectors() {
        #expect(sha1("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(sha1("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(sha1(Self.msg448) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(sha1(Self.msg896) == "a49b2446a02c645bf419f995b67091253a04a259")
        #expect(Hashing.hex(SHA1.hash([UInt8](repeating: 0x61, count: 1_000_000)))
                == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    /// Feeding the same bytes in ragged pieces gives the one-shot digest (buffering across blocks).
    @Test func streamingInPiecesMatchesOneShot() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for sizes in [[1], [63], [64], [65], [7, 128, 3], [1000]] {
            var a = SHA256(), b = SHA1()
            var i = 0, k = 0
            while i < bytes.count {
                let n = min(sizes[k % sizes.count], bytes.count - i)
                a.update(Array(bytes[i..<i + n])); b.update(Array(bytes[i..<i + n]))
                i += n; k += 1
            }
            #expect(a.finalize() == SHA256.hash(bytes))
            #expect(b.finalize() == SHA1.hash(bytes))
        }
    }

    func tempFile(bytes: Int) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-hash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("blob.bin").path
        var rng = SystemRandomNumberGenerator()
        var data = Data(count: bytes)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in 0..<words.count { words[i] = rng.next() }
            for i in words.count * 8..<raw.count { raw[i] = UInt8.random(in: 0...255, using: &rng) }
        }
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Runs a command and returns the first whitespace-separated word of its output.
    func run(_ tool: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        return String(decoding: out, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init) ?? ""
    }

    /// A multi-MB file whose size is not a multiple of the chunk or block size, against coreutils.
    @Test func filesMatchCoreutils() throws {
        let path = try tempFile(bytes: 5 * 1024 * 1024 + 12_345)
        #expect(try Hashing.sha256Hex(fileAt: path) == (try run("sha256sum", [path])))
        #expect(try Hashing.sha1Hex(fileAt: path) == (try run("sha1sum", [path])))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Hashing.sha256Hex(data) == (try Hashing.sha256Hex(fileAt: path)))
    }

    @Test func gitBlobIdsMatchGitHashObject() throws {
        let path = try tempFile(bytes: 3 * 1024 * 1024 + 7)
        let git = try run("git", ["hash-object", path])
        #expect(try Hashing.gitBlobSHA1(fileAt: path) == git)
        #expect(Hashing.gitBlobSHA1(data: try Data(contentsOf: URL(fileURLWithPath: path))) == git)
        // The well-known id of the empty blob.
        #expect(Hashing.gitBlobSHA1(data: Data()) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
        #expect(Hashing.gitBlobSHA1(data: Data("hello\n".utf8)) == "ce013625030ba8dba906f756967f9e9ca394464a")
    }

    @Test func missingFileIsAnError() {
        #expect(throws: FileIOError.self) { try Hashing.sha256Hex(fileAt: "/nonexistent/precis/file") }
    }

    /// A large, many-block input (16 MiB) hashes to what `sha256sum` prints for the same bytes.
    /// (Speed is a benchmark's business, not a test's: see docs/benchmarks.md.)
    @Test func largeInputMatchesSha256sum() {
        let bytes = [UInt8](repeating: 0x5A, count: 16 << 20)
        let hex = Hashing.hex(SHA256.hash(bytes))
        // head -c $((16<<20)) /dev/zero | tr '\0' 'Z' | sha256sum
        #expect(hex == "55c7e25571a69216de25162f191bb2847201a09ee7efe46b5bada034acc695d5")
    }
}
