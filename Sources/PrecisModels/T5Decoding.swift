import PrecisCore

/// Incremental T5 decoding for generation: the encoder runs once per source, each decoder block's
/// cross-attention keys and values are computed once, self-attention keys and values are cached per
/// row, and the position bias of the new query position is one row per head. Rows are hypotheses
/// (batch × beams); `rowSource[r]` says which source row r attends to. Evaluation mode (no dropout).
///
/// With bf16 products (the model's `matmulPrecision` when the decoder was made), every weight
/// product (the projections, the cross-attention keys and values of the encoder output, the FFN and
/// the LM head, after the tied head's d_model^-0.5 scaling) multiplies the step's rows converted to
/// bf16 by the weight's packed bf16 copy, accumulating in fp32, as the bf16 training forward does;
/// attention over the cache stays fp32.
public final class T5IncrementalDecoder: IncrementalDecoding {
    /// The model (unowned: the model caches its last decoder, and a decoder must not outlive its model).
    public unowned let model: T5Model
    public let rows: Int
    public let sourceLength: Int
    public let maxLength: Int
    public let sources: Int
    public private(set) var length = 0
    public private(set) var rowSource: [Int]

    private let d: Int, heads: Int, dkv: Int, inner: Int, ffn: Int
    private let arena = Arena()
    private let sourceMask: Ptr
    private var crossK: [Ptr] = [], crossV: [Ptr] = []
    private var selfAttention: SelfAttentionCache
    private let x: Ptr, h: Ptr, q: Ptr, k: Ptr, v: Ptr, ctx: Ptr, tmp: Ptr, gate: Ptr, linear: Ptr, xhat: Ptr, rstd: Ptr
    /// The self-attention bias of the current query position, [heads, maxLength].
    private let biasRow: Ptr
    private let scores: [Ptr]
    private let ids: UnsafeMutablePointer<Int32>
    /// The bf16 products (nil for fp32 products).
    fileprivate var bf16: DecoderBF16Products?
    public let logits: UnsafeMutablePointer<Float>
    public let logitsStride: Int

    /// Its products have the model's `matmulPrecision`.
    public init(model: T5Model, encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength s: Int,
                rowSource: [Int], maxLength: Int) {
        let c = model.config
        self.model = model
        rows = rowSource.count
        sourceLength = s
        self.maxLength = maxLength
        self.rowSource = rowSource
        self.sources = sources
        d = c.dModel; heads = c.numHeads; dkv = c.dKv; inner = c.innerDim; ffn = c.dFf
        let a = arena
        sourceMask = a.floats(sources * s)
        for _ in model.layout.decoder {
            crossK.append(a.floats(sources * s * inner)); crossV.append(a.floats(sources * s * inner))
        }
        selfAttention = SelfAttentionCache(a, layers: crossK.count, rows: rows, maxLength: maxLength, width: inner)
        x = a.floats(rows * d); h = a.floats(rows * d); tmp = a.floats(rows * d)
        q = a.floats(rows * inner); k = a.floats(rows * inner); v = a.floats(rows * inner); ctx = a.floats(rows * inner)
        gate = a.floats(rows * ffn); linear = a.floats(rows * ffn)
        xhat = a.floats(rows * d); rstd = a.floats(rows)
        biasRow = a.floats(heads * max(1, maxLength))
        scores = (0..<max(1, Parallel.width)).map { _ in a.floats(max(maxLength, s, 1)) }
        ids = a.ints(rows)
        logits = a.floats(rows * c.vocabSize)
        logitsStride = c.vocabSize
        if let kernel = model.bf16Kernel {
            bf16 = DecoderBF16Products(weights: model.decoderBF16Weights(kernel), rows: max(rows, sources * s),
                                       inDim: max(d, inner, ffn))
        }
        reset(encoderOutput: encoderOutput, attentionMask: attentionMask, rowSource: rowSource)
    }

    /// Starts over with new sources of the same shape (reusing every buffer).
    public func reset(encoderOutput: FloatBuffer, attentionMask: [Int32], rowSource: [Int]) {
        precondition(rowSource.count == rows && attentionMask.count == sources * sourceLength)
        self.rowSource = rowSource
        length = 0
        for i in 0..<(sources * sourceLength) { sourceMask[i] = Float(attentionMask[i]) }
        let p = model.params.pointer
        for (i, l) in model.layout.decoder.enumerated() {
            if let bf16 {
                bf16.linear(y: crossK[i], ldy: inner, x: encoderOutput.pointer, m: sources * sourceLength,
                            weight: l.crossAttn.k, bias: nil)
                bf16.linear(y: crossV[i], ldy: inner, x: encoderOutput.pointer, m: sources * sourceLength,
                            weight: l.crossAttn.v, bias: nil)
                continue
            }
            Linear.forward(y: crossK[i], x: encoderOutput.pointer, weight: p + l.crossAttn.k, bias: nil,
                           rows: sources * sourceLength, inDim: d, outDim: inner)
            Linear.forward(y: crossV[i], x: encoderOutput.pointer, weight: p + l.crossAttn.v, bias: nil,
                           rows: sources * sourceLength, inDim: d, outDim: inner)
        }
    }

    public func reorder(_ from: [Int]) {
        precondition(from.count == rows)
        if from == Array(0..<rows) { return }
        selfAttention.reorder(from, length: length)
        rowSource = from.map { rowSource[$0] }
    }

    public func step(_ tokens: [Int32]) {
        precondition(tokens.count == rows && length < maxLength)
        let c = model.config, p = model.params.pointer, layout = model.layout, t = length
        for (i, tok) in tokens.enumerated() { ids[i] = tok }
        Embedding.forward(out: x, table: p + layout.shared, ids: ids, rows: rows, dim: d)
        // The bias of query position t over keys 0…t (causal buckets).
        for j in 0...t {
            let bucket = T5PositionBias.bucket(j - t, bidirectional: false, buckets: c.relativeAttentionNumBuckets,
                                               maxDistance: c.relativeAttentionMaxDistance)
            for hd in 0..<heads { biasRow[hd * maxLength + j] = p[layout.decoderBias + bucket * heads + hd] }
        }
        for (l, o) in layout.decoder.enumerated() {
            // Self-attention over positions 0…t of this row.
            norm(x, o.ln1, into: h)
            product(q, h, o.selfAttn.q, d, inner)
            product(k, h, o.selfAttn.k, d, inner)
            product(v, h, o.selfAttn.v, d, inner)
            selfAttention.store(layer: l, position: t, keys: k, values: v)
            attend(keys: selfAttention.keys[l], values: selfAttention.values[l], rowStride: selfAttention.rowStride,
                   keyCount: t + 1, mask: nil, bias: biasRow, sourceOf: { $0 })
            product(tmp, ctx, o.selfAttn.o, inner, d)
            Vec.add(x, tmp, rows * d)
            // Cross-attention over the row's source.
            norm(x, o.ln2, into: h)
            product(q, h, o.crossAttn.q, d, inner)
            let src = rowSource
            attend(keys: crossK[l], values: crossV[l], rowStride: sourceLength * inner, keyCount: sourceLength, mask: sourceMask,
                   bias: nil, sourceOf: { src[$0] })
            product(tmp, ctx, o.crossAttn.o, inner, d)
            Vec.add(x, tmp, rows * d)
            // Feed-forward.
            norm(x, o.ln3, into: h)
            product(gate, h, o.ffn.wi, d, ffn)
            if let wi1 = o.ffn.wi1 {
                product(linear, h, wi1, d, ffn)
                c.activation.gatedForward(gate, gate: gate, linear: linear, rows * ffn)
            } else {
                c.activation.forward(gate, gate, rows * ffn)
            }
            product(tmp, gate, o.ffn.wo, ffn, d)
            Vec.add(x, tmp, rows * d)
        }
        norm(x, layout.decoderFinalNorm, into: h)
        if c.scalesDecoderOutput { Vec.scale(h, 1 / Float(d).squareRoot(), rows * d) }
        if let bf16 {
            bf16.linear(y: logits, ldy: logitsStride, x: h, m: rows, weight: layout.head, bias: nil)
        } else {
            BLAS.gemm(transA: false, transB: true, m: rows, n: c.vocabSize, k: d, a: h, lda: d, b: p + layout.head, ldb: d,
                      beta: 0, c: logits, ldc: logitsStride)
        }
        length += 1
    }

    /// y = x·Wᵀ for this step's rows, W [outDim × inDim] at `weight` in the parameters: in bf16, or a GEMM.
    private func product(_ y: Ptr, _ x: UnsafePointer<Float>, _ weight: Int, _ inDim: Int, _ outDim: Int) {
        if let bf16 {
            bf16.linear(y: y, ldy: outDim, x: x, m: rows, weight: weight, bias: nil)
        } else {
            Linear.forward(y: y, x: x, weight: model.params.pointer + weight, bias: nil, rows: rows, inDim: inDim, outDim: outDim)
        }
    }

    private func norm(_ input: UnsafePointer<Float>, _ weight: Int, into y: Ptr) {
        RMSNorm.forward(y: y, xhat: xhat, rstd: rstd, x: input, gamma: model.params.pointer + weight, rows: rows, dim: d,
                        eps: model.config.layerNormEps)
    }

    /// ctx[r] = Σ softmax(q[r]·K + bias) V per head, over `keyCount` keys of row `sourceOf(r)`.
    private func attend(keys: Ptr, values: Ptr, rowStride: Int, keyCount: Int, mask: Ptr?, bias: Ptr?, sourceOf: (Int) -> Int) {
        Parallel.chunks(rows * heads, maxParts: scores.count) { worker, pairs in
            let sc = scores[worker]
            for pair in pairs {
                let r = pair / heads, hd = pair % heads, src = sourceOf(r)
                let kbase = keys + src * rowStride + hd * dkv, vbase = values + src * rowStride + hd * dkv
                BLAS.gemv(trans: false, rows: keyCount, cols: dkv, a: kbase, lda: inner, x: q + r * inner + hd * dkv, beta: 0, y: sc)
                let m = mask.map { UnsafePointer($0 + src * sourceLength) }
                if let bias {
                    Softmax.forward(sc, rows: 1, cols: keyCount, ld: keyCount, bias: bias + hd * maxLength, biasLd: keyCount,
                                    keyMask: m, causal: false)
                } else {
                    Softmax.forward(sc, rows: 1, cols: keyCount, ld: keyCount, keyMask: m, causal: false)
                }
                BLAS.gemv(trans: true, rows: keyCount, cols: dkv, a: vbase, lda: inner, x: sc, beta: 0, y: ctx + r * inner + hd * dkv)
            }
        }
    }
}

/// Generation with T5: the encoder alone, and incremental decoders cached between generations.
extension T5Model {
    public func incrementalDecoder(encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength: Int,
                                   rowSource: [Int], maxLength: Int) -> any IncrementalDecoding {
        if let d = decoderCache, d.rows == rowSource.count, d.sources == sources, d.sourceLength == sourceLength,
           d.maxLength == maxLength, (d.bf16 != nil) == (bf16Kernel != nil) {
            // The weights first: reset computes the cross-attention keys and values with them.
            if let b = d.bf16, let kernel = bf16Kernel { b.weights = decoderBF16Weights(kernel) }
            d.reset(encoderOutput: encoderOutput, attentionMask: attentionMask, rowSource: rowSource)
            return d
        }
        let d = T5IncrementalDecoder(model: self, encoderOutput: encoderOutput, attentionMask: attentionMask, sources: sources,
                                     sourceLength: sourceLength, rowSource: rowSource, maxLength: maxLength)
        decoderCache = d
        return d
    }

    /// The weights the decoder multiplies by: each block's projections (the cross-attention's keys and
    /// values of the encoder output included) and FFN, and the LM head.
    var decoderProductWeights: [BF16Weights.Entry] {
        let d = config.dModel, inner = config.innerDim, f = config.dFf
        func e(_ offset: Int, _ out: Int, _ inp: Int) -> BF16Weights.Entry { BF16Weights.Entry(offset: offset, outDim: out, inDim: inp) }
        var out: [BF16Weights.Entry] = []
        for o in layout.decoder {
            out += [o.selfAttn.q, o.selfAttn.k, o.selfAttn.v, o.crossAttn.q, o.crossAttn.k, o.crossAttn.v].map { e($0, inner, d) }
            out += [e(o.selfAttn.o, d, inner), e(o.crossAttn.o, d, inner), e(o.ffn.wi, f, d), e(o.ffn.wo, d, f)]
            if let wi1 = o.ffn.wi1 { out.append(e(wi1, f, d)) }
        }
        return out + [e(layout.head, config.vocabSize, d)]
    }

    /// The decoder weights' bf16 copies on `kernel`, packed again only when the parameters'
    /// fingerprint or the kernel changed.
    func decoderBF16Weights(_ kernel: BF16Kernel) -> DecoderBF16Weights {
        decoderBF16.weights(ParameterFingerprint([params]), kernel: kernel) {
            DecoderBF16Weights(kernel: kernel, params: params.pointer, entries: decoderProductWeights)
        }
    }

    /// Runs the encoder alone in evaluation mode (no dropout) and returns its last hidden state [B, S, D].
    public func encoderHiddenStates(inputIds: [Int32], attentionMask: [Int32], batchSize: Int, sourceLength: Int) throws -> FloatBuffer {
        try runner.encoderHiddenStates(self, facts: facts, dModel: config.dModel, inputIds: inputIds, attentionMask: attentionMask,
                                       batchSize: batchSize, sourceLength: sourceLength) { ws in
            encode(ws, T5DropoutPlan(config: config, training: false, seed: 0))
            return UnsafePointer(ws.encoderOutput)
        }
    }
}

extension T5Model {
    public func matrixProducts(batch: Int, source: Int, target: Int) -> [MatrixProduct] {
        Self.matrixProducts(config: config, table: table, batch: batch, source: source, target: target)
    }

    /// Walks the layers as `step` runs them, with the weights' shapes read from the parameter table.
    static func matrixProducts(config c: T5Config, table: ParameterTable, batch b: Int, source s: Int, target t: Int) -> [MatrixProduct] {
        func weight(_ name: String) -> [Int] {
            guard let e = table[name + ".weight"] else { preconditionFailure("no parameter \(name).weight") }
            return e.shape
        }
        var list = MatrixProductList()
        let ns = b * s, nt = b * t, wi = c.isGatedAct ? ["wi_0", "wi_1"] : ["wi"]
        for l in 0..<c.numLayers {
            let attn = "encoder.block.\(l).layer.0.SelfAttention", ff = "encoder.block.\(l).layer.1.DenseReluDense"
            for proj in ["q", "k", "v"] { list.linear("enc proj", weight: weight("\(attn).\(proj)"), rows: ns) }
            list.heads("enc attn", batch: b, queries: s, keys: s, dim: c.innerDim, heads: c.numHeads)
            list.linear("enc o", weight: weight(attn + ".o"), rows: ns)
            for w in wi { list.linear("enc wi", weight: weight("\(ff).\(w)"), rows: ns) }
            list.linear("enc wo", weight: weight(ff + ".wo"), rows: ns)
        }
        for l in 0..<c.decoderLayers {
            let p = "decoder.block.\(l).layer", selfAttn = p + ".0.SelfAttention", cross = p + ".1.EncDecAttention"
            let ff = p + ".2.DenseReluDense"
            for proj in ["q", "k", "v"] { list.linear("dec proj", weight: weight("\(selfAttn).\(proj)"), rows: nt) }
            list.heads("dec self", batch: b, queries: t, keys: t, dim: c.innerDim, heads: c.numHeads)
            list.linear("dec o", weight: weight(selfAttn + ".o"), rows: nt)
            list.linear("dec proj", weight: weight(cross + ".q"), rows: nt)
            for proj in ["k", "v"] { list.linear("dec cross K,V", weight: weight("\(cross).\(proj)"), rows: ns) }
            list.heads("dec cross", batch: b, queries: t, keys: s, dim: c.innerDim, heads: c.numHeads)
            list.linear("dec o", weight: weight(cross + ".o"), rows: nt)
            for w in wi { list.linear("dec wi", weight: weight("\(ff).\(w)"), rows: nt) }
            list.linear("dec wo", weight: weight(ff + ".wo"), rows: nt)
        }
        list.linear("lm head", weight: weight(c.tiedHead ? "shared" : "lm_head"), rows: nt, labels: ("Y·Eᵀ", "dL·E", "dLᵀ·Y"))
        return list.products
    }
}
