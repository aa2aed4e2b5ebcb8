/// A weight matrix W [out × in] (PyTorch layout) repacked as [out/16][in][16] — 16 consecutive
/// outputs side by side for each input — so that y = x·Wᵀ + b for a handful of rows (incremental
/// decoding) streams every weight exactly once, instead of copying W into a GEMM panel first.
public final class PackedWeights {
    public let outDim: Int
    public let inDim: Int
    public let blocks: Int
    let data: FloatBuffer
    let bias: FloatBuffer?

    public init(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outDim: Int, inDim: Int) {
        self.outDim = outDim; self.inDim = inDim
        blocks = (outDim + 15) / 16
        data = FloatBuffer(count: blocks * inDim * 16)
        let d = data.pointer, n = blocks, width = inDim
        // Blocks are independent: pack them in parallel, each writing its own contiguous panel.
        Parallel.chunks(n, grain: 4) { _, range in
            for blk in range {
                let panel = d + blk * width * 16
                for lane in 0..<16 {
                    let o = blk * 16 + lane
                    if o >= outDim { break }
                    let row = weight + o * width
                    for i in 0..<width { panel[i * 16 + lane] = row[i] }
                }
            }
        }
        if let bias {
            let b = FloatBuffer(count: blocks * 16)
            b.pointer.update(from: bias, count: outDim)
            self.bias = b
        } else {
            self.bias = nil
        }
    }

    /// y[rows × outDim] (row stride `ldy`) = x[rows × inDim]·Wᵀ + b. Output blocks are spread over the
    /// compute workers; `y` must have room for outDim rounded up to 16 in each row.
    public func apply(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, rows: Int) {
        var r0 = 0
        while r0 < rows {
            let n = min(8, rows - r0)
            let yr = y + r0 * ldy, xr = x + r0 * inDim
            Parallel.chunks(blocks, grain: 8) { _, range in
                if let K = CPUFeatures.vectorKernels {
                    K.packedMatmul(yr, ldy: ldy, xr, ldx: inDim, packed: data.pointer, bias: bias?.pointer,
                                   rows: n, inDim: inDim, blocks: range)
                } else {
                    portable(yr, ldy: ldy, xr, rows: n, blocks: range)
                }
            }
            r0 += n
        }
    }

    /// The portable kernel for `rows` ≤ 8 rows and the given 16-output blocks (what `apply` runs when
    /// the CPU has neither AVX-512 nor AVX2). Public so tests can compare the two.
    public func portable(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, rows: Int, blocks range: Range<Int>) {
        for blk in range {
            let w = data.pointer + blk * inDim * 16
            for r in 0..<rows {
                var lo = F8(), hi = F8()
                if let b = bias?.pointer { lo = load8(b + blk * 16); hi = load8(b + blk * 16 + 8) }
                let xr = x + r * inDim
                for i in 0..<inDim {
                    let xv = xr[i]
                    lo += load8(w + i * 16) * xv
                    hi += load8(w + i * 16 + 8) * xv
                }
                store8(lo, y + r * ldy + blk * 16); store8(hi, y + r * ldy + blk * 16 + 8)
            }
        }
    }
}
