import ArgumentParser
import Foundation
import PrecisEval
import PrecisTrain

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a summarization model from a YAML config (training arguments named as transformers' Seq2SeqTrainingArguments).",
        discussion: "Runs in this process today; the cluster roles will spread the same loop over processes and hosts.")

    @Option(help: "YAML config with a `training:` section (and an optional `cluster:` section).")
    var config: String
    @Option(name: .customLong("output-dir"), help: "Overrides training.output_dir.")
    var outputDir: String?
    @Option(name: .customLong("max-steps"), help: "Overrides training.max_steps.")
    var maxSteps: Int?
    @Option(help: "Overrides training.threads.")
    var threads: Int?

    func run() throws {
        do {
            var cfg = try TrainingConfig.load(config)
            if let outputDir { cfg.training.outputDir = outputDir }
            if let maxSteps { cfg.training.maxSteps = maxSteps }
            if let threads { cfg.training.threads = threads }
            try cfg.validate()
            let bar = ProgressBar(label: "train")
            let tty = isatty(2) != 0
            var lastDraw = Date.distantPast
            let report = try LocalTrainer.run(cfg, log: { print($0) }) { p in
                let now = Date()
                guard p.step == p.totalSteps || now.timeIntervalSince(lastDraw) > (tty ? 0.2 : 10) else { return }
                lastDraw = now
                let line = bar.line(done: p.step, total: p.totalSteps,
                                    extra: String(format: "epoch %.2f loss %.4f lr %.2e %.1f ex/s", p.epoch, p.loss, p.learningRate,
                                                  p.examplesPerSecond))
                FileHandle.standardError.write(Data(((tty ? "\r" : "") + line + (tty && p.step < p.totalSteps ? "" : "\n")).utf8))
            }
            for entry in report.logHistory {
                print(String(format: "step %5.0f  epoch %5.2f  loss %.4f  lr %.3e  grad_norm %.3f", entry["step"] ?? 0, entry["epoch"] ?? 0,
                             entry["loss"] ?? 0, entry["learning_rate"] ?? 0, entry["grad_norm"] ?? 0))
            }
        } catch let e as ValidationError { throw e } catch { throw fail(error) }
    }
}
