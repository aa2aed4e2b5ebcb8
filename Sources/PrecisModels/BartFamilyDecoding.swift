import PrecisCore

/// What incremental decoding needs of a BART-family model (BART, Pegasus): its weights, and the few
/// points where the architectures differ.
struct BartFamilyDecoderWeights {
    let params: FloatBuffer
    let finalLogitsBias: FloatBuffer
    let layout: BartFamilyLayout
    let config: BartFamilyConfigCore
    /// Pre-LN layers, x + f(LN(x)), then the decoder's LayerNorm after the last layer (Pegasus); else
    /// post-LN layers, LN(x + f(x)), after the decoder's LayerNorm on the embeddings (BART).
    let preNorm: Bool
    /// The token embedding's scale (1, or √d_model rounded as the architecture rounds it).
    let embedScale: Float
    /// Position 0's row of the decoder's position table (learned past its offset, or sinusoidal);
    /// `config.maxPositionEmbeddings` rows from there.
    let positions: UnsafePointer<Float>
    /// The kernel of the model's bf16 products (`MatmulPrecision.bf16`), or nil for fp32 products.
    let bf16Kernel: BF16Kernel?

    /// The weights the decoder multiplies by: each layer's projections (the cross-attention's keys
    /// and values of the encoder output included) and FFN, and the LM head.
    var productWeights: [BF16Weights.Entry] {
        let d = config.dModel, f = config.decoderFfnDim
        func e(_ offset: Int, _ out: Int, _ inp: Int) -> BF16Weights.Entry { BF16Weights.Entry(offset: offset, outDim: out, inDim: inp) }
        var out: [BF16Weights.Entry] = []
        for o in layout.decoder {
            out += [o.selfAttn.qw, o.selfAttn.kw, o.selfAttn.vw, o.selfAttn.ow,
                    o.crossAttn.qw, o.crossAttn.kw, o.crossAttn.vw, o.crossAttn.ow].map { e($0, d, d) }
            out += [e(o.ffn.w1, f, d), e(o.ffn.w2, d, f)]
        }
        return out + [e(layout.shared, config.vocabSize, d)]
    }
}

/// Incremental decoding for generation with a BART-family model: the encoder runs once per source,
/// each decoder layer's cross-attention keys and values are computed once, and self-attention keys
/// and values are cached per row, so each new token costs one position's worth of work. Rows are
/// hypotheses (batch × beams); `rowSource[r]` says which source row r attends to. Evaluation mode
/// (no dropout). `BartIncrementalDecoder` and `PegasusIncrementalDecoder` name it.
///
/// With bf16 products (`BartFamilyDecoderWeights.bf16Kernel`), every weight product (the
/// projections, the cross-attention keys and values of the encoder output, the FFN and the LM head)
/// multiplies the step's rows converted to bf16 by the weight's packed bf16 copy, accumulating in
/// fp32, as the bf16 training forward does; attention over the cache stays fp32.
public final class BartFamilyIncrementalDecoder: IncrementalDecoding {
    public let rows: Int
    public let sourceLength: Int
    public let maxLength: Int
    /// Number of sources (encoder rows) the decoder was built for.
    public let sources: Int
    /// The decoder positions filled so far (all rows advance together).
    public private(set) var length = 0
    /// Which source each row attends to.
    public private(set) var rowSource: [Int]

    private let w: BartFamilyDecoderWeights
    private let d: Int, heads: Int, dh: Int, ffn: Int
    private let arena = Arena()
    private let sourceMask: Ptr
    private var crossK: [Ptr] = [], crossV: [Ptr] = []
    private var selfAttention: SelfAttentionCache
    /// The residual stream `x` and a LayerNorm's output `h` (a pre-LN block's input), per row.
    private let x: Ptr, h: Ptr, q: Ptr, k: Ptr, v: Ptr, ctx: Ptr, tmp: Ptr, hidden: Ptr, xhat: Ptr, rstd: Ptr
    private let scores: [Ptr]
    private let ids: UnsafeMutablePointer<Int32>
    /// Decoder weights repacked for few-row products (nil when there are too many rows to gain, or
    /// with bf16 products).
    fileprivate var packed: PackedDecoder?
    /// The bf16 products (nil for fp32 products).
    fileprivate var bf16: DecoderBF16Products?

    /// The decoder's weights as `PackedWeights`, one set per layer, and the LM head.
    final class PackedDecoder {
        struct Layer {
            var q: PackedWeights, k: PackedWeights, v: PackedWeights, o: PackedWeights
            var crossQ: PackedWeights, crossO: PackedWeights, fc1: PackedWeights, fc2: PackedWeights
        }
        let layers: [Layer]
        let lmHead: PackedWeights

        init(_ w: BartFamilyDecoderWeights) {
            let p = w.params.pointer, d = w.config.dModel, f = w.config.decoderFfnDim
            func pack(_ o: Int, _ b: Int?, _ out: Int, _ inp: Int) -> PackedWeights {
                PackedWeights(weight: p + o, bias: b.map { p + $0 }, outDim: out, inDim: inp)
            }
            layers = w.layout.decoder.map { o in
                Layer(q: pack(o.selfAttn.qw, o.selfAttn.qb, d, d), k: pack(o.selfAttn.kw, o.selfAttn.kb, d, d),
                      v: pack(o.selfAttn.vw, o.selfAttn.vb, d, d), o: pack(o.selfAttn.ow, o.selfAttn.ob, d, d),
                      crossQ: pack(o.crossAttn.qw, o.crossAttn.qb, d, d), crossO: pack(o.crossAttn.ow, o.crossAttn.ob, d, d),
                      fc1: pack(o.ffn.w1, o.ffn.b1, f, d), fc2: pack(o.ffn.w2, o.ffn.b2, d, f))
            }
            lmHead = PackedWeights(weight: p + w.layout.shared, bias: w.finalLogitsBias.pointer, outDim: w.config.vocabSize, inDim: d)
        }
    }
    /// Logits of the last step, [rows, vocab] with row stride `logitsStride`.
    public let logits: UnsafeMutablePointer<Float>
    public let logitsStride: Int

    /// - Parameters: `encoderOutput` [sources, S, D] from `encoderHiddenStates`; `attentionMask` the
    ///   sources' mask; `rowSource` maps each decoding row to its source; `packed` the weights packed
    ///   for few-row products (used when there are at most 16 rows and products are fp32); `bf16`
    ///   the weights' bf16 copies (used when `w.bf16Kernel` is set).
    init(_ w: BartFamilyDecoderWeights, packed: () -> PackedDecoder, bf16: () -> DecoderBF16Weights,
         encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength s: Int, rowSource: [Int],
         maxLength: Int) {
        let c = w.config
        self.w = w
        rows = rowSource.count
        sourceLength = s
        self.maxLength = maxLength
        self.rowSource = rowSource
        d = c.dModel; heads = c.decoderAttentionHeads; dh = d / heads; ffn = c.decoderFfnDim
        let a = arena
        self.sources = sources
        sourceMask = a.floats(sources * s)
        for _ in w.layout.decoder {
            crossK.append(a.floats(sources * s * d)); crossV.append(a.floats(sources * s * d))
        }
        selfAttention = SelfAttentionCache(a, layers: crossK.count, rows: rows, maxLength: maxLength, width: d)
        x = a.floats(rows * d); h = a.floats(rows * d); q = a.floats(rows * d); k = a.floats(rows * d); v = a.floats(rows * d)
        ctx = a.floats(rows * d); tmp = a.floats(rows * d); hidden = a.floats(rows * ffn)
        xhat = a.floats(rows * d); rstd = a.floats(rows)
        scores = (0..<max(1, Parallel.width)).map { _ in a.floats(max(maxLength, s)) }
        ids = a.ints(rows)
        // Room for outputs rounded up to 16 (packed products write whole 16-wide blocks).
        let pad16 = { (n: Int) in (n + 15) / 16 * 16 }
        logits = a.floats(rows * pad16(c.vocabSize))
        logitsStride = pad16(c.vocabSize)
        if w.bf16Kernel != nil {
            self.bf16 = DecoderBF16Products(weights: bf16(), rows: max(rows, sources * s), inDim: max(d, ffn))
        } else {
            self.packed = rows <= 16 ? packed() : nil
        }
        reset(encoderOutput: encoderOutput, attentionMask: attentionMask, rowSource: rowSource)
    }

    /// Starts over with new sources of the same shape (reusing every buffer): the mask and each layer's
    /// cross-attention keys and values are recomputed and the self-attention cache is emptied.
    public func reset(encoderOutput: FloatBuffer, attentionMask: [Int32], rowSource: [Int]) {
        precondition(rowSource.count == rows && attentionMask.count == sources * sourceLength)
        self.rowSource = rowSource
        length = 0
        for i in 0..<(sources * sourceLength) { sourceMask[i] = Float(attentionMask[i]) }
        let p = w.params.pointer
        for (i, l) in w.layout.decoder.enumerated() {
            if let bf16 {
                bf16.linear(y: crossK[i], ldy: d, x: encoderOutput.pointer, m: sources * sourceLength, weight: l.crossAttn.kw,
                            bias: p + l.crossAttn.kb)
                bf16.linear(y: crossV[i], ldy: d, x: encoderOutput.pointer, m: sources * sourceLength, weight: l.crossAttn.vw,
                            bias: p + l.crossAttn.vb)
                continue
            }
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
        selfAttention.reorder(from, length: length)
        rowSource = from.map { rowSource[$0] }
    }

    /// Feeds one token per row at position `length` and fills `logits`.
    public func step(_ tokens: [Int32]) {
        precondition(tokens.count == rows && length < maxLength && length < w.config.maxPositionEmbeddings)
        let c = w.config, p = w.params.pointer, layout = w.layout, t = length
        for (i, tok) in tokens.enumerated() { ids[i] = tok }
        // Embeddings: x = scale · E[ids] + position t (post-LN: then the decoder's LayerNorm).
        let e = w.preNorm ? x : tmp
        Embedding.forward(out: e, table: p + layout.shared, ids: ids, rows: rows, dim: d, scale: w.embedScale)
        for r in 0..<rows { Vec.add(e + r * d, w.positions + t * d, d) }
        if !w.preNorm { norm(tmp, layout.decoderNorm, into: x) }
        let scaling = 1 / Float(dh).squareRoot()
        for (l, o) in layout.decoder.enumerated() {
            let pk = packed?.layers[l]
            // Self-attention over positions 0…t of this row.
            var input = blockInput(o.ln1)
            linear(q, input, pk?.q, o.selfAttn.qw, o.selfAttn.qb, d, d)
            linear(k, input, pk?.k, o.selfAttn.kw, o.selfAttn.kb, d, d)
            linear(v, input, pk?.v, o.selfAttn.vw, o.selfAttn.vb, d, d)
            selfAttention.store(layer: l, position: t, keys: k, values: v)
            attend(keys: selfAttention.keys[l], values: selfAttention.values[l], rowStride: selfAttention.rowStride,
                   keyCount: t + 1, mask: nil, scaling: scaling, sourceOf: { $0 })
            linear(tmp, ctx, pk?.o, o.selfAttn.ow, o.selfAttn.ob, d, d)
            addResidual(o.ln1)
            // Cross-attention over the row's source.
            input = blockInput(o.ln2)
            linear(q, input, pk?.crossQ, o.crossAttn.qw, o.crossAttn.qb, d, d)
            let src = rowSource
            attend(keys: crossK[l], values: crossV[l], rowStride: sourceLength * d, keyCount: sourceLength,
                   mask: sourceMask, scaling: scaling, sourceOf: { src[$0] })
            linear(tmp, ctx, pk?.crossO, o.crossAttn.ow, o.crossAttn.ob, d, d)
            addResidual(o.ln2)
            // Feed-forward.
            input = blockInput(o.ln3)
            linear(hidden, input, pk?.fc1, o.ffn.w1, o.ffn.b1, d, ffn)
            c.activation.forward(hidden, hidden, rows * ffn)
            linear(tmp, hidden, pk?.fc2, o.ffn.w2, o.ffn.b2, ffn, d)
            addResidual(o.ln3)
        }
        // The LM head, over the decoder's output (pre-LN: after its final LayerNorm).
        if w.preNorm { norm(x, layout.decoderNorm, into: h) }
        let y = w.preNorm ? h : x
        if let bf16 {
            bf16.linear(y: logits, ldy: logitsStride, x: y, m: rows, weight: layout.shared, bias: w.finalLogitsBias.pointer)
        } else if let head = packed?.lmHead {
            head.apply(logits, ldy: logitsStride, y, rows: rows)
        } else {
            BLAS.gemm(transA: false, transB: true, m: rows, n: c.vocabSize, k: d, a: y, lda: d, b: p + layout.shared, ldb: d,
                      beta: 0, c: logits, ldc: logitsStride)
            for r in 0..<rows { Vec.add(logits + r * logitsStride, w.finalLogitsBias.pointer, c.vocabSize) }
        }
        length += 1
    }

    /// A sublayer's input: LN(x) (pre-LN) or x itself (post-LN).
    private func blockInput(_ n: NormOffsets) -> UnsafePointer<Float> {
        guard w.preNorm else { return UnsafePointer(x) }
        norm(x, n, into: h)
        return UnsafePointer(h)
    }

    /// Adds a sublayer's output (in `tmp`) to the residual stream: x += f (pre-LN), x = LN(x + f) (post-LN).
    private func addResidual(_ n: NormOffsets) {
        if w.preNorm {
            Vec.add(x, tmp, rows * d)
        } else {
            Vec.add(tmp, x, rows * d)
            norm(tmp, n, into: x)
        }
    }

    /// y = x·Wᵀ + b for this step's rows: the bf16 product, or the packed product when few rows, else a GEMM.
    private func linear(_ y: Ptr, _ x: UnsafePointer<Float>, _ packedW: PackedWeights?, _ wOffset: Int, _ b: Int, _ inDim: Int,
                        _ outDim: Int) {
        if let bf16 {
            bf16.linear(y: y, ldy: outDim, x: x, m: rows, weight: wOffset, bias: w.params.pointer + b)
        } else if let packedW, outDim % 16 == 0 {
            packedW.apply(y, ldy: outDim, x, rows: rows)
        } else {
            let p = w.params.pointer
            Linear.forward(y: y, x: x, weight: p + wOffset, bias: p + b, rows: rows, inDim: inDim, outDim: outDim)
        }
    }

    private func norm(_ input: UnsafePointer<Float>, _ o: NormOffsets, into y: Ptr) {
        let p = w.params.pointer
        LayerNorm.forward(y: y, xhat: xhat, rstd: rstd, x: input, gamma: p + o.weight, beta: p + o.bias,
                          rows: rows, dim: d, eps: w.config.layerNormEps)
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

/// What a BART-family model keeps between generations: its decoder weights packed for few-row
/// fp32 products and their bf16 copies, each reused while the parameters are unchanged (repacking
/// takes ~10 ms for bart-small; `ParameterFingerprint` over the parameters and the logits bias), and
/// the last incremental decoder, reused by the next generation of the same shape.
final class BartFamilyGenerationCache {
    private var packed: (fingerprint: ParameterFingerprint, decoder: BartFamilyIncrementalDecoder.PackedDecoder)?
    private let bf16 = DecoderBF16Cache()
    private var decoder: BartFamilyIncrementalDecoder?

    private func fingerprint(_ w: BartFamilyDecoderWeights) -> ParameterFingerprint {
        ParameterFingerprint([w.params, w.finalLogitsBias])
    }

    /// The packed weights, packed again only when the fingerprint changed.
    func packedDecoder(_ w: BartFamilyDecoderWeights) -> BartFamilyIncrementalDecoder.PackedDecoder {
        let fp = fingerprint(w)
        if let c = packed, c.fingerprint == fp { return c.decoder }
        let d = BartFamilyIncrementalDecoder.PackedDecoder(w)
        packed = (fp, d)
        return d
    }

    /// The weights' bf16 copies on `w.bf16Kernel` (which must be set), made again only when the
    /// fingerprint or the kernel changed.
    func bf16Weights(_ w: BartFamilyDecoderWeights) -> DecoderBF16Weights {
        guard let kernel = w.bf16Kernel else { preconditionFailure("bf16 weights of a decoder with fp32 products") }
        return bf16.weights(fingerprint(w), kernel: kernel) {
            DecoderBF16Weights(kernel: kernel, params: w.params.pointer, entries: w.productWeights)
        }
    }

    /// An incremental decoder for these sources: the previous one reset (with the current packed
    /// weights) when the shape and the products' precision are the same (its buffers are reused),
    /// else a new one.
    func incrementalDecoder(_ w: BartFamilyDecoderWeights, encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int,
                            sourceLength: Int, rowSource: [Int], maxLength: Int) -> BartFamilyIncrementalDecoder {
        if let d = decoder, d.rows == rowSource.count, d.sources == sources, d.sourceLength == sourceLength,
           d.maxLength == maxLength, (d.bf16 != nil) == (w.bf16Kernel != nil) {
            // The weights first: reset computes the cross-attention keys and values with them.
            if let b = d.bf16 { b.weights = bf16Weights(w) }
            if d.packed != nil { d.packed = packedDecoder(w) }
            d.reset(encoderOutput: encoderOutput, attentionMask: attentionMask, rowSource: rowSource)
            return d
        }
        let d = BartFamilyIncrementalDecoder(w, packed: { packedDecoder(w) }, bf16: { bf16Weights(w) }, encoderOutput: encoderOutput,
                                             attentionMask: attentionMask, sources: sources, sourceLength: sourceLength,
                                             rowSource: rowSource, maxLength: maxLength)
        decoder = d
        return d
    }
}
