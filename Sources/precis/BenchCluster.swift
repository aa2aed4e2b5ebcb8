import ArgumentParser
import Foundation
import PrecisCore
import PrecisData
import PrecisLauncher
import PrecisModels
import PrecisTrain
import PrecisWire

extension BenchCommand {
    /// `precis bench cluster`: a whole sync cluster on this host (1 coordinator, `--servers` servers,
    /// `--workers` workers, as `precis train` starts them) once per gradient codec, against the
    /// single-process training loop on the same total batch and the same cores.
    struct ClusterBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cluster",
            abstract: "Time a local cluster (coordinator, servers, workers over loopback) per codec against the single-process loop.",
            discussion: """
            Each run trains `--steps` steps of a fresh model (the preset's dropout, length-grouped SAMSum batches). \
            The cluster's figures are the coordinator's run summary (its `@summary` line; the first two steps left out); s/step and \
            tokens/s are also timed here from the coordinator's per-step progress over the same steps. The \
            single-process reference is the `precis train --in-process` loop with `workers × threads-per-worker` \
            threads on the same global batch: by default per_device = batch, gradient_accumulation_steps = \
            workers, so it runs exactly the cluster's micro-batches (`--reference batch`: one batch of \
            batch × workers). Rounds are interleaved; `--repeat N` reports medians.
            """)

        @Option(help: "Model preset name or config.json.")
        var model = "bart-small"
        @Option(help: "Training steps per run (the first two are not timed).")
        var steps = 30
        @Option(help: "Per-worker batch size (per_device_train_batch_size).")
        var batch = 8
        @Option(help: "Gradient codecs to run, comma-separated (fp32, bf16, none).")
        var codecs = "fp32,bf16,none"
        @Option(name: .customLong("pull-codec"), help: "Parameter codecs, comma-separated (fp32, bf16, bf16-delta, none), or 'same' for the gradient codec of the run; with several, every gradient codec runs with each (rows named GRADIENT+PARAMETERS).")
        var pullCodec = "fp32"
        @Option(name: .customLong("overlap-pull"), help: "cluster.overlap_pull of the runs: true, false, or both (every run kind also runs without the overlap, named KIND/serial).")
        var overlapPull = "true"
        @Option(name: .customLong("threads-per-worker"), help: "Compute threads per worker (the reference gets workers × this).")
        var threadsPerWorker = 1
        @Option(help: "Parameter servers.")
        var servers = 2
        @Option(help: "Workers.")
        var workers = 2
        @Option(name: .customLong("train-file"), help: "Training data (JSON Lines with dialogue and summary).")
        var trainFile = "data/samsum/train.jsonl"
        @Option(help: "tokenizer.json.")
        var tokenizer = "Tests/Fixtures/tokenizer/samsum-bpe-8192.json"
        @Option(name: .customLong("max-source-length"), help: "Sources are truncated to this many tokens (training.max_source_length).")
        var maxSourceLength = 256
        @Option(name: .customLong("max-target-length"), help: "Summaries are truncated to this many tokens (training.max_target_length).")
        var maxTargetLength = 64
        @Option(name: .customLong("repeat"), help: "Interleaved rounds (medians are reported).")
        var repeats = 1
        @Option(help: "Single-process reference: accumulate (per_device = batch, accumulation = workers), batch (per_device = batch × workers), or none.")
        var reference = "accumulate"
        @Option(name: .customLong("work-dir"), help: "Where configs, run folders and logs go (replaced).")
        var workDir = "runs/bench-cluster"
        @Option(name: .customLong("quiet-wait"), help: "Before each run, wait up to this many seconds for the host's other load to fall under 0.25 cores (0: do not wait).")
        var quietWait = 0.0
        @Option(name: .customLong("max-other-load"), help: "Run a run again (3 tries at most, the quietest kept) when other processes used more than this many cores during it.")
        var maxOtherLoad: Double?
        @Flag(help: "Also print every run and the medians as one JSON object.")
        var json = false
        /// Internal: run the in-process loop of this config and print its step times (a child of the benchmark).
        @Option(name: .customLong("reference-run"), help: .hidden)
        var referenceRun: String?

        func validate() throws {
            guard steps >= 4 else { throw ValidationError("--steps must be at least 4 (the first two are not timed)") }
            guard batch > 0, servers > 0, workers > 0, threadsPerWorker > 0, repeats > 0 else {
                throw ValidationError("--batch, --servers, --workers, --threads-per-worker and --repeat must be positive")
            }
            guard ["accumulate", "batch", "none"].contains(reference) else { throw ValidationError("--reference must be accumulate, batch or none") }
            for c in codecList where !["fp32", "bf16", "none"].contains(c) { throw ValidationError("unknown codec '\(c)' (fp32, bf16, none)") }
            guard !codecList.isEmpty || reference != "none" else { throw ValidationError("nothing to run") }
            guard !pullList.isEmpty else { throw ValidationError("--pull-codec names no codec") }
            guard ["true", "false", "both"].contains(overlapPull) else { throw ValidationError("--overlap-pull must be true, false or both") }
            for p in pullList where !["fp32", "bf16", "bf16-delta", "none", "same"].contains(p) {
                throw ValidationError("--pull-codec must be fp32, bf16, bf16-delta, none or same (comma-separated), not '\(p)'")
            }
        }

        var codecList: [String] { codecs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        var pullList: [String] { pullCodec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }

        /// The cluster runs of a round: each gradient codec, with each parameter codec when several
        /// are given (`GRADIENT+PARAMETERS`; one: the gradient codec's name alone, as before).
        var runKinds: [String] {
            let kinds = codecList.flatMap { c in pullList.count == 1 ? [c] : pullList.map { "\(c)+\($0)" } }
            return overlapPull == "both" ? kinds.flatMap { [$0, $0 + "/serial"] } : kinds
        }

        /// The gradient and parameter codecs of a run kind.
        func runCodecs(of kind: String) -> (gradient: String, pull: String) {
            let parts = kind.split(separator: "/")[0].split(separator: "+").map(String.init)
            let gradient = parts[0], pull = parts.count > 1 ? parts[1] : (pullList.first ?? "fp32")
            return (gradient, pull == "same" ? gradient : pull)
        }

        func run() throws {
            do {
                if let referenceRun { return try Self.referenceChild(config: referenceRun) }
                try benchmark()
            } catch let e as ValidationError { throw e } catch let e as ExitCode { throw e } catch { throw fail(error) }
        }

        // MARK: one run's figures

        struct RunResult {
            var kind: String          // codec name, or "single"
            var round: Int
            var stepSeconds: Double   // timed here over steps 3…N
            var tokensPerSecond: Double
            var paddedPerStep: Double
            // From the coordinator's summary line (cluster runs only).
            var summaryStepSeconds = 0.0, compute = 0.0, waiting = 0.0, encode = 0.0
            var gradWireMB = 0.0, gradRawMB = 0.0, pullWireMB = 0.0, pullRawMB = 0.0, summaryTokensPerSecond = 0.0
            var wallSeconds = 0.0     // the whole run, start-up included
            var ownCores = 0.0        // CPU of this run's processes ÷ wall (start-up included)
            var otherCores = 0.0      // the rest of the host's busy CPU ÷ wall: other load on the machine

            var notHidden: Double { max(0, stepSeconds - compute) }
            var json: [String: Any] {
                ["kind": kind, "round": round, "s_per_step": stepSeconds, "tokens_per_s": tokensPerSecond, "padded_tokens_per_step": paddedPerStep,
                 "summary_s_per_step": summaryStepSeconds, "compute_s_per_step": compute, "waiting_s_per_step": waiting,
                 "encode_s_per_step": encode, "not_hidden_s_per_step": kind == "single" ? 0 : notHidden,
                 "gradient_wire_mb_per_step": gradWireMB, "gradient_raw_mb_per_step": gradRawMB,
                 "parameter_wire_mb_per_step": pullWireMB, "parameter_raw_mb_per_step": pullRawMB,
                 "summary_tokens_per_s": summaryTokensPerSecond, "wall_s": wallSeconds,
                 "own_cores": ownCores, "other_cores": otherCores]
            }
        }

        // MARK: the benchmark

        func absolute(_ p: String) -> String {
            p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
        }

        /// The YAML of one run. `cluster` false: the single-process reference (threads set, accumulation or a bigger batch).
        func yaml(outputDir: String, codec kind: String, cluster: Bool) -> String {
            let perDevice = cluster || reference == "accumulate" ? batch : batch * workers
            let accumulation = cluster || reference == "batch" ? 1 : workers
            let (codec, pull) = runCodecs(of: kind)
            return """
            # Written by `precis bench cluster`.
            training:
              output_dir: \(outputDir)
              model: \(FileManager.default.fileExists(atPath: model) ? absolute(model) : model)
              tokenizer: \(absolute(tokenizer))
              train_file: \(absolute(trainFile))
              max_source_length: \(maxSourceLength)
              max_target_length: \(maxTargetLength)
              per_device_train_batch_size: \(perDevice)
              gradient_accumulation_steps: \(accumulation)
              learning_rate: 7.0e-4
              weight_decay: 0.01
              warmup_steps: 400
              max_grad_norm: 1.0
              label_smoothing_factor: 0.1
              train_sampling_strategy: group_by_length
              max_steps: \(steps)
              logging_steps: 1000000
              save_strategy: "no"
              seed: 42
            \(cluster ? "" : "  threads: \(workers * threadsPerWorker)\n")cluster:
              coordinator: tcp://127.0.0.1:*
              servers: \(servers)
              workers: \(workers)
              consistency: sync
              codec: \(codec)
              pull_codec: \(pull)
              overlap_pull: \(overlapPull == "false" || kind.hasSuffix("/serial") ? "false" : "true")
              threads_per_worker: \(threadsPerWorker)
              start_timeout: 120

            """
        }

        /// Padded source + target positions per timed step (steps 3…N), as the workers count them.
        func paddedPerTimedStep(config: TrainingConfig, plannedWorkers: Int) throws -> Double {
            let shape = try LocalTrainer.loadModel(config.training.model, seed: 0)
            let plan = try TrainingPlan(config, model: ModelShape(shape.facts), plannedWorkers: plannedWorkers)
            let collator = plan.collator(padId: shape.facts.padTokenId)
            var total = 0
            var cache: (epoch: Int, batches: [[Int]])? = nil
            for s in 2..<steps {
                let e = s / plan.stepsPerEpoch
                if cache?.epoch != e { cache = (e, plan.microBatches(epoch: e)) }
                // In-process: micro-batches in groups of gradient_accumulation_steps; cluster: microPerStep per step.
                for mb in plan.stepMicroBatches(step: s, epochBatches: cache!.batches) {
                    let b = try collator.batch(mb, from: plan.dataset, step: s)
                    total += b.batchSize * (b.sourceLength + b.targetLength)
                }
            }
            return Double(total) / Double(steps - 2)
        }

        func benchmark() throws {
            let work = absolute(workDir)
            try? FileManager.default.removeItem(atPath: work)
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let cacheDir = work + "/cache"

            // Tokenize once here; every run's output folder links to this cache, so start-up is short and equal.
            let clusterCfg = try TrainingConfig.parse(yaml(outputDir: work, codec: "fp32", cluster: true), file: "(bench cluster)")
            let refCfg = try TrainingConfig.parse(yaml(outputDir: work, codec: "fp32", cluster: false), file: "(bench reference)")
            let clusterPadded = try paddedPerTimedStep(config: clusterCfg, plannedWorkers: workers)
            let refPadded = reference == "none" ? 0 : try paddedPerTimedStep(config: refCfg, plannedWorkers: 1)
            let probe = try LocalTrainer.loadModel(clusterCfg.training.model, seed: 0)
            let parameters = probe.table.count

            print("precis bench cluster: \(model) (\(parameters) parameters), \(servers) server(s), \(workers) worker(s) × \(threadsPerWorker) thread(s), "
                  + "batch \(batch) per worker (global \(batch * workers)), source ≤ \(maxSourceLength), target ≤ \(maxTargetLength), "
                  + "\(steps) steps (\(steps - 2) timed), \(repeats) round(s), OpenBLAS kernel \(BLASKernel.current), \(Compute.availableCores) core(s)")
            print(String(format: "  padded tokens per step: cluster %.0f, single process %.0f (reference: %@)", clusterPadded, refPadded, reference))

            var results: [RunResult] = []
            for round in 1...repeats {
                // Alternate the order each round so neither side always runs first (the VM drifts).
                var order: [String] = runKinds
                if reference != "none" { if round % 2 == 1 { order.append("single") } else { order.insert("single", at: 0) } }
                for kind in order {
                    let name = "r\(round)-\(kind.replacingOccurrences(of: "/", with: "-"))"
                    let dir = work + "/" + name
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    try FileManager.default.createSymbolicLink(atPath: dir + "/cache", withDestinationPath: cacheDir)
                    let cfgPath = work + "/\(name).yaml"
                    try yaml(outputDir: dir, codec: kind == "single" ? "fp32" : kind, cluster: kind != "single")
                        .write(toFile: cfgPath, atomically: true, encoding: .utf8)
                    var best: RunResult?
                    for attempt in 1...3 {
                        if quietWait > 0 { waitForQuiet() }
                        let before = CPUTimes.sample()
                        var r = kind == "single"
                            ? try runReference(config: cfgPath, dir: dir, round: round, padded: refPadded)
                            : try runCluster(config: cfgPath, dir: dir, codec: kind, round: round, padded: clusterPadded)
                        let after = CPUTimes.sample()
                        r.ownCores = (after.own - before.own) / r.wallSeconds
                        r.otherCores = max(0, (after.host - before.host) - (after.own - before.own)) / r.wallSeconds
                        if best == nil || r.otherCores < best!.otherCores { best = r }
                        guard let limit = maxOtherLoad, r.otherCores > limit, attempt < 3 else { break }
                        print(String(format: "  (round %d %@: other processes used %.2f cores; running it again)", round, kind, r.otherCores))
                    }
                    let r = best!
                    results.append(r)
                    if kind == "single" {
                        print(String(format: "  round %d single process (%d threads): %.4f s/step, %.0f tokens/s (run %.1f s; CPU %.2f cores ours, %.2f others)",
                                     round, workers * threadsPerWorker, r.stepSeconds, r.tokensPerSecond, r.wallSeconds, r.ownCores, r.otherCores))
                    } else {
                        print(String(format: "  round %d cluster %@: %.4f s/step (summary %.4f), compute %.4f, not hidden %.4f (encoding %.4f, waiting %.4f), "
                                     + "gradients %.3f/%.3f MB, parameters %.3f/%.3f MB, %.0f tokens/s (summary %.0f) (run %.1f s; CPU %.2f cores ours, %.2f others)",
                                     round, kind, r.stepSeconds, r.summaryStepSeconds, r.compute, r.notHidden, r.encode, r.waiting,
                                     r.gradWireMB, r.gradRawMB, r.pullWireMB, r.pullRawMB, r.tokensPerSecond, r.summaryTokensPerSecond, r.wallSeconds,
                                     r.ownCores, r.otherCores))
                    }
                }
            }
            report(results)
        }

        /// Waits (up to --quiet-wait seconds) until the host's busy CPU over 3 s, all of it other
        /// processes' while this one sleeps, is under a quarter of a core.
        func waitForQuiet() {
            let deadline = Date().addingTimeInterval(quietWait)
            var load = 0.0
            repeat {
                let a = CPUTimes.sample()
                Thread.sleep(forTimeInterval: 3)
                let b = CPUTimes.sample()
                load = ((b.host - a.host) - (b.own - a.own)) / 3
                if load < 0.25 { return }
            } while Date() < deadline
            print(String(format: "  (the host stayed busy: %.2f cores used by other processes; running anyway)", load))
        }

        func median(_ xs: [Double]) -> Double {
            guard !xs.isEmpty else { return .nan }
            let s = xs.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }

        func report(_ results: [RunResult]) {
            let single = results.filter { $0.kind == "single" }
            let singleByRound = Dictionary(single.map { ($0.round, $0) }, uniquingKeysWith: { a, _ in a })
            let singleStep = median(single.map(\.stepSeconds))
            let singleTokens = median(single.map(\.tokensPerSecond))
            print("")
            print("median of \(repeats) round(s); s/step and tokens/s timed over steps 3…\(steps) from the coordinator's progress; "
                  + "compute = the slowest worker's forward+backward (gradient encoding not included); not hidden = s/step − compute; "
                  + "encoding = that worker's gradient encoding (on its compute thread); waiting = its wait for parameters from its previous report; "
                  + "MB per step summed over the workers; × single = single-process s/step ÷ cluster s/step in the same round (same examples); "
                  + "other load = cores busy with other processes on this host during the run")
            let header = ["codec", "s/step", "compute", "not hidden", "% of step", "encoding", "waiting", "grad MB wire", "raw", "ratio",
                          "param MB wire", "raw", "ratio", "tokens/s", "× single", "other load"]
            var rows: [[String]] = []
            var summary: [[String: Any]] = []
            for c in runKinds {
                let rs = results.filter { $0.kind == c }
                guard !rs.isEmpty else { continue }
                let step = median(rs.map(\.stepSeconds)), compute = median(rs.map(\.compute))
                let notHidden = median(rs.map(\.notHidden)), share = median(rs.map { $0.notHidden / $0.stepSeconds })
                let gw = median(rs.map(\.gradWireMB)), gr = median(rs.map(\.gradRawMB))
                let pw = median(rs.map(\.pullWireMB)), pr = median(rs.map(\.pullRawMB))
                let ratios = rs.compactMap { r in singleByRound[r.round].map { $0.stepSeconds / r.stepSeconds } }
                let vsSingle = median(ratios)
                rows.append([c, String(format: "%.4f", step), String(format: "%.4f", compute), String(format: "%.4f", notHidden),
                             String(format: "%.1f %%", 100 * share), String(format: "%.4f", median(rs.map(\.encode))),
                             String(format: "%.4f", median(rs.map(\.waiting))),
                             String(format: "%.3f", gw), String(format: "%.3f", gr), String(format: "%.2fx", gr / max(gw, 1e-12)),
                             String(format: "%.3f", pw), String(format: "%.3f", pr), String(format: "%.2fx", pr / max(pw, 1e-12)),
                             String(format: "%.0f", median(rs.map(\.tokensPerSecond))), ratios.isEmpty ? "-" : String(format: "%.2f", vsSingle),
                             String(format: "%.2f", median(rs.map(\.otherCores)))])
                summary.append(["codec": c, "s_per_step": step, "compute_s_per_step": compute, "not_hidden_s_per_step": notHidden,
                                "not_hidden_share": share, "waiting_s_per_step": median(rs.map(\.waiting)),
                                "encode_s_per_step": median(rs.map(\.encode)),
                                "gradient_wire_mb_per_step": gw, "gradient_raw_mb_per_step": gr,
                                "parameter_wire_mb_per_step": pw, "parameter_raw_mb_per_step": pr,
                                "tokens_per_s": median(rs.map(\.tokensPerSecond)), "throughput_vs_single": ratios.isEmpty ? NSNull() : vsSingle as Any])
            }
            if !single.isEmpty {
                rows.append(["single (\(workers * threadsPerWorker) thr)", String(format: "%.4f", singleStep), "", "", "", "", "", "", "", "", "", "", "",
                             String(format: "%.0f", singleTokens), "1.00", String(format: "%.2f", median(single.map(\.otherCores)))])
            }
            let widths = header.indices.map { i in max(header[i].count, rows.map { $0[i].count }.max() ?? 0) }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { i, s in
                    i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - s.count) + s
                }.joined(separator: "  ")
            }
            print(line(header))
            for r in rows { print(line(r)) }
            if json {
                let obj: [String: Any] = [
                    "model": model, "servers": servers, "workers": workers, "threads_per_worker": threadsPerWorker, "batch_per_worker": batch,
                    "steps": steps, "repeat": repeats, "reference": reference, "pull_codec": pullCodec,
                    "runs": results.map(\.json), "medians": summary,
                    "single": single.isEmpty ? NSNull() as Any : ["s_per_step": singleStep, "tokens_per_s": singleTokens] as [String: Any]]
                if let d = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]) { print(String(decoding: d, as: UTF8.self)) }
            }
        }

        // MARK: cluster runs

        /// Runs the local cluster of `config` (as `precis train` does) and reads its `@progress` and `@summary` lines.
        func runCluster(config: String, dir: String, codec: String, round: Int, padded: Double) throws -> RunResult {
            let cfg = try TrainingConfig.load(config)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: {
                let p = dir + "/coordinator.log"; _ = FileManager.default.createFile(atPath: p, contents: nil); return p
            }()))
            defer { try? log.close() }
            var elapsed: [Int: Double] = [:]
            var summary: RunSummary?
            var tail: [String] = []
            let started = Date()
            let status = try LocalCluster(config: cfg, configPath: config, outputDir: dir).run { line in
                if let p = ReportLine.progress(from: line) {
                    elapsed[p.step] = p.elapsed
                    return
                }
                if let s = ReportLine.summary(from: line) {
                    summary = s
                    return
                }
                log.write(Data((line + "\n").utf8))
                tail.append(line)
                if tail.count > 20 { tail.removeFirst() }
            }
            let wall = Date().timeIntervalSince(started)
            guard status == .exited(0), let summary else {
                throw BenchError("the \(codec) cluster run failed (coordinator \(status)\(summary == nil ? ", no @summary line" : "")); "
                                 + "logs in \(dir)/coordinator.log and \(dir)/logs:\n" + tail.joined(separator: "\n"))
            }
            guard let e2 = elapsed[2], let eN = elapsed[steps] else {
                throw BenchError("the \(codec) cluster run reported no progress for steps 2 and \(steps); logs in \(dir)")
            }
            let n = Double(steps - 2)
            var r = RunResult(kind: codec, round: round, stepSeconds: (eN - e2) / n, tokensPerSecond: padded * n / (eN - e2), paddedPerStep: padded)
            r.summaryStepSeconds = summary.secondsPerStep; r.compute = summary.computeSecondsPerStep
            r.waiting = summary.waitingSecondsPerStep; r.encode = summary.encodeSecondsPerStep
            r.gradWireMB = summary.gradientWireMBPerStep; r.gradRawMB = summary.gradientRawMBPerStep
            r.pullWireMB = summary.parameterWireMBPerStep; r.pullRawMB = summary.parameterRawMBPerStep
            r.summaryTokensPerSecond = summary.tokensPerSecond
            r.wallSeconds = wall
            return r
        }

        // MARK: the single-process reference

        /// Runs this executable with `--reference-run` (its own process, like `precis train --in-process`).
        func runReference(config: String, dir: String, round: Int, padded: Double) throws -> RunResult {
            let argv = [URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path, "bench", "cluster", "--reference-run", config, "--steps", String(steps)]
            let started = Date()
            let child = try ChildProcess(argv, output: .lines, errors: .file(dir + "/reference.log"))
            var lines: [String] = []
            child.readLines { lines.append($0) }
            let status = child.wait()!
            let wall = Date().timeIntervalSince(started)
            try? lines.joined(separator: "\n").appending("\n").write(toFile: dir + "/reference.out", atomically: true, encoding: .utf8)
            guard status == .exited(0), let line = lines.last(where: { $0.hasPrefix("@reference ") }),
                  let obj = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(11).utf8)) as? [String: Any],
                  let el = obj["elapsed"] as? [Double], el.count >= steps else {
                throw BenchError("the single-process reference failed (\(status)); see \(dir)/reference.out and reference.log")
            }
            let n = Double(steps - 2)
            let span = el[steps - 1] - el[1]
            var r = RunResult(kind: "single", round: round, stepSeconds: span / n, tokensPerSecond: padded * n / span, paddedPerStep: padded)
            r.wallSeconds = wall
            return r
        }

        /// The child side: the in-process training loop (LocalTrainer, what `precis train --in-process` runs),
        /// printing the elapsed time after every step as one JSON line.
        static func referenceChild(config: String) throws {
            let cfg = try TrainingConfig.load(config)
            var elapsed: [Double] = []
            let report = try LocalTrainer.run(cfg, log: { print($0) }) { p in elapsed.append(p.elapsed) }
            let obj: [String: Any] = ["elapsed": elapsed, "steps": report.steps, "seconds": report.seconds,
                                      "threads": report.threads]
            print("@reference " + String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self))
        }
    }
}

/// A benchmark run that failed: what failed and where its logs are.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// CPU seconds used so far by this process and its waited-for children, and by the whole host
/// (/proc/stat): the difference over a run is the other load on the machine while it ran.
struct CPUTimes {
    var own: Double
    var host: Double

    static func sample() -> CPUTimes {
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        var me = rusage(), kids = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &me)
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &kids)
        let own = seconds(me.ru_utime) + seconds(me.ru_stime) + seconds(kids.ru_utime) + seconds(kids.ru_stime)
        var host = 0.0
        if let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let first = text.split(separator: "\n").first {
            // cpu user nice system idle iowait irq softirq steal …: everything but idle and iowait is busy.
            let f = first.split(separator: " ").dropFirst().compactMap { Double($0) }
            if f.count >= 8 { host = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / Double(sysconf(Int32(_SC_CLK_TCK))) }
        }
        return CPUTimes(own: own, host: host)
    }
}
