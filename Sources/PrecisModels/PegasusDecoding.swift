import PrecisCore

/// Incremental Pegasus decoding for generation (as `BartIncrementalDecoder`, for pre-LN layers): the
/// encoder runs once per source, each decoder layer's cross-attention keys and values are computed
/// once, and self-attention keys and values are cached per row, so each new token costs one
/// position's worth of work. Rows are hypotheses (batch × beams); `rowSource[r]` says which source
/// row r attends to. Evaluation mode (no dropout).
public final class PegasusIncrementalDecoder: IncrementalDecoding {
    /// The model (unowned: the model caches its last decoder, and a decoder must not outlive its model).
    public unowned let model: PegasusModel
    public let rows: Int
    public let sourceLength: Int
    public let maxLength: Int
    /// Number of sources (encoder rows) the decoder was built for.
    public let sources: Int
    /// The decoder positions filled so far (all rows advance together).
    public private(set) var length = 0
    /// Which source each row attends to.
    public private(set) var rowSource: [Int]

    private let d: Int, heads: Int, dh: Int, ffn: Int
    private let arena = Arena()
    private let sourceMask: Ptr
    private var crossK: [Ptr] = [], crossV: [Ptr] = []
    private var selfK: [Ptr] = [], selfV: [Ptr] = []
    private var spareK: [Ptr] = [], spareV: [Ptr] = []
    /// The residual stream `x` and a LayerNorm's output `h` (a block's input), per row.
    private let x: Ptr, h: Ptr, q: Ptr, k: Ptr, v: Ptr, ctx: Ptr, tmp: Ptr, hidden: Ptr, xhat: Ptr, rstd: Ptr
    private let scores: [Ptr]
    private let ids: UnsafeMutablePointer<Int32>
    /// Decoder weights repacked for few-row products (nil when there are too many rows to gain).
    private var packed: PackedDecoder?

    /// The decoder's weights as `PackedWeights`, one set per layer, and the LM head.
    final class PackedDecoder {
        struct Layer {
            var q: PackedWeights, k: PackedWeights, v: PackedWeights, o: PackedWeights
            var crossQ: PackedWeights, crossO: PackedWeights, fc1: PackedWeights, fc2: PackedWeights
        }
        let layers: [Layer]
        let lmHead: PackedWeights

        init(_ model: PegasusModel) {
            let p = model.params.pointer, d = model.config.dModel, f = model.config.decoderFfnDim
            func pack(_ w: Int, _ b: Int?, _ out: Int, _ inp: Int) -> PackedWeights {
                PackedWeights(weight: p + w, bias: b.map { p + $0 }, outDim: out, inDim: inp)
            }
            layers = model.layout.decoder.map { o in
                Layer(q: pack(o.selfAttn.qw, o.selfAttn.qb, d, d), k: pack(o.selfAttn.kw, o.selfAttn.kb, d, d),
                      v: pack(o.selfAttn.vw, o.selfAttn.vb, d, d), o: pack(o.selfAttn.ow, o.selfAttn.ob, d, d),
                      crossQ: pack(o.crossAttn.qw, o.crossAttn.qb, d, d), crossO: pack(o.crossAttn.ow, o.crossAttn.ob, d, d),
                      fc1: pack(o.ffn.w1, o.ffn.b1, f, d), fc2: pack(o.ffn.w2, o.ffn.b2, d, f))
            }
            lmHead = PackedWeights(weight: p + model.layout.shared, bias: model.finalLogitsBias.pointer,
                                   outDim: model.config.vocabSize, inDim: d)
        }
    }
    /// Logits of the last step, [rows, vocab] with row stride `logitsStride`.
    public let logits: UnsafeMutablePointer<Float>
    public let logitsStride: Int

    /// - Parameters: `encoderOutput` [sources, S, D] from `encoderHiddenStates`; `attentionMask` the
    ///   sources' mask; `rowSource` maps each decoding row to its source.
    public init(model: PegasusModel, encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength s: Int,
                rowSource: [Int], maxLength: Int) {
        let c = model.config
        self.model = model
        rows = rowSource.count
        sourceLength = s
        self.maxLength = maxLength
        self.rowSource = rowSource
        d = c.dModel; heads = c.decoderAttentionHeads; dh = d / heads; ffn = c.decoderFfnDim
        let a = arena
        self.sources = sources
        sourceMask = a.floats(sources * s)
        for _ in model.layout.decoder {
            crossK.append(a.floats(sources * s * d)); crossV.append(a.floats(sources * s * d))
            selfK.append(a.floats(rows * maxLength * d)); selfV.append(a.floats(rows * maxLength * d))
            spareK.append(a.floats(rows * maxLength * d)); spareV.append(a.floats(rows * maxLength * d))
        }
        x = a.floats(rows * d); h = a.floats(rows * d); q = a.floats(rows * d); k = a.floats(rows * d); v = a.floats(rows * d)
        ctx = a.floats(rows * d); tmp = a.floats(rows * d); hidden = a.floats(rows * ffn)
        xhat = a.floats(rows * d); rstd = a.floats(rows)
        scores = (0..<max(1, Parallel.width)).map { _ in a.floats(max(maxLength, s)) }
        ids = a.ints(rows)
        // Room for outputs rounded up to 16 (packed products write whole 16-wide blocks).
        let pad16 = { (n: Int) in (n + 15) / 16 * 16 }
        logits = a.floats(rows * pad16(c.vocabSize))
        logitsStride = pad16(c.vocabSize)
        packed = rows <= 16 ? model.packedDecoder() : nil
        reset(encoderOutput: encoderOutput, attentionMask: attentionMask, rowSource: rowSource)
    }

    /// Picks up the model's current packed weights (repacked only if the parameters changed).
    public func repack() {
        if packed != nil { packed = model.packedDecoder() }
    }

    /// Starts over with new sources of the same shape (reusing every buffer): the mask and each layer's
    /// cross-attention keys and values are recomputed and the self-attention cache is emptied.
    public func reset(encoderOutput: FloatBuffer, attentionMask: [Int32], rowSource: [Int]) {
        precondition(rowSource.count == rows && attentionMask.count == sources * sourceLength)
        self.rowSource = rowSource
        length = 0
        for i in 0..<(sources * sourceLength) { sourceMask[i] = Float(attentionMask[i]) }
        let p = model.params.pointer
        for (i, l) in model.layout.decoder.enumerated() {
            Linear.forward(y: crossK[i], x: encoderOutput.pointer, weight: p + l.crossAttn.kw, bias: p + l.crossAttn.kb,
                           rows: sources * sourceLength, inDim: d, outDim: d)
            Linear.forward(y: crossV[i], x: encoderOutput.pointer, weight: p + l.crossAttn.vw, bias: p + l.crossAttn.vb,
                           rows: sources * sourceLength, inDim: d, outDim: d)
        }
    }

    /// Row i continues from old row `from[i]` (beam reordering): its cached keys and values are copied.
    public func reorder(_ from: [Int]) {
        precondition(from.count == rows)
        if from == Array(0..<rows) { return }
        let n = length * d
        for l in 0..<selfK.count {
            for (i, j) in from.enumerated() {
                Vec.copy(spareK[l] + i * maxLength * d, selfK[l] + j * maxLength * d, n)
                Vec.copy(spareV[l] + i * maxLength * d, selfV[l] + j * maxLength * d, n)
            }
            swap(&selfK[l], &spareK[l]); swap(&selfV[l], &spareV[l])
        }
        rowSource = from.map { rowSource[$0] }
    }

    /// Feeds one token per row at position `length` and fills `logits`.
    public func step(_ tokens: [Int32]) {
        precondition(tokens.count == rows && length < maxLength && length < model.config.maxPositionEmbeddings)
        let c = model.config, p = model.params.pointer, layout = model.layout, t = length
        for (i, tok) in tokens.enumerated() { ids[i] = tok }
        let scale: Float = c.scaleEmbedding ? Float(Double(d).squareRoot()) : 1
        Embedding.forward(out: x, table: p + layout.shared, ids: ids, rows: rows, dim: d, scale: scale)
        for r in 0..<rows { Vec.add(x + r * d, model.positions.pointer + t * d, d) }
        let scaling = 1 / Float(dh).squareRoot()
        for (l, o) in layout.decoder.enumerated() {
            let pk = packed?.layers[l]
            // Self-attention over positions 0…t of this row.
            norm(x, o.ln1, into: h)
            linear(q, h, pk?.q, o.selfAttn.qw, o.selfAttn.qb, d, d)
            linear(k, h, pk?.k, o.selfAttn.kw, o.selfAttn.kb, d, d)
            linear(v, h, pk?.v, o.selfAttn.vw, o.selfAttn.vb, d, d)
            for r in 0..<rows {
                Vec.copy(selfK[l] + (r * maxLength + t) * d, k + r * d, d)
                Vec.copy(selfV[l] + (r * maxLength + t) * d, v + r * d, d)
            }
            attend(keys: selfK[l], values: selfV[l], rowStride: maxLength * d, keyCount: t + 1, mask: nil, scaling: scaling,
                   sourceOf: { $0 })
            linear(tmp, ctx, pk?.o, o.selfAttn.ow, o.selfAttn.ob, d, d)
            Vec.add(x, tmp, rows * d)
            // Cross-attention over the row's source.
            norm(x, o.ln2, into: h)
            linear(q, h, pk?.crossQ, o.crossAttn.qw, o.crossAttn.qb, d, d)
            let src = rowSource
            attend(keys: crossK[l], values: crossV[l], rowStride: sourceLength * d, keyCount: sourceLength,
                   mask: sourceMask, scaling: scaling, sourceOf: { src[$0] })
            linear(tmp, ctx, pk?.crossO, o.crossAttn.ow, o.crossAttn.ob, d, d)
            Vec.add(x, tmp, rows * d)
            // Feed-forward.
            norm(x, o.ln3, into: h)
            linear(hidden, h, pk?.fc1, o.ffn.w1, o.ffn.b1, d, ffn)
            c.activation.forward(hidden, hidden, rows * ffn)
            linear(tmp, hidden, pk?.fc2, o.ffn.w2, o.ffn.b2, ffn, d)
            Vec.add(x, tmp, rows * d)
        }
        norm(x, layout.decoderNorm, into: h)
        if let head = packed?.lmHead {
            head.apply(logits, ldy: logitsStride, h, rows: rows)
        } else {
            BLAS.gemm(transA: false, transB: true, m: rows, n: c.vocabSize, k: d, a: h, lda: d, b: p + layout.shared, ldb: d,
                      beta: 0, c: logits, ldc: logitsStride)
            for r in 0..<rows { Vec.add(logits + r * logitsStride, model.finalLogitsBias.pointer, c.vocabSize) }
        }
        length += 1
    }

    /// y = x·Wᵀ + b for this step's rows: the packed product when few rows, else a GEMM.
    private func linear(_ y: Ptr, _ x: UnsafePointer<Float>, _ packedW: PackedWeights?, _ w: Int, _ b: Int, _ inDim: Int, _ outDim: Int) {
        if let packedW, outDim % 16 == 0 {
            packedW.apply(y, ldy: outDim, x, rows: rows)
        } else {
            let p = model.params.pointer
            Linear.forward(y: y, x: x, weight: p + w, bias: p + b, rows: rows, inDim: inDim, outDim: outDim)
        }
    }

    private func norm(_ input: UnsafePointer<Float>, _ o: NormOffsets, into y: Ptr) {
        let p = model.params.pointer
        LayerNorm.forward(y: y, xhat: xhat, rstd: rstd, x: input, gamma: p + o.weight, beta: p + o.bias,
                          rows: rows, dim: d, eps: model.config.layerNormEps)
    }

    /// ctx[r] = Σ softmax(q[r]·K/√dh) V per head, over `keyCount` keys of row `sourceOf(r)`.
    private func attend(keys: Ptr, values: Ptr, rowStride: Int, keyCount: Int, mask: Ptr?, scaling: Float,
                        sourceOf: (Int) -> Int) {
        Parallel.chunks(rows * heads, maxParts: scores.count) { worker, pairs in
            let sc = scores[worker]
            for pair in pairs {
                let r = pair / heads, h = pair % heads, src = sourceOf(r)
                let kbase = keys + src * rowStride + h * dh, vbase = values + src * rowStride + h * dh
                let qr = q + r * d + h * dh
                BLAS.gemv(trans: false, rows: keyCount, cols: dh, alpha: scaling, a: kbase, lda: d, x: qr, beta: 0, y: sc)
                Softmax.forward(sc, rows: 1, cols: keyCount, ld: keyCount, keyMask: mask.map { $0 + src * sourceLength }, causal: false)
                BLAS.gemv(trans: true, rows: keyCount, cols: dh, a: vbase, lda: d, x: sc, beta: 0, y: ctx + r * d + h * dh)
            }
        }
    }
}

/// Generation with Pegasus: the encoder alone, and incremental decoders (with their packed weights)
/// cached between generations.
extension PegasusModel {
    /// The decoder weights packed for few-row products, reused while the parameters are unchanged
    /// (fingerprinted as `BartModel.packedDecoder` does).
    func packedDecoder() -> PegasusIncrementalDecoder.PackedDecoder {
        let fp = [Vec.sumOfSquares(params.pointer, params.count), Double(Vec.total(params.pointer, params.count)),
                  Vec.sumOfSquares(finalLogitsBias.pointer, finalLogitsBias.count)]
        if let c = packedCache, c.fingerprint == fp { return c.decoder }
        let d = PegasusIncrementalDecoder.PackedDecoder(self)
        packedCache = (fp, d)
        return d
    }

    /// An incremental decoder for these sources: the previous one reset when the shape is the same
    /// (its buffers are reused), else a new one.
    public func incrementalDecoder(encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength: Int,
                                   rowSource: [Int], maxLength: Int) -> any IncrementalDecoding {
        if let d = decoderCache, d.rows == rowSource.count, d.sources == sources, d.sourceLength == sourceLength,
           d.maxLength == maxLength {
            d.reset(encoderOutput: encoderOutput, attentionMask: attentionMask, rowSource: rowSource)
            d.repack()
            return d
        }
        let d = PegasusIncrementalDecoder(model: self, encoderOutput: encoderOutput, attentionMask: attentionMask,
                                          sources: sources, sourceLength: sourceLength, rowSource: rowSource, maxLength: maxLength)
        decoderCache = d
        return d
    }

    /// Runs the encoder alone in evaluation mode (no dropout) and returns its last hidden state
    /// [B, S, D] (after its final LayerNorm); the batch's labels are not used.
    public func encoderHiddenStates(inputIds: [Int32], attentionMask: [Int32], batchSize: Int, sourceLength: Int) throws -> FloatBuffer {
        let batch = try Seq2SeqBatch(batchSize: batchSize, sourceLength: sourceLength, targetLength: 1, inputIds: inputIds,
                                     attentionMask: attentionMask, labels: Array(repeating: Seq2SeqBatch.ignoreIndex, count: batchSize))
        try batch.validate(facts)
        let out = FloatBuffer(count: batchSize * sourceLength * config.dModel)
        let rowFloats = sourceLength * config.dModel
        runner.eachLane(self, batch) { rows, ws in
            encode(ws, DropoutPlan(config: config, training: false, seed: 0))
            (out.pointer + rows.lowerBound * rowFloats).update(from: ws.encoderNorm.y, count: rows.count * rowFloats)
        }
        return out
    }
}
