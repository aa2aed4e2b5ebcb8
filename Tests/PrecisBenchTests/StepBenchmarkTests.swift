import Testing
import PrecisBench
import PrecisCore
import PrecisModels

/// `precis bench step`'s measurements: the matrix work it counts, and the sgemm bursts between the
/// steps, which borrow the model's buffers (so a model too small to lend them gets none, rather
/// than a crash) and leave nothing behind that the next step sees.
@Suite struct StepBenchmarkTests {
    @Test func countsTheWorkAndMeasuresSgemmBetweenTheSteps() throws {
        let small = try ModelPresets.model("bart-small")
        // The thread count in use (the benchmark sets it; other suites run at the same time).
        let threads = Compute.threads
        let r = try StepBenchmark.run(model: small, batch: 1, source: 16, target: 8, threads: threads, steps: 2, warmup: 1)
        #expect(r.gflopPerStep == Double(small.matrixProducts(batch: 1, source: 16, target: 8).flops()) / 1e9)
        #expect(r.gflopPerStep == 3 * Reference.forwardFlops(try Configs.preset("bart-small"), batch: 1, source: 16, target: 8) / 1e9)
        #expect(r.stepMs > 0 && r.achievedGflops > 0 && r.sgemmPeakGflops > 0)
        #expect(r.steps == 2 && r.parameters == small.table.count)
        let between = try #require(r.sgemmBetweenStepsGflops, "bart-small lends the burst its operands")
        #expect(between > 0)
        // The last burst wrote over the gradients; the model's next step starts from zero anyway.
        let batch = try Seq2SeqBatch.random(vocab: small.facts.vocabSize, batch: 1, source: 16, target: 8, seed: 1)
        small.zeroGradients()
        _ = try small.step(batch, options: StepOptions(seed: 3), logitsOut: nil)
        let once = small.grads.array
        #expect(Timing.sgemmBurst(small) != nil)
        small.zeroGradients()
        _ = try small.step(batch, options: StepOptions(seed: 3), logitsOut: nil)
        #expect(small.grads.array == once)

        let tiny = try Configs.model(Configs.tiny())
        let t = try StepBenchmark.run(model: tiny, batch: 2, source: 8, target: 4, threads: threads, steps: 2, warmup: 1)
        #expect(t.sgemmBetweenStepsGflops == nil, "a model with fewer parameters than the burst's operands gets no burst")
        #expect(t.stepMs > 0)
    }

    /// `--profile`: the regions' means are parts of the mean forward + backward over the same steps
    /// (the "rest" printed is their difference; against the medians it came out negative when one
    /// step was slow).
    @Test func profiledRegionsArePartsOfTheMeanForwardAndBackward() throws {
        let tiny = try Configs.model(Configs.tiny())
        let r = try StepBenchmark.run(model: tiny, batch: 2, source: 8, target: 4, threads: Compute.threads, steps: 3, warmup: 1,
                                      profile: true)
        let names = r.regions.map(\.name)
        #expect(names.contains("fwd enc attention") && names.contains("bwd lm head") && names.contains("loss"), "\(names)")
        let covered = r.regions.reduce(0) { $0 + $1.ms }
        #expect(r.regions.allSatisfy { $0.ms > 0 } && covered > 0)
        #expect(covered <= r.meanForwardBackwardMs, "regions \(covered) ms of \(r.meanForwardBackwardMs) ms")
        let unprofiled = try StepBenchmark.run(model: tiny, batch: 2, source: 8, target: 4, threads: Compute.threads, steps: 1, warmup: 0)
        #expect(unprofiled.regions.isEmpty && unprofiled.meanForwardBackwardMs > 0)
    }

    /// The benchmark's batch: every position real, ids inside the vocabulary, the same for a seed.
    @Test func randomBatchIsFullLengthAndSeeded() throws {
        let a = try Seq2SeqBatch.random(vocab: 40, batch: 3, source: 10, target: 5, seed: 7)
        #expect(a.batchSize == 3 && a.sourceLength == 10 && a.targetLength == 5)
        #expect(a.attentionMask.allSatisfy { $0 == 1 } && !a.labels.contains(Seq2SeqBatch.ignoreIndex))
        try a.validate(vocabSize: 40, maxPositions: 32)
        for r in 0..<3 {
            #expect(a.inputIds[r * 10] == 0 && a.inputIds[r * 10 + 9] == 2 && a.labels[r * 5] == 0 && a.labels[r * 5 + 4] == 2)
        }
        #expect(try Seq2SeqBatch.random(vocab: 40, batch: 3, source: 10, target: 5, seed: 7) == a)
        #expect(try Seq2SeqBatch.random(vocab: 40, batch: 3, source: 10, target: 5, seed: 8) != a)
    }
}

/// `precis bench gemm`: every shape of the step timed, per-head shapes with both kernels.
@Suite struct GemmProfileTests {
    @Test func timesEveryShapeAndPerHeadShapesWithBothKernels() throws {
        let products = try Configs.model(Configs.tiny()).matrixProducts(batch: 2, source: 8, target: 4)
        let shapes = GemmProfile.shapes(products)
        let rows = GemmProfile.run(products, threads: Compute.threads)
        let perHead = shapes.filter(\.perHead)
        #expect(!perHead.isEmpty)
        #expect(rows.count == shapes.count + perHead.count)
        #expect(rows.allSatisfy { $0.gflops > 0 && $0.msPerStep > 0 })
        for s in perHead {
            let both = rows.filter { $0.m == s.m && $0.n == s.n && $0.k == s.k && $0.calls == s.calls
                                     && $0.name.hasPrefix(s.name.replacingOccurrences(of: "(per head)", with: "(per head, ")) }
            #expect(both.map(\.name).sorted() == [s.name.replacingOccurrences(of: "per head", with: "per head, HeadGemm"),
                                                  s.name.replacingOccurrences(of: "per head", with: "per head, OpenBLAS")])
            #expect(both.filter(\.inStep).count == 1, "training runs one kernel: \(s.name)")
        }
        // Every product of the step is in the rows training runs, once.
        let inStep = rows.filter(\.inStep)
        #expect(inStep.reduce(0) { $0 + 2 * $1.m * $1.n * $1.k * $1.calls } == products.flops())
    }
}

/// `precis bench generate`: every row generates exactly the tokens asked for.
@Suite struct GenerateBenchmarkTests {
    @Test func generatesTheTokensAskedForWithEachBeamSize() throws {
        let model = try Configs.model(Configs.tiny())
        model.initializeWeights(seed: 0)
        for beams in GenerateBenchmark.beamSizes("1,2") {
            let r = try GenerateBenchmark.run(model: model, batch: 2, source: 8, newTokens: 3, numBeams: beams,
                                              threads: Compute.threads, repeats: 2, profile: true)
            #expect(r.numBeams == beams && r.seconds > 0)
            #expect(r.tokensPerSecond == Double(2 * 3) / r.seconds)
            #expect(!r.phases.isEmpty && r.phases.allSatisfy { $0.name.hasPrefix("generate") })
        }
        #expect(GenerateBenchmark.beamSizes("1,4") == [1, 4])
        #expect(GenerateBenchmark.beamSizes("4,x,8") == [4, 8])
    }
}
