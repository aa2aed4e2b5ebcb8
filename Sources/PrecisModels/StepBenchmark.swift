import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// `precis bench step`: times full training steps (forward, backward, optimizer) of a model config
/// on random full-length batches, and relates them to this machine's measured sgemm peak.
public enum StepBenchmark {
    public struct Report: Sendable {
        public var forwardMs: Double, backwardMs: Double, optimizerMs: Double, stepMs: Double
        public var tokensPerSecond: Double
        public var gflopPerStep: Double
        public var achievedGflops: Double
        /// The best of 15 short sgemm bursts measured before the steps (`sgemmPeak`).
        public var sgemmPeakGflops: Double
        /// The median of sgemm bursts run between the timed steps (`sgemmBurst`): the machine's GEMM
        /// rate under the same conditions as the steps (this VM's speed drifts by 2× from minute to
        /// minute, and a best-of burst measured once catches its fast moments). Nil for a model too
        /// small to lend the burst its operands.
        public var sgemmBetweenStepsGflops: Double?
        public var peakRSSMiB: Double
        public var parameters: Int
        public var steps: Int
        /// Mean wall time per step of each profiled region (with `profile`), in ms.
        public var regions: [(name: String, ms: Double)] = []
        /// Mean busy time per step of each lane on its own rows (forward + backward), in ms: with
        /// several lanes, the regions above are lane 0's.
        public var laneMs: [Double] = []
        /// Mean ms per step each lane spent, once its own rows were done, running the products other
        /// lanes posted (`WorkBoard`), and waiting with nothing left to take.
        public var laneHelpingMs: [Double] = [], laneIdleMs: [Double] = []
    }

    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// Peak resident set size of this process so far, in MiB.
    public static func peakRSSMiB() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_maxrss) / 1024
    }

    /// One sgemm burst between two steps (the 1024 × 512 × 512 product, four times, with the compute
    /// workers): its GFLOP/s. It allocates nothing, so the peak RSS stays the training's: A and B are
    /// read from the parameters and C is written over the gradients, which the next step zeroes
    /// before its forward. Nil when the model has fewer than m·k + k·n parameters.
    public static func sgemmBurst(_ model: BartModel) -> Double? {
        let m = 1024, n = 512, k = 512
        guard model.params.count >= m * k + k * n, model.grads.count >= m * n else { return nil }
        let a = UnsafePointer(model.params.pointer), b = a + m * k
        let t0 = now()
        for _ in 0..<4 {
            BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                      beta: 0, c: model.grads.pointer, ldc: n)
        }
        return 8 * Double(m * n * k) / (now() - t0) / 1e9
    }

    /// Best fp32 GEMM throughput (GFLOP/s) over a few square and layer-shaped products.
    public static func sgemmPeak(threads: Int) -> Double {
        Compute.setThreads(threads)
        var best = 0.0
        for (m, n, k) in [(1024, 1024, 1024), (2048, 1024, 256), (2048, 256, 1024)] {
            let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
            for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 }
            for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 }
            for rep in 0..<6 {
                let t0 = now()
                BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n,
                          beta: 0, c: c.pointer, ldc: n)
                let dt = now() - t0
                if rep > 0 { best = max(best, 2 * Double(m * n * k) / dt / 1e9) }
            }
        }
        return best
    }

    /// Matrix-multiply FLOPs of one BART forward pass (backward is twice this).
    public static func forwardFlops(_ c: BartConfig, batch b: Int, source s: Int, target t: Int) -> Double {
        let d = Double(c.dModel), ns = Double(b * s), nt = Double(b * t)
        let bs = Double(b), sd = Double(s), td = Double(t)
        let enc = 8 * ns * d * d + 4 * bs * sd * sd * d + 4 * ns * d * Double(c.encoderFfnDim)
        let dec = 8 * nt * d * d + 4 * bs * td * td * d          // self-attention
            + 4 * nt * d * d + 4 * ns * d * d + 4 * bs * td * sd * d  // cross-attention
            + 4 * nt * d * Double(c.decoderFfnDim)
        return Double(c.encoderLayers) * enc + Double(c.decoderLayers) * dec + 2 * nt * d * Double(c.vocabSize)
    }

    public static func randomBatch(vocab: Int, batch: Int, source: Int, target: Int, seed: UInt64) throws -> Seq2SeqBatch {
        var rng = SeededRNG(seed: seed)
        func row(_ n: Int) -> [Int32] {
            (0..<n).map { j in j == 0 ? 0 : (j == n - 1 ? 2 : Int32(4 + Int(rng.next() % UInt64(vocab - 4)))) }
        }
        return try Seq2SeqBatch(batchSize: batch, sourceLength: source, targetLength: target,
                                inputIds: (0..<batch).flatMap { _ in row(source) },
                                attentionMask: Array(repeating: 1, count: batch * source),
                                labels: (0..<batch).flatMap { _ in row(target) })
    }

    public static func run(model: BartModel, batch: Int, source: Int, target: Int, threads: Int,
                           steps: Int, warmup: Int, profile: Bool = false,
                           progress: (String) -> Void = { _ in }) throws -> Report {
        let peak = sgemmPeak(threads: threads)
        Compute.setThreads(threads)
        model.initializeWeights(seed: 0)
        let data = try randomBatch(vocab: model.config.vocabSize, batch: batch, source: source, target: target, seed: 1)
        let opt = OptimizerState(table: model.table, adamw: AdamW(weightDecay: 0.01),
                                 schedule: LRSchedule(kind: .linear, baseLR: 1e-4, warmupSteps: 0, totalSteps: 1_000_000))
        var fwd: [Double] = [], bwd: [Double] = [], optim: [Double] = [], total: [Double] = [], bursts: [Double] = []
        var laneBase: [Double] = [], helpBase: [Double] = [], idleBase: [Double] = []
        for i in 0..<(warmup + steps) {
            if i == warmup {
                model.profiler.reset(); model.profiler.enabled = profile
                laneBase = model.laneBusySeconds; helpBase = model.laneHelpingSeconds; idleBase = model.laneIdleSeconds
            }
            let t0 = now()
            model.zeroGradients()
            // One `step`, as training runs it (with several lanes, a lane's backward follows its own
            // forward without waiting for the others): "forward" is until the last lane finished its
            // forward, "backward" the rest.
            let ts = now()
            _ = try model.step(data, options: StepOptions(training: true, seed: UInt64(i)), logitsOut: nil)
            let t2 = now(), t1 = ts + model.lastForwardSeconds
            let norm = GradClip.norm(model.grads.pointer, count: model.grads.count)
            opt.apply(params: model.params.pointer, grads: model.grads.pointer,
                      clipCoefficient: GradClip.coefficient(totalNorm: norm, maxNorm: 1))
            let t3 = now()
            if i >= warmup {
                fwd.append(t1 - t0); bwd.append(t2 - t1); optim.append(t3 - t2); total.append(t3 - t0)
                progress(String(format: "step %d/%d: %.1f ms", i - warmup + 1, steps, (t3 - t0) * 1000))
                if let g = sgemmBurst(model) { bursts.append(g) }
            }
        }
        let stepS = median(total)
        let flops = 3 * forwardFlops(model.config, batch: batch, source: source, target: target)
        model.profiler.enabled = false
        let regions = model.profiler.order.map { ($0, model.profiler.totals[$0]! * 1000 / Double(steps)) }
        return Report(forwardMs: median(fwd) * 1000, backwardMs: median(bwd) * 1000, optimizerMs: median(optim) * 1000,
                      stepMs: stepS * 1000, tokensPerSecond: Double(batch * (source + target)) / stepS,
                      gflopPerStep: flops / 1e9, achievedGflops: flops / stepS / 1e9, sgemmPeakGflops: peak,
                      sgemmBetweenStepsGflops: bursts.isEmpty ? nil : median(bursts),
                      peakRSSMiB: peakRSSMiB(), parameters: model.table.count, steps: steps, regions: regions,
                      laneMs: perStep(model.laneBusySeconds, since: laneBase),
                      laneHelpingMs: perStep(model.laneHelpingSeconds, since: helpBase),
                      laneIdleMs: perStep(model.laneIdleSeconds, since: idleBase))
        func perStep(_ now: [Double], since base: [Double]) -> [Double] {
            now.enumerated().map { i, s in (s - (i < base.count ? base[i] : 0)) * 1000 / Double(steps) }
        }
    }
}

/// `precis bench gemm`: the GEMM shapes of one BART training step, each timed alone, so the step's
/// profile can be read against the machine's peak.
public enum GemmProfile {
    public struct Row: Sendable {
        public var name: String
        public var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, calls: Int
        public var gflops: Double
        public var msPerStep: Double
        /// Whether training runs this shape with this kernel (per-head products are timed both ways).
        public var inStep = true
    }

    /// (name, m, n, k, transA, transB, calls per step) for a BART config.
    public static func shapes(_ c: BartConfig, batch b: Int, source s: Int, target t: Int) -> [(String, Int, Int, Int, Bool, Bool, Int)] {
        let d = c.dModel, ns = b * s, nt = b * t, dh = d / c.encoderAttentionHeads, e = c.encoderLayers, dl = c.decoderLayers
        let f = c.encoderFfnDim, v = c.vocabSize, h = c.encoderAttentionHeads
        return [
            ("enc proj x·Wᵀ", ns, d, d, false, true, 4 * e),
            ("enc proj dY·W", ns, d, d, false, false, 4 * e),
            ("enc proj dYᵀ·X", d, d, ns, true, false, 4 * e),
            ("enc fc1 x·Wᵀ", ns, f, d, false, true, e),
            ("enc fc2 x·Wᵀ", ns, d, f, false, true, e),
            ("enc fc1 dY·W", ns, d, f, false, false, e),
            ("enc fc2 dY·W", ns, f, d, false, false, e),
            ("enc fc1 dYᵀ·X", f, d, ns, true, false, e),
            ("enc fc2 dYᵀ·X", d, f, ns, true, false, e),
            ("enc attn Q·Kᵀ (per head)", s, s, dh, false, true, 2 * e * b * h),
            ("enc attn P·V (per head)", s, dh, s, false, false, 2 * e * b * h),
            ("enc attn Pᵀ·dC (per head)", s, dh, s, true, false, 2 * e * b * h),
            ("dec self Q·Kᵀ (per head)", t, t, dh, false, true, 2 * dl * b * h),
            ("dec self P·V (per head)", t, dh, t, false, false, 2 * dl * b * h),
            ("dec self Pᵀ·dC (per head)", t, dh, t, true, false, 2 * dl * b * h),
            ("dec cross Q·Kᵀ (per head)", t, s, dh, false, true, 2 * dl * b * h),
            ("dec cross P·V (per head)", t, dh, s, false, false, 2 * dl * b * h),
            ("dec cross Pᵀ·dC (per head)", s, dh, t, true, false, 2 * dl * b * h),
            ("dec proj x·Wᵀ", nt, d, d, false, true, 6 * dl),
            ("dec proj dYᵀ·X", d, d, nt, true, false, 6 * dl),
            ("dec cross K,V x·Wᵀ", ns, d, d, false, true, 2 * dl),
            ("dec cross K,V dYᵀ·X", d, d, ns, true, false, 2 * dl),
            ("dec ffn x·Wᵀ", nt, f, d, false, true, 3 * dl),
            ("lm head Y·Eᵀ", nt, v, d, false, true, 1),
            ("lm head dL·E", nt, d, v, false, false, 1),
            ("lm head dLᵀ·Y", v, d, nt, true, false, 1),
        ]
    }

    public static func run(_ c: BartConfig, batch b: Int, source s: Int, target t: Int, threads: Int) -> [Row] {
        Compute.setThreads(threads)
        var rows: [Row] = []
        let d = c.dModel, dh = d / c.encoderAttentionHeads
        for (name, m, n, k, ta, tb, calls) in shapes(c, batch: b, source: s, target: t) {
            let perHead = name.contains("per head")
            // Per head, as in training: a head's slice of Q, K, V or dctx (dh columns) sits in rows of
            // d floats; probabilities are dense.
            func ld(_ cols: Int) -> Int { perHead && cols == dh ? d : cols }
            let lda = ld(ta ? m : k), ldb = ld(tb ? k : n), ldc = ld(n)
            let a = FloatBuffer(count: (ta ? k : m) * lda), bb = FloatBuffer(count: (tb ? n : k) * ldb)
            let cc = FloatBuffer(count: m * ldc)
            for i in 0..<a.count { a[i] = Float(i % 13) * 0.01 }
            for i in 0..<bb.count { bb[i] = Float(i % 11) * 0.01 }
            let reps = perHead ? 64 : 8
            // The head kernel's scratch, one per worker (per-head shapes only).
            let scratch = perHead
                ? (0..<max(1, Parallel.available)).map { _ in FloatBuffer(count: HeadGemm.scratchFloats(n: n, k: k)) } : []
            for kernel in perHead ? ["OpenBLAS", "HeadGemm"] : [""] {
                var best = Double.infinity
                for _ in 0..<3 {
                    let t0 = StepBenchmark.now()
                    if perHead {
                        // Independent heads spread over the workers, one thread per product.
                        Parallel.chunks(reps) { w, r in
                            for _ in r {
                                if kernel == "OpenBLAS" {
                                    BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda,
                                              b: bb.pointer, ldb: ldb, beta: 0, c: cc.pointer, ldc: ldc, parallel: false)
                                } else {
                                    HeadGemm.run(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda, b: bb.pointer,
                                                 ldb: ldb, c: cc.pointer, ldc: ldc, scratch: scratch[w].pointer)
                                }
                            }
                        }
                    } else {
                        for _ in 0..<reps {
                            BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda,
                                      b: bb.pointer, ldb: ldb, beta: 0, c: cc.pointer, ldc: ldc)
                        }
                    }
                    best = min(best, (StepBenchmark.now() - t0) / Double(reps))
                }
                let gf = 2 * Double(m * n * k) / best / 1e9
                rows.append(Row(name: kernel.isEmpty ? name : name.replacingOccurrences(of: "per head", with: "per head, \(kernel)"),
                                m: m, n: n, k: k, transA: ta, transB: tb, calls: calls, gflops: gf,
                                msPerStep: best * Double(calls) * 1000,
                                inStep: kernel.isEmpty || (kernel == "HeadGemm") == CPUFeatures.avx512))
            }
        }
        return rows
    }
}

/// `precis bench generate`: generated tokens per second for greedy and beam search on random
/// full-length sources, with EOS banned until the last step so every row generates exactly
/// `newTokens` tokens (as the PyTorch reference does with min_new_tokens = max_new_tokens).
public enum GenerateBenchmark {
    public struct Report: Sendable {
        public var numBeams: Int
        public var seconds: Double
        public var tokensPerSecond: Double
        public var peakRSSMiB: Double
        /// With `profile`: the phases of the best run (encoder, decoder set-up, decoder steps), in ms.
        public var phases: [(name: String, ms: Double)] = []
    }

    public static func run(model: BartModel, batch: Int, source: Int, newTokens: Int, numBeams: Int, threads: Int,
                           repeats: Int, profile: Bool = false) throws -> Report {
        Compute.setThreads(threads)
        let data = try StepBenchmark.randomBatch(vocab: model.config.vocabSize, batch: batch, source: source, target: 2, seed: 3)
        var g = GenerationSettings()
        g.numBeams = numBeams
        g.maxNewTokens = newTokens
        g.minNewTokens = newTokens
        g.earlyStopping = .yes
        g.forcedBosTokenId = model.config.forcedBosTokenId
        g.forcedEosTokenId = nil
        var best = Double.infinity
        var phases: [(name: String, ms: Double)] = []
        for _ in 0..<max(1, repeats) {
            model.profiler.reset()
            model.profiler.enabled = profile
            let t0 = StepBenchmark.now()
            let out = try Generator.generate(model: model, inputIds: data.inputIds, attentionMask: data.attentionMask,
                                             batchSize: batch, sourceLength: source, settings: g)
            let dt = StepBenchmark.now() - t0
            precondition(out.sequences.allSatisfy { $0.count == newTokens + 1 })
            if dt < best {
                best = dt
                phases = model.profiler.order.filter { $0.hasPrefix("generate") }.map { ($0, model.profiler.totals[$0]! * 1000) }
            }
            model.profiler.enabled = false
        }
        return Report(numBeams: numBeams, seconds: best, tokensPerSecond: Double(batch * newTokens) / best,
                      peakRSSMiB: StepBenchmark.peakRSSMiB(), phases: phases)
    }
}
