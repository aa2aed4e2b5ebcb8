import ArgumentParser
import Foundation
import PrecisBench
import PrecisCore
import PrecisHub
import PrecisModels

@main
struct Precis: ParsableCommand {
    static func main() {
        BLASKernel.selectBLASKernel()
        Stdio.lineBufferStdout()
        var command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do {
            try command.run()
            if let why = Stdio.finishStdout() { exit(withError: fail(ValidationError("standard output: \(why)"))) }
        } catch let e as ValidationError {
            // Thrown while running, a ValidationError is about an input (a file, a text, what options
            // found there), not the command line's syntax: an error line and status 1, as every other
            // failure of a run, rather than ArgumentParser's usage text and status 64.
            exit(withError: fail(e))
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "precis",
        abstract: "Fine-tune and evaluate seq2seq summarization transformers on CPU clusters.",
        version: PrecisVersion.string,
        subcommands: [InitCommand.self, InspectCommand.self, BenchCommand.self, RougeCommand.self, EvaluateCommand.self, SummarizeCommand.self, TokenizerCommand.self, TrainCommand.self, ClusterCommand.self, ConfigCommand.self, KeysCommand.self, CheckpointCommand.self])
}

/// Prints an error the way every subcommand reports failures: one line naming what was wrong.
func fail(_ error: Error) -> ExitCode {
    Stdio.writeStderr("error: \(error)\n")
    return ExitCode(1)
}

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write a randomly initialised model folder (config.json + model.safetensors).")

    @Option(help: ArgumentHelp("A config.json path or a preset name (\(ModelPresets.all.keys.sorted().joined(separator: ", "))).",
                               valueName: "config"))
    var config: String
    @Option(name: .customLong("output-dir"), help: "Output model folder.")
    var outputDir: String?
    @Option(name: .customLong("out"), help: .hidden)
    var legacyOut: String?
    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    func validate() throws { _ = try OutputDir.resolve(outputDir, legacy: legacyOut, required: true) }

    func run() throws {
        let out = try OutputDir.resolve(outputDir, legacy: legacyOut, required: true)!
        do {
            let model = try ModelPresets.model(config)
            model.initializeWeights(seed: seed)
            try ModelFolder.save(model, to: out)
            print("wrote \(out) (\(model.table.count) parameters, seed \(seed))")
        } catch { throw fail(error) }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Inspect a model's numerics.", subcommands: [LossGrad.self])

    struct LossGrad: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "loss-grad",
            abstract: "Loss, logits and every parameter's gradient for one batch, as transformers computes them.")

        @Option(help: "Hugging Face model folder (config.json + model.safetensors), or a Hub repository org/name[@revision].")
        var model: String
        @Option(help: "safetensors file with input_ids, attention_mask (optional) and labels (int64; -100 = ignore).")
        var batch: String
        @Option(help: "Output safetensors file (loss, logits, grad.<name>).")
        var out: String
        @Flag(help: "Apply the config's dropout (training mode) instead of running deterministically.")
        var dropout = false
        @Option(help: "Dropout seed (with --dropout).")
        var seed: UInt64 = 0
        @Option(help: "Compute threads (default: available cores). Results do not depend on it beyond float rounding.")
        var threads: Int?
        @Flag(help: "Run forward and backward as two calls instead of one step (same results).")
        var separatePasses = false
        @Flag(help: "bf16 products with fp32 accumulation (Trainer's bf16: true), as the training step runs them.")
        var bf16 = false

        func run() throws {
            do {
                Compute.setThreads(threads ?? Compute.availableCores)
                let (m, report) = try ModelFolder.load(ModelSource.modelFolder(model))
                if bf16 { try m.setMatmulPrecision(.bf16) }
                for name in report.unexpected { Stdio.writeStderr("warning: unused tensor \(name)\n") }
                let loss = try LossGradInspector.run(model: m, batchFile: batch, out: out, training: dropout, seed: seed,
                                                     separatePasses: separatePasses)
                print(String(format: "loss %.6f → %@", loss, out))
            } catch { throw fail(error) }
        }
    }
}

/// The model and input shape every benchmark takes.
struct BenchShape: ParsableArguments {
    @Option(help: "A config.json path or a preset name.")
    var config = "bart-small"
    @Option(help: "Batch size.")
    var batch = 8
    @Option(name: .customLong("source-len"), help: "Source length.")
    var sourceLen = 256
    @Option(help: "Compute threads; the default shown is this machine's core count.")
    var threads = Compute.availableCores

    /// The model the config names (uninitialised).
    func model() throws -> any Seq2SeqModel {
        try ModelPresets.model(config)
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print figures.", subcommands: [Step.self, Gemm.self, Generate.self, ClusterBench.self, CodecBench.self, ScalingBench.self])

    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "step", abstract: "Time training steps (forward, backward, optimizer) of a model config.")

        @OptionGroup var shape: BenchShape
        @Option(name: .customLong("target-len"), help: "Target length.")
        var targetLen = 64
        @Option(help: "Timed steps.")
        var steps = 10
        @Option(help: "Untimed warm-up steps.")
        var warmup = 2
        @Flag(help: "Print one JSON object instead of the table.")
        var json = false
        @Flag(help: "Also print the wall time of each region of the step.")
        var profile = false
        @Flag(help: "Run the linear layers' products in bf16 with fp32 accumulation (Trainer's bf16: true).")
        var bf16 = false

        func run() throws {
            do {
                let model = try shape.model()
                if bf16 { try model.setMatmulPrecision(.bf16) }
                let r = try StepBenchmark.run(model: model, batch: shape.batch, source: shape.sourceLen, target: targetLen,
                                              threads: shape.threads, steps: steps, warmup: warmup, profile: profile)
                if json {
                    let obj: [String: Any] = [
                        "config": shape.config, "batch": shape.batch, "source_len": shape.sourceLen, "target_len": targetLen, "threads": shape.threads,
                        "forward_ms": r.forwardMs, "backward_ms": r.backwardMs, "optimizer_ms": r.optimizerMs,
                        "step_ms": r.stepMs, "tokens_per_s": r.tokensPerSecond, "gflop_per_step": r.gflopPerStep,
                        "gflops": r.achievedGflops, "sgemm_peak_gflops": r.sgemmPeakGflops,
                        "sgemm_between_steps_gflops": r.sgemmBetweenStepsGflops ?? NSNull(),
                        "peak_rss_mib": r.peakRSSMiB, "parameters": r.parameters, "steps": r.steps,
                        "blas_kernel": BLASKernel.current, "row_kernels": CPUFeatures.vectorISA, "precision": model.matmulPrecision.rawValue]
                    let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                    print(String(decoding: d, as: UTF8.self))
                } else {
                    print("precis bench step: \(shape.config), batch \(shape.batch), source \(shape.sourceLen), target \(targetLen), \(shape.threads) thread(s), \(r.parameters) parameters, median of \(r.steps) steps, OpenBLAS kernel \(BLASKernel.current), row kernels \(CPUFeatures.vectorISA), products \(model.matmulPrecision.rawValue)\(bf16 ? " (" + (BF16Gemm.kernel?.rawValue ?? "") + ")" : "")")
                    print(String(format: "  forward     %8.1f ms", r.forwardMs))
                    print(String(format: "  backward    %8.1f ms", r.backwardMs))
                    print(String(format: "  optimizer   %8.1f ms", r.optimizerMs))
                    print(String(format: "  step        %8.1f ms   %.0f tokens/s", r.stepMs, r.tokensPerSecond))
                    print(String(format: "  matmul work %8.2f GFLOP/step → %.1f GFLOP/s = %.0f%% of measured sgemm peak %.1f GFLOP/s (best burst)",
                                 r.gflopPerStep, r.achievedGflops, 100 * r.achievedGflops / r.sgemmPeakGflops, r.sgemmPeakGflops))
                    if let between = r.sgemmBetweenStepsGflops {
                        print(String(format: "                                        = %.0f%% of sgemm between the steps %.1f GFLOP/s (median)",
                                     100 * r.achievedGflops / between, between))
                    }
                    print(String(format: "  peak RSS    %8.1f MiB", r.peakRSSMiB))
                    if profile {
                        print("  profile (mean ms per step; the rest is LayerNorm, residuals, dropout, zeroing):")
                        var covered = 0.0
                        func row(_ name: String, _ ms: Double) {
                            print("    " + name.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: "%7.1f", ms))
                        }
                        row("forward+backward", r.meanForwardBackwardMs)
                        for (name, ms) in r.regions { covered += ms; row(name, ms) }
                        row("rest of forward+backward", r.meanForwardBackwardMs - covered)
                        if r.laneMs.count > 1 {
                            print("  lanes (rows of the batch per thread; regions above are lane 0's), ms per step:")
                            print("    " + "".padding(toLength: 28, withPad: " ", startingAt: 0) + "   own  helping  idle")
                            for (i, ms) in r.laneMs.enumerated() {
                                let help = i < r.laneHelpingMs.count ? r.laneHelpingMs[i] : 0
                                let idle = i < r.laneIdleMs.count ? r.laneIdleMs[i] : 0
                                print("    " + "lane \(i)".padding(toLength: 28, withPad: " ", startingAt: 0)
                                      + String(format: "%7.1f  %7.1f %6.1f", ms, help, idle))
                            }
                        }
                    }
                }
            } catch let e as ValidationError { throw e } catch { throw fail(error) }
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate", abstract: "Generated tokens per second, greedy and beam search.")

        @OptionGroup var shape: BenchShape
        @Option(name: .customLong("new-tokens"), help: "Tokens generated per row.")
        var newTokens = 64
        @Option(name: .customLong("num-beams"), help: "Beam sizes to time (comma-separated).")
        var numBeams = "1,4"
        @Option(help: "Timed repeats (best is reported).")
        var repeats = 3
        @Flag(help: "Print JSON lines.")
        var json = false
        @Flag(help: "Also print the time of each phase (encoder, decoder set-up, decoder steps).")
        var profile = false
        @Flag(help: "Run the linear layers' and the LM head's products in bf16 with fp32 accumulation (the encoder and the incremental decoder).")
        var bf16 = false

        func run() throws {
            do {
                let model = try shape.model()
                model.initializeWeights(seed: 0)
                if bf16 { try model.setMatmulPrecision(.bf16) }
                // The products' precision, and with bf16 the kernel that runs them.
                let products = model.matmulPrecision.rawValue + (bf16 ? " (" + (BF16Gemm.kernel?.rawValue ?? "") + ")" : "")
                for beams in GenerateBenchmark.beamSizes(numBeams) {
                    let r = try GenerateBenchmark.run(model: model, batch: shape.batch, source: shape.sourceLen, newTokens: newTokens,
                                                      numBeams: beams, threads: shape.threads, repeats: repeats, profile: profile)
                    if json {
                        let o: [String: Any] = ["num_beams": beams, "seconds": r.seconds, "tokens_per_s": r.tokensPerSecond,
                                                "batch": shape.batch, "source_len": shape.sourceLen, "new_tokens": newTokens,
                                                "threads": shape.threads, "peak_rss_mib": r.peakRSSMiB,
                                                "precision": model.matmulPrecision.rawValue, "bf16_kernel": bf16 ? BF16Gemm.kernel?.rawValue ?? NSNull() : NSNull()]
                        print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
                    } else {
                        print(String(format: "%@, batch %d, source %d, %d new tokens, %d beam(s), %d thread(s), products %@: %.3f s, %.0f tokens/s",
                                     shape.config, shape.batch, shape.sourceLen, newTokens, beams, shape.threads, products, r.seconds,
                                     r.tokensPerSecond))
                    }
                    for (name, ms) in r.phases { print(String(format: "    %@: %.1f ms", name, ms)) }
                }
            } catch let e as ValidationError { throw e } catch { throw fail(error) }
        }
    }

    struct Gemm: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gemm", abstract: "Time each GEMM shape of the model's training step alone (where the step's time goes).")

        @OptionGroup var shape: BenchShape
        @Option(name: .customLong("target-len"), help: "Target length.")
        var targetLen = 64
        @Flag(help: "Time each shape as a bf16 product too (AMX or AVX-512-BF16), interleaved with fp32, against the bf16 peak.")
        var bf16 = false

        func run() throws {
            do {
                let model = try shape.model()
                if bf16 { return try runBF16(model) }
                let peak = Timing.sgemmPeak(threads: shape.threads)
                let products = model.matrixProducts(batch: shape.batch, source: shape.sourceLen, target: targetLen)
                let rows = GemmProfile.run(products, threads: shape.threads)
                print(String(format: "sgemm peak %.1f GFLOP/s (%d threads, kernel %@)", peak, shape.threads, BLASKernel.current))
                var total = 0.0
                for r in rows {
                    if r.inStep { total += r.msPerStep }
                    print("  " + r.name.padding(toLength: 38, withPad: " ", startingAt: 0) +
                          String(format: " %5d×%5d×%5d %@%@ ×%4d  %6.1f GFLOP/s  %7.1f ms/step",
                                 r.m, r.n, r.k, r.transA ? "T" : "N", r.transB ? "T" : "N", r.calls, r.gflops, r.msPerStep))
                }
                print(String(format: "  total (GEMMs alone, the kernels training uses)                        %7.1f ms/step", total))
            } catch let e as ValidationError { throw e } catch { throw fail(error) }
        }

        /// `--bf16`: fp32 and bf16 GFLOP/s of every shape side by side (interleaved), and the bf16 peak.
        func runBF16(_ model: any Seq2SeqModel) throws {
            guard let kernel = BF16Gemm.kernel else {
                throw BF16Error.unavailable(BF16Gemm.unavailableReason ?? "no bf16 kernel")
            }
            let sgemm = Timing.sgemmPeak(threads: shape.threads)
            let products = model.matrixProducts(batch: shape.batch, source: shape.sourceLen, target: targetLen)
            let rows = try BF16GemmProfile.run(products, threads: shape.threads)
            let peak = BF16GemmProfile.peak(kernel: kernel, threads: shape.threads)
            print("bf16 kernel \(kernel.rawValue) (\(BF16Support.current))")
            print(String(format: "bf16 peak %.1f GFLOP/s = %d threads × %.2f GHz (cpu MHz) × %.1f FLOP/cycle (%@); sgemm peak %.1f GFLOP/s (kernel %@)",
                         peak.gflops, shape.threads, peak.ghz, peak.flopsPerCycle, peak.how, sgemm, BLASKernel.current))
            print("  " + "shape".padding(toLength: 38, withPad: " ", startingAt: 0) +
                  "   m ×    n ×    k op calls   fp32   bf16  bf16+pack GFLOP/s  bf16/fp32  % bf16 peak")
            var fp32Total = 0.0, bf16Total = 0.0
            for r in rows {
                let flops = 2 * Double(r.m * r.n * r.k) * Double(r.calls) / 1e9
                fp32Total += flops / r.fp32Gflops; bf16Total += flops / r.bf16Gflops
                print("  " + r.name.padding(toLength: 38, withPad: " ", startingAt: 0) +
                      String(format: " %5d×%5d×%5d %@%@ ×%4d %6.1f %6.1f %6.1f            %5.2f×     %5.1f%%",
                             r.m, r.n, r.k, r.transA ? "T" : "N", r.transB ? "T" : "N", r.calls, r.fp32Gflops, r.bf16Gflops,
                             r.bf16PackedGflops, r.bf16Gflops / r.fp32Gflops, 100 * r.bf16Gflops / peak.gflops))
            }
            print(String(format: "  total (GEMMs alone): fp32 %.1f ms/step, bf16 (operands packed beforehand) %.1f ms/step = %.2f×",
                         fp32Total * 1000, bf16Total * 1000, fp32Total / bf16Total))
        }
    }
}
