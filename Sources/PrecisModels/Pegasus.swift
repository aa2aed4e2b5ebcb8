import Foundation
import PrecisCore

/// Pegasus as transformers' `PegasusForConditionalGeneration` defines it: fixed sinusoidal positions
/// (sin in the first half of each vector, cos in the second, no offset; rebuilt from the config, not
/// trained, not in the flat buffer; written with the weights as transformers saves them), optional
/// √d token-embedding scale, pre-LN encoder and decoder layers (x + dropout(f(LN(x)))) each followed
/// by a final LayerNorm, the configured activation, and an LM head tied to the shared embedding plus
/// `final_logits_bias`.
///
/// All trainable parameters live in `params` (one contiguous fp32 buffer, Hugging Face names in
/// `table`); `grads` mirrors it and accumulates (+=) across calls until `zeroGradients()`.
public final class PegasusModel: Seq2SeqModel, LaneArchitecture {
    typealias Workspace = PegasusWorkspace

    public let config: PegasusConfig
    public let table: ParameterTable
    public let params: FloatBuffer
    public let grads: FloatBuffer
    /// `final_logits_bias` is a buffer in transformers, not a parameter: loaded and saved, never trained.
    public let finalLogitsBias: FloatBuffer
    /// The sinusoidal position table [max_position_embeddings, d_model], shared by encoder and decoder.
    let positions: FloatBuffer
    /// Each stack's final `layer_norm` is its layout's `encoderNorm` / `decoderNorm`.
    let layout: BartFamilyLayout
    /// Runs the step's lanes (see `LaneRunner`); lane 0's gradients are `grads`.
    let runner: LaneRunner<PegasusModel>
    /// Wall time per region of the step (enable for profiling).
    public let profiler = Profiler()
    /// Packed decoder weights and the last incremental decoder, kept between generations.
    let generation = BartFamilyGenerationCache()
    /// The kernel of the bf16 products (`matmulPrecision` bf16), for the decoders made from now on.
    var bf16Kernel: BF16Kernel? { runner.bf16Kernel }

    public static let modelType = "pegasus"

    public init(config: PegasusConfig) {
        self.config = config
        (table, layout) = Self.layout(config)
        params = FloatBuffer(count: table.count)
        grads = FloatBuffer(count: table.count)
        finalLogitsBias = FloatBuffer(count: config.vocabSize)
        positions = Self.sinusoidalPositions(count: config.maxPositionEmbeddings, dim: config.dModel)
        runner = LaneRunner(grads: grads, table: table, reportPrefixes: Self.gradientReportPrefixes(config))
    }

    /// The trainable parameters' offsets: no position tables (they are fixed), a final `layer_norm` per stack.
    static func layout(_ config: PegasusConfig) -> (ParameterTable, BartFamilyLayout) {
        BartFamilyLayout.build(config.core, learnedPositionRows: nil, stackNorm: "layer_norm")
    }

    /// transformers' `PegasusSinusoidalPositionalEmbedding.create_weight`: row `pos`, column j < ⌈d/2⌉
    /// is sin(pos / 10000^(2j/d)), column ⌈d/2⌉ + j is cos(pos / 10000^(2j/d)); computed in double
    /// precision (numpy there), rounded to fp32.
    static func sinusoidalPositions(count: Int, dim: Int) -> FloatBuffer {
        let table = FloatBuffer(count: count * dim)
        let sinCols = (dim + 1) / 2, cosCols = dim / 2
        for pos in 0..<count {
            let row = table.pointer + pos * dim
            for j in 0..<sinCols {
                row[j] = Float(sin(Double(pos) / pow(10000, Double(2 * j) / Double(dim))))
            }
            for j in 0..<cosCols {
                row[sinCols + j] = Float(cos(Double(pos) / pow(10000, Double(2 * j) / Double(dim))))
            }
        }
        return table
    }

    /// Backward's order: the decoder's final LayerNorm, each decoder layer from the last, the
    /// encoder's final LayerNorm, each encoder layer from the last (the shared embedding is final
    /// only at the end).
    static func gradientReportPrefixes(_ config: PegasusConfig) -> [String] {
        var prefixes = ["model.decoder.layer_norm."]
        prefixes += (0..<config.decoderLayers).reversed().map { "model.decoder.layers.\($0)." }
        prefixes += ["model.encoder.layer_norm."]
        prefixes += (0..<config.encoderLayers).reversed().map { "model.encoder.layers.\($0)." }
        return prefixes
    }

    public var facts: Seq2SeqFacts { config.core.facts(modelType: Self.modelType, bosTokenId: config.bosTokenId) }
    public var extraTensors: [(name: String, values: FloatBuffer, shape: [Int])] {
        [("final_logits_bias", finalLogitsBias, [1, config.vocabSize])]
    }
    /// The frozen sinusoidal tables transformers stores (the same table for encoder and decoder):
    /// saved with the weights, rebuilt from the config rather than loaded.
    public var derivedTensors: [(name: String, values: FloatBuffer, shape: [Int])] {
        let shape = [config.maxPositionEmbeddings, config.dModel]
        return [("model.encoder.embed_positions.weight", positions, shape), ("model.decoder.embed_positions.weight", positions, shape)]
    }
    /// The sinusoidal position table [max_position_embeddings, d_model], row-major (for checks).
    public var positionTable: [Float] { positions.array }

    public func zeroGradients() { grads.zero() }

    /// `config.json` as transformers writes it for `PegasusForConditionalGeneration`.
    public func configJSON() throws -> Data { try ConfigEncoding.encode(config, architecture: "PegasusForConditionalGeneration") }

    /// `generation_config.json` defaults derived from the model config, as transformers does.
    public var generationDefaults: [String: Any] { config.core.generationDefaults(bosTokenId: config.bosTokenId) }

    /// Other names a checkpoint may store a parameter under (tied embeddings; a bare `PegasusModel`).
    public func aliases(for name: String) -> [String] { BartFamilyLayout.aliases(for: name) }

    /// transformers' `_init_weights`: N(0, init_std) for linear and embedding weights (the padding
    /// row of the token embedding zeroed), zero biases, LayerNorm weight 1 and bias 0; the
    /// sinusoidal tables are fixed and `final_logits_bias` is zero.
    public func initializeWeights(seed: UInt64) {
        layout.initializeWeights(table, params: params, std: config.initStd, padTokenId: config.padTokenId, dim: config.dModel,
                                 seed: seed)
        finalLogitsBias.zero()
    }

    // MARK: Training step

    /// Forward and (optionally) backward on one batch: the summed token loss and the token count;
    /// gradients are added into `grads` (see `BartModel.step` for the scaling). `logitsOut`, if
    /// given, receives the logits [B, T, V].
    public func step(_ batch: Seq2SeqBatch, options: StepOptions = StepOptions(),
                     logitsOut: UnsafeMutablePointer<Float>? = nil) throws -> CrossEntropy.Result {
        guard options.computeGradients else { return try forward(batch, options: options, logitsOut: logitsOut) }
        try batch.validate(facts)
        return runner.step(self, batch, options: options, logitsOut: logitsOut)
    }

    /// The forward half of `step`: loss, and (with `computeGradients`) the logits' gradient.
    public func forward(_ batch: Seq2SeqBatch, options: StepOptions = StepOptions(),
                        logitsOut: UnsafeMutablePointer<Float>? = nil) throws -> CrossEntropy.Result {
        try batch.validate(facts)
        return runner.forward(self, batch, options: options, logitsOut: logitsOut)
    }

    /// The backward half of `step`; does nothing unless the last `forward` computed the logits' gradient.
    public func backward() { runner.backward(self) }

    /// Called during `backward` each time a run of the flat buffer has its final gradient (the
    /// decoder's final LayerNorm, each decoder layer, the encoder's final LayerNorm, each encoder
    /// layer, then everything).
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
                                weights: table.productWeights(head: layout.shared, vocab: config.vocabSize, dModel: config.dModel))
    }

    /// The encoder's last hidden state (after its final LayerNorm) of the most recent `step` ([B, S, D]).
    public func lastEncoderOutput() -> [Float] {
        var out: [Float] = []
        for ws in runner.activeWorkspaces ?? [] {
            out += UnsafeBufferPointer(start: ws.encoderNorm.y, count: ws.b * ws.s * config.dModel)
        }
        return out
    }

    // MARK: Lanes (see `LaneRunner`)

    var gradientReportPrefixes: [String] { Self.gradientReportPrefixes(config) }
    var logitsWidth: Int { config.vocabSize }

    /// The lane's workspace, grown if needed, holding its rows of the batch.
    func laneWorkspace(_ old: PegasusWorkspace?, lane index: Int, rows: Range<Int>, batch: Seq2SeqBatch) -> PegasusWorkspace {
        PegasusWorkspace.lane(old, index: index, rows: rows, batch: batch, decoderStart: config.decoderStartTokenId,
                              pad: config.padTokenId) { PegasusWorkspace(config: config, b: $0, s: $1, t: $2) }
    }

    /// One lane's forward pass: encoder, decoder, LM head, loss (fused with the logits' gradient
    /// when computing gradients).
    func laneForward(_ ws: PegasusWorkspace, rows: Range<Int>, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?,
                     work: LaneWork) -> CrossEntropy.Result {
        ws.work = work
        let drop = DropoutPlan(config: config.core, training: options.training, seed: options.seed).lane(rows)
        ws.drop = drop
        encode(ws, drop)
        decode(ws, drop)
        let c = config, nt = ws.b * ws.t
        prof(ws, "fwd lm head") {
            ws.work.linearForward(y: ws.logits, x: ws.decoderNorm.y, weight: params.pointer + layout.shared,
                                  bias: finalLogitsBias.pointer, rows: nt, inDim: c.dModel, outDim: c.vocabSize)
        }
        if let out = logitsOut { out.update(from: ws.logits, count: nt * c.vocabSize) }
        return prof(ws, "loss") {
            CrossEntropy.forwardBackward(
                logits: ws.logits, dlogits: options.computeGradients ? ws.logits : nil, labels: ws.labels,
                rows: nt, vocab: c.vocabSize, smoothing: options.labelSmoothing,
                normalizer: options.lossNormalizer, gradScale: options.gradScale)
        }
    }

    /// One lane's backward pass over its last forward, into `gradients`.
    func laneBackward(_ ws: PegasusWorkspace, gradients: Ptr, work: LaneWork, report: (Int) -> Void) {
        ws.gradients = gradients
        ws.work = work
        backward(ws, ws.drop, report: report)
    }

    // MARK: Forward

    @inline(__always)
    private func prof<T>(_ ws: PegasusWorkspace, _ name: StaticString, _ body: () throws -> T) rethrows -> T {
        // Lanes run at once: lane 0 alone is timed (the profiler is not shared between threads).
        ws.profiled ? try profiler.measure(name, body) : try body()
    }

    var embedScale: Float { config.scaleEmbedding ? Float(Double(config.dModel).squareRoot()) : 1 }

    /// out = dropout(scale · E[ids] + positions), the mask recorded in `mask`.
    private func embed(_ ws: PegasusWorkspace, ids: UnsafePointer<Int32>, length: Int, out: Ptr,
                       mask: UnsafeMutablePointer<UInt8>, dropout: DropoutSite) {
        let d = config.dModel, rows = ws.b * length
        Embedding.forward(out: out, table: params.pointer + layout.shared, ids: ids, rows: rows, dim: d, scale: embedScale)
        for r in 0..<ws.b {
            for j in 0..<length { Vec.add(out + (r * length + j) * d, positions.pointer + j * d, d) }
        }
        dropout.apply(out, out, count: rows * d, recordingTo: mask)
    }

    /// One pre-LN residual sublayer, x += dropout(f(LN(x))) in place: `block` gets LN(x) (the norm's
    /// saved output) and writes f into the scratch it is given.
    private func sublayer(_ ws: PegasusWorkspace, _ x: Ptr, rows: Int, norm: NormActs, _ no: NormOffsets,
                          dropout: DropoutSite, _ block: (UnsafePointer<Float>, Ptr) -> Void) {
        let d = config.dModel
        norm.forward(x, no, params: params.pointer, rows: rows, dim: d, eps: config.layerNormEps)
        block(UnsafePointer(norm.y), ws.tmp)
        dropout.apply(ws.tmp, ws.tmp, count: rows * d, recordingTo: norm.dropMask)
        Vec.add(x, ws.tmp, rows * d)
    }

    func encode(_ ws: PegasusWorkspace, _ drop: DropoutPlan) {
        let c = config, d = c.dModel, n = ws.b * ws.s, p = params.pointer
        let x = ws.encoderStream
        prof(ws, "fwd embed") {
            embed(ws, ids: ws.sourceIds, length: ws.s, out: x, mask: ws.encoderEmbedMask, dropout: drop.site(.encoderEmbedding))
        }
        let shape = AttentionShape(batch: ws.b, tq: ws.s, tk: ws.s, dim: d, heads: c.encoderAttentionHeads)
        for (l, acts) in ws.encoderLayers.enumerated() {
            ws.work.needParameters()    // encoder layer l
            let o = layout.encoder[l]
            sublayer(ws, x, rows: n, norm: acts.ln1, o.ln1, dropout: drop.site(.encoder(l, .attentionOutput))) { h, out in
                prof(ws, "fwd enc attention") {
                    AttentionBlock.forward(acts.attn, o.selfAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: h, shape: shape,
                                           keyMask: ws.sourceMask, causal: false,
                                           dropout: drop.site(.encoder(l, .attentionProbabilities)), out: out, work: ws.work)
                }
            }
            sublayer(ws, x, rows: n, norm: acts.ln2, o.ln2, dropout: drop.site(.encoder(l, .ffnOutput))) { h, out in
                prof(ws, "fwd enc ffn") {
                    FeedForwardBlock.forward(acts.ffn, o.ffn, params: p, x: h, rows: n, dim: d, ffn: c.encoderFfnDim,
                                             activation: c.activation, dropout: drop.site(.encoder(l, .activation)),
                                             out: out, hidden: ws.hidden, work: ws.work)
                }
            }
        }
        ws.work.needParameters()        // the encoder's layer_norm
        ws.encoderNorm.forward(x, layout.encoderNorm, params: p, rows: n, dim: d, eps: c.layerNormEps)
    }

    private func decode(_ ws: PegasusWorkspace, _ drop: DropoutPlan) {
        let c = config, d = c.dModel, n = ws.b * ws.t, p = params.pointer
        let x = ws.decoderStream
        prof(ws, "fwd embed") {
            embed(ws, ids: ws.targetIds, length: ws.t, out: x, mask: ws.decoderEmbedMask, dropout: drop.site(.decoderEmbedding))
        }
        let selfShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.t, dim: d, heads: c.decoderAttentionHeads)
        let crossShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.s, dim: d, heads: c.decoderAttentionHeads)
        let enc = UnsafePointer(ws.encoderNorm.y)
        for (l, acts) in ws.decoderLayers.enumerated() {
            ws.work.needParameters()    // decoder layer l
            let o = layout.decoder[l]
            sublayer(ws, x, rows: n, norm: acts.ln1, o.ln1, dropout: drop.site(.decoder(l, .selfAttentionOutput))) { h, out in
                prof(ws, "fwd dec self-attention") {
                    AttentionBlock.forward(acts.selfAttn, o.selfAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: h,
                                           shape: selfShape, keyMask: nil, causal: true,
                                           dropout: drop.site(.decoder(l, .selfAttentionProbabilities)), out: out, work: ws.work)
                }
            }
            sublayer(ws, x, rows: n, norm: acts.ln2, o.ln2, dropout: drop.site(.decoder(l, .crossAttentionOutput))) { h, out in
                prof(ws, "fwd dec cross-attention") {
                    AttentionBlock.forward(acts.crossAttn, o.crossAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: enc,
                                           shape: crossShape, keyMask: ws.sourceMask, causal: false,
                                           dropout: drop.site(.decoder(l, .crossAttentionProbabilities)), out: out, work: ws.work)
                }
            }
            sublayer(ws, x, rows: n, norm: acts.ln3, o.ln3, dropout: drop.site(.decoder(l, .ffnOutput))) { h, out in
                prof(ws, "fwd dec ffn") {
                    FeedForwardBlock.forward(acts.ffn, o.ffn, params: p, x: h, rows: n, dim: d, ffn: c.decoderFfnDim,
                                             activation: c.activation, dropout: drop.site(.decoder(l, .activation)),
                                             out: out, hidden: ws.hidden, work: ws.work)
                }
            }
        }
        ws.work.needParameters()        // the decoder's layer_norm
        ws.decoderNorm.forward(x, layout.decoderNorm, params: p, rows: n, dim: d, eps: c.layerNormEps)
    }

    // MARK: Backward

    /// One lane's backward pass, into `ws.gradients`; `report(k)` when the range of
    /// `gradientReportPrefixes[k]` has its final gradient.
    private func backward(_ ws: PegasusWorkspace, _ drop: DropoutPlan, report: (Int) -> Void) {
        let c = config, d = c.dModel, p = params.pointer, g = ws.gradients
        var reported = 0
        let nt = ws.b * ws.t, ns = ws.b * ws.s
        // gA carries the residual stream's gradient; gB is each sublayer's scratch.
        let gA = ws.gradA, gB = ws.gradB
        // LM head: logits = y·Eᵀ + bias (the bias is a buffer: no gradient).
        prof(ws, "bwd lm head") {
            ws.work.postWeightGradient(dy: ws.logits, x: ws.decoderNorm.y, dWeight: g + layout.shared, dBias: nil,
                                       rows: nt, inDim: d, outDim: c.vocabSize, tiles: 4)
            ws.work.linearBackwardInput(dx: gA, dy: ws.logits, weight: p + layout.shared, rows: nt, inDim: d, outDim: c.vocabSize)
            ws.work.settle()
        }
        ws.decoderNorm.backward(dx: gA, dy: gA, layout.decoderNorm, params: p, grads: g, rows: nt, dim: d)
        report(reported); reported += 1
        Vec.zero(ws.gradEncoder, ns * d)
        let enc = UnsafePointer(ws.encoderNorm.y)
        let selfShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.t, dim: d, heads: c.decoderAttentionHeads)
        let crossShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.s, dim: d, heads: c.decoderAttentionHeads)
        for l in stride(from: ws.decoderLayers.count - 1, through: 0, by: -1) {
            let acts = ws.decoderLayers[l], o = layout.decoder[l]
            sublayerBackward(ws, grad: gA, scratch: gB, rows: nt, norm: acts.ln3, o.ln3,
                             dropout: drop.site(.decoder(l, .ffnOutput))) { dOut, dx in
                prof(ws, "bwd dec ffn") {
                    FeedForwardBlock.backward(acts.ffn, o.ffn, params: p, grads: g, x: acts.ln3.y, rows: nt, dim: d,
                                              ffn: c.decoderFfnDim, activation: c.activation,
                                              dropout: drop.site(.decoder(l, .activation)),
                                              dOut: dOut, dx: dx, accumulateDx: false, hidden: ws.hidden, work: ws.work)
                }
            }
            sublayerBackward(ws, grad: gA, scratch: gB, rows: nt, norm: acts.ln2, o.ln2,
                             dropout: drop.site(.decoder(l, .crossAttentionOutput))) { dOut, dx in
                prof(ws, "bwd dec cross-attention") {
                    AttentionBlock.backward(acts.crossAttn, o.crossAttn, params: p, grads: g, scratch: ws.attnScratch,
                                            xq: acts.ln2.y, xkv: enc, shape: crossShape,
                                            dropout: drop.site(.decoder(l, .crossAttentionProbabilities)), dOut: dOut,
                                            dxq: dx, accumulateDxq: false, dxkv: ws.gradEncoder, accumulateDxkv: true, work: ws.work)
                }
            }
            sublayerBackward(ws, grad: gA, scratch: gB, rows: nt, norm: acts.ln1, o.ln1,
                             dropout: drop.site(.decoder(l, .selfAttentionOutput))) { dOut, dx in
                prof(ws, "bwd dec self-attention") {
                    AttentionBlock.backward(acts.selfAttn, o.selfAttn, params: p, grads: g, scratch: ws.attnScratch,
                                            xq: acts.ln1.y, xkv: acts.ln1.y, shape: selfShape,
                                            dropout: drop.site(.decoder(l, .selfAttentionProbabilities)),
                                            dOut: dOut, dxq: dx, accumulateDxq: false, dxkv: dx, accumulateDxkv: false, work: ws.work)
                }
            }
            report(reported); reported += 1
        }
        prof(ws, "bwd embed") {
            embedBackward(ws, grad: gA, ids: ws.targetIds, length: ws.t, mask: ws.decoderEmbedMask,
                          dropout: drop.site(.decoderEmbedding))
        }

        // Encoder: the gradient of its output gathered from every cross-attention, through its final LayerNorm.
        ws.encoderNorm.backward(dx: gA, dy: ws.gradEncoder, layout.encoderNorm, params: p, grads: g, rows: ns, dim: d)
        report(reported); reported += 1
        let encShape = AttentionShape(batch: ws.b, tq: ws.s, tk: ws.s, dim: d, heads: c.encoderAttentionHeads)
        for l in stride(from: ws.encoderLayers.count - 1, through: 0, by: -1) {
            let acts = ws.encoderLayers[l], o = layout.encoder[l]
            sublayerBackward(ws, grad: gA, scratch: gB, rows: ns, norm: acts.ln2, o.ln2,
                             dropout: drop.site(.encoder(l, .ffnOutput))) { dOut, dx in
                prof(ws, "bwd enc ffn") {
                    FeedForwardBlock.backward(acts.ffn, o.ffn, params: p, grads: g, x: acts.ln2.y, rows: ns, dim: d,
                                              ffn: c.encoderFfnDim, activation: c.activation,
                                              dropout: drop.site(.encoder(l, .activation)),
                                              dOut: dOut, dx: dx, accumulateDx: false, hidden: ws.hidden, work: ws.work)
                }
            }
            sublayerBackward(ws, grad: gA, scratch: gB, rows: ns, norm: acts.ln1, o.ln1,
                             dropout: drop.site(.encoder(l, .attentionOutput))) { dOut, dx in
                prof(ws, "bwd enc attention") {
                    AttentionBlock.backward(acts.attn, o.selfAttn, params: p, grads: g, scratch: ws.attnScratch,
                                            xq: acts.ln1.y, xkv: acts.ln1.y, shape: encShape,
                                            dropout: drop.site(.encoder(l, .attentionProbabilities)),
                                            dOut: dOut, dxq: dx, accumulateDxq: false, dxkv: dx, accumulateDxkv: false, work: ws.work)
                }
            }
            report(reported); reported += 1
        }
        prof(ws, "bwd embed") {
            embedBackward(ws, grad: gA, ids: ws.sourceIds, length: ws.s, mask: ws.encoderEmbedMask,
                          dropout: drop.site(.encoderEmbedding))
        }
        assert(reported == runner.reportRanges.count)
    }

    /// Backward through x' = x + dropout(f(LN(x))): `grad` holds dL/dx' on entry and dL/dx after;
    /// `block` gets dL/df (in scratch) and must write dL/d(LN(x)) into the pointer it is given
    /// (`scratch`), which the norm's backward then carries to x.
    private func sublayerBackward(_ ws: PegasusWorkspace, grad: Ptr, scratch dx: Ptr, rows: Int, norm: NormActs,
                                  _ no: NormOffsets, dropout: DropoutSite, _ block: (UnsafePointer<Float>, Ptr) -> Void) {
        let d = config.dModel
        dropout.applyRecorded(ws.tmp, grad, count: rows * d, mask: norm.dropMask)
        block(ws.tmp, dx)
        norm.backward(dx: dx, dy: dx, no, params: params.pointer, grads: ws.gradients, rows: rows, dim: d)
        Vec.add(grad, dx, rows * d)
    }

    /// Backward through the embedding: dropout, then the token lookups (the positions are fixed).
    /// As `nn.Embedding(padding_idx=pad)`, lookups of the pad id (the decoder's start token here)
    /// add nothing to its row; the LM head still does.
    private func embedBackward(_ ws: PegasusWorkspace, grad: Ptr, ids: UnsafePointer<Int32>, length: Int,
                               mask: UnsafePointer<UInt8>, dropout: DropoutSite) {
        let d = config.dModel, rows = ws.b * length, pad = Int32(config.padTokenId)
        dropout.applyRecorded(grad, grad, count: rows * d, mask: mask)
        for r in 0..<rows where ids[r] == pad { Vec.zero(grad + r * d, d) }
        Embedding.backward(dtable: ws.gradients + layout.shared, dout: grad, ids: ids, rows: rows, dim: d, scale: embedScale)
    }
}

/// Every activation and scratch buffer of a Pegasus training step, allocated once per shape capacity.
/// Each sublayer's LayerNorm keeps its output (the block's input) and the mask of the dropout on the
/// block's output; the residual streams are updated in place (backward does not read them).
final class PegasusWorkspace: LaneWorkspace {
    struct EncoderLayerActs {
        var ln1: NormActs, attn: AttentionActs, ln2: NormActs, ffn: FeedForwardActs
    }
    struct DecoderLayerActs {
        var ln1: NormActs, selfAttn: AttentionActs, ln2: NormActs, crossAttn: AttentionActs
        var ln3: NormActs, ffn: FeedForwardActs
    }

    let capB: Int, capS: Int, capT: Int
    var b = 0, s = 0, t = 0
    let arena = Arena()
    let sourceIds: UnsafeMutablePointer<Int32>, targetIds: UnsafeMutablePointer<Int32>
    let labels: UnsafeMutablePointer<Int32>
    let sourceMask: Ptr
    /// The residual streams of the encoder and the decoder.
    let encoderStream: Ptr, decoderStream: Ptr
    /// The masks of the dropout after the embeddings.
    let encoderEmbedMask: UnsafeMutablePointer<UInt8>, decoderEmbedMask: UnsafeMutablePointer<UInt8>
    let encoderLayers: [EncoderLayerActs]
    let decoderLayers: [DecoderLayerActs]
    /// The final LayerNorms: their outputs are the encoder's last hidden state and the decoder's output.
    let encoderNorm: NormActs, decoderNorm: NormActs
    /// The last forward's dropout plan (for this lane's rows), which its backward draws again.
    var drop = DropoutPlan.off
    /// Where backward accumulates parameter gradients (the model's, or the lane's own buffer).
    var gradients: Ptr = Ptr(bitPattern: 64)!
    /// Where backward's weight-gradient products go (the lanes' board, or run at once).
    var work = LaneWork()
    /// Whether this workspace's regions are timed (lane 0's).
    var profiled = true
    let logits: Ptr
    let tmp: Ptr, gradA: Ptr, gradB: Ptr, gradEncoder: Ptr, hidden: Ptr
    let attnScratch: AttentionScratch

    init(config c: PegasusConfig, b: Int, s: Int, t: Int) {
        capB = b; capS = s; capT = t
        let d = c.dModel, ns = b * s, nt = b * t, a = arena
        sourceIds = a.ints(ns); targetIds = a.ints(nt); labels = a.ints(nt); sourceMask = a.floats(ns)
        encoderStream = a.floats(ns * d); decoderStream = a.floats(nt * d)
        encoderEmbedMask = a.bytes((ns * d + 7) / 8); decoderEmbedMask = a.bytes((nt * d + 7) / 8)
        encoderLayers = (0..<c.encoderLayers).map { _ in
            EncoderLayerActs(ln1: NormActs(a, rows: ns, dim: d),
                             attn: AttentionActs(a, batch: b, tq: s, tk: s, dim: d, heads: c.encoderAttentionHeads),
                             ln2: NormActs(a, rows: ns, dim: d), ffn: FeedForwardActs(a, rows: ns, ffn: c.encoderFfnDim))
        }
        decoderLayers = (0..<c.decoderLayers).map { _ in
            DecoderLayerActs(ln1: NormActs(a, rows: nt, dim: d),
                             selfAttn: AttentionActs(a, batch: b, tq: t, tk: t, dim: d, heads: c.decoderAttentionHeads),
                             ln2: NormActs(a, rows: nt, dim: d),
                             crossAttn: AttentionActs(a, batch: b, tq: t, tk: s, dim: d, heads: c.decoderAttentionHeads),
                             ln3: NormActs(a, rows: nt, dim: d), ffn: FeedForwardActs(a, rows: nt, ffn: c.decoderFfnDim))
        }
        encoderNorm = NormActs(a, rows: ns, dim: d); decoderNorm = NormActs(a, rows: nt, dim: d)
        logits = a.floats(nt * c.vocabSize)
        let maxN = max(ns, nt)
        tmp = a.floats(maxN * d); gradA = a.floats(maxN * d); gradB = a.floats(maxN * d)
        gradEncoder = a.floats(ns * d)
        hidden = a.floats(maxN * max(c.encoderFfnDim, c.decoderFfnDim))
        attnScratch = AttentionScratch(a, maxRows: maxN, dim: d, maxTile: max(s * s, t * t, t * s),
                                       headScratch: HeadGemm.scratchFloats(n: max(s, t), k: d / min(c.encoderAttentionHeads,
                                                                                                        c.decoderAttentionHeads)),
                                       workers: max(LaneWork.parts, Parallel.available))  // one per part (`LaneWork.items`)
    }
}

// MARK: Matrix products

extension PegasusModel {
    /// The same products as BART's (pre-LN moves the norms, not the products).
    public func matrixProducts(batch: Int, source: Int, target: Int) -> [MatrixProduct] {
        BartModel.matrixProducts(config: config.core, table: table, batch: batch, source: source, target: target)
    }
}
