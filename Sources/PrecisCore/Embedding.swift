/// Embedding lookups (gather) and their backward (scatter-add).
public enum Embedding {
    /// out[r] = scale · table[ids[r]] (+ out[r] if `accumulate`). Ids must be in range; callers validate.
    public static func forward(
        out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
        rows: Int, dim: Int, scale: Float = 1, accumulate: Bool = false
    ) {
        for r in 0..<rows {
            let src = table + Int(ids[r]) * dim, dst = out + r * dim
            if accumulate {
                Vec.axpy(dst, scale, src, dim)
            } else if scale == 1 {
                Vec.copy(dst, src, dim)
            } else {
                var i = 0
                let sv = F8(repeating: scale)
                while i + 8 <= dim { store8(load8(src + i) * sv, dst + i); i += 8 }
                while i < dim { dst[i] = src[i] * scale; i += 1 }
            }
        }
    }

    /// dtable[ids[r]] += scale · dout[r]. Repeated ids add up in row order; the embedding dimension is
    /// spread over the workers, so no two write the same element.
    public static func backward(
        dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
        rows: Int, dim: Int, scale: Float = 1
    ) {
        let blocks = dim / 8
        Parallel.chunks(max(1, blocks), grain: rows * dim >= Vec.parallelGrain ? 1 : max(1, blocks)) { _, range in
            let lo = blocks == 0 ? 0 : range.lowerBound * 8
            let hi = blocks == 0 || range.upperBound == blocks ? dim : range.upperBound * 8
            for r in 0..<rows {
                Vec.axpy(dtable + Int(ids[r]) * dim + lo, scale, dout + r * dim + lo, hi - lo)
            }
        }
    }
}
