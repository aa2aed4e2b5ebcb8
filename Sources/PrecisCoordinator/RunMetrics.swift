import Foundation
import PrecisTrain
import PrecisWire

/// The run's figures: what the workers report per contribution, gathered into a logging window (the
/// log line and log_history entry every `logging_steps`) and whole-run totals (the summary at the
/// end). The first two steps after a start are start-up (first pulls, workspace allocation) and are
/// left out of the totals. Times are given by the caller (seconds on one monotonic scale).
package struct RunMetrics {
    /// Figures since the last logged step.
    package struct Window: Equatable {
        package var steps = 0
        package var lossSum = 0.0
        package var tokens = 0
        package var wireBytes = 0
        package var rawBytes = 0
        package var pullWireBytes = 0
        package var pullRawBytes = 0
        /// Sums of each step's slowest contribution's figures.
        package var computeSeconds = 0.0
        package var waitSeconds = 0.0
        package var encodeSeconds = 0.0

        package init() {}
        package mutating func reset() { self = Window() }
        /// Mean token loss over the window (0 with no tokens).
        package var loss: Double { tokens > 0 ? lossSum / Double(tokens) : 0 }
    }

    /// The run since the end of its warm-up, for the summary.
    package struct Totals: Equatable {
        package var steps = 0
        /// Sums of each step's slowest contribution's figures.
        package var computeSeconds = 0.0
        package var waitSeconds = 0.0
        package var encodeSeconds = 0.0
        /// Summed over every contribution.
        package var wireBytes = 0
        package var rawBytes = 0
        package var pullWireBytes = 0
        package var pullRawBytes = 0
        package var paddedTokens = 0
        /// When the warm-up ended, and when the latest timed step ended.
        package var startedAt = 0.0
        package var lastStepAt = 0.0

        /// Starts counting afresh at `now`.
        package mutating func reset(at now: Double) { self = Totals(startedAt: now, lastStepAt: now) }
    }

    /// The step's slowest contribution (largest forward + backward + encoding): its figures stand for the step.
    package struct Slowest: Equatable {
        package var computeSeconds = 0.0
        package var waitSeconds = 0.0
        package var encodeSeconds = 0.0
    }

    /// What a finished step produces for people and programs.
    package struct StepReport {
        /// The `@progress` line's content (printed when asked for).
        package let progress: ProgressReport
        /// The human log line, on logging steps (the log_history entry is added then too).
        package let logLine: String?
        /// The logging step's TensorBoard scalars (Trainer's `train/` tags and the cluster's `cluster/`); empty otherwise.
        package var scalars: [(tag: String, value: Double)] = []
    }

    package let totalSteps: Int
    package let stepsPerEpoch: Int
    package let loggingSteps: Int
    /// The step this run (or its latest restart) began at: its first two steps are the warm-up.
    package private(set) var startStep = 0
    /// When training started (0: not yet).
    package private(set) var startedAt = 0.0
    /// Examples computed (carried over from a resumed checkpoint).
    package private(set) var examples = 0
    /// The latest contribution's mean token loss.
    package private(set) var lastLoss = 0.0
    /// The latest finished step's mean token loss over all its contributions (the status curve).
    package private(set) var lastStepLoss = 0.0
    private var stepLossSum = 0.0
    private var stepTokens = 0
    /// Trainer's log_history: the logged steps here, evaluations added by the evaluation service.
    package var history: [[String: Double]] = []
    package private(set) var window = Window()
    package private(set) var totals = Totals()
    package private(set) var slowest = Slowest()

    package init(totalSteps: Int, stepsPerEpoch: Int, loggingSteps: Int) {
        self.totalSteps = totalSteps
        self.stepsPerEpoch = stepsPerEpoch
        self.loggingSteps = max(1, loggingSteps)
    }

    /// Training starts at `now` (the first time only: a rollback keeps the run's clock).
    package mutating func trainingStarted(at now: Double) { if startedAt == 0 { startedAt = now } }

    /// Starts again at `step` with a checkpoint's (or the initial) history and examples seen. What
    /// the abandoned steps' contributions had put in the window goes too: those steps are repeated,
    /// and their figures would otherwise be logged with the first step after the rollback.
    /// Entries past `step` go too (found by the chaos soak): a checkpoint's trainer_state.json is
    /// written once its shards are in, when the next steps may already be logged, and resuming from
    /// it logged those steps twice.
    package mutating func restart(at step: Int, history: [[String: Double]], examples: Int) {
        startStep = step
        self.history = history.filter { ($0["step"] ?? 0) <= Double(step) }
        self.examples = examples
        window.reset()
        slowest = Slowest()
    }

    /// A contribution's figures.
    package mutating func record(_ d: DoneMessage) {
        let encode = d.encodeSeconds ?? 0
        if d.computeSeconds + encode >= slowest.computeSeconds + slowest.encodeSeconds {
            slowest = Slowest(computeSeconds: d.computeSeconds, waitSeconds: d.waitSeconds, encodeSeconds: encode)
        }
        totals.wireBytes += d.wireBytes; totals.rawBytes += d.rawBytes
        totals.pullWireBytes += d.pullWireBytes; totals.pullRawBytes += d.pullRawBytes
        totals.paddedTokens += d.paddedTokens
        window.wireBytes += d.wireBytes; window.rawBytes += d.rawBytes
        window.pullWireBytes += d.pullWireBytes; window.pullRawBytes += d.pullRawBytes
        record(d.figures)
    }

    /// A contribution's loss, tokens and examples (alone: one whose worker's report never came,
    /// from what its pushes carried).
    package mutating func record(_ f: ContributionFigures) {
        window.lossSum += f.lossSum; window.tokens += f.tokens
        examples += f.examples
        if f.tokens > 0 { lastLoss = f.meanLoss }
        stepLossSum += f.lossSum; stepTokens += f.tokens
    }

    /// Step `s` (1-based) finished at `now` with learning rate `lr` and gradient norm `gradNorm`,
    /// `workers` workers alive.
    package mutating func stepCompleted(_ s: Int, learningRate lr: Double, gradNorm: Double, workers: Int, now: Double) -> StepReport {
        window.steps += 1
        lastStepLoss = stepTokens > 0 ? stepLossSum / Double(stepTokens) : lastLoss
        stepLossSum = 0; stepTokens = 0
        window.computeSeconds += slowest.computeSeconds; window.waitSeconds += slowest.waitSeconds
        window.encodeSeconds += slowest.encodeSeconds
        if s == startStep + 2 { totals.reset(at: now) }
        if s > startStep + 2 {
            totals.steps += 1
            totals.computeSeconds += slowest.computeSeconds; totals.waitSeconds += slowest.waitSeconds
            totals.encodeSeconds += slowest.encodeSeconds
            totals.lastStepAt = now
        }
        slowest = Slowest()
        let elapsed = now - startedAt
        let epoch = Double(s) / Double(stepsPerEpoch)
        let examplesPerSecond = Double(examples) / max(elapsed, 1e-9)
        let progress = ProgressReport(step: s, total: totalSteps, epoch: epoch, loss: lastLoss, learningRate: lr,
                                      examplesPerSecond: examplesPerSecond, elapsed: elapsed,
                                      eta: s > 0 ? elapsed / Double(s) * Double(totalSteps - s) : 0, workers: workers)
        guard s % loggingSteps == 0 || s == totalSteps else { return StepReport(progress: progress, logLine: nil) }
        let steps = Double(max(1, window.steps))
        let wire = Double(window.wireBytes) / steps, raw = Double(window.rawBytes) / steps
        let pullWire = Double(window.pullWireBytes) / steps, pullRaw = Double(window.pullRawBytes) / steps
        let loss = window.loss
        // The wire figures go into trainer_state.json's log_history beside the loss.
        let entry = ["step": Double(s), "epoch": (epoch * 100).rounded() / 100, "loss": loss, "learning_rate": lr, "grad_norm": gradNorm,
                     "gradient_wire_mb_per_step": (wire / 1e4).rounded() / 100,
                     "gradient_compression_ratio": (raw / max(wire, 1) * 100).rounded() / 100,
                     "parameter_wire_mb_per_step": (pullWire / 1e4).rounded() / 100,
                     "parameter_compression_ratio": (pullRaw / max(pullWire, 1) * 100).rounded() / 100]
        history.append(entry)
        // TensorBoard: the entry under Trainer's tags, and the cluster's figures (per step, means over the window).
        let scalars = TensorBoardTags.scalars(from: entry) + [
            ("cluster/examples_per_second", examplesPerSecond), ("cluster/workers", Double(workers)),
            ("cluster/gradient_wire_bytes_per_step", wire), ("cluster/parameter_wire_bytes_per_step", pullWire),
            ("cluster/compute_seconds_per_step", window.computeSeconds / steps),
            ("cluster/wait_seconds_per_step", window.waitSeconds / steps),
            ("cluster/encode_seconds_per_step", window.encodeSeconds / steps),
        ]
        let line = String(format: "step %d/%d epoch %.2f loss %.4f lr %.3e grad_norm %.3f | %.1f ex/s, %d worker(s), "
                          + "gradients %.2f MB/step on the wire (%.2f MB raw, %.2fx), parameters %.2f MB/step (%.2fx)",
                          s, totalSteps, epoch, loss, lr, gradNorm, examplesPerSecond, workers, wire / 1e6, raw / 1e6,
                          raw / max(wire, 1), pullWire / 1e6, pullRaw / max(pullWire, 1))
        window.reset()
        return StepReport(progress: progress, logLine: line, scalars: scalars)
    }

    /// Seconds since training started.
    package func elapsed(now: Double) -> Double { now - startedAt }

    /// Per-step figures of the timed steps (nil when no step after the warm-up finished), from the end
    /// of the warm-up to the end of the last step (not the final pull and save).
    package var summary: RunSummary? {
        guard totals.steps > 0 else { return nil }
        let n = Double(totals.steps), wall = totals.lastStepAt - totals.startedAt
        return RunSummary(stepsTimed: totals.steps, secondsPerStep: wall / n, computeSecondsPerStep: totals.computeSeconds / n,
                          waitingSecondsPerStep: totals.waitSeconds / n, encodeSecondsPerStep: totals.encodeSeconds / n,
                          gradientWireMBPerStep: Double(totals.wireBytes) / n / 1e6, gradientRawMBPerStep: Double(totals.rawBytes) / n / 1e6,
                          parameterWireMBPerStep: Double(totals.pullWireBytes) / n / 1e6,
                          parameterRawMBPerStep: Double(totals.pullRawBytes) / n / 1e6,
                          tokensPerSecond: Double(totals.paddedTokens) / max(wall, 1e-9))
    }
}

extension RunSummary {
    /// The coordinator's `summary:` log line.
    package var logLine: String {
        String(format: "summary: %d steps timed, %.4f s/step, compute %.4f s/step (slowest worker's forward + backward), "
               + "waiting %.4f s/step (for parameters, from its previous report), "
               + "gradients %.3f MB/step on the wire (%.3f MB raw, %.2fx), parameters %.3f MB/step on the wire (%.3f MB raw, %.2fx), %.1f tokens/s, "
               + "gradient encoding %.4f s/step (on its compute thread)",
               stepsTimed, secondsPerStep, computeSecondsPerStep, waitingSecondsPerStep, gradientWireMBPerStep,
               gradientRawMBPerStep, gradientCompression, parameterWireMBPerStep, parameterRawMBPerStep,
               parameterCompression, tokensPerSecond, encodeSecondsPerStep)
    }
}
