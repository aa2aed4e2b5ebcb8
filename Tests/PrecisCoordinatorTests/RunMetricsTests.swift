import Testing
import PrecisCoordinator
import PrecisWire

@Suite struct RunMetricsTests {
    func metrics(total: Int = 10, logging: Int = 2) -> RunMetrics {
        var m = RunMetrics(totalSteps: total, stepsPerEpoch: 4, loggingSteps: logging)
        m.trainingStarted(at: 1_000)
        return m
    }

    @Test func theWindowIsLoggedAndResetEveryLoggingSteps() throws {
        var m = metrics()
        m.record(done(step: 0, loss: 6, tokens: 3, wire: 1_000_000, raw: 3_000_000, pullWire: 2_000_000, pullRaw: 4_000_000))
        let first = m.stepCompleted(1, learningRate: 1e-3, gradNorm: 0.5, workers: 2, now: 1_010)
        #expect(first.logLine == nil, "not a logging step")
        #expect(m.history.isEmpty)
        m.record(done(step: 1, loss: 2, tokens: 5, wire: 3_000_000, raw: 5_000_000, pullWire: 2_000_000, pullRaw: 4_000_000))
        let second = m.stepCompleted(2, learningRate: 2e-3, gradNorm: 0.75, workers: 2, now: 1_020)
        // Loss over the window: (6 + 2) / (3 + 5); bytes per step: 2 MB on the wire, 4 MB raw.
        let line = try #require(second.logLine)
        #expect(line.hasPrefix("step 2/10 epoch 0.50 loss 1.0000 lr 2.000e-03 grad_norm 0.750 | "))
        #expect(line.contains("2 worker(s), gradients 2.00 MB/step on the wire (4.00 MB raw, 2.00x), parameters 2.00 MB/step (2.00x)"))
        let entry = try #require(m.history.last)
        #expect(entry["step"] == 2 && entry["epoch"] == 0.5 && entry["loss"] == 1 && entry["learning_rate"] == 2e-3 && entry["grad_norm"] == 0.75)
        #expect(entry["gradient_wire_mb_per_step"] == 2 && entry["gradient_compression_ratio"] == 2)
        #expect(entry["parameter_wire_mb_per_step"] == 2 && entry["parameter_compression_ratio"] == 2)
        // TensorBoard: Trainer's tags for the entry, and the cluster's figures per step over the window.
        #expect(first.scalars.isEmpty)
        let tb = Dictionary(uniqueKeysWithValues: second.scalars.map { ($0.tag, $0.value) })
        #expect(tb.count == second.scalars.count)
        #expect(tb["train/loss"] == 1 && tb["train/learning_rate"] == 2e-3 && tb["train/grad_norm"] == 0.75 && tb["train/epoch"] == 0.5)
        #expect(tb["train/step"] == nil && tb["cluster/gradient_compression_ratio"] == 2 && tb["cluster/gradient_wire_bytes_per_step"] == 2_000_000)
        #expect(tb["cluster/workers"] == 2 && tb["cluster/examples_per_second"] == 8.0 / 20)
        #expect(tb["cluster/compute_seconds_per_step"] == 0.5 && tb["cluster/wait_seconds_per_step"] == 0.1
                && tb["cluster/encode_seconds_per_step"] == 0.05)
        #expect(m.window == RunMetrics.Window(), "reset after logging")
        // The next window starts from nothing.
        m.record(done(step: 2, loss: 9, tokens: 9))
        _ = m.stepCompleted(3, learningRate: 1e-3, gradNorm: 1, workers: 2, now: 1_030)
        _ = m.stepCompleted(4, learningRate: 1e-3, gradNorm: 1, workers: 2, now: 1_040)
        #expect(m.history.last?["loss"] == 1, "9 / 9 over steps 3 and 4")
        #expect(m.history.count == 2)
    }

    /// A contribution whose worker's report never came counts from its pushes' figures: in the
    /// step's loss, the window's and the run's examples, with no bytes or times of its own.
    @Test func aContributionCountedFromItsFiguresAddsItsLossAndExamplesOnly() throws {
        var m = metrics(total: 10, logging: 1)
        m.record(done(step: 0, loss: 6, tokens: 3, examples: 4, wire: 1_000_000, raw: 3_000_000))
        m.record(ContributionFigures(lossSum: 2, tokens: 5, examples: 4))
        _ = m.stepCompleted(1, learningRate: 1e-3, gradNorm: 1, workers: 1, now: 1_010)
        #expect(m.lastStepLoss == 1, "(6 + 2) / (3 + 5)")
        #expect(m.examples == 8)
        let entry = try #require(m.history.last)
        #expect(entry["loss"] == 1 && entry["gradient_wire_mb_per_step"] == 1)
    }

    @Test func theLastStepIsAlwaysLogged() {
        var m = metrics(total: 3, logging: 2)
        _ = m.stepCompleted(1, learningRate: 0, gradNorm: 0, workers: 1, now: 1_001)
        _ = m.stepCompleted(2, learningRate: 0, gradNorm: 0, workers: 1, now: 1_002)
        #expect(m.stepCompleted(3, learningRate: 0, gradNorm: 0, workers: 1, now: 1_003).logLine?.hasPrefix("step 3/3 ") == true)
    }

    @Test func progressReportsExamplesRateAndETA() {
        var m = metrics(total: 10)
        m.record(done(step: 0, loss: 3, tokens: 2, examples: 8))
        let r = m.stepCompleted(2, learningRate: 5e-4, gradNorm: 1, workers: 3, now: 1_004)
        #expect(r.progress == ProgressReport(step: 2, total: 10, epoch: 0.5, loss: 1.5, learningRate: 5e-4, examplesPerSecond: 2,
                                             elapsed: 4, eta: 16, workers: 3))
    }

    @Test func theSummaryLeavesOutTheFirstTwoStepsAndAveragesTheRest() throws {
        var m = metrics(total: 10, logging: 100)
        // Warm-up: slow steps, big figures, none of which may reach the summary.
        m.record(done(step: 0, compute: 50, wait: 50, encode: 50, wire: 99_000_000, raw: 99_000_000, padded: 99_999))
        _ = m.stepCompleted(1, learningRate: 0, gradNorm: 0, workers: 2, now: 1_100)
        m.record(done(step: 1, compute: 50, wait: 50, encode: 50, wire: 99_000_000, raw: 99_000_000, padded: 99_999))
        _ = m.stepCompleted(2, learningRate: 0, gradNorm: 0, workers: 2, now: 1_200)
        #expect(m.summary == nil, "no step timed yet")
        // Step 3: two contributions; the slowest (forward + backward + encoding) stands for the step.
        m.record(done(step: 2, compute: 1.0, wait: 0.2, encode: 0.1, wire: 1_000_000, raw: 2_000_000, pullWire: 500_000, pullRaw: 1_000_000, padded: 300))
        m.record(done(step: 2, compute: 0.9, wait: 0.7, encode: 0.3, wire: 1_000_000, raw: 2_000_000, pullWire: 500_000, pullRaw: 1_000_000, padded: 300))
        _ = m.stepCompleted(3, learningRate: 0, gradNorm: 0, workers: 2, now: 1_202)
        // Step 4: one contribution.
        m.record(done(step: 3, compute: 2.0, wait: 0.4, encode: 0.5, wire: 2_000_000, raw: 4_000_000, pullWire: 1_000_000, pullRaw: 2_000_000, padded: 600))
        _ = m.stepCompleted(4, learningRate: 0, gradNorm: 0, workers: 2, now: 1_206)
        let s = try #require(m.summary)
        #expect(s.stepsTimed == 2)
        #expect(s.secondsPerStep == 3, "(1206 - 1200) / 2: from the end of the warm-up")
        #expect(abs(s.computeSecondsPerStep - 1.45) < 1e-12, "(0.9 + 2.0) / 2: step 3's slowest is the 0.9 s one with 0.3 s encoding")
        #expect(abs(s.waitingSecondsPerStep - 0.55) < 1e-12, "(0.7 + 0.4) / 2")
        #expect(abs(s.encodeSecondsPerStep - 0.4) < 1e-12, "(0.3 + 0.5) / 2")
        #expect(s.gradientWireMBPerStep == 2 && s.gradientRawMBPerStep == 4)
        #expect(s.parameterWireMBPerStep == 1 && s.parameterRawMBPerStep == 2)
        #expect(s.tokensPerSecond == 200, "1200 padded tokens in 6 s")
        #expect(s.logLine.hasPrefix("summary: 2 steps timed, 3.0000 s/step, compute 1.4500 s/step"))
    }

    /// Found by the chaos soak: a server lost mid-step rolled the run back, and the abandoned step's
    /// contributions (already recorded) were logged with the first repeated step — its loss the mean
    /// of two different steps', its bytes doubled.
    @Test func aRollbackDropsTheAbandonedStepsFigures() throws {
        var m = metrics(total: 20, logging: 1)
        m.record(done(step: 0, loss: 6, tokens: 3))
        _ = m.stepCompleted(1, learningRate: 0, gradNorm: 0, workers: 1, now: 1_001)
        m.record(done(step: 1, loss: 100, tokens: 10, wire: 5_000_000, raw: 5_000_000))   // step 2, abandoned
        m.restart(at: 1, history: m.history, examples: 0)
        m.record(done(step: 1, loss: 4, tokens: 2, wire: 1_000_000, raw: 1_000_000))
        let report = m.stepCompleted(2, learningRate: 0, gradNorm: 0, workers: 1, now: 1_002)
        #expect(m.history.last?["loss"] == 2, "the repeated step's own loss: 4 / 2")
        #expect(report.logLine?.contains("gradients 1.00 MB/step on the wire") == true)
        #expect(m.history.count == 2)
        // A checkpoint's history may hold steps logged after it: they are logged again, once.
        m.restart(at: 1, history: m.history + [["step": 3, "loss": 1]], examples: 0)
        #expect(m.history.map { $0["step"] } == [1])
    }

    @Test func aRestartMovesTheWarmUpAndRestoresHistoryAndExamples() throws {
        var m = metrics(total: 20, logging: 100)
        m.restart(at: 10, history: [["step": 10, "loss": 3]], examples: 320)
        #expect(m.startStep == 10 && m.examples == 320 && m.history.count == 1)
        m.record(done(step: 10, examples: 4))
        #expect(m.examples == 324)
        _ = m.stepCompleted(11, learningRate: 0, gradNorm: 0, workers: 1, now: 1_001)
        _ = m.stepCompleted(12, learningRate: 0, gradNorm: 0, workers: 1, now: 1_002)
        #expect(m.summary == nil)
        m.record(done(step: 12, compute: 1, encode: 0))
        _ = m.stepCompleted(13, learningRate: 0, gradNorm: 0, workers: 1, now: 1_005)
        #expect(m.summary?.stepsTimed == 1)
        #expect(m.summary?.secondsPerStep == 3)
    }
}
