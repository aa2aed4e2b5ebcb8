import PrecisCore

/// The bf16 copies of the weights an incremental decoder multiplies by (`MatmulPrecision.bf16`):
/// op(B) = Wᵀ of each, for y = x·Wᵀ, packed once from the parameters' values when made. Read-only
/// afterwards; a generation cache keeps it while the parameters keep their fingerprint
/// (`ParameterFingerprint`) and the kernel is the same.
final class DecoderBF16Weights {
    let kernel: BF16Kernel
    /// Offset of a weight's first float in the parameter buffer → its packed copy.
    private let packs: [Int: PackedBF16Matrix]

    /// Packs every weight of `entries` (W [outDim × inDim] at `offset` in `params`); an offset listed
    /// twice is packed once.
    init(kernel: BF16Kernel, params: UnsafePointer<Float>, entries: [BF16Weights.Entry]) {
        self.kernel = kernel
        var packs: [Int: PackedBF16Matrix] = [:]
        for e in entries where packs[e.offset] == nil {
            // The shapes are the model's own layers': they always pack.
            packs[e.offset] = try! PackedBF16Matrix(params + e.offset, ldb: e.inDim, transposed: true, k: e.inDim, n: e.outDim)
        }
        self.packs = packs
    }

    /// The packed Wᵀ of the weight at `offset` (one of the entries it was made with).
    func forward(_ offset: Int) -> PackedBF16Matrix {
        guard let p = packs[offset] else { preconditionFailure("no bf16 copy of the weight at offset \(offset)") }
        return p
    }
}

/// An incremental decoder's bf16 products: its weights' packed copies and the activations of the
/// product at hand converted to bf16, in storage kept between products (grown when a product
/// needs more, so a token's products allocate nothing once the first step has run).
final class DecoderBF16Products {
    var weights: DecoderBF16Weights
    private var rows: BF16Rows

    init(weights: DecoderBF16Weights, rows: Int, inDim: Int) {
        self.weights = weights
        // Non-negative dimensions of the decoder's own buffers: cannot throw.
        self.rows = try! BF16Rows(capacityRows: rows, k: inDim)
    }

    /// y[m × W.outDim] (row stride `ldy`) = x[m × inDim]·Wᵀ (+ bias) for the weight at `weight`, as
    /// the training forward runs it (`LaneWork.linearForward`): the bias is written first, then the
    /// product is added to it with fp32 accumulation.
    func linear(y: UnsafeMutablePointer<Float>, ldy: Int, x: UnsafePointer<Float>, m: Int, weight: Int,
                bias: UnsafePointer<Float>?) {
        let w = weights.forward(weight)
        if let bias { for r in 0..<m { (y + r * ldy).update(from: bias, count: w.n) } }
        // x is a decoder buffer of m rows of the weight's input width, and ldy ≥ W.outDim: cannot throw.
        try! rows.load(x, lda: w.k, transposed: false, m: m, k: w.k)
        try! BF16Gemm.multiply(rows, w, beta: bias == nil ? 0 : 1, c: y, ldc: ldy, kernel: weights.kernel)
    }
}

/// What tells a generation cache that the parameters changed since it packed its copies of the
/// weights: per buffer, the sum of squares, the sum, and a sum weighted by position, which sees
/// values that only moved (two swapped) where the plain sums see at most their rounding (a few
/// passes over the buffer, a fraction of the packing cost). Equal fingerprints are taken for
/// equal parameters.
struct ParameterFingerprint: Equatable {
    private var sums: [Double] = []

    init(_ buffers: [FloatBuffer]) {
        for b in buffers {
            sums.append(Vec.sumOfSquares(b.pointer, b.count))
            sums.append(Double(Vec.total(b.pointer, b.count)))
            sums.append(Self.positional(b.pointer, b.count))
        }
    }

    /// Σ over blocks of 4096 values of (block + 1) · (block · ramp), ramp[j] = 1 + j / 4096.
    static func positional(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        let block = 4096, blocks = (n + block - 1) / block
        let ramp = (0..<block).map { 1 + Float($0) / Float(block) }
        var partial = [Double](repeating: 0, count: blocks)
        ramp.withUnsafeBufferPointer { r in
            partial.withUnsafeMutableBufferPointer { p in
                let rp = r.baseAddress!, pp = p.baseAddress!
                Parallel.chunks(blocks, grain: 16) { _, range in
                    for i in range { pp[i] = Double(i + 1) * Double(Vec.dot(x + i * block, rp, min(block, n - i * block))) }
                }
            }
        }
        return partial.reduce(0, +)
    }
}

/// The bf16 weight copies a model keeps between generations: made again only when the parameters'
/// fingerprint or the kernel changed, so a copy is never used after the parameters change.
final class DecoderBF16Cache {
    private var cached: (fingerprint: ParameterFingerprint, weights: DecoderBF16Weights)?

    /// The copies for parameters with `fingerprint` on `kernel`: the cached ones when both match,
    /// else `make()` (which replaces them).
    func weights(_ fingerprint: ParameterFingerprint, kernel: BF16Kernel, make: () -> DecoderBF16Weights) -> DecoderBF16Weights {
        if let c = cached, c.fingerprint == fingerprint, c.weights.kernel == kernel { return c.weights }
        let w = make()
        cached = (fingerprint, w)
        return w
    }
}
