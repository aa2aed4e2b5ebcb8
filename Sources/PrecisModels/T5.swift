import Foundation
import PrecisCore

/// T5 as transformers' `T5ForConditionalGeneration` defines it: token embeddings shared by both
/// stacks (no positions, no scale), pre-norm blocks with RMS norms, attention without biases or
/// 1/√d_kv scaling plus a bucketed relative position bias (block 0's `relative_attention_bias` of
/// each stack, bidirectional in the encoder, causal in the decoder, shared by all of the stack's
/// blocks), a ReLU or gated FFN, each stack's `final_layer_norm`, and an LM head that is the shared
/// embedding (decoder output × d_model^-0.5) or `lm_head.weight`.
///
/// All parameters live in `params` (one contiguous fp32 buffer, Hugging Face names in `table`);
/// `grads` mirrors it and accumulates (+=) across calls until `zeroGradients()`.
public final class T5Model: Seq2SeqModel, LaneArchitecture {
    typealias Workspace = T5Workspace

    public let config: T5Config
    public let table: ParameterTable
    public let params: FloatBuffer
    public let grads: FloatBuffer
    let layout: T5Layout
    let runner: LaneRunner<T5Model>
    public let profiler = Profiler()
    /// The last incremental decoder, reused by the next generation of the same shape.
    var decoderCache: T5IncrementalDecoder?
    /// The decoder weights' bf16 copies, kept between generations while the parameters are unchanged.
    let decoderBF16 = DecoderBF16Cache()
    /// The kernel of the bf16 products (`matmulPrecision` bf16), for the decoders made from now on.
    var bf16Kernel: BF16Kernel? { runner.bf16Kernel }

    public static let modelType = "t5"

    public init(config: T5Config) {
        self.config = config
        (table, layout) = T5Layout.build(config)
        params = FloatBuffer(count: table.count)
        grads = FloatBuffer(count: table.count)
        runner = LaneRunner(grads: grads, table: table, reportPrefixes: Self.gradientReportPrefixes(config))
    }

    /// Backward's order: the untied LM head, the decoder's final norm, each decoder block from the
    /// last (block 0, holding the position bias, is final only after every block added to the
    /// bias's gradient), the encoder's final norm, each encoder block from the last.
    static func gradientReportPrefixes(_ c: T5Config) -> [String] {
        var prefixes = c.tiedHead ? [] : ["lm_head."]
        prefixes.append("decoder.final_layer_norm.")
        prefixes += (0..<c.decoderLayers).reversed().map { "decoder.block.\($0)." }
        prefixes.append("encoder.final_layer_norm.")
        prefixes += (0..<c.numLayers).reversed().map { "encoder.block.\($0)." }
        return prefixes
    }

    public var facts: Seq2SeqFacts {
        Seq2SeqFacts(modelType: Self.modelType, vocabSize: config.vocabSize, dModel: config.dModel, padTokenId: config.padTokenId,
                     eosTokenId: config.eosTokenId, bosTokenId: nil, decoderStartTokenId: config.startTokenId,
                     forcedBosTokenId: nil, forcedEosTokenId: nil, maxSourcePositions: nil, maxTargetPositions: nil,
                     tiedHead: config.tiedHead)
    }
    public var extraTensors: [(name: String, values: FloatBuffer, shape: [Int])] { [] }

    public func zeroGradients() { grads.zero() }

    /// `config.json` as transformers writes it for `T5ForConditionalGeneration`.
    public func configJSON() throws -> Data {
        let data = try ConfigEncoding.encode(config, architecture: "T5ForConditionalGeneration")
        return Self.floatsWrittenAsFloats(data, keys: ["dropout_rate", "initializer_factor", "layer_norm_epsilon"])
    }

    /// transformers 5 checks config types strictly (`initializer_factor: 1` is refused: a float is
    /// expected) and JSONSerialization writes 1.0 as `1`: whole values of float fields get ".0".
    static func floatsWrittenAsFloats(_ data: Data, keys: [String]) -> Data {
        var text = String(decoding: data, as: UTF8.self)
        for key in keys {
            guard let re = try? NSRegularExpression(pattern: "(\"\(key)\" ?: ?-?[0-9]+)(?=[,\\s}])") else { continue }
            text = re.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "$1.0")
        }
        return Data(text.utf8)
    }

    /// `generation_config.json` defaults derived from the model config, as transformers does.
    public var generationDefaults: [String: Any] {
        ["decoder_start_token_id": config.startTokenId, "eos_token_id": config.eosTokenId, "pad_token_id": config.padTokenId]
    }

    /// Other names a checkpoint may store a parameter under: the stacks' tied copies of `shared`,
    /// and `lm_head.weight` (tied head); an untied head missing from a checkpoint is `shared`
    /// (transformers 5 saves a head it kept tied only once).
    public func aliases(for name: String) -> [String] {
        switch name {
        case "shared.weight":
            return ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"] + (config.tiedHead ? ["lm_head.weight"] : [])
        case "lm_head.weight":
            return ["shared.weight"]
        default:
            return []
        }
    }

    /// transformers' T5 `_init_weights` (factor f = initializer_factor): shared and an untied head
    /// N(0, f); q N(0, f·(d·d_kv)^-½), k and v N(0, f·d^-½), o N(0, f·(heads·d_kv)^-½); the
    /// relative bias N(0, f·d^-½); wi (wi_0, wi_1) N(0, f·d^-½), wo N(0, f·d_ff^-½); norms f.
    public func initializeWeights(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        let c = config, f = c.initializerFactor, d = Double(c.dModel)
        for e in table.entries {
            let p = params.pointer + e.offset
            let std: Double
            if e.name.hasSuffix("layer_norm.weight") {
                Vec.fill(p, Float(f), e.count)
                continue
            } else if e.name == "shared.weight" || e.name == "lm_head.weight" {
                std = f
            } else if e.name.hasSuffix(".q.weight") {
                std = f / (d * Double(c.dKv)).squareRoot()
            } else if e.name.hasSuffix(".o.weight") {
                std = f / Double(c.innerDim).squareRoot()
            } else if e.name.hasSuffix(".wo.weight") {
                std = f / Double(c.dFf).squareRoot()
            } else {
                std = f / d.squareRoot()  // k, v, relative_attention_bias, wi, wi_0, wi_1
            }
            for i in 0..<e.count { p[i] = Float(rng.normal() * std) }
        }
    }

    // MARK: Training step

    /// Forward pass and (optionally) backward pass on one batch (see `Seq2SeqModel.step`).
    public func step(_ batch: Seq2SeqBatch, options: StepOptions = StepOptions(),
                     logitsOut: UnsafeMutablePointer<Float>? = nil) throws -> CrossEntropy.Result {
        guard options.computeGradients else { return try forward(batch, options: options, logitsOut: logitsOut) }
        try batch.validate(facts)
        return runner.step(self, batch, options: options, logitsOut: logitsOut)
    }

    public func forward(_ batch: Seq2SeqBatch, options: StepOptions = StepOptions(),
                        logitsOut: UnsafeMutablePointer<Float>? = nil) throws -> CrossEntropy.Result {
        try batch.validate(facts)
        return runner.forward(self, batch, options: options, logitsOut: logitsOut)
    }

    public func backward() { runner.backward(self) }

    public var onGradientsFinal: ((Range<Int>, CrossEntropy.Result) -> Void)? {
        get { runner.onGradientsFinal }
        set { runner.onGradientsFinal = newValue }
    }

    public var onParametersNeeded: ((Range<Int>) -> Void)? {
        get { runner.onParametersNeeded }
        set { runner.onParametersNeeded = newValue }
    }
    public var gradientCuts: [Int] { runner.gradientCuts }
    public var laneFigures: LaneFigures { runner.figures }

    public var matmulPrecision: MatmulPrecision { runner.precision }

    public func setMatmulPrecision(_ precision: MatmulPrecision, kernel: BF16Kernel?) throws {
        try runner.setPrecision(precision, kernel: kernel, base: params.pointer,
                                weights: table.productWeights(head: layout.head, vocab: config.vocabSize, dModel: config.dModel))
    }

    /// The encoder's last hidden state of the most recent `step` ([B, S, D]).
    public func lastEncoderOutput() -> [Float] {
        var out: [Float] = []
        for ws in runner.activeWorkspaces ?? [] {
            out += UnsafeBufferPointer(start: ws.encoderOutput, count: ws.b * ws.s * config.dModel)
        }
        return out
    }

    // MARK: Lanes (see `LaneRunner`)

    var gradientReportPrefixes: [String] { Self.gradientReportPrefixes(config) }
    var logitsWidth: Int { config.vocabSize }

    func laneWorkspace(_ old: T5Workspace?, lane index: Int, rows: Range<Int>, batch: Seq2SeqBatch) -> T5Workspace {
        let s = batch.sourceLength, t = batch.targetLength
        // _shift_right: as BART's shift_tokens_right.
        let ws = T5Workspace.lane(old, index: index, rows: rows, batch: batch, decoderStart: config.startTokenId,
                                  pad: config.padTokenId) { T5Workspace(config: config, b: $0, s: $1, t: $2) }
        // The position buckets of this shape (the bias itself depends on the weights: each forward).
        if ws.bucketShape != (s, t) {
            T5PositionBias.buckets(ws.encoderBuckets, tq: s, tk: s, bidirectional: true, buckets: config.relativeAttentionNumBuckets,
                                   maxDistance: config.relativeAttentionMaxDistance)
            T5PositionBias.buckets(ws.decoderBuckets, tq: t, tk: t, bidirectional: false, buckets: config.relativeAttentionNumBuckets,
                                   maxDistance: config.relativeAttentionMaxDistance)
            ws.bucketShape = (s, t)
        }
        return ws
    }

    func laneForward(_ ws: T5Workspace, rows: Range<Int>, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?,
                     work: LaneWork) -> CrossEntropy.Result {
        ws.work = work
        let drop = T5DropoutPlan(config: config, training: options.training, seed: options.seed).lane(rows)
        ws.drop = drop
        encode(ws, drop)
        decode(ws, drop)
        let c = config, nt = ws.b * ws.t
        if !c.tiedHead { ws.work.needParameters() }     // lm_head
        prof(ws, "fwd lm head") {
            ws.work.linearForward(y: ws.logits, x: ws.decoderOutput, weight: params.pointer + layout.head, bias: nil,
                                  rows: nt, inDim: c.dModel, outDim: c.vocabSize)
        }
        if let out = logitsOut { out.update(from: ws.logits, count: nt * c.vocabSize) }
        return prof(ws, "loss") {
            CrossEntropy.forwardBackward(
                logits: ws.logits, dlogits: options.computeGradients ? ws.logits : nil, labels: ws.labels,
                rows: nt, vocab: c.vocabSize, smoothing: options.labelSmoothing,
                normalizer: options.lossNormalizer, gradScale: options.gradScale)
        }
    }

    func laneBackward(_ ws: T5Workspace, gradients: Ptr, work: LaneWork, report: (Int) -> Void) {
        ws.gradients = gradients
        ws.work = work
        backward(ws, ws.drop, report: report)
    }

    // MARK: Forward

    @inline(__always)
    private func prof<T>(_ ws: T5Workspace, _ name: StaticString, _ body: () throws -> T) rethrows -> T {
        ws.profiled ? try profiler.measure(name, body) : try body()
    }

    /// x += dropout(block(norm(x))): the pre-norm residual sublayer. `block` gets the norm's output
    /// and writes the sublayer's output into the scratch it is given.
    private func sublayer(_ ws: T5Workspace, _ x: Ptr, rows: Int, norm: NormActs, weight: Int, dropout: DropoutSite,
                          _ block: (UnsafePointer<Float>, Ptr) -> Void) {
        let d = config.dModel
        T5Norm.forward(norm, x: x, weight: weight, params: params.pointer, rows: rows, dim: d, eps: config.layerNormEps)
        block(norm.y, ws.tmp)
        dropout.apply(ws.tmp, ws.tmp, count: rows * d, recordingTo: norm.dropMask)
        Vec.add(x, ws.tmp, rows * d)
    }

    func encode(_ ws: T5Workspace, _ drop: T5DropoutPlan) {
        let c = config, d = c.dModel, n = ws.b * ws.s, p = params.pointer
        ws.work.needParameters()        // encoder block 0, which holds the position bias read here
        prof(ws, "fwd embed") {
            Embedding.forward(out: ws.tmp, table: p + layout.shared, ids: ws.sourceIds, rows: n, dim: d)
            drop.site(.encoderEmbedding).apply(ws.encoderHidden, ws.tmp, count: n * d, recordingTo: ws.encoderEmbedMask)
            T5PositionBias.forward(ws.encoderBias, buckets: ws.encoderBuckets, weight: p + layout.encoderBias, heads: c.numHeads,
                                   count: ws.s * ws.s)
        }
        let shape = AttentionShape(batch: ws.b, tq: ws.s, tk: ws.s, dim: c.innerDim, heads: c.numHeads)
        let ffnShape = T5FeedForwardShape(rows: n, dim: d, ffn: c.dFf, activation: c.activation)
        let x = ws.encoderHidden
        for (l, acts) in ws.encoderBlocks.enumerated() {
            if l > 0 { ws.work.needParameters() }   // encoder block l (block 0: above)
            let o = layout.encoder[l]
            sublayer(ws, x, rows: n, norm: acts.ln1, weight: o.ln1, dropout: drop.site(.encoder(l, .attentionOutput))) { h, out in
                prof(ws, "fwd enc attention") {
                    T5AttentionBlock.forward(acts.attn, o.selfAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: h, shape: shape,
                                             modelDim: d, bias: ws.encoderBias, keyMask: ws.sourceMask, causal: false,
                                             dropout: drop.site(.encoder(l, .attentionProbabilities)), out: out, work: ws.work)
                }
            }
            sublayer(ws, x, rows: n, norm: acts.ln2, weight: o.ln2, dropout: drop.site(.encoder(l, .ffnOutput))) { h, out in
                prof(ws, "fwd enc ffn") {
                    T5FeedForwardBlock.forward(acts.ffn, o.ffn, params: p, x: h, shape: ffnShape,
                                               dropout: drop.site(.encoder(l, .activation)), out: out, hidden: ws.hidden, work: ws.work)
                }
            }
        }
        ws.work.needParameters()        // the encoder's final_layer_norm
        T5Norm.forward(ws.encoderFinal, x: x, weight: layout.encoderFinalNorm, params: p, rows: n, dim: d, eps: c.layerNormEps)
        drop.site(.encoderFinal).apply(ws.encoderOutput, ws.encoderFinal.y, count: n * d, recordingTo: ws.encoderFinal.dropMask)
    }

    private func decode(_ ws: T5Workspace, _ drop: T5DropoutPlan) {
        let c = config, d = c.dModel, n = ws.b * ws.t, p = params.pointer
        ws.work.needParameters()        // decoder block 0, which holds the position bias read here
        prof(ws, "fwd embed") {
            Embedding.forward(out: ws.tmp, table: p + layout.shared, ids: ws.targetIds, rows: n, dim: d)
            drop.site(.decoderEmbedding).apply(ws.decoderHidden, ws.tmp, count: n * d, recordingTo: ws.decoderEmbedMask)
            T5PositionBias.forward(ws.decoderBias, buckets: ws.decoderBuckets, weight: p + layout.decoderBias, heads: c.numHeads,
                                   count: ws.t * ws.t)
        }
        let selfShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.t, dim: c.innerDim, heads: c.numHeads)
        let crossShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.s, dim: c.innerDim, heads: c.numHeads)
        let ffnShape = T5FeedForwardShape(rows: n, dim: d, ffn: c.dFf, activation: c.activation)
        let x = ws.decoderHidden, enc = UnsafePointer(ws.encoderOutput)
        for (l, acts) in ws.decoderBlocks.enumerated() {
            if l > 0 { ws.work.needParameters() }   // decoder block l (block 0: above)
            let o = layout.decoder[l]
            sublayer(ws, x, rows: n, norm: acts.ln1, weight: o.ln1, dropout: drop.site(.decoder(l, .selfAttentionOutput))) { h, out in
                prof(ws, "fwd dec self-attention") {
                    T5AttentionBlock.forward(acts.selfAttn, o.selfAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: h,
                                             shape: selfShape, modelDim: d, bias: ws.decoderBias, keyMask: nil, causal: true,
                                             dropout: drop.site(.decoder(l, .selfAttentionProbabilities)), out: out, work: ws.work)
                }
            }
            sublayer(ws, x, rows: n, norm: acts.ln2, weight: o.ln2, dropout: drop.site(.decoder(l, .crossAttentionOutput))) { h, out in
                prof(ws, "fwd dec cross-attention") {
                    T5AttentionBlock.forward(acts.crossAttn, o.crossAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: enc,
                                             shape: crossShape, modelDim: d, bias: nil, keyMask: ws.sourceMask, causal: false,
                                             dropout: drop.site(.decoder(l, .crossAttentionProbabilities)), out: out, work: ws.work)
                }
            }
            sublayer(ws, x, rows: n, norm: acts.ln3, weight: o.ln3, dropout: drop.site(.decoder(l, .ffnOutput))) { h, out in
                prof(ws, "fwd dec ffn") {
                    T5FeedForwardBlock.forward(acts.ffn, o.ffn, params: p, x: h, shape: ffnShape,
                                               dropout: drop.site(.decoder(l, .activation)), out: out, hidden: ws.hidden, work: ws.work)
                }
            }
        }
        ws.work.needParameters()        // the decoder's final_layer_norm
        T5Norm.forward(ws.decoderFinal, x: x, weight: layout.decoderFinalNorm, params: p, rows: n, dim: d, eps: c.layerNormEps)
        drop.site(.decoderFinal).apply(ws.decoderOutput, ws.decoderFinal.y, count: n * d, recordingTo: ws.decoderFinal.dropMask)
        if c.scalesDecoderOutput { Vec.scale(ws.decoderOutput, 1 / Float(d).squareRoot(), n * d) }
    }

    // MARK: Backward

    /// One lane's backward pass, into `ws.gradients`; `report(k)` when the range of
    /// `gradientReportPrefixes[k]` has its final gradient.
    private func backward(_ ws: T5Workspace, _ drop: T5DropoutPlan, report: (Int) -> Void) {
        let c = config, d = c.dModel, p = params.pointer, g = ws.gradients
        var reported = 0
        func done() { report(reported); reported += 1 }
        let nt = ws.b * ws.t, ns = ws.b * ws.s
        let gA = ws.gradA
        prof(ws, "bwd lm head") {
            // The head's gradient in vocabulary slices another lane can take.
            ws.work.postWeightGradient(dy: ws.logits, x: ws.decoderOutput, dWeight: g + layout.head, dBias: nil,
                                       rows: nt, inDim: d, outDim: c.vocabSize, tiles: 4)
            ws.work.linearBackwardInput(dx: gA, dy: ws.logits, weight: p + layout.head, rows: nt, inDim: d, outDim: c.vocabSize)
            ws.work.settle()
        }
        if !c.tiedHead { done() }
        if c.scalesDecoderOutput { Vec.scale(gA, 1 / Float(d).squareRoot(), nt * d) }
        drop.site(.decoderFinal).applyRecorded(gA, gA, count: nt * d, mask: ws.decoderFinal.dropMask)
        T5Norm.backward(ws.decoderFinal, dx: gA, dy: gA, weight: layout.decoderFinalNorm, params: p, grads: g, rows: nt, dim: d)
        done()

        Vec.zero(ws.gradEncoder, ns * d)
        Vec.zero(ws.decoderBiasGrad, c.numHeads * ws.t * ws.t)
        let selfShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.t, dim: c.innerDim, heads: c.numHeads)
        let crossShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.s, dim: c.innerDim, heads: c.numHeads)
        let decFfn = T5FeedForwardShape(rows: nt, dim: d, ffn: c.dFf, activation: c.activation)
        for l in stride(from: ws.decoderBlocks.count - 1, through: 0, by: -1) {
            let acts = ws.decoderBlocks[l], o = layout.decoder[l]
            sublayerBackward(ws, grad: gA, rows: nt, norm: acts.ln3, weight: o.ln3, dropout: drop.site(.decoder(l, .ffnOutput))) { dOut, dx in
                prof(ws, "bwd dec ffn") {
                    T5FeedForwardBlock.backward(acts.ffn, o.ffn, params: p, grads: g, x: acts.ln3.y, shape: decFfn,
                                                dropout: drop.site(.decoder(l, .activation)), dOut: dOut, dx: dx, accumulateDx: false,
                                                hidden: ws.hidden, work: ws.work)
                }
            }
            sublayerBackward(ws, grad: gA, rows: nt, norm: acts.ln2, weight: o.ln2, dropout: drop.site(.decoder(l, .crossAttentionOutput))) { dOut, dx in
                prof(ws, "bwd dec cross-attention") {
                    T5AttentionBlock.backward(acts.crossAttn, o.crossAttn, params: p, grads: g, scratch: ws.attnScratch,
                                              xq: acts.ln2.y, xkv: ws.encoderOutput, shape: crossShape, modelDim: d, biasGradient: nil,
                                              dropout: drop.site(.decoder(l, .crossAttentionProbabilities)), dOut: dOut,
                                              dxq: dx, dxkv: ws.gradEncoder, accumulateDxkv: true, work: ws.work)
                }
            }
            sublayerBackward(ws, grad: gA, rows: nt, norm: acts.ln1, weight: o.ln1, dropout: drop.site(.decoder(l, .selfAttentionOutput))) { dOut, dx in
                prof(ws, "bwd dec self-attention") {
                    T5AttentionBlock.backward(acts.selfAttn, o.selfAttn, params: p, grads: g, scratch: ws.attnScratch,
                                              xq: acts.ln1.y, xkv: acts.ln1.y, shape: selfShape, modelDim: d,
                                              biasGradient: ws.decoderBiasGrad, dropout: drop.site(.decoder(l, .selfAttentionProbabilities)),
                                              dOut: dOut, dxq: dx, dxkv: dx, accumulateDxkv: false, work: ws.work)
                }
            }
            if l == 0 {
                T5PositionBias.backward(ws.decoderBiasGrad, buckets: ws.decoderBuckets, dWeight: g + layout.decoderBias,
                                        heads: c.numHeads, count: ws.t * ws.t)
            }
            done()
        }
        prof(ws, "bwd embed") {
            drop.site(.decoderEmbedding).applyRecorded(gA, gA, count: nt * d, mask: ws.decoderEmbedMask)
            Embedding.backward(dtable: g + layout.shared, dout: gA, ids: ws.targetIds, rows: nt, dim: d)
        }

        // Encoder: the gradient of its output gathered from every cross-attention.
        drop.site(.encoderFinal).applyRecorded(gA, ws.gradEncoder, count: ns * d, mask: ws.encoderFinal.dropMask)
        T5Norm.backward(ws.encoderFinal, dx: gA, dy: gA, weight: layout.encoderFinalNorm, params: p, grads: g, rows: ns, dim: d)
        done()
        Vec.zero(ws.encoderBiasGrad, c.numHeads * ws.s * ws.s)
        let encShape = AttentionShape(batch: ws.b, tq: ws.s, tk: ws.s, dim: c.innerDim, heads: c.numHeads)
        let encFfn = T5FeedForwardShape(rows: ns, dim: d, ffn: c.dFf, activation: c.activation)
        for l in stride(from: ws.encoderBlocks.count - 1, through: 0, by: -1) {
            let acts = ws.encoderBlocks[l], o = layout.encoder[l]
            sublayerBackward(ws, grad: gA, rows: ns, norm: acts.ln2, weight: o.ln2, dropout: drop.site(.encoder(l, .ffnOutput))) { dOut, dx in
                prof(ws, "bwd enc ffn") {
                    T5FeedForwardBlock.backward(acts.ffn, o.ffn, params: p, grads: g, x: acts.ln2.y, shape: encFfn,
                                                dropout: drop.site(.encoder(l, .activation)), dOut: dOut, dx: dx, accumulateDx: false,
                                                hidden: ws.hidden, work: ws.work)
                }
            }
            sublayerBackward(ws, grad: gA, rows: ns, norm: acts.ln1, weight: o.ln1, dropout: drop.site(.encoder(l, .attentionOutput))) { dOut, dx in
                prof(ws, "bwd enc attention") {
                    T5AttentionBlock.backward(acts.attn, o.selfAttn, params: p, grads: g, scratch: ws.attnScratch,
                                              xq: acts.ln1.y, xkv: acts.ln1.y, shape: encShape, modelDim: d,
                                              biasGradient: ws.encoderBiasGrad, dropout: drop.site(.encoder(l, .attentionProbabilities)),
                                              dOut: dOut, dxq: dx, dxkv: dx, accumulateDxkv: false, work: ws.work)
                }
            }
            if l == 0 {
                T5PositionBias.backward(ws.encoderBiasGrad, buckets: ws.encoderBuckets, dWeight: g + layout.encoderBias,
                                        heads: c.numHeads, count: ws.s * ws.s)
            }
            done()
        }
        prof(ws, "bwd embed") {
            drop.site(.encoderEmbedding).applyRecorded(gA, gA, count: ns * d, mask: ws.encoderEmbedMask)
            Embedding.backward(dtable: g + layout.shared, dout: gA, ids: ws.sourceIds, rows: ns, dim: d)
        }
        assert(reported == runner.reportRanges.count)
    }

    /// Backward through x_out = x + dropout(f(norm(x))): `grad` holds dL/dx_out on entry and dL/dx
    /// after; `block` gets dL/df (in scratch) and must write dL/d(norm output) into the pointer it
    /// is given.
    private func sublayerBackward(_ ws: T5Workspace, grad: Ptr, rows: Int, norm: NormActs, weight: Int, dropout: DropoutSite,
                                  _ block: (UnsafePointer<Float>, Ptr) -> Void) {
        let d = config.dModel
        dropout.applyRecorded(ws.tmp, grad, count: rows * d, mask: norm.dropMask)
        block(ws.tmp, ws.gradB)
        T5Norm.backward(norm, dx: ws.gradB, dy: ws.gradB, weight: weight, params: params.pointer, grads: ws.gradients, rows: rows, dim: d)
        Vec.add(grad, ws.gradB, rows * d)
    }
}

/// Flat-buffer offsets of every T5 parameter, in `named_parameters()` order.
struct T5Layout {
    struct EncoderBlock {
        var selfAttn: T5AttentionOffsets, ln1: Int, ffn: T5FeedForwardOffsets, ln2: Int
    }
    struct DecoderBlock {
        var selfAttn: T5AttentionOffsets, ln1: Int, crossAttn: T5AttentionOffsets, ln2: Int, ffn: T5FeedForwardOffsets, ln3: Int
    }

    var shared = 0
    /// `shared` when tied, else `lm_head.weight`.
    var head = 0
    var encoderBias = 0, decoderBias = 0
    var encoderFinalNorm = 0, decoderFinalNorm = 0
    var encoder: [EncoderBlock] = []
    var decoder: [DecoderBlock] = []

    static func build(_ c: T5Config) -> (ParameterTable, T5Layout) {
        var t = ParameterTable()
        var l = T5Layout()
        let d = c.dModel, inner = c.innerDim
        func norm(_ name: String) -> Int { t.add(name + ".weight", [d], decay: false) }
        func attention(_ name: String) -> T5AttentionOffsets {
            let q = t.add(name + ".q.weight", [inner, d], decay: true), k = t.add(name + ".k.weight", [inner, d], decay: true)
            let v = t.add(name + ".v.weight", [inner, d], decay: true), o = t.add(name + ".o.weight", [d, inner], decay: true)
            return T5AttentionOffsets(q: q, k: k, v: v, o: o)
        }
        func ffn(_ name: String) -> T5FeedForwardOffsets {
            if c.isGatedAct {
                let w0 = t.add(name + ".wi_0.weight", [c.dFf, d], decay: true), w1 = t.add(name + ".wi_1.weight", [c.dFf, d], decay: true)
                return T5FeedForwardOffsets(wi: w0, wi1: w1, wo: t.add(name + ".wo.weight", [d, c.dFf], decay: true))
            }
            let wi = t.add(name + ".wi.weight", [c.dFf, d], decay: true)
            return T5FeedForwardOffsets(wi: wi, wi1: nil, wo: t.add(name + ".wo.weight", [d, c.dFf], decay: true))
        }
        // Not decayed: the Trainer leaves out every name containing "bias".
        func relativeBias(_ name: String) -> Int {
            t.add(name + ".relative_attention_bias.weight", [c.relativeAttentionNumBuckets, c.numHeads], decay: false)
        }
        l.shared = t.add("shared.weight", [c.vocabSize, d], decay: true)
        for i in 0..<c.numLayers {
            let p = "encoder.block.\(i).layer"
            let sa = attention(p + ".0.SelfAttention")
            if i == 0 { l.encoderBias = relativeBias(p + ".0.SelfAttention") }
            let n1 = norm(p + ".0.layer_norm"), f = ffn(p + ".1.DenseReluDense"), n2 = norm(p + ".1.layer_norm")
            l.encoder.append(EncoderBlock(selfAttn: sa, ln1: n1, ffn: f, ln2: n2))
        }
        l.encoderFinalNorm = norm("encoder.final_layer_norm")
        for i in 0..<c.decoderLayers {
            let p = "decoder.block.\(i).layer"
            let sa = attention(p + ".0.SelfAttention")
            if i == 0 { l.decoderBias = relativeBias(p + ".0.SelfAttention") }
            let n1 = norm(p + ".0.layer_norm")
            let ca = attention(p + ".1.EncDecAttention"), n2 = norm(p + ".1.layer_norm")
            let f = ffn(p + ".2.DenseReluDense"), n3 = norm(p + ".2.layer_norm")
            l.decoder.append(DecoderBlock(selfAttn: sa, ln1: n1, crossAttn: ca, ln2: n2, ffn: f, ln3: n3))
        }
        l.decoderFinalNorm = norm("decoder.final_layer_norm")
        l.head = c.tiedHead ? l.shared : t.add("lm_head.weight", [c.vocabSize, d], decay: true)
        return (t, l)
    }
}

/// Every activation and scratch buffer of a T5 training step, allocated once per shape capacity.
final class T5Workspace: LaneWorkspace {
    struct EncoderBlockActs {
        var ln1: NormActs, attn: AttentionActs, ln2: NormActs, ffn: T5FeedForwardActs
    }
    struct DecoderBlockActs {
        var ln1: NormActs, selfAttn: AttentionActs, ln2: NormActs, crossAttn: AttentionActs, ln3: NormActs, ffn: T5FeedForwardActs
    }

    let capB: Int, capS: Int, capT: Int
    var b = 0, s = 0, t = 0
    let arena = Arena()
    let sourceIds: UnsafeMutablePointer<Int32>, targetIds: UnsafeMutablePointer<Int32>, labels: UnsafeMutablePointer<Int32>
    let sourceMask: Ptr
    /// The residual streams (updated in place block by block) and the embeddings' dropout masks.
    let encoderHidden: Ptr, decoderHidden: Ptr
    let encoderEmbedMask: UnsafeMutablePointer<UInt8>, decoderEmbedMask: UnsafeMutablePointer<UInt8>
    let encoderBlocks: [EncoderBlockActs]
    let decoderBlocks: [DecoderBlockActs]
    /// The final norms (their `dropMask`: the dropout after them) and the stacks' outputs (the
    /// decoder's scaled by d_model^-0.5 when the config says so).
    let encoderFinal: NormActs, decoderFinal: NormActs
    let encoderOutput: Ptr, decoderOutput: Ptr
    /// The position bias [heads, q, k] of this shape, its gradient, and the buckets of each (q, k).
    let encoderBias: Ptr, decoderBias: Ptr, encoderBiasGrad: Ptr, decoderBiasGrad: Ptr
    let encoderBuckets: UnsafeMutablePointer<Int32>, decoderBuckets: UnsafeMutablePointer<Int32>
    /// The (source, target) lengths `encoderBuckets`/`decoderBuckets` hold.
    var bucketShape = (-1, -1)
    /// The last forward's dropout plan (for this lane's rows), which its backward draws again.
    var drop = T5DropoutPlan.off
    /// Where backward accumulates parameter gradients (the model's, or the lane's own buffer).
    var gradients: Ptr = Ptr(bitPattern: 64)!
    /// Where backward's weight-gradient products go (the lanes' board, or run at once).
    var work = LaneWork()
    /// Whether this workspace's regions are timed (lane 0's).
    var profiled = true
    let logits: Ptr
    let tmp: Ptr, gradA: Ptr, gradB: Ptr, gradEncoder: Ptr, hidden: Ptr
    let attnScratch: AttentionScratch

    init(config c: T5Config, b: Int, s: Int, t: Int) {
        capB = b; capS = s; capT = t
        let d = c.dModel, inner = c.innerDim, h = c.numHeads, ns = b * s, nt = b * t, a = arena
        sourceIds = a.ints(ns); targetIds = a.ints(nt); labels = a.ints(nt); sourceMask = a.floats(ns)
        encoderHidden = a.floats(ns * d); decoderHidden = a.floats(nt * d)
        encoderEmbedMask = a.bytes((ns * d + 7) / 8); decoderEmbedMask = a.bytes((nt * d + 7) / 8)
        encoderBlocks = (0..<c.numLayers).map { _ in
            EncoderBlockActs(ln1: NormActs(a, rows: ns, dim: d), attn: AttentionActs(a, batch: b, tq: s, tk: s, dim: inner, heads: h),
                             ln2: NormActs(a, rows: ns, dim: d), ffn: T5FeedForwardActs(a, rows: ns, ffn: c.dFf, gated: c.isGatedAct))
        }
        decoderBlocks = (0..<c.decoderLayers).map { _ in
            DecoderBlockActs(ln1: NormActs(a, rows: nt, dim: d), selfAttn: AttentionActs(a, batch: b, tq: t, tk: t, dim: inner, heads: h),
                             ln2: NormActs(a, rows: nt, dim: d), crossAttn: AttentionActs(a, batch: b, tq: t, tk: s, dim: inner, heads: h),
                             ln3: NormActs(a, rows: nt, dim: d), ffn: T5FeedForwardActs(a, rows: nt, ffn: c.dFf, gated: c.isGatedAct))
        }
        encoderFinal = NormActs(a, rows: ns, dim: d); decoderFinal = NormActs(a, rows: nt, dim: d)
        encoderOutput = a.floats(ns * d); decoderOutput = a.floats(nt * d)
        encoderBias = a.floats(h * s * s); decoderBias = a.floats(h * t * t)
        encoderBiasGrad = a.floats(h * s * s); decoderBiasGrad = a.floats(h * t * t)
        encoderBuckets = a.ints(s * s); decoderBuckets = a.ints(t * t)
        logits = a.floats(nt * c.vocabSize)
        let maxN = max(ns, nt)
        tmp = a.floats(maxN * d); gradA = a.floats(maxN * d); gradB = a.floats(maxN * d)
        gradEncoder = a.floats(ns * d)
        hidden = a.floats(maxN * c.dFf)
        attnScratch = AttentionScratch(a, maxRows: maxN, dim: max(d, inner), maxTile: max(s * s, t * t, t * s),
                                       headScratch: HeadGemm.scratchFloats(n: max(s, t), k: c.dKv),
                                       workers: max(LaneWork.parts, Parallel.available))
    }
}
