import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// T5 through the `precis` executable: the golden fixtures in one, two and three lanes, and
/// dropout whose masks do not depend on how the rows are cut into lanes.
@Suite struct T5CLITests {
    static func gradError(_ a: [Float], _ b: [Float]) -> (diff: Double, norm: Double) {
        let d = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
        return (d, b.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot())
    }

    /// v1_0 has 3 rows, v1_1 2: with 2 and 3 threads the rows run in lanes whose gradients (the
    /// shared position bias's included) are gathered; every one must still match transformers.
    @Test(arguments: [("v1_0", 1), ("v1_0", 2), ("v1_0", 3), ("v1_1", 2)])
    func inspectLossGradMatchesTheGoldenFixtureInLanes(_ name: String, _ threads: Int) throws {
        let fixture = TestData.repo.appendingPathComponent("Tests/Fixtures/t5/\(name)").path
        let out = TestData.tempDir("cli") + "/out.safetensors"
        let r = try CLI.run(["inspect", "loss-grad", "--model", fixture, "--batch", fixture + "/batch.safetensors", "--out", out,
                             "--threads", String(threads)])
        #expect(r.status == 0, "\(r.stderr)")
        let got = try SafeTensorsFile(path: out), want = try SafeTensorsFile(path: fixture + "/expected.safetensors")
        let loss = try got.floats("loss")[0], ref = try want.floats("loss")[0]
        #expect(abs(loss - ref) / ref < 1e-5)
        var checked = 0
        for name in want.names where name.hasPrefix("grad.") {
            let e = Self.gradError(try got.floats(name), try want.floats(name))
            #expect(e.diff <= 1e-4 * e.norm, "\(name): \(e.diff) vs norm \(e.norm)")
            checked += 1
        }
        #expect(checked >= 30)
    }

    /// With dropout on, 1, 2 and 3 threads give the same loss, logits and gradients up to rounding.
    @Test func dropoutDoesNotDependOnTheThreadCount() throws {
        let dir = TestData.tempDir("cli")
        #expect(try CLI.run(["init", "--config", "t5-tiny", "--out", dir + "/m", "--seed", "5"]).status == 0)
        let rows = 5, src = 20, tgt = 9
        var rng = SeededRNG(seed: 9)
        var ids = [Int64](), mask = [Int64](), labels = [Int64]()
        for r in 0..<rows {
            let len = src - 3 * r
            for j in 0..<src { ids.append(j < len ? Int64(2 + rng.next() % 8000) : 0); mask.append(j < len ? 1 : 0) }
            for j in 0..<tgt { labels.append(j < tgt - r ? Int64(2 + rng.next() % 8000) : -100) }
        }
        var w = SafeTensorsWriter()
        w.add("input_ids", int64s: ids, shape: [rows, src])
        w.add("attention_mask", int64s: mask, shape: [rows, src])
        w.add("labels", int64s: labels, shape: [rows, tgt])
        try w.write(to: dir + "/batch.safetensors")
        var results: [SafeTensorsFile] = []
        for threads in [1, 2, 3] {
            let out = dir + "/out\(threads).safetensors"
            let r = try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors", "--out", out,
                                 "--dropout", "--seed", "7", "--threads", String(threads)])
            #expect(r.status == 0, "\(r.stderr)")
            results.append(try SafeTensorsFile(path: out))
        }
        let plain = try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors",
                                 "--out", dir + "/plain.safetensors", "--threads", "1"])
        #expect(plain.status == 0)
        let one = results[0], loss = try one.floats("loss")[0]
        #expect(try SafeTensorsFile(path: dir + "/plain.safetensors").floats("loss")[0] != loss)
        for other in results.dropFirst() {
            #expect(abs(try other.floats("loss")[0] - loss) <= 1e-6 * loss)
            let a = try one.floats("logits"), b = try other.floats("logits")
            #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 })
            var compared = 0
            for name in one.names where name.hasPrefix("grad.") {
                let e = Self.gradError(try other.floats(name), try one.floats(name))
                #expect(e.diff <= 1e-5 * e.norm + 1e-9, "\(name): \(e.diff) vs norm \(e.norm)")
                compared += 1
            }
            #expect(compared > 30)
        }
    }

    /// The other commands go through the registry too: a T5 folder summarises (beam search and
    /// reproducible sampling), and `bench step` times a T5 config.
    @Test func summarizeAndBenchStepRunT5() throws {
        let dir = TestData.tempDir("cli")
        #expect(try CLI.run(["init", "--config", "t5-tiny", "--out", dir + "/m", "--seed", "2"]).status == 0)
        try FileManager.default.copyItem(atPath: TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path,
                                         toPath: dir + "/m/tokenizer.json")
        let input = dir + "/in.jsonl"
        let records = [#"{"dialogue": "Amanda: I baked cookies. Do you want some?\nJerry: Sure!"}"#, #"{"dialogue": "Tom: hi"}"#]
        try (records.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        for extra in [["--num-beams", "3"], ["--do-sample", "--seed", "4"]] {
            let args = ["summarize", "--model", dir + "/m", "--input", input, "--max-new-tokens", "6"] + extra
            let a = try CLI.run(args), b = try CLI.run(args)
            #expect(a.status == 0, "\(a.stderr)")
            #expect(a.stdout == b.stdout)
            let lines = a.stdout.split(separator: "\n")
            #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("{\"summary\":") }, "\(a.stdout)")
        }
        let bench = try CLI.run(["bench", "step", "--config", "t5-tiny", "--batch", "2", "--source-len", "24", "--target-len", "8",
                                 "--steps", "1", "--warmup", "0", "--threads", "1", "--json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains("t5-tiny"), "\(bench.stdout)")
    }
}
