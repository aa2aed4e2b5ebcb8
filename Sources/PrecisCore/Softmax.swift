/// Row softmax for attention scores, with a key mask and an optional causal limit, and its backward.
public enum Softmax {
    /// In place over `rows` rows of `cols` scores each (row stride `ld`). For row i, key j takes part
    /// when `keyMask[j] == 1` (values are exactly 0 or 1; nil: all keys) and, if `causal`,
    /// j ≤ i + `causalOffset`. Excluded keys get probability exactly 0. A row with no allowed key becomes uniform over all keys, as an additive
    /// −∞-style mask does in PyTorch (every score shifted by the same large constant).
    public static func forward(
        _ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
        keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int = 0
    ) {
        for i in 0..<rows {
            let row = s + i * ld
            let limit = causal ? min(cols, i + causalOffset + 1) : cols
            var m = -Float.infinity
            if let km = keyMask {
                // max over allowed keys, 8 lanes at a time (masked lanes count as −∞).
                let ninf = F8(repeating: -.infinity), zero = F8()
                var acc = ninf
                var j = 0
                while j + 8 <= limit {
                    let v = load8(row + j).replacing(with: ninf, where: load8(km + j) .== zero)
                    acc = acc.replacing(with: v, where: v .> acc)
                    j += 8
                }
                m = acc.max()
                while j < limit { if km[j] != 0 { m = max(m, row[j]) }; j += 1 }
            } else if limit > 0 {
                m = Vec.max(row, limit)
            }
            if m == -Float.infinity {
                Vec.fill(row, 1 / Float(cols), cols)
                continue
            }
            let mv = F8(repeating: m)
            var sum = F8()
            var j = 0
            if let km = keyMask {
                while j + 8 <= limit {
                    let e = vexp(load8(row + j) - mv) * load8(km + j)
                    store8(e, row + j); sum += e; j += 8
                }
                var t = sum.sum()
                while j < limit {
                    let e: Float = km[j] != 0 ? sexp(row[j] - m) : 0
                    row[j] = e; t += e; j += 1
                }
                finish(row, t, limit: limit, cols: cols)
            } else {
                while j + 8 <= limit {
                    let e = vexp(load8(row + j) - mv)
                    store8(e, row + j); sum += e; j += 8
                }
                var t = sum.sum()
                while j < limit { let e = sexp(row[j] - m); row[j] = e; t += e; j += 1 }
                finish(row, t, limit: limit, cols: cols)
            }
        }
    }

    @inline(__always)
    private static func finish(_ row: UnsafeMutablePointer<Float>, _ total: Float, limit: Int, cols: Int) {
        Vec.scale(row, 1 / total, limit)
        if limit < cols { Vec.zero(row + limit, cols - limit) }
    }

    /// dS = P ⊙ (dP − rowsum(dP ⊙ P)), written over dP.
    public static func backward(
        _ dp: UnsafeMutablePointer<Float>, p: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int
    ) {
        for i in 0..<rows {
            let g = dp + i * ld, pr = p + i * ld
            let d = Vec.dot(g, pr, cols)
            let dv = F8(repeating: d)
            var j = 0
            while j + 8 <= cols { store8(load8(pr + j) * (load8(g + j) - dv), g + j); j += 8 }
            while j < cols { g[j] = pr[j] * (g[j] - d); j += 1 }
        }
    }
}
