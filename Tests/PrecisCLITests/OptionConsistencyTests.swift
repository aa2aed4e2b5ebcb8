import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// The four executables as users run them: one version, help for every option, the same option
/// names across commands (old spellings still accepted), and `train --in-process` refusing what it
/// does not do.
@Suite struct OptionConsistencyTests {
    /// One of the package's executables, beside `precis`.
    static func run(_ executable: String, _ args: [String]) throws -> CLI.Result {
        try CLI.run(args, executable: URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().appendingPathComponent(executable).path)
    }

    static let executables = ["precis", "precis-coordinator", "precis-ps", "precis-worker"]

    @Test func everyExecutablePrintsTheSameVersion() throws {
        for exe in Self.executables {
            let r = try Self.run(exe, ["--version"])
            #expect(r.status == 0, "\(exe): \(r.stderr)")
            #expect(r.stdout == PrecisVersion.string + "\n", "\(exe): \(r.stdout)")
        }
    }

    /// Every command's options, as `--help` lists them.
    static let commands: [(String, [String])] = [
        ("precis", ["init"]), ("precis", ["inspect", "loss-grad"]), ("precis", ["bench", "step"]), ("precis", ["bench", "gemm"]),
        ("precis", ["bench", "generate"]), ("precis", ["bench", "codec"]), ("precis", ["bench", "cluster"]), ("precis", ["rouge"]),
        ("precis", ["evaluate"]), ("precis", ["summarize"]), ("precis", ["tokenizer", "train"]), ("precis", ["tokenizer", "encode"]),
        ("precis", ["tokenizer", "decode"]), ("precis", ["tokenizer", "bench"]), ("precis", ["train"]), ("precis", ["cluster", "up"]),
        ("precis", ["cluster", "down"]), ("precis", ["cluster", "status"]), ("precis", ["cluster", "scale"]), ("precis", ["config", "check"]),
        ("precis", ["keys", "generate"]), ("precis-coordinator", ["run"]), ("precis-coordinator", ["evaluate"]),
        ("precis-coordinator", ["live-page"]), ("precis-ps", []), ("precis-worker", []),
    ]

    /// The option lines of a help text ("  --name <v>   what it does", the text possibly on the
    /// next, deeper indented line); each with or without its description.
    static func options(_ help: String) -> [(line: String, described: Bool)] {
        let lines = help.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0 == "OPTIONS:" || $0 == "ARGUMENTS:" }) else { return [] }
        /// Text that says something: not empty once "(default: …)" is taken out.
        func says(_ text: String) -> Bool {
            !text.replacingOccurrences(of: #"\(default: [^)]*\)"#, with: "", options: .regularExpression)
                .trimmingCharacters(in: .whitespaces).isEmpty
        }
        var out: [(String, Bool)] = []
        for (i, line) in lines.enumerated() where i > start && (line.hasPrefix("  -") || line.hasPrefix("  <")) {
            // ArgumentParser's descriptions start at column 26 (on the next line when the names are longer).
            let column = 26
            var described = false
            if line.count > column, line.prefix(column).last == " " { described = says(String(line.dropFirst(column))) }
            let next = i + 1 < lines.count ? lines[i + 1] : ""
            if !described, next.hasPrefix("        "), !next.trimmingCharacters(in: .whitespaces).hasPrefix("-") { described = says(next) }
            out.append((line, described))
        }
        return out
    }

    @Test func everyOptionHasHelpAndOutputFoldersAreOutputDir() throws {
        var seen = 0
        for (exe, path) in Self.commands {
            let r = try Self.run(exe, path + ["--help"])
            #expect(r.status == 0, "\(exe) \(path): \(r.stderr)")
            let opts = Self.options(r.stdout)
            #expect(!opts.isEmpty, "\(exe) \(path): no options in\n\(r.stdout)")
            for o in opts where !o.described && !o.line.contains("--help") && !o.line.contains("--version") {
                Issue.record("\(exe) \(path.joined(separator: " ")): no help for '\(o.line.trimmingCharacters(in: .whitespaces))'")
            }
            // A folder written is --output-dir everywhere; the old --out of folders is hidden.
            if exe == "precis", [["init"], ["evaluate"], ["keys", "generate"]].contains(path) {
                #expect(r.stdout.contains("--output-dir") && !r.stdout.contains("--out <"), "\(exe) \(path)")
            }
            if path == ["live-page"] { #expect(r.stdout.contains("--output-dir, --out <output-dir>"), "\(r.stdout)") }
            // Durations are seconds.
            #expect(!r.stdout.lowercased().contains("milliseconds"), "\(exe) \(path)")
            // --threads is mentioned only where the command takes it (ArgumentParser refuses it elsewhere).
            if r.stdout.range(of: #"--threads(?![-\w])"#, options: .regularExpression) != nil {
                #expect(r.stdout.range(of: #"\n\s+--threads <"#, options: .regularExpression) != nil, "\(exe) \(path): mentions --threads")
            }
            seen += opts.count
        }
        #expect(seen > 100)
    }

    @Test func oldSpellingsStillWork() throws {
        let dir = TestData.tempDir("cli")
        let new = try CLI.run(["init", "--config", "bart-tiny", "--output-dir", dir + "/a", "--seed", "1"])
        let old = try CLI.run(["init", "--config", "bart-tiny", "--out", dir + "/b", "--seed", "1"])
        #expect(new.status == 0 && old.status == 0, "\(new.stderr) \(old.stderr)")
        #expect(FileManager.default.contents(atPath: dir + "/a/model.safetensors") == FileManager.default.contents(atPath: dir + "/b/model.safetensors"))
        let both = try CLI.run(["init", "--config", "bart-tiny", "--output-dir", dir + "/c", "--out", dir + "/d"])
        #expect(both.status != 0 && both.stderr.contains("--output-dir") && both.stderr.contains("--out"), "\(both.stderr)")
        let none = try CLI.run(["init", "--config", "bart-tiny"])
        #expect(none.status != 0 && none.stderr.contains("--output-dir"), "\(none.stderr)")
        let keys = try CLI.run(["keys", "generate", "--out", dir + "/keys"])
        #expect(keys.status == 0 && FileManager.default.fileExists(atPath: dir + "/keys/authorized_keys"), "\(keys.stderr)")
        // cluster status: --timeout in seconds, the old --query-timeout (milliseconds) still read.
        let cluster = dir + "/cluster.yaml"
        try "config: \(TestData.repo.path)/configs/train-smoke.yaml\nrun_dir: \(dir)/run\ncoordinator: {host: 127.0.0.1, port: 5555}\nhosts:\n  - address: 127.0.0.1\n    servers: 1\n    workers: 1\n"
            .write(toFile: cluster, atomically: true, encoding: .utf8)
        for args in [["--timeout", "0.5"], ["--query-timeout", "500"]] {
            let r = try CLI.run(["cluster", "status", "--cluster", cluster] + args)
            #expect(!r.stderr.contains("Unknown option") && !r.stderr.contains("must be"), "\(args): \(r.stderr)")
        }
        let bad = try CLI.run(["cluster", "status", "--cluster", cluster, "--timeout=-1"])
        #expect(bad.status != 0 && bad.stderr.contains("--timeout"), "\(bad.stderr)")
        // Every duration is finite and positive (NaN would be a deadline never reached, -1e300 a trap
        // when it became an integer); scale's count is bounded.
        for args in [["down", "--timeout", "nan"], ["down", "--timeout=-1e300"], ["scale", "--workers", "1", "--timeout", "inf"],
                     ["up", "--start-timeout", "0"], ["scale", "--workers", "100000"]] {
            let r = try CLI.run(["cluster"] + args + ["--cluster", cluster])
            #expect(r.status == 64 && (r.stderr.contains("must be in (0,") || r.stderr.contains("--workers must be between")),
                    "\(args): \(r.status) \(r.stderr)")
        }
        // An input found missing while a command runs is exit status 1 with an error line, not the
        // usage text and 64 of a malformed command line (precis-coordinator as precis).
        let missing = try Self.run("precis-coordinator", ["evaluate", "--checkpoint", dir, "--data", dir + "/none.jsonl", "--local"])
        #expect(missing.status == 1 && missing.stdout.contains("\(dir)/none.jsonl does not exist") && !missing.stderr.contains("Usage"),
                "\(missing.status): \(missing.stdout) \(missing.stderr)")
        let page = try Self.run("precis-coordinator", ["live-page", "--output-dir", dir + "/live"])
        #expect(page.status == 0 && FileManager.default.fileExists(atPath: dir + "/live/index.html"), "\(page.stderr)")
    }

    /// `precis train --in-process` with keys it does not act on: exit 1 naming the key, nothing trained.
    @Test func inProcessRefusesEvaluationCheckpointsBestModelAndHub() throws {
        let data = try TestData.samsum("validation")
        let dir = TestData.tempDir("cli")
        let base = "training:\n  output_dir: \(dir)/out\n" + CLI.tinyTrainingKeys(data: data, maxSteps: 4)
        for (extra, key) in [("eval_strategy: steps", "training.eval_strategy"), ("save_steps: 2", "training.save_strategy"),
                             ("push_to_hub: true\n  hub_model_id: a/b", "training.push_to_hub"),
                             ("resume_from_checkpoint: true", "training.resume_from_checkpoint")] {
            try (base + "\n  " + extra + "\n").write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
            let r = try CLI.run(["train", "--in-process", "--config", dir + "/c.yaml", "--threads", "1"])
            #expect(r.status == 1 && r.stderr.contains("key '\(key)'") && r.stderr.contains("in process"), "\(extra): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
        }
        // Without them it trains and leaves the run's files.
        try (base + "\n").write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--in-process", "--config", dir + "/c.yaml", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        for f in ["model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "train_results.json",
                  "all_results.json", "training_config.yaml", "README.md"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/out/" + f), "\(f)")
        }
        let tc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/tokenizer_config.json"))) as! [String: Any]
        #expect(tc["tokenizer_class"] as? String == "BartTokenizer" && tc["model_max_length"] as? Int == 256)
        let card = try String(contentsOfFile: dir + "/out/README.md", encoding: .utf8)
        #expect(card.contains("license: cc-by-nc-nd-4.0") && card.contains("model at step 4 of 4"), "\(card)")
    }
}
