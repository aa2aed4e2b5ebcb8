import Foundation
import PrecisCore

/// T5's blocks over the flat parameter buffer, each a forward/backward pair over explicit buffers:
/// attention without biases or 1/√d_kv scaling (with an optional additive position bias), the
/// feed-forward block (plain or gated), the RMS norm, and the bucketed relative position bias.

/// Parameters (flat-buffer offsets) of a T5 attention module: q, k, v [inner, d], o [d, inner].
struct T5AttentionOffsets {
    var q: Int, k: Int, v: Int, o: Int
}

/// Parameters of a T5 feed-forward block: `wi` [ff, d] (`wi_0` when gated), `wi1` [ff, d] (`wi_1`,
/// gated only), `wo` [d, ff].
struct T5FeedForwardOffsets {
    var wi: Int, wi1: Int?, wo: Int
}

/// Saved activations of a feed-forward block: wi's output before the activation (and wi_1's when
/// gated). Backward consumes them (it recomputes the activation's output in place).
struct T5FeedForwardActs {
    var pre: Ptr
    var linear: Ptr?

    init(_ a: Arena, rows: Int, ffn: Int, gated: Bool) {
        pre = a.floats(rows * ffn)
        linear = gated ? a.floats(rows * ffn) : nil
    }
}

/// The shapes of a feed-forward call.
struct T5FeedForwardShape {
    var rows: Int, dim: Int, ffn: Int
    var activation: Activation
}

enum T5FeedForwardBlock {
    /// out = wo(dropout(act(wi(x)))), or wo(dropout(act(wi_0(x)) ⊙ wi_1(x))) when gated; `hidden` is
    /// scratch of rows × ffn.
    static func forward(_ acts: T5FeedForwardActs, _ p: T5FeedForwardOffsets, params: Ptr, x: UnsafePointer<Float>,
                        shape s: T5FeedForwardShape, dropout: DropoutSite, out: Ptr, hidden: Ptr, work: LaneWork) {
        let n = s.rows * s.ffn
        work.linearForward(y: acts.pre, x: x, weight: params + p.wi, bias: nil, rows: s.rows, inDim: s.dim, outDim: s.ffn)
        if let wi1 = p.wi1, let linear = acts.linear {
            work.linearForward(y: linear, x: x, weight: params + wi1, bias: nil, rows: s.rows, inDim: s.dim, outDim: s.ffn, sameInput: true)
            s.activation.gatedForward(hidden, gate: acts.pre, linear: linear, n)
        } else {
            s.activation.forward(hidden, acts.pre, n)
        }
        dropout.apply(hidden, count: n)
        work.linearForward(y: out, x: hidden, weight: params + p.wo, bias: nil, rows: s.rows, inDim: s.ffn, outDim: s.dim)
    }

    /// dx (= or +=) the gradient through the block from dOut; consumes `acts`. The weight gradients
    /// go to `work`; the block settles them before it returns.
    static func backward(_ acts: T5FeedForwardActs, _ p: T5FeedForwardOffsets, params: Ptr, grads: Ptr, x: UnsafePointer<Float>,
                         shape s: T5FeedForwardShape, dropout: DropoutSite, dOut: UnsafePointer<Float>, dx: Ptr,
                         accumulateDx: Bool, hidden: Ptr, work: LaneWork) {
        let n = s.rows * s.ffn
        // dL/d(dropped hidden), then through the dropout (the same mask: a function of position).
        work.linearBackwardInput(dx: hidden, dy: dOut, weight: params + p.wo, rows: s.rows, inDim: s.ffn, outDim: s.dim)
        dropout.apply(hidden, count: n)
        if let wi1 = p.wi1, let linear = acts.linear {
            // dGate over `pre`, dLinear over `linear`, the hidden recomputed over the gradient.
            s.activation.gatedBackward(dGate: acts.pre, dLinear: linear, output: hidden, grad: hidden, gate: acts.pre,
                                       linear: linear, n)
            dropout.apply(hidden, count: n)
            work.postWeightGradient(dy: dOut, x: hidden, dWeight: grads + p.wo, dBias: nil, rows: s.rows, inDim: s.ffn, outDim: s.dim)
            work.postWeightGradient(dy: acts.pre, x: x, dWeight: grads + p.wi, dBias: nil, rows: s.rows, inDim: s.dim, outDim: s.ffn)
            work.postWeightGradient(dy: linear, x: x, dWeight: grads + wi1, dBias: nil, rows: s.rows, inDim: s.dim, outDim: s.ffn)
            work.linearBackwardInput(dx: dx, accumulate: accumulateDx, dy: acts.pre, weight: params + p.wi,
                                     rows: s.rows, inDim: s.dim, outDim: s.ffn)
            work.linearBackwardInput(dx: dx, accumulate: true, dy: linear, weight: params + wi1, rows: s.rows, inDim: s.dim, outDim: s.ffn)
        } else {
            // `hidden` becomes dL/d(wi's output); `pre` becomes the activation's output, dropped out.
            s.activation.backwardRecomputing(x: acts.pre, grad: hidden, n)
            dropout.apply(acts.pre, count: n)
            work.postWeightGradient(dy: dOut, x: acts.pre, dWeight: grads + p.wo, dBias: nil, rows: s.rows, inDim: s.ffn, outDim: s.dim)
            work.postWeightGradient(dy: hidden, x: x, dWeight: grads + p.wi, dBias: nil, rows: s.rows, inDim: s.dim, outDim: s.ffn)
            work.linearBackwardInput(dx: dx, accumulate: accumulateDx, dy: hidden, weight: params + p.wi,
                                     rows: s.rows, inDim: s.dim, outDim: s.ffn)
        }
        work.settle()
    }
}

/// T5LayerNorm: y = γ · x / √(mean(x²) + eps) (`RMSNorm`), over the saved activations of a
/// `NormActs` (its `xhat`, `rstd`, `y`; its `dropMask` holds the mask of the dropout on the output
/// of the sublayer the norm feeds).
enum T5Norm {
    static func forward(_ acts: NormActs, x: UnsafePointer<Float>, weight: Int, params: Ptr, rows: Int, dim: Int, eps: Float) {
        RMSNorm.forward(y: acts.y, xhat: acts.xhat, rstd: acts.rstd, x: x, gamma: params + weight, rows: rows, dim: dim, eps: eps)
    }

    /// dx = RMS'(dy) (dx may alias dy); γ's gradient is added into `grads`.
    static func backward(_ acts: NormActs, dx: Ptr, dy: UnsafePointer<Float>, weight: Int, params: Ptr, grads: Ptr,
                         rows: Int, dim: Int) {
        RMSNorm.backward(dx: dx, dy: dy, xhat: acts.xhat, rstd: acts.rstd, gamma: params + weight, dgamma: grads + weight,
                         rows: rows, dim: dim)
    }
}

/// The relative position bias: the bucket of each (query, key) distance, as transformers'
/// `T5Attention._relative_position_bucket` computes it (fp32 logarithm), and the bias per head.
enum T5PositionBias {
    /// The bucket of `relative` = key position − query position.
    static func bucket(_ relative: Int, bidirectional: Bool, buckets: Int, maxDistance: Int) -> Int {
        var n = buckets, base = 0, distance: Int
        if bidirectional {
            n /= 2
            if relative > 0 { base = n }
            distance = abs(relative)
        } else {
            distance = -min(relative, 0)
        }
        let maxExact = n / 2
        if distance < maxExact { return base + distance }
        // As PyTorch: log in fp32, divided by a fp64 constant applied in fp32, truncated to an integer.
        let ratio = Float(distance) / Float(maxExact)
        let scaled = logf(ratio) / Float(Foundation.log(Double(maxDistance) / Double(maxExact))) * Float(n - maxExact)
        let large = scaled.isFinite ? min(Float(n - 1 - maxExact), max(0, scaled)) : Float(n - 1 - maxExact)
        return base + min(maxExact + Int(large), n - 1)
    }

    /// buckets[i·tk + j] for queries `firstQuery`..<firstQuery+tq over keys 0..<tk.
    static func buckets(_ out: UnsafeMutablePointer<Int32>, tq: Int, tk: Int, firstQuery: Int = 0, bidirectional: Bool,
                        buckets: Int, maxDistance: Int) {
        for i in 0..<tq {
            for j in 0..<tk {
                out[i * tk + j] = Int32(bucket(j - (i + firstQuery), bidirectional: bidirectional, buckets: buckets,
                                               maxDistance: maxDistance))
            }
        }
    }

    /// bias[h, i, j] = W[buckets[i·tk + j], h] (W: [num_buckets, heads] at `weight`).
    static func forward(_ bias: Ptr, buckets: UnsafePointer<Int32>, weight: UnsafePointer<Float>, heads: Int, count: Int) {
        for h in 0..<heads {
            let row = bias + h * count
            for e in 0..<count { row[e] = weight[Int(buckets[e]) * heads + h] }
        }
    }

    /// dW[buckets[i·tk + j], h] += dBias[h, i, j].
    static func backward(_ dBias: UnsafePointer<Float>, buckets: UnsafePointer<Int32>, dWeight: Ptr, heads: Int, count: Int) {
        for h in 0..<heads {
            let row = dBias + h * count
            for e in 0..<count { dWeight[Int(buckets[e]) * heads + h] += row[e] }
        }
    }
}

/// What a range of a T5 attention call's (batch, head) pairs needs: BART's plus the position bias
/// ([heads, tq, tk], shared by the batch; nil for cross-attention) and whether backward keeps the
/// scores' gradient (over `probs`) for the bias's gradient.
struct T5AttentionPairs {
    var base: AttentionPairs
    var bias: UnsafePointer<Float>?
    var keepScoreGradients: Bool
}

enum T5AttentionBlock {
    /// out = o(Attention(q(xq), k(xkv), v(xkv))): scores q·kᵀ (no scaling) + bias, key mask
    /// (`keyMask`: batch × tk of 0/1), optional causal mask, dropout on the probabilities.
    /// `shape.dim` is the inner width (heads × d_kv); `modelDim` the inputs' and output's.
    static func forward(_ acts: AttentionActs, _ p: T5AttentionOffsets, params: Ptr, scratch: AttentionScratch,
                        xq: UnsafePointer<Float>, xkv: UnsafePointer<Float>, shape s: AttentionShape, modelDim d: Int,
                        bias: UnsafePointer<Float>?, keyMask: UnsafePointer<Float>?, causal: Bool, dropout: DropoutSite,
                        out: Ptr, work: LaneWork) {
        let nq = s.batch * s.tq, nk = s.batch * s.tk, inner = s.dim
        work.linearForward(y: acts.q, x: xq, weight: params + p.q, bias: nil, rows: nq, inDim: d, outDim: inner)
        // As BART's: one conversion of xkv for K and V (and Q in self-attention) in bf16.
        work.linearForward(y: acts.k, x: xkv, weight: params + p.k, bias: nil, rows: nk, inDim: d, outDim: inner,
                           sameInput: xq == xkv)
        work.linearForward(y: acts.v, x: xkv, weight: params + p.v, bias: nil, rows: nk, inDim: d, outDim: inner, sameInput: true)
        var job = T5AttentionPairs(base: AttentionPairs(acts: acts, scratch: scratch, shape: s, keyMask: keyMask, causal: causal,
                                                        dropout: dropout),
                                   bias: bias, keepScoreGradients: false)
        withUnsafePointer(to: &job) { job in
            work.items(s.batch * s.heads, maxParts: scratch.probTiles.count, job: job) { job, part, lo, hi in
                T5AttentionBlock.forwardPairs(job.assumingMemoryBound(to: T5AttentionPairs.self).pointee, lo..<hi, tile: part)
            }
        }
        work.linearForward(y: out, x: acts.ctx, weight: params + p.o, bias: nil, rows: nq, inDim: inner, outDim: d)
    }

    /// Given dOut, accumulates the weights' gradients, writes (or adds) the inputs' gradients, and,
    /// with `biasGradient` ([heads, tq, tk]), adds the position bias's gradient (summed over the
    /// batch in order). Overwrites `acts.probs` with the scores' gradient. Self-attention: pass the
    /// same `dxq` and `dxkv`.
    static func backward(_ acts: AttentionActs, _ p: T5AttentionOffsets, params: Ptr, grads: Ptr, scratch: AttentionScratch,
                         xq: UnsafePointer<Float>, xkv: UnsafePointer<Float>, shape s: AttentionShape, modelDim d: Int,
                         biasGradient: Ptr?, dropout: DropoutSite, dOut: UnsafePointer<Float>,
                         dxq: Ptr, dxkv: Ptr, accumulateDxkv: Bool, work: LaneWork) {
        let nq = s.batch * s.tq, nk = s.batch * s.tk, inner = s.dim
        work.linearBackwardInput(dx: scratch.dctx, dy: dOut, weight: params + p.o, rows: nq, inDim: inner, outDim: d)
        work.postWeightGradient(dy: dOut, x: acts.ctx, dWeight: grads + p.o, dBias: nil, rows: nq, inDim: inner, outDim: d)
        var job = T5AttentionPairs(base: AttentionPairs(acts: acts, scratch: scratch, shape: s, keyMask: nil, causal: false,
                                                        dropout: dropout),
                                   bias: nil, keepScoreGradients: biasGradient != nil)
        withUnsafePointer(to: &job) { job in
            work.items(s.batch * s.heads, maxParts: scratch.probTiles.count, job: job) { job, part, lo, hi in
                T5AttentionBlock.backwardPairs(job.assumingMemoryBound(to: T5AttentionPairs.self).pointee, lo..<hi, tile: part)
            }
        }
        if let biasGradient {
            Softmax.accumulateBiasGradient(dBias: biasGradient, ldBias: s.tk, dScores: acts.probs, ld: s.tk, rows: s.heads * s.tq,
                                           cols: s.tk, batch: s.batch, batchStride: s.heads * s.tq * s.tk)
        }
        work.postWeightGradient(dy: scratch.dq, x: xq, dWeight: grads + p.q, dBias: nil, rows: nq, inDim: d, outDim: inner)
        work.postWeightGradient(dy: scratch.dk, x: xkv, dWeight: grads + p.k, dBias: nil, rows: nk, inDim: d, outDim: inner)
        work.postWeightGradient(dy: scratch.dv, x: xkv, dWeight: grads + p.v, dBias: nil, rows: nk, inDim: d, outDim: inner)
        let selfAttention = dxq == dxkv
        work.linearBackwardInput(dx: dxq, dy: scratch.dq, weight: params + p.q, rows: nq, inDim: d, outDim: inner)
        work.linearBackwardInput(dx: dxkv, accumulate: selfAttention || accumulateDxkv, dy: scratch.dk, weight: params + p.k,
                                 rows: nk, inDim: d, outDim: inner)
        work.linearBackwardInput(dx: dxkv, accumulate: true, dy: scratch.dv, weight: params + p.v, rows: nk, inDim: d, outDim: inner)
        work.settle()
    }

    /// Scores (+ bias), softmax, dropout and P·V for pairs `pairs`, with probability tile `tile`.
    static func forwardPairs(_ j: T5AttentionPairs, _ pairs: Range<Int>, tile t: Int) {
        let s = j.base.shape, acts = j.base.acts, dropout = j.base.dropout, d = s.dim, dh = s.headDim
        let tile = s.tq * s.tk, dropBase = dropout.base(s.batch * s.heads * tile)
        let probTile = j.base.scratch.probTiles[t], hs = j.base.scratch.headTiles[t]
        for pair in pairs {
            let b = pair / s.heads, h = pair % s.heads
            let pbh = acts.probs + pair * tile
            HeadGemm.run(transA: false, transB: true, m: s.tq, n: s.tk, k: dh, a: acts.q + b * s.tq * d + h * dh, lda: d,
                         b: acts.k + b * s.tk * d + h * dh, ldb: d, c: pbh, ldc: s.tk, scratch: hs)
            let mask = j.base.keyMask.map { $0 + b * s.tk }
            if let bias = j.bias {
                Softmax.forward(pbh, rows: s.tq, cols: s.tk, ld: s.tk, bias: bias + h * tile, biasLd: s.tk, keyMask: mask,
                                causal: j.base.causal)
            } else {
                Softmax.forward(pbh, rows: s.tq, cols: s.tk, ld: s.tk, keyMask: mask, causal: j.base.causal)
            }
            var used = UnsafePointer(pbh)
            if dropout.p > 0 {
                Dropout.apply(probTile, pbh, count: tile, p: dropout.p, seed: dropout.seed, stream: dropout.stream,
                              offset: dropBase + pair * tile)
                used = UnsafePointer(probTile)
            }
            HeadGemm.run(transA: false, transB: false, m: s.tq, n: dh, k: s.tk, a: used, lda: s.tk, b: acts.v + b * s.tk * d + h * dh,
                         ldb: d, c: acts.ctx + b * s.tq * d + h * dh, ldc: d, scratch: hs)
        }
    }

    /// dQ, dK, dV of pairs `pairs` from dctx (in scratch), with probability tiles `tile`; the
    /// scores' gradient is left over `probs` when kept.
    static func backwardPairs(_ j: T5AttentionPairs, _ pairs: Range<Int>, tile t: Int) {
        let s = j.base.shape, acts = j.base.acts, scratch = j.base.scratch, dropout = j.base.dropout, d = s.dim, dh = s.headDim
        let tile = s.tq * s.tk, dropBase = dropout.base(s.batch * s.heads * tile)
        let probTile = scratch.probTiles[t], dprobTile = scratch.dprobTiles[t], hs = scratch.headTiles[t]
        for pair in pairs {
            let b = pair / s.heads, h = pair % s.heads
            let off = b * s.tq * d + h * dh, koff = b * s.tk * d + h * dh
            let pbh = acts.probs + pair * tile, dctx = scratch.dctx + off
            HeadGemm.run(transA: false, transB: true, m: s.tq, n: s.tk, k: dh, a: dctx, lda: d, b: acts.v + koff, ldb: d,
                         c: dprobTile, ldc: s.tk, scratch: hs)
            var used = UnsafePointer(pbh)
            if dropout.p > 0 {
                Dropout.apply(probTile, pbh, count: tile, p: dropout.p, seed: dropout.seed, stream: dropout.stream,
                              offset: dropBase + pair * tile)
                used = UnsafePointer(probTile)
                Dropout.apply(dprobTile, dprobTile, count: tile, p: dropout.p, seed: dropout.seed, stream: dropout.stream,
                              offset: dropBase + pair * tile)
            }
            HeadGemm.run(transA: true, transB: false, m: s.tk, n: dh, k: s.tq, a: used, lda: s.tk, b: dctx, ldb: d,
                         c: scratch.dv + koff, ldc: d, scratch: hs)
            Softmax.backward(dprobTile, p: pbh, rows: s.tq, cols: s.tk, ld: s.tk)
            // scores = Q·Kᵀ (+ bias): dQ = dS·K, dK = dSᵀ·Q, dBias = Σ_b dS.
            HeadGemm.run(transA: false, transB: false, m: s.tq, n: dh, k: s.tk, a: dprobTile, lda: s.tk, b: acts.k + koff, ldb: d,
                         c: scratch.dq + off, ldc: d, scratch: hs)
            HeadGemm.run(transA: true, transB: false, m: s.tk, n: dh, k: s.tq, a: dprobTile, lda: s.tk, b: acts.q + off, ldb: d,
                         c: scratch.dk + koff, ldc: d, scratch: hs)
            if j.keepScoreGradients { pbh.update(from: dprobTile, count: tile) }
        }
    }
}

/// Every place T5 drops out, by name (all with `dropout_rate`): forward and backward ask for the
/// same site, which fixes its mask stream.
enum T5DropoutSite: Equatable {
    case encoderEmbedding
    case encoder(Int, EncoderBlockSite)
    /// After the encoder's final_layer_norm.
    case encoderFinal
    case decoderEmbedding
    case decoder(Int, DecoderBlockSite)
    /// After the decoder's final_layer_norm.
    case decoderFinal

    /// The sites of encoder block l (raw values are part of the stream ids: never renumber).
    enum EncoderBlockSite: UInt32 {
        case attentionProbabilities = 0, attentionOutput = 1, activation = 2, ffnOutput = 3
    }

    /// The sites of decoder block l (raw values are part of the stream ids: never renumber).
    enum DecoderBlockSite: UInt32 {
        case selfAttentionProbabilities = 0, selfAttentionOutput = 1, crossAttentionProbabilities = 2
        case crossAttentionOutput = 3, activation = 4, ffnOutput = 5
    }

    /// The mask stream: encoder sites from 1000, decoder sites from 100 000, 16 per block, the
    /// embedding's first, the final norm's 15.
    var stream: UInt32 {
        switch self {
        case .encoderEmbedding: return 1000
        case let .encoder(l, k): return 1000 + 16 * UInt32(l + 1) + k.rawValue
        case .encoderFinal: return 1015
        case .decoderEmbedding: return 100_000
        case let .decoder(l, k): return 100_000 + 16 * UInt32(l + 1) + k.rawValue
        case .decoderFinal: return 100_015
        }
    }
}

/// T5's dropout probability and the seed of one step, and the rows of the batch a lane runs.
struct T5DropoutPlan {
    var p: Float
    var seed: UInt64
    var firstRow = 0
    var rows = 1

    init(config: T5Config, training: Bool, seed: UInt64) {
        p = training ? Float(config.dropoutRate) : 0
        self.seed = seed
    }

    private init(p: Float, seed: UInt64) {
        self.p = p; self.seed = seed
    }

    /// No dropout anywhere.
    static let off = T5DropoutPlan(p: 0, seed: 0)

    /// The plan for the lane that runs `rows` of the batch.
    func lane(_ rows: Range<Int>) -> T5DropoutPlan {
        var d = self
        d.firstRow = rows.lowerBound
        d.rows = max(1, rows.count)
        return d
    }

    /// The site's probability and mask stream for this step and lane.
    func site(_ site: T5DropoutSite) -> DropoutSite {
        DropoutSite(p: p, seed: seed, stream: site.stream, firstRow: firstRow, rows: rows)
    }
}
