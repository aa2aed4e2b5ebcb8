import Foundation
import Testing
import PrecisCore
import PrecisModels

/// The bf16 training step (`MatmulPrecision.bf16`) against PyTorch's `torch.autocast("cpu",
/// dtype=torch.bfloat16)` (fixture from tools/golden/make_bf16_golden.py) and against Precis's own
/// fp32 step. On a CPU without bf16 instructions the tests run the portable kernel, whose
/// arithmetic is the hardware kernels' (exact products of bf16 values, fp32 sums).
///
/// The tolerances, from bf16's unit roundoff u = 2⁻⁸ (8 significant bits, round to nearest):
/// each product's operands carry a relative error ≤ u each, so a product term's is ≤ 2u + u²,
/// and a gradient, after a chain of such products whose independent errors partly cancel, lands
/// within a few u of fp32 in relative norm — autocast's own gradients here are 0.3–1.2 % (≈ 0.8u
/// to 3u) from fp32. Precis's bf16 rounds fewer values than autocast (its products' outputs and
/// the activations between them stay fp32), so each gradient must be (1) within 4u of fp32, (2)
/// within 4u of autocast's, and (3) no farther from fp32 than twice autocast's distance plus u/16
/// (the same error, not a larger one; the median over tensors no farther than autocast's).
@Suite struct BF16StepTests {
    static let u = 1.0 / 256
    /// The hardware kernel where the CPU has one, else the portable one.
    static let kernel = BF16Gemm.kernel ?? .portable
    static let folder = Fixtures.root.appendingPathComponent("bf16/bart-autocast").path

    /// One step's loss and a copy of the gradients.
    static func step(_ model: any Seq2SeqModel, _ batch: Seq2SeqBatch) throws -> (loss: Double, grads: [Float]) {
        model.zeroGradients()
        let r = try model.step(batch, options: StepOptions(training: false), logitsOut: nil)
        return (r.mean, Array(UnsafeBufferPointer(start: model.grads.pointer, count: model.grads.count)))
    }

    @Test func autocastGoldenStep() throws {
        let (model, _) = try ModelFolder.load(Self.folder)
        let batch = try Fixtures.batch(Self.folder)
        let fp32 = try SafeTensorsFile(path: Self.folder + "/fp32.safetensors")
        let autocast = try SafeTensorsFile(path: Self.folder + "/autocast.safetensors")

        // The fixture's fp32 step is Precis's fp32 step (as the BART goldens check).
        _ = try Self.step(model, batch)
        try expectGradientsMatch(model, fp32, tolerance: 1e-4)

        try model.setMatmulPrecision(.bf16, kernel: Self.kernel)
        #expect(model.matmulPrecision == .bf16)
        let (loss, _) = try Self.step(model, batch)
        let lossFP32 = Double(try fp32.floats("loss")[0]), lossAutocast = Double(try autocast.floats("loss")[0])
        // The loss is a mean over 41 label tokens of log-softmax values: its rounding averages out far below u.
        #expect(abs(loss - lossFP32) / lossFP32 <= Self.u / 16, "bf16 loss \(loss) vs fp32 \(lossFP32)")
        #expect(abs(loss - lossAutocast) / lossAutocast <= Self.u / 16, "bf16 loss \(loss) vs autocast \(lossAutocast)")
        #expect(loss != lossFP32, "the bf16 step ran fp32 products")

        var ratios: [Double] = []
        for e in model.table.entries where !e.name.hasSuffix("k_proj.bias") {  // k_proj.bias: analytically zero
            let got = UnsafeBufferPointer(start: model.grads.pointer + e.offset, count: e.count)
            let want32 = try fp32.floats("grad." + e.name), wantAC = try autocast.floats("grad." + e.name)
            let toFP32 = relativeError(got, want32).rel, toAutocast = relativeError(got, wantAC).rel
            let autocastToFP32 = wantAC.withUnsafeBufferPointer { relativeError($0, want32).rel }
            #expect(toFP32 <= 4 * Self.u, "\(e.name): \(toFP32) from fp32")
            #expect(toAutocast <= 4 * Self.u, "\(e.name): \(toAutocast) from autocast")
            #expect(toFP32 <= 2 * autocastToFP32 + Self.u / 16, "\(e.name): \(toFP32) from fp32, autocast \(autocastToFP32)")
            ratios.append(toFP32 / autocastToFP32)
        }
        #expect(ratios.sorted()[ratios.count / 2] <= 1, "median ratio to autocast's error \(ratios.sorted()[ratios.count / 2])")
    }

    /// The same batch twice gives the same bits; back to fp32 gives exactly the fp32 step again.
    @Test func deterministicAndReversible() throws {
        let (model, _) = try ModelFolder.load(Self.folder)
        let batch = try Fixtures.batch(Self.folder)
        let fp32 = try Self.step(model, batch)
        try model.setMatmulPrecision(.bf16, kernel: Self.kernel)
        let a = try Self.step(model, batch), b = try Self.step(model, batch)
        #expect(a.loss == b.loss && a.grads == b.grads)
        #expect(a.grads != fp32.grads)
        try model.setMatmulPrecision(.fp32)
        let again = try Self.step(model, batch)
        #expect(again.loss == fp32.loss && again.grads == fp32.grads)
    }

    /// The packed bf16 copies follow the parameters: after the parameters change (a pull, an
    /// optimizer step), the next step is the step of a model that had those parameters all along.
    @Test func packedWeightsFollowTheParameters() throws {
        let (model, _) = try ModelFolder.load(Self.folder)
        let (fresh, _) = try ModelFolder.load(Self.folder)
        let batch = try Fixtures.batch(Self.folder)
        try model.setMatmulPrecision(.bf16, kernel: Self.kernel)
        let before = try Self.step(model, batch)
        for i in 0..<model.params.count { model.params.pointer[i] *= 0.75 }
        for i in 0..<fresh.params.count { fresh.params.pointer[i] *= 0.75 }
        try fresh.setMatmulPrecision(.bf16, kernel: Self.kernel)
        let after = try Self.step(model, batch), reference = try Self.step(fresh, batch)
        #expect(after.loss != before.loss)
        #expect(after.loss == reference.loss && after.grads == reference.grads)
    }

    /// Every family's bf16 step stays within bf16 rounding of its fp32 step: the loss within u/16;
    /// the whole gradient (every parameter's, as one vector) within `ulps`·u in relative norm, and
    /// the median tensor within `medianUlps`·u; and no tensor beyond 32u (12.5 %: a product wired to
    /// the wrong weight or transposed moves a gradient by its own size). How far bf16 moves a single
    /// small tensor depends on the model and the batch: T5 does not scale its attention scores (a
    /// peaked softmax amplifies every rounding of q and k) and these tiny random models have large
    /// logits. PyTorch's own autocast, on the same presets (`precis init --seed 7`) and a batch of
    /// this shape, moved single gradients by up to 3.5 % (Pegasus, median 0.6 %) and 7.0 % (T5,
    /// median 3.9 %; transformers 5.24).
    @Test(arguments: [("bart-tiny", 4.0, 2.0), ("pegasus-tiny", 4.0, 2.0), ("t5-tiny", 12.0, 12.0)])
    func familiesStayNearFP32(_ preset: String, ulps: Double, medianUlps: Double) throws {
        let model = try ModelPresets.model(preset)
        model.initializeWeights(seed: 7)
        let batch = try Self.randomBatch(vocab: model.vocabSize, pad: model.facts.padTokenId)
        let fp32 = try Self.step(model, batch)
        try model.setMatmulPrecision(.bf16, kernel: Self.kernel)
        let bf16 = try Self.step(model, batch)
        #expect(abs(bf16.loss - fp32.loss) / fp32.loss <= Self.u / 16, "\(preset): loss \(bf16.loss) vs \(fp32.loss)")
        #expect(bf16.grads != fp32.grads)
        var errors: [Double] = []
        for e in model.table.entries {
            let ref = Array(fp32.grads[e.range])
            let err = bf16.grads[e.range].withUnsafeBufferPointer { relativeError($0, ref) }
            // Gradients that are zero or nearly so in fp32 (k_proj biases, unused embedding rows) are compared absolutely.
            if err.refNorm < 1e-6 { #expect(err.absNorm <= 1e-5, "\(preset) \(e.name): |Δ| \(err.absNorm)"); continue }
            #expect(err.rel <= 32 * Self.u, "\(preset) \(e.name): \(err.rel) from fp32")
            errors.append(err.rel)
        }
        let whole = bf16.grads.withUnsafeBufferPointer { relativeError($0, fp32.grads).rel }
        #expect(whole <= ulps * Self.u, "\(preset): the whole gradient \(whole) from fp32")
        let median = errors.sorted()[errors.count / 2]
        #expect(median <= medianUlps * Self.u, "\(preset): median tensor \(median) from fp32")
    }

    /// A kernel the CPU lacks is refused with the CPU's flags named, and leaves the model as it was.
    @Test func refusesAKernelTheCPULacks() throws {
        let model = try ModelPresets.model("bart-tiny")
        for k in BF16Kernel.allCases where !BF16Support.current.supports(k) {
            #expect(throws: BF16Error.self) { try model.setMatmulPrecision(.bf16, kernel: k) }
            #expect(model.matmulPrecision == .fp32)
        }
        if BF16Gemm.kernel == nil {
            do {
                try model.setMatmulPrecision(.bf16)
                Issue.record("bf16 was accepted without a bf16 kernel")
            } catch let e as BF16Error {
                #expect("\(e)".contains("avx512_bf16") || "\(e)".contains("PRECIS_NO_AVX512"), "\(e)")
            }
        }
    }

    /// Three rows of random tokens (fixed seed), labels shorter than the sources, some padding.
    static func randomBatch(vocab: Int, pad: Int) throws -> Seq2SeqBatch {
        var rng = SeededRNG(seed: 11)
        let b = 3, s = 40, t = 16
        var ids = [Int32](), mask = [Int32](), labels = [Int32]()
        for r in 0..<b {
            let n = s - 7 * r, m = t - 3 * r
            for j in 0..<s { ids.append(j < n ? Int32(3 + Int(rng.next() % UInt64(vocab - 3))) : Int32(pad)); mask.append(j < n ? 1 : 0) }
            for j in 0..<t { labels.append(j < m ? Int32(3 + Int(rng.next() % UInt64(vocab - 3))) : Seq2SeqBatch.ignoreIndex) }
        }
        return try Seq2SeqBatch(batchSize: b, sourceLength: s, targetLength: t, inputIds: ids, attentionMask: mask, labels: labels)
    }
}
