import Foundation
import PrecisCore

/// BART as transformers' `BartForConditionalGeneration` defines it: learned positions (offset 2),
/// `layernorm_embedding`, post-LN encoder and decoder layers, optional √d embedding scale, GELU FFN,
/// and an LM head tied to the shared embedding plus `final_logits_bias`.
///
/// All parameters live in `params` (one contiguous fp32 buffer, Hugging Face names in `table`);
/// `grads` mirrors it and accumulates (+=) across calls until `zeroGradients()`.
public final class BartModel: Seq2SeqModel, LaneArchitecture {
    typealias Workspace = BartWorkspace

    public let config: BartConfig
    public let table: ParameterTable
    public let params: FloatBuffer
    public let grads: FloatBuffer
    /// `final_logits_bias` is a buffer in transformers, not a parameter: it is loaded and saved but
    /// never trained.
    public let finalLogitsBias: FloatBuffer
    /// Each stack's `layernorm_embedding` is its layout's `encoderNorm` / `decoderNorm`.
    let layout: BartFamilyLayout
    /// Runs the step's lanes (see `LaneRunner`); lane 0's gradients are `grads`.
    let runner: LaneRunner<BartModel>
    /// Wall time per region of the step (enable for profiling).
    public let profiler = Profiler()
    /// Packed decoder weights and the last incremental decoder, kept between generations.
    let generation = BartFamilyGenerationCache()
    /// The kernel of the bf16 products (`matmulPrecision` bf16), for the decoders made from now on.
    var bf16Kernel: BF16Kernel? { runner.bf16Kernel }

    public static let modelType = "bart"
    /// transformers' `BartLearnedPositionalEmbedding` offset: position j is row j + 2 of the table.
    static let positionOffset = 2

    public init(config: BartConfig) {
        self.config = config
        (table, layout) = Self.layout(config)
        params = FloatBuffer(count: table.count)
        grads = FloatBuffer(count: table.count)
        finalLogitsBias = FloatBuffer(count: config.vocabSize)
        runner = LaneRunner(grads: grads, table: table, reportPrefixes: Self.gradientReportPrefixes(config))
    }

    /// The parameters' offsets: learned positions (max_position_embeddings + offset rows) and a
    /// `layernorm_embedding` per stack.
    static func layout(_ config: BartConfig) -> (ParameterTable, BartFamilyLayout) {
        BartFamilyLayout.build(config.core, learnedPositionRows: config.maxPositionEmbeddings + positionOffset,
                               stackNorm: "layernorm_embedding")
    }

    /// Backward's order: each decoder layer from the last, the decoder's positions and its
    /// embedding LayerNorm, each encoder layer from the last.
    static func gradientReportPrefixes(_ config: BartConfig) -> [String] {
        var prefixes = (0..<config.decoderLayers).reversed().map { "model.decoder.layers.\($0)." }
        prefixes += ["model.decoder.embed_positions.", "model.decoder.layernorm_embedding."]
        prefixes += (0..<config.encoderLayers).reversed().map { "model.encoder.layers.\($0)." }
        return prefixes
    }

    public var facts: Seq2SeqFacts { config.core.facts(modelType: Self.modelType, bosTokenId: config.bosTokenId) }
    public var extraTensors: [(name: String, values: FloatBuffer, shape: [Int])] {
        [("final_logits_bias", finalLogitsBias, [1, config.vocabSize])]
    }

    public func zeroGradients() { grads.zero() }

    /// `config.json` as transformers writes it for `BartForConditionalGeneration`.
    public func configJSON() throws -> Data { try ConfigEncoding.encode(config, architecture: "BartForConditionalGeneration") }

    /// `generation_config.json` defaults derived from the model config, as transformers does.
    public var generationDefaults: [String: Any] { config.core.generationDefaults(bosTokenId: config.bosTokenId) }

    /// Other names a checkpoint may store a parameter under (tied embeddings; a bare `BartModel`).
    public func aliases(for name: String) -> [String] { BartFamilyLayout.aliases(for: name) }

    /// transformers' `_init_weights`: N(0, init_std) for linear and embedding weights (the padding
    /// row of the token embedding zeroed), zero biases, LayerNorm weight 1 and bias 0.
    public func initializeWeights(seed: UInt64) {
        layout.initializeWeights(table, params: params, std: config.initStd, padTokenId: config.padTokenId, dim: config.dModel,
                                 seed: seed)
        finalLogitsBias.zero()
    }

    // MARK: Training step

    /// Forward pass and (optionally) backward pass on one batch. Returns the summed token loss and the
    /// token count; gradients are added into `grads`, scaled so that they are the gradient of
    /// `gradScale · lossSum / normalizer` (normalizer defaults to this batch's token count, i.e. the
    /// mean loss transformers reports). `logitsOut`, if given, receives the logits [B, T, V].
    public func step(_ batch: Seq2SeqBatch, options: StepOptions = StepOptions(),
                     logitsOut: UnsafeMutablePointer<Float>? = nil) throws -> CrossEntropy.Result {
        guard options.computeGradients else { return try forward(batch, options: options, logitsOut: logitsOut) }
        try batch.validate(facts)
        return runner.step(self, batch, options: options, logitsOut: logitsOut)
    }

    /// The forward half of `step`: loss, and (with `computeGradients`) the logits' gradient, ready
    /// for `backward()`.
    public func forward(_ batch: Seq2SeqBatch, options: StepOptions = StepOptions(),
                        logitsOut: UnsafeMutablePointer<Float>? = nil) throws -> CrossEntropy.Result {
        try batch.validate(facts)
        return runner.forward(self, batch, options: options, logitsOut: logitsOut)
    }

    /// The backward half of `step`: adds this batch's gradients into `grads`. Does nothing unless the
    /// last `forward` computed the logits' gradient.
    public func backward() { runner.backward(self) }

    /// Called during `backward` each time a run of the flat buffer has its final gradient for this
    /// batch (a decoder layer, then the decoder embeddings' own parameters, each encoder layer, then
    /// everything): a worker pushes those partitions while the rest of backward runs.
    public var onGradientsFinal: ((Range<Int>, CrossEntropy.Result) -> Void)? {
        get { runner.onGradientsFinal }
        set { runner.onGradientsFinal = newValue }
    }

    public var onParametersNeeded: ((Range<Int>) -> Void)? {
        get { runner.onParametersNeeded }
        set { runner.onParametersNeeded = newValue }
    }

    /// Where in the flat buffer the time a gradient becomes final changes: the bounds of every range
    /// `onGradientsFinal` reports before the end of backward (each decoder layer, the decoder's
    /// position embedding and its LayerNorm, each encoder layer). The cluster cuts its partitions
    /// here, so a partition is not held back to the end of backward by a few values that are.
    public var gradientCuts: [Int] { runner.gradientCuts }

    /// Per lane: seconds in forward and backward since the model was made; seconds running other
    /// lanes' products and idle at the end of backward (see `WorkBoard`), since the board for the
    /// current lane count was made; and the last forward's end.
    public var laneFigures: LaneFigures { runner.figures }

    public var matmulPrecision: MatmulPrecision { runner.precision }

    public func setMatmulPrecision(_ precision: MatmulPrecision, kernel: BF16Kernel?) throws {
        try runner.setPrecision(precision, kernel: kernel, base: params.pointer,
                                weights: table.productWeights(head: layout.shared, vocab: config.vocabSize, dModel: config.dModel))
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

    /// The lane's workspace, grown if needed, holding its rows of the batch.
    func laneWorkspace(_ old: BartWorkspace?, lane index: Int, rows: Range<Int>, batch: Seq2SeqBatch) -> BartWorkspace {
        BartWorkspace.lane(old, index: index, rows: rows, batch: batch, decoderStart: config.decoderStartTokenId,
                           pad: config.padTokenId) { BartWorkspace(config: config, b: $0, s: $1, t: $2) }
    }

    /// One lane's forward pass over the rows its workspace holds: encoder, decoder, LM head, loss
    /// (fused with the logits' gradient when computing gradients).
    func laneForward(_ ws: BartWorkspace, rows: Range<Int>, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?,
                     work: LaneWork) -> CrossEntropy.Result {
        ws.work = work
        let drop = DropoutPlan(config: config.core, training: options.training, seed: options.seed).lane(rows)
        ws.drop = drop
        encode(ws, drop)
        decode(ws, drop)
        let c = config, nt = ws.b * ws.t
        prof(ws, "fwd lm head") {
            ws.work.linearForward(y: ws.logits, x: ws.decoderOutput, weight: params.pointer + layout.shared,
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
    func laneBackward(_ ws: BartWorkspace, gradients: Ptr, work: LaneWork, report: (Int) -> Void) {
        ws.gradients = gradients
        ws.work = work
        backward(ws, ws.drop, report: report)
    }


    // MARK: Forward

    @inline(__always)
    private func prof<T>(_ ws: BartWorkspace, _ name: StaticString, _ body: () throws -> T) rethrows -> T {
        // Lanes run at once: lane 0 alone is timed (the profiler is not shared between threads).
        ws.profiled ? try profiler.measure(name, body) : try body()
    }

    private func embed(_ ws: BartWorkspace, ids: UnsafePointer<Int32>, length: Int, positions: Int,
                       norm: NormActs, normOffsets: NormOffsets, out: Ptr, dropout: DropoutSite) {
        let d = config.dModel, rows = ws.b * length, p = params.pointer
        let scale: Float = config.scaleEmbedding ? Float(d).squareRoot() : 1
        Embedding.forward(out: ws.tmp, table: p + layout.shared, ids: ids, rows: rows, dim: d, scale: scale)
        for r in 0..<ws.b {
            for j in 0..<length {
                Vec.add(ws.tmp + (r * length + j) * d, p + positions + (j + Self.positionOffset) * d, d)
            }
        }
        norm.forward(ws.tmp, normOffsets, params: p, rows: rows, dim: d, eps: config.layerNormEps)
        dropout.apply(out, norm.y, count: rows * d, recordingTo: norm.dropMask)
    }

    /// One post-LN residual sublayer, y = LN(x + dropout(f(x))): `block` writes f(x) into the scratch
    /// it is given; returns y (the norm's saved output).
    private func residual(_ ws: BartWorkspace, _ x: UnsafePointer<Float>, rows: Int, norm: NormActs, _ no: NormOffsets,
                          dropout: DropoutSite, _ block: (Ptr) -> Void) -> UnsafePointer<Float> {
        let d = config.dModel
        block(ws.tmp)
        dropout.apply(ws.tmp, ws.tmp, count: rows * d, recordingTo: norm.dropMask)
        Vec.add(ws.tmp, x, rows * d)
        norm.forward(ws.tmp, no, params: params.pointer, rows: rows, dim: d, eps: config.layerNormEps)
        return UnsafePointer(norm.y)
    }

    func encode(_ ws: BartWorkspace, _ drop: DropoutPlan) {
        let c = config, d = c.dModel, n = ws.b * ws.s, p = params.pointer
        prof(ws, "fwd embed") { embed(ws, ids: ws.sourceIds, length: ws.s, positions: layout.encoderPositions, norm: ws.encoderEmbedNorm,
              normOffsets: layout.encoderNorm, out: ws.encoderInput, dropout: drop.site(.encoderEmbedding)) }
        let shape = AttentionShape(batch: ws.b, tq: ws.s, tk: ws.s, dim: d, heads: c.encoderAttentionHeads)
        var x = UnsafePointer(ws.encoderInput)
        for (l, acts) in ws.encoderLayers.enumerated() {
            ws.work.needParameters()    // encoder layer l
            let o = layout.encoder[l]
            let h = x
            x = residual(ws, h, rows: n, norm: acts.ln1, o.ln1, dropout: drop.site(.encoder(l, .attentionOutput))) { out in
                prof(ws, "fwd enc attention") {
                    AttentionBlock.forward(acts.attn, o.selfAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: h, shape: shape,
                                           keyMask: ws.sourceMask, causal: false, dropout: drop.site(.encoder(l, .attentionProbabilities)), out: out, work: ws.work)
                }
            }
            let a = x
            x = residual(ws, a, rows: n, norm: acts.ln2, o.ln2, dropout: drop.site(.encoder(l, .ffnOutput))) { out in
                prof(ws, "fwd enc ffn") {
                    FeedForwardBlock.forward(acts.ffn, o.ffn, params: p, x: a, rows: n, dim: d, ffn: c.encoderFfnDim,
                                             activation: c.activation, dropout: drop.site(.encoder(l, .activation)), out: out, hidden: ws.hidden, work: ws.work)
                }
            }
        }
        ws.encoderOutput = UnsafeMutablePointer(mutating: x)
    }

    private func decode(_ ws: BartWorkspace, _ drop: DropoutPlan) {
        let c = config, d = c.dModel, n = ws.b * ws.t, p = params.pointer
        ws.work.needParameters()        // the decoder's layernorm_embedding
        ws.work.needParameters()        // its positions
        prof(ws, "fwd embed") { embed(ws, ids: ws.targetIds, length: ws.t, positions: layout.decoderPositions, norm: ws.decoderEmbedNorm,
              normOffsets: layout.decoderNorm, out: ws.decoderInput, dropout: drop.site(.decoderEmbedding)) }
        let selfShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.t, dim: d, heads: c.decoderAttentionHeads)
        let crossShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.s, dim: d, heads: c.decoderAttentionHeads)
        var x = UnsafePointer(ws.decoderInput)
        let enc = UnsafePointer(ws.encoderOutput)
        for (l, acts) in ws.decoderLayers.enumerated() {
            ws.work.needParameters()    // decoder layer l
            let o = layout.decoder[l]
            let h = x
            x = residual(ws, h, rows: n, norm: acts.ln1, o.ln1, dropout: drop.site(.decoder(l, .selfAttentionOutput))) { out in
                prof(ws, "fwd dec self-attention") {
                    AttentionBlock.forward(acts.selfAttn, o.selfAttn, params: p, scratch: ws.attnScratch, xq: h, xkv: h,
                                           shape: selfShape, keyMask: nil, causal: true, dropout: drop.site(.decoder(l, .selfAttentionProbabilities)), out: out, work: ws.work)
                }
            }
            let a = x
            x = residual(ws, a, rows: n, norm: acts.ln2, o.ln2, dropout: drop.site(.decoder(l, .crossAttentionOutput))) { out in
                prof(ws, "fwd dec cross-attention") {
                    AttentionBlock.forward(acts.crossAttn, o.crossAttn, params: p, scratch: ws.attnScratch, xq: a, xkv: enc,
                                           shape: crossShape, keyMask: ws.sourceMask, causal: false,
                                           dropout: drop.site(.decoder(l, .crossAttentionProbabilities)), out: out, work: ws.work)
                }
            }
            let b = x
            x = residual(ws, b, rows: n, norm: acts.ln3, o.ln3, dropout: drop.site(.decoder(l, .ffnOutput))) { out in
                prof(ws, "fwd dec ffn") {
                    FeedForwardBlock.forward(acts.ffn, o.ffn, params: p, x: b, rows: n, dim: d, ffn: c.decoderFfnDim,
                                             activation: c.activation, dropout: drop.site(.decoder(l, .activation)), out: out, hidden: ws.hidden, work: ws.work)
                }
            }
        }
        ws.decoderOutput = UnsafeMutablePointer(mutating: x)
    }

    // MARK: Backward

    /// One lane's backward pass, into `ws.gradients`; `report(k)` when the range of
    /// `gradientReportPrefixes[k]` has its final gradient.
    private func backward(_ ws: BartWorkspace, _ drop: DropoutPlan, report: (Int) -> Void) {
        let c = config, d = c.dModel, p = params.pointer, g = ws.gradients
        var reported = 0
        let nt = ws.b * ws.t, ns = ws.b * ws.s
        var gA = ws.gradA, gB = ws.gradB
        // LM head: logits = y·Eᵀ + bias (the bias is a buffer: no gradient).
        prof(ws, "bwd lm head") {
            // The tied embedding's gradient in vocabulary slices another lane can take.
            ws.work.postWeightGradient(dy: ws.logits, x: ws.decoderOutput, dWeight: g + layout.shared, dBias: nil,
                                       rows: nt, inDim: d, outDim: c.vocabSize, tiles: 4)
            ws.work.linearBackwardInput(dx: gA, dy: ws.logits, weight: p + layout.shared, rows: nt, inDim: d, outDim: c.vocabSize)
            ws.work.settle()
        }
        Vec.zero(ws.gradEncoder, ns * d)
        let selfShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.t, dim: d, heads: c.decoderAttentionHeads)
        let crossShape = AttentionShape(batch: ws.b, tq: ws.t, tk: ws.s, dim: d, heads: c.decoderAttentionHeads)
        for l in stride(from: ws.decoderLayers.count - 1, through: 0, by: -1) {
            let acts = ws.decoderLayers[l], o = layout.decoder[l]
            let x = l == 0 ? UnsafePointer(ws.decoderInput) : UnsafePointer(ws.decoderLayers[l - 1].ln3.y)
            residualBackward(ws, grad: gA, into: gB, rows: nt, norm: acts.ln3, o.ln3, dropout: drop.site(.decoder(l, .ffnOutput))) { dOut, dx in
                prof(ws, "bwd dec ffn") {
                    FeedForwardBlock.backward(acts.ffn, o.ffn, params: p, grads: g, x: acts.ln2.y, rows: nt, dim: d,
                                              ffn: c.decoderFfnDim, activation: c.activation, dropout: drop.site(.decoder(l, .activation)),
                                              dOut: dOut, dx: dx, accumulateDx: false, hidden: ws.hidden, work: ws.work)
                }
            }
            residualBackward(ws, grad: gB, into: gA, rows: nt, norm: acts.ln2, o.ln2, dropout: drop.site(.decoder(l, .crossAttentionOutput))) { dOut, dx in
                prof(ws, "bwd dec cross-attention") {
                    AttentionBlock.backward(acts.crossAttn, o.crossAttn, params: p, grads: g, scratch: ws.attnScratch,
                                            xq: acts.ln1.y, xkv: ws.encoderOutput, shape: crossShape,
                                            dropout: drop.site(.decoder(l, .crossAttentionProbabilities)), dOut: dOut,
                                            dxq: dx, accumulateDxq: false, dxkv: ws.gradEncoder, accumulateDxkv: true, work: ws.work)
                }
            }
            residualBackward(ws, grad: gA, into: gB, rows: nt, norm: acts.ln1, o.ln1, dropout: drop.site(.decoder(l, .selfAttentionOutput))) { dOut, dx in
                prof(ws, "bwd dec self-attention") {
                    AttentionBlock.backward(acts.selfAttn, o.selfAttn, params: p, grads: g, scratch: ws.attnScratch,
                                            xq: x, xkv: x, shape: selfShape, dropout: drop.site(.decoder(l, .selfAttentionProbabilities)),
                                            dOut: dOut, dxq: dx, accumulateDxq: false, dxkv: dx, accumulateDxkv: false, work: ws.work)
                }
            }
            swap(&gA, &gB)
            report(reported); reported += 1
        }
        prof(ws, "bwd embed") { embedBackward(ws, grad: gA, ids: ws.targetIds, length: ws.t, positions: layout.decoderPositions,
                      norm: ws.decoderEmbedNorm, normOffsets: layout.decoderNorm,
                      dropout: drop.site(.decoderEmbedding)) }
        report(reported); report(reported + 1); reported += 2

        // Encoder: the gradient of its output gathered from every cross-attention.
        gA.update(from: ws.gradEncoder, count: ns * d)
        let encShape = AttentionShape(batch: ws.b, tq: ws.s, tk: ws.s, dim: d, heads: c.encoderAttentionHeads)
        for l in stride(from: ws.encoderLayers.count - 1, through: 0, by: -1) {
            let acts = ws.encoderLayers[l], o = layout.encoder[l]
            let x = l == 0 ? UnsafePointer(ws.encoderInput) : UnsafePointer(ws.encoderLayers[l - 1].ln2.y)
            residualBackward(ws, grad: gA, into: gB, rows: ns, norm: acts.ln2, o.ln2, dropout: drop.site(.encoder(l, .ffnOutput))) { dOut, dx in
                prof(ws, "bwd enc ffn") {
                    FeedForwardBlock.backward(acts.ffn, o.ffn, params: p, grads: g, x: acts.ln1.y, rows: ns, dim: d,
                                              ffn: c.encoderFfnDim, activation: c.activation, dropout: drop.site(.encoder(l, .activation)),
                                              dOut: dOut, dx: dx, accumulateDx: false, hidden: ws.hidden, work: ws.work)
                }
            }
            residualBackward(ws, grad: gB, into: gA, rows: ns, norm: acts.ln1, o.ln1, dropout: drop.site(.encoder(l, .attentionOutput))) { dOut, dx in
                prof(ws, "bwd enc attention") {
                    AttentionBlock.backward(acts.attn, o.selfAttn, params: p, grads: g, scratch: ws.attnScratch,
                                            xq: x, xkv: x, shape: encShape, dropout: drop.site(.encoder(l, .attentionProbabilities)),
                                            dOut: dOut, dxq: dx, accumulateDxq: false, dxkv: dx, accumulateDxkv: false, work: ws.work)
                }
            }
            report(reported); reported += 1
        }
        prof(ws, "bwd embed") { embedBackward(ws, grad: gA, ids: ws.sourceIds, length: ws.s, positions: layout.encoderPositions,
                      norm: ws.encoderEmbedNorm, normOffsets: layout.encoderNorm,
                      dropout: drop.site(.encoderEmbedding)) }
        assert(reported == runner.reportRanges.count)
    }

    /// Backward through y = LN(x + dropout(f(x))): `grad` holds dL/dy on entry (and dL/d(LN input)
    /// after); `block` gets dL/df (in scratch) and must write dL/dx through f into the pointer it is
    /// given; the residual path is then added, leaving dL/dx in `into`.
    private func residualBackward(_ ws: BartWorkspace, grad: Ptr, into dx: Ptr, rows: Int, norm: NormActs, _ no: NormOffsets,
                                  dropout: DropoutSite, _ block: (UnsafePointer<Float>, Ptr) -> Void) {
        let d = config.dModel
        norm.backward(dx: grad, dy: grad, no, params: params.pointer, grads: ws.gradients, rows: rows, dim: d)
        dropout.applyRecorded(ws.tmp, grad, count: rows * d, mask: norm.dropMask)
        block(ws.tmp, dx)
        Vec.add(dx, grad, rows * d)
    }

    private func embedBackward(_ ws: BartWorkspace, grad: Ptr, ids: UnsafePointer<Int32>, length: Int, positions: Int,
                               norm: NormActs, normOffsets: NormOffsets, dropout: DropoutSite) {
        let d = config.dModel, rows = ws.b * length, p = params.pointer, g = ws.gradients
        dropout.applyRecorded(grad, grad, count: rows * d, mask: norm.dropMask)
        norm.backward(dx: grad, dy: grad, normOffsets, params: p, grads: g, rows: rows, dim: d)
        let scale: Float = config.scaleEmbedding ? Float(d).squareRoot() : 1
        Embedding.backward(dtable: g + layout.shared, dout: grad, ids: ids, rows: rows, dim: d, scale: scale)
        for r in 0..<ws.b {
            for j in 0..<length {
                Vec.add(g + positions + (j + Self.positionOffset) * d, grad + (r * length + j) * d, d)
            }
        }
    }
}

/// Every activation and scratch buffer of a training step, allocated once per shape capacity.
final class BartWorkspace: LaneWorkspace {
    struct EncoderLayerActs {
        var attn: AttentionActs, ln1: NormActs, ffn: FeedForwardActs, ln2: NormActs
    }
    struct DecoderLayerActs {
        var selfAttn: AttentionActs, ln1: NormActs, crossAttn: AttentionActs, ln2: NormActs
        var ffn: FeedForwardActs, ln3: NormActs
    }

    let capB: Int, capS: Int, capT: Int
    var b = 0, s = 0, t = 0
    let arena = Arena()
    let sourceIds: UnsafeMutablePointer<Int32>, targetIds: UnsafeMutablePointer<Int32>
    let labels: UnsafeMutablePointer<Int32>
    let sourceMask: Ptr
    let encoderEmbedNorm: NormActs, decoderEmbedNorm: NormActs
    let encoderInput: Ptr, decoderInput: Ptr
    let encoderLayers: [EncoderLayerActs]
    let decoderLayers: [DecoderLayerActs]
    var encoderOutput: Ptr, decoderOutput: Ptr
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

    init(config c: BartConfig, b: Int, s: Int, t: Int) {
        capB = b; capS = s; capT = t
        let d = c.dModel, ns = b * s, nt = b * t, a = arena
        sourceIds = a.ints(ns); targetIds = a.ints(nt); labels = a.ints(nt); sourceMask = a.floats(ns)
        encoderEmbedNorm = NormActs(a, rows: ns, dim: d)
        decoderEmbedNorm = NormActs(a, rows: nt, dim: d)
        encoderInput = a.floats(ns * d); decoderInput = a.floats(nt * d)
        encoderLayers = (0..<c.encoderLayers).map { _ in
            EncoderLayerActs(attn: AttentionActs(a, batch: b, tq: s, tk: s, dim: d, heads: c.encoderAttentionHeads),
                             ln1: NormActs(a, rows: ns, dim: d), ffn: FeedForwardActs(a, rows: ns, ffn: c.encoderFfnDim),
                             ln2: NormActs(a, rows: ns, dim: d))
        }
        decoderLayers = (0..<c.decoderLayers).map { _ in
            DecoderLayerActs(selfAttn: AttentionActs(a, batch: b, tq: t, tk: t, dim: d, heads: c.decoderAttentionHeads),
                             ln1: NormActs(a, rows: nt, dim: d),
                             crossAttn: AttentionActs(a, batch: b, tq: t, tk: s, dim: d, heads: c.decoderAttentionHeads),
                             ln2: NormActs(a, rows: nt, dim: d), ffn: FeedForwardActs(a, rows: nt, ffn: c.decoderFfnDim),
                             ln3: NormActs(a, rows: nt, dim: d))
        }
        encoderOutput = encoderInput; decoderOutput = decoderInput
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
