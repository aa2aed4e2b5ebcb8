import Foundation
import Testing
import PrecisCore
import PrecisMetrics
import PrecisTestSupport

/// End-to-end tests of the `precis` executable, run as a real process (the binary sits beside the
/// test bundle in the build folder).
enum CLI {
    static var binary: String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // The test binary is <build>/PrecisPackageTests.xctest (a file on Linux).
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("precis").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return TestData.repo.appendingPathComponent(".build/release/precis").path
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// The `training:` keys (indented as under it, one per line, no trailing newline) of a bart-tiny
    /// run on `data` small enough for a test: 8 examples of 32/8 tokens, batch 4, `maxSteps` steps.
    static func tinyTrainingKeys(data: String, maxSteps: Int) -> String {
        """
          model: bart-tiny
          tokenizer: \(TestData.repo.path)/Tests/Fixtures/tokenizer/samsum-bpe-8192.json
          train_file: \(data)
          max_train_samples: 8
          max_source_length: 32
          max_target_length: 8
          per_device_train_batch_size: 4
          max_steps: \(maxSteps)
        """
    }

    /// `environment` is added to this process's (the child's alone: tests run in parallel).
    /// `executable` is the built `precis` unless named (a script of the repository's, say).
    static func run(_ args: [String], executable: String? = nil, environment: [String: String] = [:], removing: [String] = []) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? binary)
        p.arguments = args
        if !environment.isEmpty || !removing.isEmpty {
            var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            for k in removing { env[k] = nil }
            p.environment = env
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite struct CLITests {
    /// The whole path a user takes to check Precis against transformers: a real process, the BLAS
    /// kernel selection (and re-exec) included.
    /// With 2 threads the batch's two rows run in two lanes (see `LaneRunner`) and the
    /// gradients are gathered from both: the same fixture must match too.
    @Test(arguments: [1, 2])
    func inspectLossGradMatchesTheGoldenFixture(threads: Int) throws {
        let fixture = TestData.repo.appendingPathComponent("Tests/Fixtures/bart/tiny-scaled").path
        let out = TestData.tempDir("cli") + "/out.safetensors"
        let r = try CLI.run(["inspect", "loss-grad", "--model", fixture, "--batch", fixture + "/batch.safetensors", "--out", out,
                             "--threads", String(threads)])
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

    /// Lanes split a batch's rows over the threads (5 rows: 3 + 2 with 2 threads, 2 + 1 + 2 with 3):
    /// with dropout on, the loss, the logits and every gradient are those of one thread up to float
    /// rounding (masks are drawn by position in the whole batch, the loss is averaged over the whole
    /// batch's tokens, and the lanes' gradients are summed).
    @Test func lossLogitsAndGradientsDoNotDependOnTheThreadCount() throws {
        let dir = TestData.tempDir("cli")
        #expect(try CLI.run(["init", "--config", "bart-tiny", "--out", dir + "/m", "--seed", "5"]).status == 0)
        let rows = 5, src = 24, tgt = 11
        var rng = SeededRNG(seed: 9)
        var ids = [Int64](), mask = [Int64](), labels = [Int64]()
        for r in 0..<rows {
            let len = src - 3 * r
            for j in 0..<src { ids.append(j < len ? Int64(3 + rng.next() % 8000) : 1); mask.append(j < len ? 1 : 0) }
            for j in 0..<tgt { labels.append(j < tgt - r ? Int64(3 + rng.next() % 8000) : -100) }
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
        // The same thread count again: bit for bit the same, whichever lane ran which shared product;
        // and forward and backward as two calls (each lane waits for the others between them) too.
        for extra in [[], ["--separate-passes"]] {
            let again = dir + "/again2.safetensors"
            #expect(try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors", "--out", again,
                                 "--dropout", "--seed", "7", "--threads", "2"] + extra).status == 0)
            let twice = try SafeTensorsFile(path: again)
            for name in results[1].names { #expect(try twice.floats(name) == results[1].floats(name), "\(name) \(extra)") }
        }
        let one = results[0]
        let loss = try one.floats("loss")[0]
        // Dropout is on: the loss differs from the deterministic one (so the masks were applied).
        let plain = try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors",
                                 "--out", dir + "/plain.safetensors", "--threads", "1"])
        #expect(plain.status == 0)
        #expect(try SafeTensorsFile(path: dir + "/plain.safetensors").floats("loss")[0] != loss)
        for other in results.dropFirst() {
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
            #expect(compared == one.names.filter { $0.hasPrefix("grad.") }.count && compared > 30)
        }
    }

    /// A batch whose labels are all -100, in two lanes: loss 0 over 0 tokens, every gradient 0, no
    /// hang (neither lane has a backward to run).
    @Test func aBatchWithNoLabelTokenGivesZeroGradientsInLanes() throws {
        let dir = TestData.tempDir("cli")
        #expect(try CLI.run(["init", "--config", "bart-tiny", "--out", dir + "/m", "--seed", "5"]).status == 0)
        let rows = 4, src = 10, tgt = 6
        var w = SafeTensorsWriter()
        w.add("input_ids", int64s: (0..<(rows * src)).map { Int64(3 + $0 % 50) }, shape: [rows, src])
        w.add("labels", int64s: [Int64](repeating: -100, count: rows * tgt), shape: [rows, tgt])
        try w.write(to: dir + "/batch.safetensors")
        let out = dir + "/out.safetensors"
        let r = try CLI.run(["inspect", "loss-grad", "--model", dir + "/m", "--batch", dir + "/batch.safetensors", "--out", out,
                             "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let f = try SafeTensorsFile(path: out)
        #expect(try f.floats("loss") == [0])
        let grads = f.names.filter { $0.hasPrefix("grad.") }
        #expect(grads.count > 30)
        for name in grads { #expect(try f.floats(name).allSatisfy { $0 == 0 }, "\(name)") }
    }

    @Test func initWritesALoadableFolder() throws {
        let dir = TestData.tempDir("cli") + "/m"
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
        let dir = TestData.tempDir("cli")
        try Data(#"{"model_type": "bart", "d_model": "wide"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/c.json"))
        let bad = try CLI.run(["init", "--config", dir + "/c.json", "--out", dir + "/x"])
        #expect(bad.status == 1 && bad.stderr.contains("d_model"))
    }

    @Test func rougeWritesPerExampleScoresAsRawFractions() throws {
        let dir = TestData.tempDir("cli")
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
        #expect(mismatch.status == 1 && mismatch.stderr.contains("has 2 texts but"))
    }
}

/// Files a careless or hostile user gives the scorers: refused with the file named, never zero
/// scores for nothing or a run of hours.
@Suite struct ScorerInputTests {
    @Test func emptyFilesAreAnError() throws {
        let dir = TestData.tempDir("cli")
        #expect(FileManager.default.createFile(atPath: dir + "/p.txt", contents: Data()))
        #expect(FileManager.default.createFile(atPath: dir + "/r.txt", contents: Data()))
        let r = try CLI.run(["rouge", "--predictions", dir + "/p.txt", "--references", dir + "/r.txt"])
        #expect(r.status == 1 && r.stderr.contains("hold no texts"), "\(r.stdout)\(r.stderr)")
        // An input's fault, not the command line's: one error line and status 1, no usage text.
        #expect(r.stderr.hasPrefix("error: ") && !r.stderr.contains("Usage:"), "\(r.stderr)")
        let missing = try CLI.run(["rouge", "--predictions", dir + "/none.txt", "--references", dir + "/r.txt"])
        #expect(missing.status == 1 && missing.stderr == "error: \(dir)/none.txt: no such file\n", "\(missing.stderr)")
        // A folder (or a FIFO, a device) is named as what it is, not taken for a missing file.
        let folder = try CLI.run(["rouge", "--predictions", dir, "--references", dir + "/r.txt"])
        #expect(folder.status == 1 && folder.stderr == "error: \(dir): not a regular file\n", "\(folder.stderr)")
        #expect(FileManager.default.createFile(atPath: dir + "/empty.jsonl", contents: Data()))
        let e = try CLI.run(["evaluate", "--baseline", "lead-3", "--data", dir + "/empty.jsonl"])
        #expect(e.status == 1 && e.stderr.contains("empty.jsonl: no examples to evaluate"), "\(e.stdout)\(e.stderr)")
        let m = try CLI.run(["evaluate", "--baseline", "lead-3", "--data", try TestData.samsum("validation"), "--max-samples=-1"])
        // A bad option value is the command line's fault: ArgumentParser's usage error, status 64.
        #expect(m.status == 64 && m.stderr.contains("--max-samples must be positive"), "\(m.stderr)")
    }

    /// Two texts of a few hundred thousand tokens would keep ROUGE-L's LCS busy for hours: refused at once,
    /// naming the file and the text; texts at the limit are scored.
    @Test func overlongTextsAreRefused() throws {
        let dir = TestData.tempDir("cli")
        let long = Array(repeating: "word", count: RougeScorer.maxTokensPerText + 1).joined(separator: " ")
        try "short one\n\(long)\n".write(toFile: dir + "/p.txt", atomically: true, encoding: .utf8)
        try "short two\nshort three\n".write(toFile: dir + "/r.txt", atomically: true, encoding: .utf8)
        let r = try CLI.run(["rouge", "--predictions", dir + "/p.txt", "--references", dir + "/r.txt"])
        #expect(r.status == 1 && r.stderr.contains("p.txt: text 2 has \(RougeScorer.maxTokensPerText + 1) tokens"), "\(r.stderr)")
        let scorer = RougeScorer(types: [.rougeL])
        let atLimit = Array(repeating: "word", count: RougeScorer.maxTokensPerText).joined(separator: " ")
        #expect(scorer.firstTooLong(targets: [atLimit], predictions: ["a"]) == nil)
        let found = scorer.firstTooLong(targets: ["a", "b"], predictions: ["c", long])
        #expect(found?.index == 1 && found?.isTarget == false && found?.tokens == RougeScorer.maxTokensPerText + 1)
    }
}

@Suite struct ModelCommandTests {
    /// A bart-tiny model folder with the committed SAMSum tokenizer, and 8 validation examples.
    static func setUp() throws -> (model: String, data: String) {
        let dir = TestData.tempDir("cli")
        let r = try CLI.run(["init", "--config", "bart-tiny", "--out", dir + "/model", "--seed", "1"])
        #expect(r.status == 0)
        try FileManager.default.copyItem(atPath: TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path,
                                         toPath: dir + "/model/tokenizer.json")
        try TestData.samsumPrefix("validation", count: 8, to: dir + "/val.jsonl")
        return (dir + "/model", dir + "/val.jsonl")
    }

    @Test func evaluateWritesPredictionsAndTrainerStyleMetrics() throws {
        let (model, data) = try Self.setUp()
        let out = TestData.tempDir("cli")
        let r = try CLI.run(["evaluate", "--model", model, "--data", data, "--batch-size", "3", "--max-new-tokens", "6",
                             "--num-beams", "2", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("eval_loss") && r.stdout.contains("rougeLsum"))
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/metrics.json"))) as! [String: Any]
        for k in ["eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len"] {
            #expect(metrics[k] is Double || metrics[k] is Int, "\(k)")
        }
        // An untrained model's loss is about ln(vocab).
        let loss = try #require(metrics["eval_loss"] as? Double)
        #expect(abs(loss - log(8192.0)) < 0.5)
        let preds = try String(contentsOfFile: out + "/predictions.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(preds.count == 8)
    }

    /// `--record-in-card`: the scores go into the model folder's README.md under "Results on FILE",
    /// once however often it is run; a folder without a card, or a baseline, is refused.
    @Test func evaluateRecordsItsScoresInTheModelCard() throws {
        let (model, data) = try Self.setUp()
        let noCard = try CLI.run(["evaluate", "--model", model, "--data", data, "--max-samples", "2", "--record-in-card"])
        #expect(noCard.status != 0 && noCard.stderr.contains("README.md"), "\(noCard.stderr)")
        let base = try CLI.run(["evaluate", "--baseline", "lead-3", "--data", data, "--record-in-card"])
        #expect(base.status != 0 && base.stderr.contains("--record-in-card"), "\(base.stderr)")
        try "---\nlicense: cc-by-nc-nd-4.0\n---\n\n# model\n\n## Model description\n\nA model.\n".write(toFile: model + "/README.md", atomically: true, encoding: .utf8)
        for _ in 0..<2 {
            let r = try CLI.run(["evaluate", "--model", model, "--data", data, "--max-samples", "3", "--max-new-tokens", "4",
                                 "--num-beams", "2", "--length-penalty", "1.2", "--record-in-card"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let card = try String(contentsOfFile: model + "/README.md", encoding: .utf8)
        #expect(card.components(separatedBy: "## Results on val.jsonl").count == 2, "\(card)")
        #expect(card.contains("(3 examples), beam search with num_beams 2, length_penalty 1.2, max_new_tokens 4"), "\(card)")
        #expect(card.contains("| Loss | ROUGE-1 |") && card.contains("license: cc-by-nc-nd-4.0") && card.contains("## Model description"))

        // A card that is not UTF-8, or not a file, is refused by name before the evaluation, and left as it was.
        let latin1 = Data("# mod".utf8) + Data([0xE8, 0x6C, 0x65, 0x0A])   // "modèle" in Latin-1
        try latin1.write(to: URL(fileURLWithPath: model + "/README.md"))
        let notUTF8 = try CLI.run(["evaluate", "--model", model, "--data", data, "--max-samples", "2", "--record-in-card"])
        #expect(notUTF8.status == 1 && notUTF8.stderr.contains(model + "/README.md: not UTF-8") && notUTF8.stdout.isEmpty,
                "\(notUTF8.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: model + "/README.md")) == latin1)
        try FileManager.default.removeItem(atPath: model + "/README.md")
        try FileManager.default.createSymbolicLink(atPath: model + "/README.md", withDestinationPath: "/dev/zero")
        let device = try CLI.run(["evaluate", "--model", model, "--data", data, "--max-samples", "2", "--record-in-card"])
        #expect(device.status == 1 && device.stderr.contains(model + "/README.md: not a regular file"), "\(device.stderr)")
    }

    @Test func summarizeReadsJSONLinesAndSamplesReproducibly() throws {
        let (model, data) = try Self.setUp()
        let args = ["summarize", "--model", model, "--input", data, "--max-new-tokens", "5", "--do-sample", "--seed", "7"]
        let a = try CLI.run(args), b = try CLI.run(args)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout == b.stdout)
        let lines = a.stdout.split(separator: "\n")
        #expect(lines.count == 8)
        #expect(lines.allSatisfy { $0.hasPrefix("{\"summary\":") })
        let noModel = try CLI.run(["summarize", "--model", TestData.tempDir("cli"), "--input", data])
        #expect(noModel.status == 1 && noModel.stderr.contains("config.json"))
    }

    /// `--source-prefix` on summarize and evaluate: the same output as inputs with the prefix written in.
    @Test func sourcePrefixIsPutBeforeEveryInput() throws {
        let (model, data) = try Self.setUp()
        let prefixed = TestData.tempDir("cli") + "/prefixed.jsonl"
        var lines: [String] = []
        for line in try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n") {
            var obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            obj["dialogue"] = "summarize: " + (obj["dialogue"] as! String)
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: prefixed, atomically: true, encoding: .utf8)
        let common = ["--model", model, "--max-new-tokens", "5"]
        let withOption = try CLI.run(["summarize", "--input", data, "--source-prefix", "summarize: "] + common)
        let written = try CLI.run(["summarize", "--input", prefixed] + common)
        #expect(withOption.status == 0, "\(withOption.stderr)")
        #expect(withOption.stdout == written.stdout && withOption.stdout.split(separator: "\n").count == 8)
        // evaluate: the loss with --source-prefix is the loss of the prefixed sources (an untrained
        // model's summaries are all alike, its loss is not).
        func loss(_ args: [String]) throws -> Double {
            let out = TestData.tempDir("cli")
            let r = try CLI.run(["evaluate", "--max-samples", "3", "--out", out] + args + common)
            #expect(r.status == 0, "\(r.stderr)")
            let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/metrics.json"))) as! [String: Any]
            return try #require(m["eval_loss"] as? Double)
        }
        let prefixedLoss = try loss(["--data", data, "--source-prefix", "summarize: "])
        #expect(prefixedLoss == (try loss(["--data", prefixed])))
        #expect(prefixedLoss != (try loss(["--data", data])))
        // A control character is refused before anything loads.
        let bad = try CLI.run(["summarize", "--input", data, "--source-prefix", "a\u{1}b"] + common)
        #expect(bad.status != 0 && bad.stderr.contains("--source-prefix") && bad.stderr.contains("U+1"))
    }
}

@Suite struct TrainCommandTests {
    /// The smoke config end to end, as a user runs it from the repository root.
    @Test func smokeConfigTrainsAndWritesAModelFolder() throws {
        _ = try TestData.samsum("validation") // the smoke config reads data/samsum/validation.jsonl
        let out = TestData.tempDir("cli") + "/smoke"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["train", "--config", "configs/train-smoke.yaml", "--output-dir", out]
        p.currentDirectoryURL = TestData.repo
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe; p.standardError = err
        try p.run()
        let stdout = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        _ = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(stdout)")
        #expect(stdout.contains("saved \(out) after 6 steps"))
        #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        let bad = try CLI.run(["train", "--config", "/nonexistent.yaml"])
        #expect(bad.status == 1 && bad.stderr.contains("/nonexistent.yaml"))
    }

    /// `precis train --in-process` with a learning rate that overflows the model at step 1: exit 1
    /// at step 2 with the error naming the step and what was not finite; no model folder written.
    @Test func inProcessStopsOnANonFiniteStep() throws {
        let data = try TestData.samsum("validation")
        let dir = TestData.tempDir("cli")
        let yaml = """
            training:
              output_dir: \(dir)/out
              model: bart-tiny
              tokenizer: \(TestData.repo.path)/Tests/Fixtures/tokenizer/samsum-bpe-8192.json
              train_file: \(data)
              max_train_samples: 16
              max_source_length: 64
              max_target_length: 16
              per_device_train_batch_size: 4
              learning_rate: 1.0e30
              max_steps: 4
              logging_steps: 1
            """
        try yaml.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--in-process", "--config", dir + "/c.yaml", "--threads", "1"])
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("error: step 2: the loss is NaN, not a finite number: training stopped before applying this step")
                || r.stderr.contains("error: step 2: the gradient norm is NaN, not a finite number"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
    }
}

/// `precis tokenizer train --model unigram` as a user runs it, and its refusals.
@Suite struct UnigramTrainCommandTests {
    @Test func trainsAT5StyleUnigramTokenizerAndRefusesBadInput() throws {
        let dir = TestData.tempDir("cli")
        try TestData.samsumPrefix("validation", count: 40, to: dir + "/slice.jsonl")
        let out = dir + "/tok.json"
        let r = try CLI.run(["tokenizer", "train", "--model", "unigram", "--data", dir + "/slice.jsonl", "--fields", "dialogue,summary",
                             "--vocab-size", "400", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("80 texts") && r.stderr.contains("400 tokens"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        let model = json["model"] as! [String: Any]
        #expect(model["type"] as? String == "Unigram" && model["unk_id"] as? Int == 2)
        #expect((model["vocab"] as! [[Any]]).prefix(3).map { $0[0] as! String } == ["<pad>", "</s>", "<unk>"])
        // Encode and decode with it: </s> appended, the text back.
        try Data(#"{"text": "Hannah: Do you have Betty's number?"}"#.utf8 + [0x0A]).write(to: URL(fileURLWithPath: dir + "/in.jsonl"))
        let enc = try CLI.run(["tokenizer", "encode", "--tokenizer", out, "--input", dir + "/in.jsonl"])
        #expect(enc.status == 0 && enc.stdout.hasSuffix(",1]}\n"), "\(enc.stdout) \(enc.stderr)")
        try Data(enc.stdout.utf8).write(to: URL(fileURLWithPath: dir + "/ids.jsonl"))
        let dec = try CLI.run(["tokenizer", "decode", "--tokenizer", out, "--input", dir + "/ids.jsonl", "--skip-special-tokens"])
        #expect(dec.stdout == #"{"text":"Hannah: Do you have Betty's number?"}"# + "\n", "\(dec.stdout)")
        // Too small a vocabulary, no words, a bad kind: exit 1 (ArgumentParser: 64) with the reason.
        let small = try CLI.run(["tokenizer", "train", "--model", "unigram", "--data", dir + "/slice.jsonl", "--fields", "dialogue",
                                 "--vocab-size", "20", "--out", dir + "/x.json"])
        #expect(small.status == 1 && small.stderr.contains("vocab size 20 is too small"), "\(small.stderr)")
        try Data().write(to: URL(fileURLWithPath: dir + "/empty.jsonl"))
        let empty = try CLI.run(["tokenizer", "train", "--model", "unigram", "--data", dir + "/empty.jsonl", "--out", dir + "/x.json"])
        #expect(empty.status == 1 && empty.stderr.contains("no words"), "\(empty.stderr)")
        let kind = try CLI.run(["tokenizer", "train", "--model", "wordpiece", "--data", dir + "/slice.jsonl", "--out", dir + "/x.json"])
        #expect(kind.status != 0 && kind.stderr.contains("wordpiece"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.json"))
    }
}
