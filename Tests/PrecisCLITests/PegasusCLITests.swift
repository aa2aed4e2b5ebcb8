import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// Pegasus through the command line (it reaches the model through the registry, as every command
/// does): the golden fixtures with one to three lanes, and lanes with dropout on.
@Suite struct PegasusCLITests {
    /// 3 rows: one, two (2 + 1 rows) or three lanes; each must match transformers.
    @Test(arguments: [("tiny", 1), ("tiny", 2), ("tiny", 3), ("tiny-gelu", 2)])
    func inspectLossGradMatchesTheGoldenFixture(_ name: String, threads: Int) throws {
        let fixture = TestData.repo.appendingPathComponent("Tests/Fixtures/pegasus/\(name)").path
        let out = TestData.tempDir("cli") + "/out.safetensors"
        let r = try CLI.run(["inspect", "loss-grad", "--model", fixture, "--batch", fixture + "/batch.safetensors", "--out", out,
                             "--threads", String(threads)])
        #expect(r.status == 0, "\(r.stderr)")
        let got = try SafeTensorsFile(path: out), want = try SafeTensorsFile(path: fixture + "/expected.safetensors")
        let loss = try got.floats("loss")[0], ref = try want.floats("loss")[0]
        #expect(abs(loss - ref) / ref < 1e-5)
        let logits = try got.floats("logits"), refLogits = try want.floats("logits")
        #expect(logits.count == refLogits.count && zip(logits, refLogits).allSatisfy { abs($0 - $1) <= 1e-4 })
        var checked = 0
        for name in want.names where name.hasPrefix("grad.") && !name.hasSuffix("k_proj.bias") {
            let a = try got.floats(name), b = try want.floats(name)
            let d = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
            let n = b.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            #expect(d <= 1e-4 * n, "\(name)")
            checked += 1
        }
        #expect(checked > 30)
        #expect(!got.names.contains { $0.contains("embed_positions") })
    }

    /// Lanes split 5 rows over the threads with dropout on: loss, logits and every gradient are those
    /// of one thread up to float rounding, and the same thread count is bitwise repeatable.
    @Test func lanesWithDropoutMatchOneThread() throws {
        let dir = TestData.tempDir("cli")
        #expect(try CLI.run(["init", "--config", "pegasus-tiny", "--out", dir + "/m", "--seed", "5"]).status == 0)
        let rows = 5, src = 24, tgt = 11
        var rng = SeededRNG(seed: 9)
        var ids = [Int64](), mask = [Int64](), labels = [Int64]()
        for r in 0..<rows {
            let len = src - 3 * r
            for j in 0..<src { ids.append(j < len ? (j == len - 1 ? 1 : Int64(2 + rng.next() % 8000)) : 0); mask.append(j < len ? 1 : 0) }
            for j in 0..<tgt { labels.append(j < tgt - r ? Int64(2 + rng.next() % 8000) : -100) }
        }
        var w = SafeTensorsWriter()
        w.add("input_ids", int64s: ids, shape: [rows, src])
        w.add("attention_mask", int64s: mask, shape: [rows, src])
        w.add("labels", int64s: labels, shape: [rows, tgt])
        try w.write(to: dir + "/batch.safetensors")
        var results: [SafeTensorsFile] = []
        for threads in [1, 2, 3, 2] {
            let out = dir + "/out\(results.count).safetensors"
            let r = try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors", "--out", out,
                                 "--dropout", "--seed", "7", "--threads", String(threads)])
            #expect(r.status == 0, "\(r.stderr)")
            results.append(try SafeTensorsFile(path: out))
        }
        for name in results[1].names { #expect(try results[3].floats(name) == results[1].floats(name), "\(name)") }
        let plain = try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors",
                                 "--out", dir + "/plain.safetensors", "--threads", "1"])
        #expect(plain.status == 0)
        let one = results[0], loss = try one.floats("loss")[0]
        #expect(try SafeTensorsFile(path: dir + "/plain.safetensors").floats("loss")[0] != loss)
        for other in results[1...2] {
            #expect(abs(try other.floats("loss")[0] - loss) <= 1e-6 * loss)
            let a = try one.floats("logits"), b = try other.floats("logits")
            #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 })
            var compared = 0
            for name in one.names where name.hasPrefix("grad.") {
                let x = try one.floats(name), y = try other.floats(name)
                let d = zip(x, y).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
                let n = x.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
                #expect(d <= 1e-5 * n + 1e-9, "\(name): \(d) vs norm \(n)")
                compared += 1
            }
            #expect(compared > 30)
        }
    }

    /// A source longer than max_position_embeddings (256 for pegasus-tiny) is refused with the field
    /// and the limit, exit 1, no crash.
    @Test func positionsOverTheLimitAreRefused() throws {
        let dir = TestData.tempDir("cli")
        #expect(try CLI.run(["init", "--config", "pegasus-tiny", "--out", dir + "/m", "--seed", "1"]).status == 0)
        var w = SafeTensorsWriter()
        w.add("input_ids", int64s: Array(repeating: 5, count: 257), shape: [1, 257])
        w.add("attention_mask", int64s: Array(repeating: 1, count: 257), shape: [1, 257])
        w.add("labels", int64s: [5, 1], shape: [1, 2])
        try w.write(to: dir + "/batch.safetensors")
        let r = try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors",
                             "--out", dir + "/o.safetensors", "--threads", "1"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("input_ids") && r.stderr.contains("exceeds max_position_embeddings 256"), "\(r.stderr)")
    }
}
