import Foundation
import Testing
import PrecisTestSupport

/// `precis bench scaling` as a user runs it: fitted to a file of measured runs (tools/bench/scaling.sh's
/// JSON lines, here three synthetic ones in its format), and refusing hostile files and options with
/// exit status 1 and a message naming the line or the option.
@Suite struct BenchScalingCommandTests {
    static func line(servers: Int, workers: Int, rate: String, step: Double, cores: Int? = 2) -> String {
        let c = cores.map { #""cores": \#($0), "# } ?? ""
        return #"{"model": "bart-small", "servers": \#(servers), "workers": \#(workers), "rate": "\#(rate)", "delay_ms": 0.1, "rtt_ms": 0.5, "#
            + c + #""summary": {"s_per_step": \#(step), "compute_s_per_step": 0.8, "encode_s_per_step": 0.01, "waiting_s_per_step": 0.2, "#
            + #""gradient_wire_mb_per_step": \#(24 * workers / 2), "gradient_raw_mb_per_step": \#(65.2 * Double(workers) / 2), "#
            + #""parameter_wire_mb_per_step": \#(22 * workers / 2), "parameter_raw_mb_per_step": \#(65.2 * Double(workers) / 2)}}"#
    }

    @Test func fitsMeasuredRunsAndPredicts() throws {
        let dir = TestData.tempDir("cli")
        let file = dir + "/scaling.jsonl"
        let lines = [Self.line(servers: 1, workers: 2, rate: "1gbit", step: 1.13), Self.line(servers: 1, workers: 2, rate: "10gbit", step: 1.0),
                     Self.line(servers: 2, workers: 4, rate: "1gbit", step: 1.2)]
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try CLI.run(["bench", "scaling", "--measured", file, "--hosts", "1,64", "--server-speedup", "4"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("largest error") && r.stdout.contains("over 3 run(s)"))
        #expect(r.stdout.contains("constants (fitted)"))
        #expect(r.stdout.contains("server update 4× one measured thread"))
        #expect(r.stdout.contains("bart-base (139.4 M parameters"))
    }

    @Test func refusesHostileInput() throws {
        let dir = TestData.tempDir("cli")
        let bad = dir + "/bad.jsonl"
        try (Self.line(servers: 1, workers: 2, rate: "1gbit", step: 1.1) + "\n" + Self.line(servers: 1, workers: 2, rate: "1gbit", step: 1.1)
            .replacingOccurrences(of: #""cores": 2"#, with: #""cores": -3"#)).write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try CLI.run(["bench", "scaling", "--measured", bad])
        #expect(r.status == 1)
        #expect(r.stderr.contains("line 2") && r.stderr.contains("cores"), "\(r.stderr)")
        let missing = try CLI.run(["bench", "scaling", "--measured", dir + "/absent.jsonl"])
        #expect(missing.status == 1 && missing.stderr.contains(dir + "/absent.jsonl: no such file"), "\(missing.stderr)")
        let device = try CLI.run(["bench", "scaling", "--measured", "/dev/zero"])
        #expect(device.status == 1 && device.stderr.contains("/dev/zero: not a regular file"), "\(device.stderr)")
        for option in ["--server-speedup=0", "--server-speedup=nan", "--host-speedup=-1", "--target=1"] {
            let o = try CLI.run(["bench", "scaling", option])
            #expect(o.status != 0 && !o.stderr.isEmpty, "\(option): \(o.status)")
        }
    }
}
