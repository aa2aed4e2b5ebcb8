import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// `training.bf16` and `--bf16` as a user meets them: accepted where a bf16 kernel runs, refused at
/// start (exit 1, the YAML key or the flag and the missing CPU flags named) where none does.
/// `PRECIS_NO_AVX512=1` takes every hardware kernel away, `PRECIS_BF16_EMULATE=1` gives the portable
/// one back; both go to the child processes only.
@Suite struct BF16CommandTests {
    static let noKernel = ["PRECIS_NO_AVX512": "1"]
    static let emulated = ["PRECIS_NO_AVX512": "1", "PRECIS_BF16_EMULATE": "1"]

    static func config(_ dir: String, _ training: String) throws -> String {
        let file = dir + "/c.yaml"
        try ("training:\n  output_dir: \(dir)/out\n" + training).write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func configCheckAndTrainRefuseBF16WithoutAKernel() throws {
        let dir = TestData.tempDir("cli")
        let file = try Self.config(dir, "  bf16: true\n")
        let r = try CLI.run(["config", "check", file], environment: Self.noKernel, removing: ["PRECIS_BF16_EMULATE"])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("\(file): key 'training.bf16': true asks for bf16 matrix products")
                && r.stderr.contains("PRECIS_NO_AVX512"), "\(r.stderr)")
        let ok = try CLI.run(["config", "check", file], environment: Self.emulated)
        #expect(ok.status == 0 && ok.stdout.contains("  bf16: true\n"), "\(ok.stderr)")
        // precis train stops before anything is launched or written, in process or as a cluster.
        for extra in [["--in-process"], []] {
            let t = try CLI.run(["train", "--config", file] + extra, environment: Self.noKernel, removing: ["PRECIS_BF16_EMULATE"])
            #expect(t.status == 1 && t.stderr.contains("training.bf16"), "\(extra): \(t.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    /// On a CPU with neither AVX-512-BF16 nor AMX (this test's own CPU, when it is one), the message
    /// names the flags it lacks as /proc/cpuinfo spells them.
    @Test func theRefusalNamesTheMissingCPUFlags() throws {
        let cpu = BF16Support.query()
        guard !cpu.supports(.avx512bf16) && !cpu.supports(.amx) else { return }
        let dir = TestData.tempDir("cli")
        let file = try Self.config(dir, "  bf16: true\n")
        let r = try CLI.run(["config", "check", file], removing: ["PRECIS_BF16_EMULATE", "PRECIS_NO_AVX512"])
        #expect(r.status == 1, "\(r.stdout)")
        #expect(r.stderr.contains("training.bf16") && r.stderr.contains("avx512_bf16") && r.stderr.contains("amx_bf16"), "\(r.stderr)")
    }

    @Test func evaluateAndSummarizeTakeBF16() throws {
        let (model, data) = try ModelCommandTests.setUp()
        let args = ["evaluate", "--model", model, "--data", data, "--max-samples", "2", "--batch-size", "2", "--max-new-tokens", "4", "--bf16"]
        let refused = try CLI.run(args, environment: Self.noKernel, removing: ["PRECIS_BF16_EMULATE"])
        #expect(refused.status == 1 && refused.stderr.contains("--bf16: ") && refused.stderr.contains("PRECIS_NO_AVX512"), "\(refused.stderr)")
        let out = TestData.tempDir("cli")
        let fp32 = try CLI.run(Array(args.dropLast()) + ["--output-dir", out + "/fp32"], environment: Self.emulated)
        let bf16 = try CLI.run(args + ["--output-dir", out + "/bf16"], environment: Self.emulated)
        #expect(fp32.status == 0 && bf16.status == 0, "\(fp32.stderr)\n\(bf16.stderr)")
        // The loss moves by bf16's rounding of the products' operands: a little; not at all would mean fp32 ran.
        func loss(_ run: String) throws -> Double? {
            let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/\(run)/metrics.json"))) as? [String: Any]
            return m?["eval_loss"] as? Double
        }
        let a = try loss("fp32"), b = try loss("bf16")
        #expect(a != nil && b != nil && a != b && abs(a! - b!) < 0.05 * a!, "fp32 \(String(describing: a)), bf16 \(String(describing: b))")
        let input = TestData.tempDir("cli") + "/in.jsonl"
        try "{\"dialogue\": \"Amanda: I baked cookies. Do you want some?\\nJerry: Sure!\"}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let s = try CLI.run(["summarize", "--model", model, "--input", input, "--max-new-tokens", "4", "--bf16"], environment: Self.emulated)
        #expect(s.status == 0 && s.stdout.contains("\"summary\""), "\(s.stderr)")
        let sr = try CLI.run(["summarize", "--model", model, "--input", input, "--bf16"], environment: Self.noKernel, removing: ["PRECIS_BF16_EMULATE"])
        #expect(sr.status == 1 && sr.stderr.contains("--bf16: "), "\(sr.stderr)")
    }

    /// `precis train --bf16 auto` (what `make train` passes): bf16 products with AMX (or the emulated
    /// kernel asked for), fp32 with AVX-512-BF16 alone or no kernel, the choice said in the log;
    /// `--bf16 true` on a CPU without a kernel is refused as the YAML key is, and `--bf16 false`
    /// overrides a config's `bf16: true`.
    @Test func trainBF16AutoFollowsTheCPU() throws {
        let data = try TestData.samsum("validation")
        let dir = TestData.tempDir("cli")
        let file = try Self.config(dir, CLI.tinyTrainingKeys(data: data, maxSteps: 1) + "\n  bf16: true\n")
        func train(_ choice: String, _ env: [String: String], removing: [String] = []) throws -> CLI.Result {
            try CLI.run(["train", "--in-process", "--config", file, "--threads", "1", "--bf16", choice, "--output-dir", TestData.tempDir("cli")],
                        environment: env, removing: removing)
        }
        let fp32 = try train("auto", Self.noKernel, removing: ["PRECIS_BF16_EMULATE"])
        #expect(fp32.status == 0, "\(fp32.stderr)")
        #expect(fp32.stdout.contains("--bf16 auto: fp32 products (") && fp32.stdout.contains("PRECIS_NO_AVX512")
                && fp32.stdout.contains("products fp32"), "\(fp32.stdout)")
        let bf16 = try train("auto", Self.emulated)
        #expect(bf16.status == 0, "\(bf16.stderr)")
        #expect(bf16.stdout.contains("--bf16 auto: bf16 products (portable kernel)")
                && bf16.stdout.contains("products bf16 operands, fp32 accumulation (portable kernel)"), "\(bf16.stdout)")
        if BF16Support.current.supports(.avx512bf16) {
            // AVX-512-BF16 without AMX (PRECIS_NO_AMX=1 makes an AMX CPU one): auto keeps fp32.
            let avx = try train("auto", ["PRECIS_NO_AMX": "1"], removing: ["PRECIS_BF16_EMULATE", "PRECIS_NO_AVX512"])
            #expect(avx.status == 0, "\(avx.stderr)")
            #expect(avx.stdout.contains("--bf16 auto: fp32 products (this CPU's bf16 kernel is AVX512-BF16")
                    && avx.stdout.contains("products fp32"), "\(avx.stdout)")
        }
        let off = try train("false", Self.noKernel, removing: ["PRECIS_BF16_EMULATE"])
        #expect(off.status == 0 && off.stdout.contains("products fp32") && !off.stdout.contains("--bf16 auto"), "\(off.stderr)")
        let on = try train("true", Self.noKernel, removing: ["PRECIS_BF16_EMULATE"])
        #expect(on.status == 1 && on.stderr.contains("training.bf16") && on.stderr.contains("PRECIS_NO_AVX512"), "\(on.stderr)")
        let bad = try train("yes", Self.emulated)
        #expect(bad.status == 64 && bad.stderr.contains("--bf16"), "\(bad.stderr)")
    }
}
