import Foundation
import PrecisCore
import PrecisModels

/// `precis bench step`: times full training steps (forward, backward, optimizer) of a model on a
/// random full-length batch, and relates them to this machine's measured sgemm rate. The matrix
/// work of a step is the sum of the products the model says its step runs (`matrixProducts`).
public enum StepBenchmark {
    public struct Report: Sendable {
        public var forwardMs: Double, backwardMs: Double, optimizerMs: Double, stepMs: Double
        public var tokensPerSecond: Double
        public var gflopPerStep: Double
        public var achievedGflops: Double
        /// The best of 15 short sgemm bursts measured before the steps (`Timing.sgemmPeak`).
        public var sgemmPeakGflops: Double
        /// The median of sgemm bursts run between the timed steps (`Timing.sgemmBurst`): the
        /// machine's GEMM rate under the same conditions as the steps (this VM's speed drifts by 2×
        /// from minute to minute, and a best-of burst measured once catches its fast moments). Nil
        /// for a model too small to lend the burst its operands.
        public var sgemmBetweenStepsGflops: Double?
        public var peakRSSMiB: Double
        public var parameters: Int
        public var steps: Int
        /// Mean wall time per step of each profiled region (with `profile`), in ms.
        public var regions: [(name: String, ms: Double)] = []
        /// Mean wall time per step of forward + backward, in ms: the whole the regions' means are
        /// parts of (the medians above leave out a slow step that the means include).
        public var meanForwardBackwardMs: Double = 0
        /// Mean busy time per step of each lane on its own rows (forward + backward), in ms: with
        /// several lanes, the regions above are lane 0's.
        public var laneMs: [Double] = []
        /// Mean ms per step each lane spent, once its own rows were done, running the products other
        /// lanes posted (`WorkBoard`), and waiting with nothing left to take.
        public var laneHelpingMs: [Double] = [], laneIdleMs: [Double] = []
    }

    /// Runs `warmup` untimed and `steps` timed steps with `threads` compute threads (the model's
    /// weights initialised with seed 0, AdamW at a small learning rate, gradients clipped at 1) and
    /// an sgemm burst after each timed step. `progress` gets one line per timed step.
    public static func run(model: any Seq2SeqModel, batch: Int, source: Int, target: Int, threads: Int,
                           steps: Int, warmup: Int, profile: Bool = false,
                           progress: (String) -> Void = { _ in }) throws -> Report {
        let peak = Timing.sgemmPeak(threads: threads)
        return try Compute.withThreads(threads) {
            model.initializeWeights(seed: 0)
            let data = try Seq2SeqBatch.random(vocab: model.facts.vocabSize, batch: batch, source: source, target: target, seed: 1)
            let opt = OptimizerState(table: model.table, adamw: AdamW(weightDecay: 0.01),
                                     schedule: LRSchedule(kind: .linear, baseLR: 1e-4, warmupSteps: 0, totalSteps: 1_000_000))
            var fwd: [Double] = [], bwd: [Double] = [], optim: [Double] = [], total: [Double] = [], bursts: [Double] = []
            var laneBase: [Double] = [], helpBase: [Double] = [], idleBase: [Double] = []
            for i in 0..<(warmup + steps) {
                if i == warmup {
                    model.profiler.reset(); model.profiler.enabled = profile
                    let lanes = model.laneFigures
                    laneBase = lanes.busySeconds; helpBase = lanes.helpingSeconds; idleBase = lanes.idleSeconds
                }
                let t0 = Timing.now()
                model.zeroGradients()
                // One `step`, as training runs it (with several lanes, a lane's backward follows its own
                // forward without waiting for the others): "forward" is until the last lane finished its
                // forward, "backward" the rest.
                let ts = Timing.now()
                _ = try model.step(data, options: StepOptions(training: true, seed: UInt64(i)), logitsOut: nil)
                let t2 = Timing.now(), t1 = ts + model.laneFigures.lastForwardSeconds
                let norm = GradClip.norm(model.grads.pointer, count: model.grads.count)
                opt.apply(params: model.params.pointer, grads: model.grads.pointer,
                          clipCoefficient: GradClip.coefficient(totalNorm: norm, maxNorm: 1))
                let t3 = Timing.now()
                if i >= warmup {
                    fwd.append(t1 - t0); bwd.append(t2 - t1); optim.append(t3 - t2); total.append(t3 - t0)
                    progress(String(format: "step %d/%d: %.1f ms", i - warmup + 1, steps, (t3 - t0) * 1000))
                    if let g = Timing.sgemmBurst(model) { bursts.append(g) }
                }
            }
            let stepS = Timing.median(total)
            let flops = Double(model.matrixProducts(batch: batch, source: source, target: target).flops())
            model.profiler.enabled = false
            let regions = model.profiler.order.map { ($0, model.profiler.totals[$0]! * 1000 / Double(steps)) }
            let lanes = model.laneFigures
            return Report(forwardMs: Timing.median(fwd) * 1000, backwardMs: Timing.median(bwd) * 1000,
                          optimizerMs: Timing.median(optim) * 1000, stepMs: stepS * 1000,
                          tokensPerSecond: Double(batch * (source + target)) / stepS,
                          gflopPerStep: flops / 1e9, achievedGflops: flops / stepS / 1e9, sgemmPeakGflops: peak,
                          sgemmBetweenStepsGflops: bursts.isEmpty ? nil : Timing.median(bursts),
                          peakRSSMiB: Timing.peakRSSMiB(), parameters: model.table.count, steps: steps, regions: regions,
                          meanForwardBackwardMs: zip(fwd, bwd).reduce(0) { $0 + $1.0 + $1.1 } * 1000 / Double(steps),
                          laneMs: perStep(lanes.busySeconds, since: laneBase),
                          laneHelpingMs: perStep(lanes.helpingSeconds, since: helpBase),
                          laneIdleMs: perStep(lanes.idleSeconds, since: idleBase))
            func perStep(_ now: [Double], since base: [Double]) -> [Double] {
                now.enumerated().map { i, s in (s - (i < base.count ? base[i] : 0)) * 1000 / Double(steps) }
            }
        }
    }
}
