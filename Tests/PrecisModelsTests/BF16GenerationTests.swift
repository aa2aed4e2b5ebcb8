import Foundation
import Testing
import PrecisCore
import PrecisModels

/// Generation with bf16 products (`MatmulPrecision.bf16`) for each family's tiny preset, on the
/// kernel this CPU runs (the portable one where there is none: it is always supported).
@Suite struct BF16GenerationTests {
    static let presets = ["bart-tiny", "pegasus-tiny", "t5-tiny"]
    static let kernel = BF16Gemm.kernel ?? .portable

    static func model(_ preset: String, seed: UInt64, bf16: Bool) throws -> any Seq2SeqModel {
        let m = try ModelPresets.model(preset)
        m.initializeWeights(seed: seed)
        if bf16 { try m.setMatmulPrecision(.bf16, kernel: kernel) }
        return m
    }

    /// The incremental decoder's logits at each position of `batch`'s labels (teacher forcing), per
    /// position [rows × vocab]; the decoder input is the labels shifted right, as the forward makes it.
    static func decoderLogits(_ model: any Seq2SeqModel, _ batch: Seq2SeqBatch) throws -> [[Float]] {
        let t = batch.targetLength, v = model.vocabSize, f = model.facts
        let enc = try model.encoderHiddenStates(inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                                batchSize: batch.batchSize, sourceLength: batch.sourceLength)
        let dec = model.incrementalDecoder(encoderOutput: enc, attentionMask: batch.attentionMask, sources: batch.batchSize,
                                           sourceLength: batch.sourceLength, rowSource: Array(0..<batch.batchSize), maxLength: t)
        var out: [[Float]] = []
        for j in 0..<t {
            dec.step((0..<batch.batchSize).map { r in
                if j == 0 { return Int32(f.decoderStartTokenId) }
                let l = batch.labels[r * t + j - 1]
                return l == -100 ? Int32(f.padTokenId) : l
            })
            var step: [Float] = []
            for r in 0..<batch.batchSize { step += UnsafeBufferPointer(start: dec.logits + r * dec.logitsStride, count: v) }
            out.append(step)
        }
        return out
    }

    /// The forward pass's logits [B, T, vocab], in evaluation mode.
    static func forwardLogits(_ model: any Seq2SeqModel, _ batch: Seq2SeqBatch) throws -> [Float] {
        var full = [Float](repeating: 0, count: batch.batchSize * batch.targetLength * model.vocabSize)
        _ = try full.withUnsafeMutableBufferPointer {
            try model.forward(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: $0.baseAddress)
        }
        return full
    }

    static func generate(_ model: any Seq2SeqModel, _ batch: Seq2SeqBatch, beams: Int = 1) throws -> GenerationOutput {
        var g = GenerationSettings()
        g.maxNewTokens = 6
        g.numBeams = beams
        g.forcedBosTokenId = model.facts.forcedBosTokenId
        return try Generator.generate(model: model, inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                      batchSize: batch.batchSize, sourceLength: batch.sourceLength, settings: g)
    }

    /// (a) The bf16 decoder runs the same bf16 products as the bf16 forward pass (the same packed
    /// weights, the same rows converted, the bias added first), so the two differ only where their
    /// fp32 parts differ (attention over the cache by gemv against per-head GEMMs, the order of a few
    /// sums): a relative difference ε ≈ a few 2⁻²⁴ in a product's input. Where ε moves an input
    /// across a bf16 rounding boundary (probability about ε / 2⁻⁹ per element) that element's term
    /// changes by one bf16 step, ≤ 2⁻⁸ |a||w|, which with |a| ≲ 4 (LayerNorm'd rows) and |w| ≲ 0.1
    /// (init std 0.02) is ≲ 2e-3, and only a few elements in the whole pass flip. So: max |Δlogit|
    /// ≤ 2e-5 (the fp32 decoder's own tolerance against the forward pass) + 2e-3, and the mean
    /// |Δlogit| (the flips are rare) ≤ 2e-5 — both far below (b)'s bf16 differences. (Where both
    /// attention paths run OpenBLAS, as on an AVX2 CPU with the portable kernel, the logits are
    /// bitwise equal.)
    @Test(arguments: presets)
    func decoderMatchesTheBF16ForwardPass(_ preset: String) throws {
        let model = try Self.model(preset, seed: 7, bf16: true)
        let batch = try tinyBatch(), t = batch.targetLength, v = model.vocabSize
        let full = try Self.forwardLogits(model, batch)
        let steps = try Self.decoderLogits(model, batch)
        var maxDiff: Float = 0, sum = 0.0
        for j in 0..<t {
            for r in 0..<batch.batchSize {
                for k in 0..<v {
                    let d = abs(steps[j][r * v + k] - full[(r * t + j) * v + k])
                    maxDiff = max(maxDiff, d); sum += Double(d)
                }
            }
        }
        let mean = sum / Double(t * batch.batchSize * v)
        #expect(maxDiff <= 2e-5 + 2e-3 && mean <= 2e-5, "\(preset): max |Δlogit| \(maxDiff), mean \(mean)")
    }

    /// (b) Against the fp32 decoder (encoder and decoder both fp32): each product's operands are
    /// rounded to bf16 (relative error ≤ 2⁻⁹ each), so a product's output moves by at most
    /// 2·2⁻⁹·Σ|a||w| — relative to an output of typical size, about 2⁻⁸ / √k of cancellation-free
    /// sums, and at most 2⁻⁸ where the terms do not cancel. The logits sit behind about 10 products
    /// per layer (encoder and decoder, 2 layers each) plus the head, normalised between layers, so
    /// the relative errors add up to at most ≈ 30 · 2⁻⁸ ≈ 0.12 of the logits' scale: max |Δlogit|
    /// ≤ 0.12 · max |logit|. (Measured with the portable kernel: 0.002–0.004 · max |logit|, about
    /// one 2⁻⁸.) That bf16 actually ran: the logits are not the fp32 ones.
    @Test(arguments: presets)
    func decoderAgreesWithFP32WithinBF16Rounding(_ preset: String) throws {
        let batch = try tinyBatch()
        let fp32 = try Self.decoderLogits(try Self.model(preset, seed: 7, bf16: false), batch)
        let bf16 = try Self.decoderLogits(try Self.model(preset, seed: 7, bf16: true), batch)
        var maxDiff: Float = 0, scale: Float = 0
        for (a, b) in zip(fp32.joined(), bf16.joined()) { maxDiff = max(maxDiff, abs(a - b)); scale = max(scale, abs(a)) }
        #expect(maxDiff <= 0.12 * scale, "\(preset): max |Δlogit| \(maxDiff), max |logit| \(scale)")
        #expect(maxDiff > 0, "\(preset): bf16 products gave the fp32 logits exactly")
    }

    /// (c) Greedy and beam search in bf16 give the same output run to run: on the same model (its
    /// decoder and packed weights reused) and on a fresh model with the same weights.
    @Test(arguments: presets)
    func bf16GenerationIsDeterministic(_ preset: String) throws {
        let batch = try tinyBatch()
        let model = try Self.model(preset, seed: 9, bf16: true)
        for beams in [1, 2] {
            let first = try Self.generate(model, batch, beams: beams)
            let again = try Self.generate(model, batch, beams: beams)
            let fresh = try Self.generate(try Self.model(preset, seed: 9, bf16: true), batch, beams: beams)
            #expect(first.sequences == again.sequences && first.sequences == fresh.sequences, "\(preset), \(beams) beam(s)")
            #expect(first.scores == again.scores && first.scores == fresh.scores, "\(preset), \(beams) beam(s)")
        }
    }

    /// (d) New parameter values after a bf16 generation reach the next one (no stale packed copy or
    /// cross-attention keys): the reused decoder's logits and the generated tokens are a fresh
    /// model's with the new values, and the logits are not the old values' ones; switching the
    /// model back to fp32 generates what an fp32 model does.
    @Test(arguments: presets)
    func newParametersReachTheNextBF16Generation(_ preset: String) throws {
        let batch = try tinyBatch()
        let model = try Self.model(preset, seed: 3, bf16: true)
        _ = try Self.generate(model, batch)
        let before = try Self.decoderLogits(model, batch)
        model.initializeWeights(seed: 4)
        let fresh = try Self.model(preset, seed: 4, bf16: true)
        #expect(try Self.generate(model, batch).sequences == (try Self.generate(fresh, batch).sequences), "\(preset)")
        let after = try Self.decoderLogits(model, batch)
        // (Bool comparisons: a failure names the preset, not two arrays of 8192 × 10 logits.)
        let freshLogits = try Self.decoderLogits(fresh, batch)
        #expect(after == freshLogits ? true : false, "\(preset): the reused decoder's logits are not a fresh model's")
        #expect(after != before ? true : false, "\(preset): new weights gave the old logits")
        // Two values of the LM head (token 5's first two) swapped: the sums over the parameters stay
        // the same (up to their rounding).
        let name = preset.hasPrefix("t5") ? "shared.weight" : "model.shared.weight"
        let o = model.table.offset(name) + 5 * model.facts.dModel
        func swapped(_ m: any Seq2SeqModel) -> any Seq2SeqModel {
            let t = m.params[o]; m.params[o] = m.params[o + 1]; m.params[o + 1] = t
            return m
        }
        #expect(model.params[o] != model.params[o + 1])
        let swappedLogits = try Self.decoderLogits(swapped(model), batch)
        let freshSwapped = try Self.decoderLogits(swapped(fresh), batch)
        #expect(swappedLogits == freshSwapped ? true : false, "\(preset): swapped weights did not reach the reused decoder")
        #expect(swappedLogits != after ? true : false, "\(preset): swapped weights gave the same logits")
        try model.setMatmulPrecision(.fp32)
        let fp32 = swapped(try Self.model(preset, seed: 4, bf16: false))
        #expect(try Self.generate(model, batch).sequences == (try Self.generate(fp32, batch).sequences))
        let back = try Self.decoderLogits(model, batch), fp32Logits = try Self.decoderLogits(fp32, batch)
        #expect(back == fp32Logits ? true : false, "\(preset): back in fp32, the logits are not an fp32 model's")
    }
}
