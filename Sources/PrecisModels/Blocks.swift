import PrecisCore

/// Shared transformer building blocks over the flat parameter buffer. Each block is a pair of
/// `forward`/`backward` functions over explicit buffers; offsets address the block's parameters in
/// the flat buffer and in its gradient mirror.

typealias Ptr = UnsafeMutablePointer<Float>

/// Where a block's backward sends its weight-gradient products: run at once (one lane), or posted to
/// the step's `WorkBoard` so that a lane with nothing left to do can run them (several lanes). A
/// block `settle`s before it returns, so its scratch can be reused.
struct LaneWork {
    var board: WorkBoard?
    var lane = 0
    /// With bf16 products (`MatmulPrecision.bf16`): the model's packed weights and this lane's
    /// converted activations; nil for fp32.
    var bf16: BF16Lane? = nil
    /// Where this lane's forward waits for parameters still arriving (`ParameterGate`; closed, so
    /// nothing waits, in every pass but a worker's overlapped pull; nil outside `LaneRunner`).
    var gate: ParameterGate? = nil
    /// How many of backward's reported ranges this lane's forward has asked for so far.
    private(set) var rangesNeeded = 0

    /// Forward is about to read the next of backward's reported ranges in forward's order (the
    /// reverse of backward's): returns once it is in (see `ParameterGate`). Every lane's forward
    /// asks for each range exactly once, in order, before it first reads it; `LaneRunner` checks
    /// the count.
    mutating func needParameters() {
        rangesNeeded += 1
        gate?.reach(rangesNeeded)
    }

    func post(_ task: GemmTask) {
        var task = task
        task.bf16 = bf16?.weights.kernel
        if let board { board.post(lane, task) } else { task.run() }
    }

    /// Posts dW += dyᵀ·x (and db += Σ dy) of a layer with `outDim` outputs, cut into `tiles` products
    /// by rows of W (fixed cuts, so the result does not depend on who runs which).
    func postWeightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dWeight: Ptr, dBias: Ptr?,
                            rows: Int, inDim: Int, outDim: Int, tiles: Int = 1) {
        let tiles = board == nil ? 1 : tiles
        for i in 0..<tiles {
            let lo = (outDim * i / tiles) & ~15, hi = i == tiles - 1 ? outDim : (outDim * (i + 1) / tiles) & ~15
            if hi > lo {
                post(.weightGradient(dy: dy, x: x, dWeight: dWeight, dBias: dBias, rows: rows, inDim: inDim, outDim: outDim,
                                     outputs: lo, hi))
            }
        }
    }

    func settle() { board?.settle(lane) }

    /// How many parts shared chain work is cut into (fixed cuts; whoever is free takes the next
    /// part). Four parts let a faster helper take more than half, but the smaller products cost
    /// more than that gained here (interleaved: 309 vs 287 ms per step, 5 rounds): two.
    static let parts = 2

    /// Runs `run(job, part, lo, hi)` over 0..<count: in up to `parts` parts (fixed cuts) that this
    /// lane and a lane with nothing left to do run at once; without a board, in up to `maxParts`
    /// parts spread over the compute workers. `job` must stay valid until this returns; parts must
    /// write disjoint memory (scratch of their own is chosen by `part`, below `maxParts`).
    func items(_ count: Int, maxParts: Int, job: UnsafeRawPointer, _ run: ItemsTask.Body) {
        let parts = min(Self.parts, count, maxParts)
        guard let board, parts >= 2 else {
            Parallel.chunks(count, maxParts: maxParts) { part, r in run(job, part, r.lowerBound, r.upperBound) }
            return
        }
        let first = board.mark(lane)
        for i in 0..<parts {
            board.post(lane, .items(ItemsTask(run: run, job: job, part: i, lo: count * i / parts, hi: count * (i + 1) / parts)))
        }
        board.settle(lane, from: first)
    }

    /// C = alpha·op(A)·op(B) + beta·C as `BLAS.gemm`; with a board, a product this large is cut into
    /// `parts` blocks of C's rows (fixed cuts) that this lane and a lane with nothing left to do run
    /// at once. Returns when all are done (products posted before stay open).
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float, c: Ptr, ldc: Int) {
        guard let board, m >= 128, m * n * k >= 1 << 26 else {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc)
            return
        }
        let first = board.mark(lane), parts = Self.parts
        for i in 0..<parts {
            let lo = (m * i / parts) & ~7, hi = i == parts - 1 ? m : (m * (i + 1) / parts) & ~7
            // Row i of op(A) starts at a + i·lda, or at a + i when A is transposed.
            board.post(lane, GemmTask(transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                                      a: transA ? a + lo : a + lo * lda, lda: lda, b: b, ldb: ldb,
                                      beta: beta, c: c + lo * ldc, ldc: ldc))
        }
        board.settle(lane, from: first)
    }

    /// y[rows × outDim] = x · Wᵀ + b (`Linear.forward`), through `gemm`, or in bf16 with the
    /// weight's packed copy. `sameInput`: x is the input of this lane's previous `linearForward`,
    /// unchanged since (the projections of one attention input), so in bf16 its converted copy is
    /// used again instead of converting it once more.
    func linearForward(y: Ptr, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                       rows: Int, inDim: Int, outDim: Int, sameInput: Bool = false) {
        if let b = bias { Linear.fill(y, rowsWith: b, rows: rows, cols: outDim) }
        if let bf16, let packed = bf16.weights.forward(weight) {
            if sameInput {
                precondition(bf16.forwardInput.map { $0.x == x && $0.rows == rows && $0.inDim == inDim } ?? false, "sameInput: x is not the previous forward product's input")
            } else {
                // The shapes come from the model's own layers: they always fit.
                try! bf16.rows.load(x, lda: inDim, transposed: false, m: rows, k: inDim)
                bf16.forwardInput = (x, rows, inDim)
            }
            bf16Product(bf16, packed, beta: bias == nil ? 0 : 1, c: y, ldc: outDim)
            return
        }
        gemm(transA: false, transB: true, m: rows, n: outDim, k: inDim, a: x, lda: inDim, b: weight, ldb: inDim,
             beta: bias == nil ? 0 : 1, c: y, ldc: outDim)
    }

    /// dx (= or +=) dy · W (`Linear.backwardInput`), through `gemm`.
    func linearBackwardInput(dx: Ptr, accumulate: Bool = false, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             rows: Int, inDim: Int, outDim: Int) {
        if let bf16, let packed = bf16.weights.backward(weight) {
            try! bf16.rows.load(dy, lda: outDim, transposed: false, m: rows, k: outDim)
            bf16.forwardInput = nil
            bf16Product(bf16, packed, beta: accumulate ? 1 : 0, c: dx, ldc: inDim)
            return
        }
        gemm(transA: false, transB: false, m: rows, n: inDim, k: outDim, a: dy, lda: outDim, b: weight, ldb: inDim,
             beta: accumulate ? 1 : 0, c: dx, ldc: inDim)
    }
    /// C = A · B + beta · C with A the lane's bf16 rows (converted by the caller) and B a packed
    /// weight; with a board, a product this large is cut into `parts` blocks of 48 rows of C that
    /// this lane and a lane with nothing left to do run at once (fixed cuts, as `gemm`).
    private func bf16Product(_ l: BF16Lane, _ packed: PackedBF16Matrix, beta: Float, c: Ptr, ldc: Int) {
        let m = l.rows.m, n = packed.n, k = l.rows.k, blocks = (m + 47) / 48
        guard let board, blocks >= Self.parts, m * n * k >= 1 << 26 else {
            try! BF16Gemm.multiply(l.rows, packed, beta: beta, c: c, ldc: ldc, kernel: l.weights.kernel)
            return
        }
        let first = board.mark(lane)
        for i in 0..<Self.parts {
            let lo = blocks * i / Self.parts * 48, hi = min(m, blocks * (i + 1) / Self.parts * 48)
            if hi > lo {
                board.post(lane, .bf16Rows(BF16RowsTask(kernel: l.weights.kernel, a: l.rows, b: packed, beta: beta, c: c, ldc: ldc,
                                                        rows: lo..<hi)))
            }
        }
        board.settle(lane, from: first)
    }
}

/// What one lane needs for bf16 products: the model's packed weights (shared by the lanes) and
/// the lane's own activations converted to bf16 (kept between products, grown when a product
/// needs more).
final class BF16Lane {
    let weights: BF16Weights
    var rows: BF16Rows
    /// What `rows` holds when the last product converted a forward input: x, its rows and width
    /// (checked by `LaneWork.linearForward(sameInput:)`); nil after any other conversion.
    var forwardInput: (x: UnsafePointer<Float>, rows: Int, inDim: Int)?

    init(weights: BF16Weights) {
        self.weights = weights
        rows = try! BF16Rows(capacityRows: 0, k: 0)
    }
}

/// Parameters (flat-buffer offsets) of a LayerNorm.
struct NormOffsets {
    var weight: Int
    var bias: Int
}

/// Saved activations of a LayerNorm: normalised input, 1/σ per row, and the output; and the mask of
/// the dropout applied just before it (the residual branch's, or the embeddings'), one bit per value,
/// so backward reuses it instead of drawing it again.
struct NormActs {
    var xhat: Ptr
    var rstd: Ptr
    var y: Ptr
    var dropMask: UnsafeMutablePointer<UInt8>

    init(_ a: Arena, rows: Int, dim: Int) {
        xhat = a.floats(rows * dim); rstd = a.floats(rows); y = a.floats(rows * dim)
        dropMask = a.bytes((rows * dim + 7) / 8)
    }

    func forward(_ x: UnsafePointer<Float>, _ p: NormOffsets, params: Ptr, rows: Int, dim: Int, eps: Float) {
        LayerNorm.forward(y: y, xhat: xhat, rstd: rstd, x: x, gamma: params + p.weight, beta: params + p.bias,
                          rows: rows, dim: dim, eps: eps)
    }

    /// dx = LN'(dy); dx may alias dy.
    func backward(dx: Ptr, dy: UnsafePointer<Float>, _ p: NormOffsets, params: Ptr, grads: Ptr, rows: Int, dim: Int) {
        LayerNorm.backward(dx: dx, dy: dy, xhat: xhat, rstd: rstd, gamma: params + p.weight,
                           dgamma: grads + p.weight, dbeta: grads + p.bias, rows: rows, dim: dim)
    }
}

/// Parameters of a multi-head attention module (q, k, v, out projections with biases).
struct AttentionOffsets {
    var qw: Int, qb: Int, kw: Int, kb: Int, vw: Int, vb: Int, ow: Int, ob: Int
}

/// Shapes of one attention call: `batch` sequences, `tq` query and `tk` key positions.
struct AttentionShape {
    var batch: Int
    var tq: Int
    var tk: Int
    var dim: Int
    var heads: Int
    var headDim: Int { dim / heads }
}

/// Scratch shared by all attention calls of a model (sized for the largest).
struct AttentionScratch {
    var dctx: Ptr, dq: Ptr, dk: Ptr, dv: Ptr
    /// Per worker: one (tq × tk) tile for dropped-out probabilities and one for their gradient, and
    /// the scratch of its `HeadGemm` products.
    var probTiles: [Ptr], dprobTiles: [Ptr], headTiles: [Ptr]

    init(_ a: Arena, maxRows: Int, dim: Int, maxTile: Int, headScratch: Int, workers: Int) {
        dctx = a.floats(maxRows * dim); dq = a.floats(maxRows * dim)
        dk = a.floats(maxRows * dim); dv = a.floats(maxRows * dim)
        probTiles = (0..<workers).map { _ in a.floats(maxTile) }
        dprobTiles = (0..<workers).map { _ in a.floats(maxTile) }
        headTiles = (0..<workers).map { _ in a.floats(headScratch) }
    }
}

/// Saved activations of one attention call.
struct AttentionActs {
    /// Queries (rows × dim, unscaled: 1/√headDim is applied as the score GEMM's alpha), keys and
    /// values (key rows × dim), probabilities
    /// (batch × heads × tq × tk, before dropout) and the per-head context (rows × dim).
    var q: Ptr, k: Ptr, v: Ptr, probs: Ptr, ctx: Ptr

    init(_ a: Arena, batch: Int, tq: Int, tk: Int, dim: Int, heads: Int) {
        q = a.floats(batch * tq * dim); k = a.floats(batch * tk * dim); v = a.floats(batch * tk * dim)
        probs = a.floats(batch * heads * tq * tk); ctx = a.floats(batch * tq * dim)
    }
}

/// Dropout settings of one call site: probability, the step's seed and a stream unique to the site.
struct DropoutSite {
    var p: Float
    var seed: UInt64
    var stream: UInt32
    /// The rows of the batch this call covers (a lane's slice, see `BartModel.forward`): mask offsets
    /// are those the elements have in the whole batch, so a mask does not depend on the split.
    var firstRow = 0
    var rows = 1

    /// Where this lane's first element sits in the whole batch's stream, for a tensor of `count`
    /// elements over this lane's rows.
    @inline(__always)
    func base(_ count: Int) -> Int { firstRow * (count / rows) }

    func apply(_ x: Ptr, count: Int) {
        if p > 0 { Dropout.apply(x, x, count: count, p: p, seed: seed, stream: stream, offset: base(count)) }
    }

    /// dst = dropout(src), recording the mask in `mask` (src may be dst).
    func apply(_ dst: Ptr, _ src: UnsafePointer<Float>, count: Int, recordingTo mask: UnsafeMutablePointer<UInt8>) {
        Dropout.apply(dst, src, count: count, p: p, seed: seed, stream: stream, offset: base(count), recordingTo: mask)
    }

    /// dst = src with the mask a forward call recorded (src may be dst).
    func applyRecorded(_ dst: Ptr, _ src: UnsafePointer<Float>, count: Int, mask: UnsafePointer<UInt8>) {
        Dropout.applyRecorded(dst, src, count: count, p: p, bits: mask)
    }
}

enum AttentionBlock {
    /// out = Attention(xq, xkv) with BART's projections: scores q·kᵀ/√headDim, additive key mask
    /// (`keyMask`: batch × tk of 0/1, nil for none), optional causal mask, dropout on probabilities.
    static func forward(
        _ acts: AttentionActs, _ p: AttentionOffsets, params: Ptr, scratch: AttentionScratch,
        xq: UnsafePointer<Float>, xkv: UnsafePointer<Float>, shape s: AttentionShape,
        keyMask: UnsafePointer<Float>?, causal: Bool, dropout: DropoutSite, out: Ptr, work: LaneWork
    ) {
        let nq = s.batch * s.tq, nk = s.batch * s.tk, d = s.dim
        // K and V read one input, and self-attention's Q reads it too: in bf16 it is converted once.
        work.linearForward(y: acts.q, x: xq, weight: params + p.qw, bias: params + p.qb, rows: nq, inDim: d, outDim: d)
        work.linearForward(y: acts.k, x: xkv, weight: params + p.kw, bias: params + p.kb, rows: nk, inDim: d, outDim: d,
                           sameInput: xq == xkv)
        work.linearForward(y: acts.v, x: xkv, weight: params + p.vw, bias: params + p.vb, rows: nk, inDim: d, outDim: d,
                           sameInput: true)
        // (batch, head) pairs are independent: two halves another lane can take, each with its own tile.
        var job = AttentionPairs(acts: acts, scratch: scratch, shape: s, keyMask: keyMask, causal: causal, dropout: dropout)
        withUnsafePointer(to: &job) { job in
            work.items(s.batch * s.heads, maxParts: scratch.probTiles.count, job: job) { job, part, lo, hi in
                AttentionBlock.forwardPairs(job.assumingMemoryBound(to: AttentionPairs.self).pointee, lo..<hi, tile: part)
            }
        }
        work.linearForward(y: out, x: acts.ctx, weight: params + p.ow, bias: params + p.ob, rows: nq, inDim: d, outDim: d)
    }

    /// Given dOut, accumulates parameter gradients and writes (or adds) the input gradients.
    /// Self-attention (xq == xkv): pass the same `dxq` and `dxkv`; it receives all three paths.
    /// The four weight gradients go to `work` as soon as their inputs exist; the block settles them
    /// before it returns.
    static func backward(
        _ acts: AttentionActs, _ p: AttentionOffsets, params: Ptr, grads: Ptr, scratch: AttentionScratch,
        xq: UnsafePointer<Float>, xkv: UnsafePointer<Float>, shape s: AttentionShape, dropout: DropoutSite,
        dOut: UnsafePointer<Float>, dxq: Ptr, accumulateDxq: Bool, dxkv: Ptr, accumulateDxkv: Bool, work: LaneWork
    ) {
        let nq = s.batch * s.tq, nk = s.batch * s.tk, d = s.dim
        work.linearBackwardInput(dx: scratch.dctx, dy: dOut, weight: params + p.ow, rows: nq, inDim: d, outDim: d)
        work.postWeightGradient(dy: dOut, x: acts.ctx, dWeight: grads + p.ow, dBias: grads + p.ob, rows: nq, inDim: d, outDim: d)
        var job = AttentionPairs(acts: acts, scratch: scratch, shape: s, keyMask: nil, causal: false, dropout: dropout)
        withUnsafePointer(to: &job) { job in
            work.items(s.batch * s.heads, maxParts: scratch.probTiles.count, job: job) { job, part, lo, hi in
                AttentionBlock.backwardPairs(job.assumingMemoryBound(to: AttentionPairs.self).pointee, lo..<hi, tile: part)
            }
        }
        work.postWeightGradient(dy: scratch.dq, x: xq, dWeight: grads + p.qw, dBias: grads + p.qb, rows: nq, inDim: d, outDim: d)
        work.postWeightGradient(dy: scratch.dk, x: xkv, dWeight: grads + p.kw, dBias: grads + p.kb, rows: nk, inDim: d, outDim: d)
        work.postWeightGradient(dy: scratch.dv, x: xkv, dWeight: grads + p.vw, dBias: grads + p.vb, rows: nk, inDim: d, outDim: d)
        work.linearBackwardInput(dx: dxq, accumulate: accumulateDxq, dy: scratch.dq, weight: params + p.qw, rows: nq, inDim: d, outDim: d)
        let selfAttention = dxq == dxkv
        work.linearBackwardInput(dx: dxkv, accumulate: selfAttention || accumulateDxkv, dy: scratch.dk, weight: params + p.kw,
                             rows: nk, inDim: d, outDim: d)
        work.linearBackwardInput(dx: dxkv, accumulate: true, dy: scratch.dv, weight: params + p.vw, rows: nk, inDim: d, outDim: d)
        work.settle()
    }
}

/// What a range of an attention call's (batch, head) pairs needs (see `AttentionBlock`): each pair
/// reads its slices of q, k, v (and their gradients' inputs) and writes its own slices of the
/// outputs, so ranges of pairs can run on different threads, each with its own probability tiles.
struct AttentionPairs {
    var acts: AttentionActs
    var scratch: AttentionScratch
    var shape: AttentionShape
    var keyMask: UnsafePointer<Float>?
    var causal: Bool
    var dropout: DropoutSite
}

extension AttentionBlock {
    /// Scores, softmax, dropout and P·V for pairs `pairs`, with probability tile `tile`.
    static func forwardPairs(_ j: AttentionPairs, _ pairs: Range<Int>, tile t: Int) {
        let s = j.shape, acts = j.acts, dropout = j.dropout, d = s.dim, dh = s.headDim
        let scaling = 1 / Float(dh).squareRoot()
        let tile = s.tq * s.tk, dropBase = dropout.base(s.batch * s.heads * tile)
        let probTile = j.scratch.probTiles[t], hs = j.scratch.headTiles[t]
        for pair in pairs {
            let b = pair / s.heads, h = pair % s.heads
            let qbh = acts.q + b * s.tq * d + h * dh
            let kbh = acts.k + b * s.tk * d + h * dh
            let vbh = acts.v + b * s.tk * d + h * dh
            let pbh = acts.probs + (b * s.heads + h) * tile
            HeadGemm.run(transA: false, transB: true, m: s.tq, n: s.tk, k: dh, alpha: scaling, a: qbh, lda: d, b: kbh, ldb: d,
                         c: pbh, ldc: s.tk, scratch: hs)
            Softmax.forward(pbh, rows: s.tq, cols: s.tk, ld: s.tk,
                            keyMask: j.keyMask.map { $0 + b * s.tk }, causal: j.causal)
            var used = UnsafePointer(pbh)
            if dropout.p > 0 {
                Dropout.apply(probTile, pbh, count: tile, p: dropout.p, seed: dropout.seed,
                              stream: dropout.stream, offset: dropBase + pair * tile)
                used = UnsafePointer(probTile)
            }
            HeadGemm.run(transA: false, transB: false, m: s.tq, n: dh, k: s.tk, a: used, lda: s.tk, b: vbh, ldb: d,
                         c: acts.ctx + b * s.tq * d + h * dh, ldc: d, scratch: hs)
        }
    }

    /// dQ, dK, dV of pairs `pairs` from dctx (in scratch), with probability tiles `tile`.
    static func backwardPairs(_ j: AttentionPairs, _ pairs: Range<Int>, tile t: Int) {
        let s = j.shape, acts = j.acts, scratch = j.scratch, dropout = j.dropout, d = s.dim, dh = s.headDim
        let tile = s.tq * s.tk, scaling = 1 / Float(dh).squareRoot(), dropBase = dropout.base(s.batch * s.heads * tile)
        let probTile = scratch.probTiles[t], dprobTile = scratch.dprobTiles[t], hs = scratch.headTiles[t]
        for pair in pairs {
            let b = pair / s.heads, h = pair % s.heads
            let off = b * s.tq * d + h * dh, koff = b * s.tk * d + h * dh
            let pbh = acts.probs + pair * tile
            let dctx = scratch.dctx + off
            // dP' = dctx · Vᵀ
            HeadGemm.run(transA: false, transB: true, m: s.tq, n: s.tk, k: dh, a: dctx, lda: d, b: acts.v + koff, ldb: d,
                         c: dprobTile, ldc: s.tk, scratch: hs)
            var used = UnsafePointer(pbh)
            if dropout.p > 0 {
                Dropout.apply(probTile, pbh, count: tile, p: dropout.p, seed: dropout.seed,
                              stream: dropout.stream, offset: dropBase + pair * tile)
                used = UnsafePointer(probTile)
                Dropout.apply(dprobTile, dprobTile, count: tile, p: dropout.p, seed: dropout.seed,
                              stream: dropout.stream, offset: dropBase + pair * tile)
            }
            // dV = P'ᵀ · dctx
            HeadGemm.run(transA: true, transB: false, m: s.tk, n: dh, k: s.tq, a: used, lda: s.tk, b: dctx, ldb: d,
                         c: scratch.dv + koff, ldc: d, scratch: hs)
            Softmax.backward(dprobTile, p: pbh, rows: s.tq, cols: s.tk, ld: s.tk)
            // scores = s·Q·Kᵀ, so dQ = s·dS·K and dK = s·dSᵀ·Q
            HeadGemm.run(transA: false, transB: false, m: s.tq, n: dh, k: s.tk, alpha: scaling, a: dprobTile, lda: s.tk,
                         b: acts.k + koff, ldb: d, c: scratch.dq + off, ldc: d, scratch: hs)
            HeadGemm.run(transA: true, transB: false, m: s.tk, n: dh, k: s.tq, alpha: scaling, a: dprobTile, lda: s.tk,
                         b: acts.q + off, ldb: d, c: scratch.dk + koff, ldc: d, scratch: hs)
        }
    }
}

/// Parameters of a position-wise feed-forward block (fc1 → activation → fc2).
struct FeedForwardOffsets {
    var w1: Int, b1: Int, w2: Int, b2: Int
}

/// Saved activations of a feed-forward block: fc1's output before the activation. The activation's
/// output (fc2's input) is not kept: backward recomputes it from this, in place (so backward consumes
/// `pre`), in the same pass that takes the activation's gradient; that saves rows × ffn floats per
/// layer for one pointwise pass.
struct FeedForwardActs {
    var pre: Ptr

    init(_ a: Arena, rows: Int, ffn: Int) {
        pre = a.floats(rows * ffn)
    }
}

enum FeedForwardBlock {
    /// out = fc2(dropout(act(fc1(x)))); `hidden` is scratch of rows × ffn.
    static func forward(
        _ acts: FeedForwardActs, _ p: FeedForwardOffsets, params: Ptr, x: UnsafePointer<Float>,
        rows: Int, dim: Int, ffn: Int, activation: Activation, dropout: DropoutSite, out: Ptr, hidden: Ptr, work: LaneWork
    ) {
        work.linearForward(y: acts.pre, x: x, weight: params + p.w1, bias: params + p.b1, rows: rows, inDim: dim, outDim: ffn)
        activation.forward(hidden, acts.pre, rows * ffn)
        dropout.apply(hidden, count: rows * ffn)
        work.linearForward(y: out, x: hidden, weight: params + p.w2, bias: params + p.b2, rows: rows, inDim: ffn, outDim: dim)
    }

    /// dx (= or +=) gradient through the block; `hidden` is scratch of rows × ffn. Overwrites `acts.pre`.
    /// Both weight gradients go to `work` before fc1's input gradient is taken; the block settles them
    /// before it returns.
    static func backward(
        _ acts: FeedForwardActs, _ p: FeedForwardOffsets, params: Ptr, grads: Ptr, x: UnsafePointer<Float>,
        rows: Int, dim: Int, ffn: Int, activation: Activation, dropout: DropoutSite,
        dOut: UnsafePointer<Float>, dx: Ptr, accumulateDx: Bool, hidden: Ptr, work: LaneWork
    ) {
        // The gradient of fc2's input, then of the activation's input; the activation's output is
        // recomputed in place over `pre` on the way (the same mask: dropout is a function of position).
        work.linearBackwardInput(dx: hidden, dy: dOut, weight: params + p.w2, rows: rows, inDim: ffn, outDim: dim)
        dropout.apply(hidden, count: rows * ffn)
        activation.backwardRecomputing(x: acts.pre, grad: hidden, rows * ffn)
        dropout.apply(acts.pre, count: rows * ffn)
        work.postWeightGradient(dy: dOut, x: acts.pre, dWeight: grads + p.w2, dBias: grads + p.b2,
                                rows: rows, inDim: ffn, outDim: dim)
        work.postWeightGradient(dy: hidden, x: x, dWeight: grads + p.w1, dBias: grads + p.b1,
                                rows: rows, inDim: dim, outDim: ffn)
        work.linearBackwardInput(dx: dx, accumulate: accumulateDx, dy: hidden, weight: params + p.w1, rows: rows, inDim: dim, outDim: ffn)
        work.settle()
    }
}
