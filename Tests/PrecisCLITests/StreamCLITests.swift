import Foundation
import Testing
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Standard input and output as a user's shell hands them to `precis`: a pipe that is still open,
/// an endless stream, a full disk.
@Suite struct StreamCLITests {
    static let tokenizer = TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path

    /// `tokenizer encode` reads standard input as a stream: ids come out while the input is still
    /// open (it used to read to the end first, holding all of it in memory).
    @Test func tokenizerEncodeStreamsStandardInput() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["tokenizer", "encode", "--tokenizer", Self.tokenizer]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input; p.standardOutput = output; p.standardError = errors
        try p.run()
        // 6,000 records give more ids than the command buffers before it writes (64 KiB); the
        // writer keeps standard input open until this thread has seen them.
        let lines = 6_000
        let record = Data(#"{"text": "Hannah: Hi, Betty!"}"#.utf8 + [0x0A])
        let seen = DispatchSemaphore(value: 0)
        let writeEnd = input.fileHandleForWriting
        let writer = Thread {
            for _ in 0..<lines { writeEnd.write(record) }
            seen.wait()
            try? writeEnd.close()
        }
        writer.start()
        var pfd = pollfd(fd: output.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, 60_000)
        #expect(ready == 1, "no output within 60 s while standard input was open")
        seen.signal()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(String(decoding: err, as: UTF8.self))")
        let got = String(decoding: out, as: UTF8.self).split(separator: "\n")
        #expect(got.count == lines && Set(got).count == 1 && got[0].hasPrefix(#"{"ids":[0,"#), "\(got.prefix(2))")
    }

    /// An endless line on standard input fails at the line bound, naming `<stdin>` and the line,
    /// instead of growing until the process is killed.
    @Test func anEndlessLineOnStandardInputFailsAtTheBound() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["tokenizer", "encode", "--tokenizer", Self.tokenizer, "--plain"]
        p.standardInput = FileHandle(forReadingAtPath: "/dev/zero")
        let output = Pipe(), errors = Pipe()
        p.standardOutput = output; p.standardError = errors
        try p.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1 && out.isEmpty)
        #expect(err == "error: <stdin>:1: cannot read: a line longer than the 536870912 bytes a line may have\n", "\(err)")
    }

    /// Output that cannot be written (a full disk) is an error and status 1, not a silent success
    /// with the output cut short: the tokenizer's own buffered output and every `print`.
    @Test func aFullDiskOnStandardOutputIsAnError() throws {
        let dir = TestData.tempDir("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"{"text": "Hannah: Hi, Betty!"}"#.utf8 + [0x0A]).write(to: URL(fileURLWithPath: dir + "/in.jsonl"))
        try Data("hello there\n".utf8).write(to: URL(fileURLWithPath: dir + "/p.txt"))
        func run(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = args
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
            let errors = Pipe()
            p.standardError = errors
            try p.run()
            let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, err)
        }
        let (encode, encodeErr) = try run(["tokenizer", "encode", "--tokenizer", Self.tokenizer, "--input", dir + "/in.jsonl"])
        #expect(encode == 1 && encodeErr == "error: <stdout>: cannot write: No space left on device\n", "\(encodeErr)")
        let (rouge, rougeErr) = try run(["rouge", "--predictions", dir + "/p.txt", "--references", dir + "/p.txt"])
        // A line-buffered `print` that failed leaves the mark, not the reason, unless bytes were left to flush.
        #expect(rouge == 1 && ["error: standard output: a write failed\n", "error: standard output: No space left on device\n"].contains(rougeErr),
                "\(rougeErr)")
        // The same commands with a working output succeed.
        #expect(try CLI.run(["rouge", "--predictions", dir + "/p.txt", "--references", dir + "/p.txt"]).status == 0)
    }

    /// A standard error that takes nothing (a full disk) loses the message but not the exit status:
    /// an error is still status 1, a warning still lets the command finish, and neither traps.
    @Test func aFullDiskOnStandardErrorKeepsTheExitStatus() throws {
        let dir = TestData.tempDir("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ args: [String]) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = args
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = FileHandle(forWritingAtPath: "/dev/full")
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationReason == .exit, "\(args) ended by signal \(p.terminationStatus)")
            return p.terminationStatus
        }
        try Data(#"{"text": "Hannah: Hi, Betty! Betty: Hi, Hannah."}"#.utf8 + [0x0A]).write(to: URL(fileURLWithPath: dir + "/in.jsonl"))
        // The error line goes to stderr (Precis.swift's and TokenizerCommand's reporters).
        #expect(try run(["tokenizer", "encode", "--tokenizer", dir + "/missing.json", "--input", dir + "/in.jsonl"]) == 1)
        #expect(try run(["rouge", "--predictions", dir + "/missing.txt", "--references", dir + "/missing.txt"]) == 1)
        // `tokenizer train` reports what it trained on stderr, then finishes normally.
        #expect(try run(["tokenizer", "train", "--data", dir + "/in.jsonl", "--vocab-size", "300", "--out", dir + "/t.json"]) == 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/t.json"))
    }
}
