import ArgumentParser
import Foundation
import PrecisCore
import PrecisEval
import PrecisHub
import PrecisLauncher
import PrecisTrain
import PrecisWire

/// `precis train --bf16`: training.bf16 set for one run, or chosen by the CPU (`auto`).
enum BF16Choice: String, ExpressibleByArgument, CaseIterable {
    case auto
    case on = "true"
    case off = "false"

    /// The YAML value of training.bf16, given the bf16 kernel that would run here (nil: none). `auto`
    /// takes AMX, and the portable kernel where `PRECIS_BF16_EMULATE=1` asked for it, but not
    /// AVX-512-BF16 alone: on the Xeon measured (docs/benchmarks.md, "The best recipe") that kernel
    /// runs the training step 1.55× slower than OpenBLAS's fp32 products (its `VDPBF16PS` issues at a
    /// quarter of FMA's instruction rate, which `precis bench gemm --bf16` measures); `--bf16 true` still uses it.
    func resolved(kernel: BF16Kernel?) -> Bool {
        switch self {
        case .on: true
        case .off: false
        case .auto: kernel == .amx || kernel == .portable
        }
    }

    /// The first log line of a run with `--bf16 auto`: the choice and why.
    /// (Which way it went is `resolved`'s answer, so the two cannot disagree.)
    static func autoNote(kernel: BF16Kernel?, unavailableReason: String?) -> String {
        guard let k = kernel else { return "--bf16 auto: fp32 products (\(unavailableReason ?? "no bf16 kernel"))" }
        if BF16Choice.auto.resolved(kernel: k) { return "--bf16 auto: bf16 products (\(k.rawValue) kernel)" }
        return "--bf16 auto: fp32 products (this CPU's bf16 kernel is \(k.rawValue), slower than fp32 here; --bf16 true uses it)"
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a summarization model from a YAML config (training arguments named as transformers' Seq2SeqTrainingArguments).",
        discussion: """
        Runs a whole cluster on this host: the coordinator, the parameter servers and the workers the \
        config's `cluster:` section asks for, as separate processes over TCP loopback. `--in-process` \
        runs the same training loop in this one process instead (the single-process reference); it does \
        not evaluate, write checkpoints before the end, load the best model or push to a hub, and refuses \
        a config that asks for any of them (naming the key).
        """)

    @Option(help: "YAML config with a `training:` section (and an optional `cluster:` section).")
    var config: String
    @Option(name: .customLong("output-dir"), help: "Overrides training.output_dir.")
    var outputDir: String?
    @Option(name: .customLong("max-steps"), help: "Overrides training.max_steps.")
    var maxSteps: Int?
    @Option(help: "Threads per worker (overrides cluster.threads_per_worker; with --in-process, training.threads).")
    var threads: Int?
    @Option(name: .customLong("set"), help: ArgumentHelp("Overrides one config key (repeatable): training.KEY=VALUE, cluster.KEY=VALUE or KEY=VALUE; VALUE is YAML.", valueName: "key=value"))
    var settings: [String] = []
    @Flag(name: .customLong("in-process"), help: "Train in this process instead of a local cluster.")
    var inProcess = false
    @Option(name: .customLong("log-format"), help: "Log lines as text or json (one object per line), for every role and this command's own lines.")
    var logFormat = "text"
    @Option(help: ArgumentHelp("Overrides training.bf16: true, false, or auto (bf16 products where this CPU has AMX, fp32 elsewhere; what make train passes).",
                               valueName: "auto|true|false"))
    var bf16: BF16Choice?

    func validate() throws {
        do { _ = try LogFormat.parse(logFormat) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let format = (try? LogFormat.parse(logFormat)) ?? .text
        Logging.configure(format: format, role: "precis")
        do {
            let original = try TrainingConfig.readText(config)
            // --bf16 is one more --set, after the others, so the coordinator and the workers read it too.
            let settings = settings + (bf16.map { ["training.bf16=\($0.resolved(kernel: BF16Gemm.kernel))"] } ?? [])
            if bf16 == .auto {
                print(Logging.note("precis", BF16Choice.autoNote(kernel: BF16Gemm.kernel, unavailableReason: BF16Gemm.unavailableReason)))
            }
            var text = try TrainingConfig.applying(settings, to: original, file: config)
            var cfg = try TrainingConfig.parse(text, file: config)
            // A model or tokenizer named as a Hub repository is downloaded here, before anything is
            // launched; the coordinator and the workers get the config with the local paths.
            let hub = try ModelSource.trainingOverrides(model: cfg.training.model, tokenizer: cfg.training.tokenizer,
                                                        trainsTokenizer: cfg.training.tokenizerModel != nil)
            if !hub.isEmpty {
                text = try TrainingConfig.applying(settings + hub, to: original, file: config)
                cfg = try TrainingConfig.parse(text, file: config)
            }
            if let outputDir { cfg.training.outputDir = outputDir }
            if let maxSteps { cfg.training.maxSteps = maxSteps }
            try cfg.validate()
            // bf16: true on a CPU without a bf16 kernel stops here, before anything is launched.
            try BF16Setting.check(cfg)
            // Before a tokenizer is trained or data loaded: the keys --in-process refuses whatever the run's length.
            if inProcess, let e = LocalTrainer.unsupported(cfg, totalSteps: nil, stepsPerEpoch: nil) { throw e }
            try TokenizerPreparation.ensure(cfg) { Stdio.writeStderr($0 + "\n") }
            let tty = isatty(2) != 0
            let bar = ProgressBar(label: "train")
            var lastDraw = Date.distantPast
            func draw(step: Int, total: Int, extra: String) {
                let now = Date()
                guard step == total || now.timeIntervalSince(lastDraw) > (tty ? 0.2 : 10) else { return }
                lastDraw = now
                let line = bar.line(done: step, total: total, extra: extra)
                Stdio.writeStderr((tty ? "\r" : "") + line + (tty && step < total ? "" : "\n"))
            }
            if inProcess {
                for w in cfg.warnings { Stdio.writeStderr("precis: warning: \(w)\n") }
                if let threads { cfg.training.threads = threads }
                let report = try LocalTrainer.run(cfg, refuseUnsupported: true, log: { print(Logging.note("precis", $0)) }) { p in
                    draw(step: p.step, total: p.totalSteps,
                         extra: String(format: "epoch %.2f loss %.4f lr %.2e %.1f ex/s", p.epoch, p.loss, p.learningRate, p.examplesPerSecond))
                }
                for entry in report.logHistory {
                    print(Logging.note("precis", String(format: "step %5.0f  epoch %5.2f  loss %.4f  lr %.3e  grad_norm %.3f", entry["step"] ?? 0,
                                                        entry["epoch"] ?? 0, entry["loss"] ?? 0, entry["learning_rate"] ?? 0, entry["grad_norm"] ?? 0)))
                }
                return
            }
            // The coordinator reads the config from a file: with --set, the overridden one (private, removed at the end).
            var configPath = config
            if text != original {
                configPath = FileManager.default.temporaryDirectory.appendingPathComponent("precis-train-\(getpid()).yaml").path
                guard FileManager.default.createFile(atPath: configPath, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                    throw ConfigError.unreadable(file: configPath, reason: "cannot write the overridden config")
                }
            }
            defer { if configPath != config { try? FileManager.default.removeItem(atPath: configPath) } }
            var cluster = LocalCluster(config: cfg, configPath: configPath, outputDir: cfg.training.outputDir, maxSteps: maxSteps, threads: threads)
            cluster.logFormat = format
            let status = try cluster.run { line in
                if let p = ReportLine.progress(from: line) {
                    draw(step: p.step, total: p.total,
                         extra: String(format: "epoch %.2f loss %.4f lr %.2e %.1f ex/s %d worker(s)", p.epoch, p.loss, p.learningRate,
                                       p.examplesPerSecond, p.workers))
                } else if ReportLine.summary(from: line) == nil {  // the summary is also a log line for people
                    if tty { Stdio.writeStderr("\r\u{1B}[K") }
                    print(line)    // a failed write is reported when the run ends (`Stdio.finishStdout`)
                }
            }
            if status != .exited(0) { throw ExitCode(status.code) }
        } catch let e as ValidationError { throw e } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}
