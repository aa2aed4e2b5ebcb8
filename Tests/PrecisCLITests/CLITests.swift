import Foundation
import Testing
import PrecisCore
import PrecisMetrics

/// End-to-end tests of the `precis` executable, run as a real process (the binary sits beside the
/// test bundle in the build folder).
enum CLI {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var binary: String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // The test binary is <build>/PrecisPackageTests.xctest (a file on Linux).
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("precis").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return repo.appendingPathComponent(".build/release/precis").path
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func temp() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-cli-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

@Suite struct CLITests {
    /// The whole path a user takes to check Precis against transformers: a real process, the BLAS
    /// kernel selection (and re-exec) included.
    @Test func inspectLossGradMatchesTheGoldenFixture() throws {
        let fixture = CLI.repo.appendingPathComponent("Tests/Fixtures/bart/tiny-scaled").path
        let out = CLI.temp() + "/out.safetensors"
        let r = try CLI.run(["inspect", "loss-grad", "--model", fixture, "--batch", fixture + "/batch.safetensors", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let got = try SafeTensorsFile(path: out), want = try SafeTensorsFile(path: fixture + "/expected.safetensors")
        let loss = try got.floats("loss")[0], ref = try want.floats("loss")[0]
        #expect(abs(loss - ref) / ref < 1e-5)
        #expect(try got.tensor("logits").shape == want.tensor("logits").shape)
        var checked = 0
        for name in want.names where name.hasPrefix("grad.") && !name.hasSuffix("k_proj.bias") {
            let a = try got.floats(name), b = try want.floats(name)
            let d = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
            let n = b.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            #expect(d <= 1e-4 * n, "\(name)")
            checked += 1
        }
        #expect(checked > 50)
    }

    @Test func initWritesALoadableFolder() throws {
        let dir = CLI.temp() + "/m"
        let r = try CLI.run(["init", "--config", "bart-tiny", "--out", dir, "--seed", "4"])
        #expect(r.status == 0 && r.stdout.contains("parameters"))
        let f = try SafeTensorsFile(path: dir + "/model.safetensors")
        #expect(try f.tensor("model.shared.weight").shape == [8192, 64])
        #expect(f.metadata["format"] == "pt")
    }

    @Test func errorsNameTheFileAndExitNonZero() throws {
        let r = try CLI.run(["inspect", "loss-grad", "--model", "/nonexistent/model", "--batch", "b", "--out", "o"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/model/config.json"))
        let dir = CLI.temp()
        try Data(#"{"model_type": "bart", "d_model": "wide"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/c.json"))
        let bad = try CLI.run(["init", "--config", dir + "/c.json", "--out", dir + "/x"])
        #expect(bad.status == 1 && bad.stderr.contains("d_model"))
    }

    @Test func rougeWritesPerExampleScoresAsRawFractions() throws {
        let dir = CLI.temp()
        try "the cat sat on the mat\nhello there\n".write(toFile: dir + "/p.txt", atomically: true, encoding: .utf8)
        try "a cat sat on a mat\ngeneral kenobi\n".write(toFile: dir + "/r.txt", atomically: true, encoding: .utf8)
        let r = try CLI.run(["rouge", "--predictions", dir + "/p.txt", "--references", dir + "/r.txt", "--use-stemmer",
                             "--per-example", dir + "/s.jsonl"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("rougeLsum") && r.stdout.contains("(2 pairs)"))
        let lines = try String(contentsOfFile: dir + "/s.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: [String: Double]]
        let want = RougeScorer(types: [.rouge1], useStemmer: true).score(target: "a cat sat on a mat", prediction: "the cat sat on the mat")
        #expect(first["rouge1"]?["fmeasure"] == want[.rouge1]?.fmeasure)
        #expect(Set(first.keys) == ["rouge1", "rouge2", "rougeL", "rougeLsum"])
        try "one\ntwo\nthree\n".write(toFile: dir + "/r3.txt", atomically: true, encoding: .utf8)
        let mismatch = try CLI.run(["rouge", "--predictions", dir + "/p.txt", "--references", dir + "/r3.txt"])
        #expect(mismatch.status != 0 && mismatch.stderr.contains("has 2 texts but"))
    }
}
