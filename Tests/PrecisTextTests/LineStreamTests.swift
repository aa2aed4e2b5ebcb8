import Foundation
import PrecisText
import Testing

@Suite("Lines read as a stream")
struct LineStreamTests {
    static func temp(_ name: String, _ bytes: [UInt8]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-line-stream-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func lines(_ stream: LineStream) throws(TokenizerError) -> [(String, Int)] {
        var out: [(String, Int)] = []
        try stream.forEachLine { (line, number) throws(TokenizerError) in out.append((String(decoding: line, as: UTF8.self), number)) }
        return out
    }

    /// Whatever the size of each read, the lines and their numbers are those of the whole bytes
    /// split at once (`LineReader`): CRLF, empty lines, a last line with and without its LF.
    @Test func readsInAnySizeOfPieceAsTheWholeBytesSplitAtOnce() throws {
        let texts = ["", "a", "a\n", "\n", "\n\n", "ab\r\ncd\n\nefg", "x\r\n\ny\r\n", String(repeating: "long line ", count: 50) + "\nz",
                     "{\"text\": \"é😀\"}\r\n{\"text\": \"b\"}\n"]
        for text in texts {
            let bytes = Array(text.utf8)
            var expected: [(String, Int)] = []
            bytes.withUnsafeBufferPointer { b in
                LineReader.forEachLine(b) { (line: UnsafeBufferPointer<UInt8>, n: Int) in expected.append((String(decoding: line, as: UTF8.self), n)) }
            }
            let path = try Self.temp("in.txt", bytes)
            for chunk in [1, 2, 3, 7, 64, 1 << 20] {
                let got = try Self.lines(LineStream(path: path, chunkBytes: chunk))
                #expect(got.map(\.0) == expected.map(\.0) && got.map(\.1) == expected.map(\.1), "\(text.debugDescription), pieces of \(chunk)")
            }
        }
    }

    /// A line may have `maxLineBytes` bytes (a CR before its LF counted); one byte more fails naming
    /// the file and line, wherever the reads cut it.
    @Test func aLineLongerThanTheBoundFailsNamingTheFileAndLine() throws {
        let path = try Self.temp("in.txt", Array("12345678\nabc\n123456789\nnever\n".utf8))
        for chunk in [1, 3, 4, 1 << 20] {
            #expect(throws: TokenizerError.unreadableFile(file: "\(path):3", reason: "a line longer than the 8 bytes a line may have")) {
                try Self.lines(LineStream(path: path, maxLineBytes: 8, chunkBytes: chunk))
            }
        }
        let fits = try Self.temp("fits.txt", Array("12345678\n1234567".utf8))
        #expect(try Self.lines(LineStream(path: fits, maxLineBytes: 8, chunkBytes: 2)).map(\.0) == ["12345678", "1234567"])
        let last = try Self.temp("last.txt", Array("ab\n123456789".utf8))
        #expect(throws: TokenizerError.unreadableFile(file: "\(last):2", reason: "a line longer than the 8 bytes a line may have")) {
            try Self.lines(LineStream(path: last, maxLineBytes: 8))
        }
    }

    /// What is not a regular file is refused before anything is read (a FIFO would wait for a
    /// writer); standard input is named `<stdin>`.
    @Test func refusesWhatIsNotARegularFile() throws {
        let path = try Self.temp("in.txt", [])
        let dir = (path as NSString).deletingLastPathComponent
        #expect(throws: TokenizerError.unreadableFile(file: dir, reason: "not a regular file")) { try Self.lines(LineStream(path: dir)) }
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: TokenizerError.unreadableFile(file: fifo, reason: "not a regular file")) { try Self.lines(LineStream(path: fifo)) }
        #expect(throws: TokenizerError.unreadableFile(file: dir + "/missing", reason: "no such file")) {
            try Self.lines(LineStream(path: dir + "/missing"))
        }
        #expect(try Self.lines(LineStream(path: path)).isEmpty)
        #expect(LineStream(path: "-").name == "<stdin>" && LineStream(path: path).name == path)
    }

    /// `JSONLines` over a file reads records as the in-memory form does, errors naming file:line.
    @Test func jsonLinesFromAFileNameTheLine() throws {
        let path = try Self.temp("in.jsonl", Array("{\"text\": \"a\"}\r\n{\"text\": \"b\"}\n{\"text\": 3}\n".utf8))
        var texts: [String] = []
        #expect(throws: TokenizerError.invalidField(file: "\(path):3", field: "text", message: "expected a string, found a number")) {
            try JSONLines.forEachRecord(path: path) { (record, line) throws(TokenizerError) in
                texts.append(try JSONLines.string(record, "text", file: path, line: line))
            }
        }
        #expect(texts == ["a", "b"])
        let bad = try Self.temp("bad.txt", Array("ok\n".utf8) + [0xC3, 0x28, 0x0A])
        #expect(throws: TokenizerError.invalidUTF8(file: bad, line: 2)) {
            try JSONLines.forEachTextLine(path: bad) { (_, _) throws(TokenizerError) in }
        }
    }
}
