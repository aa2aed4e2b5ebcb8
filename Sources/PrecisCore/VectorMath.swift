// F8, load8/store8, vexp/sexp/verf and the row kernels live in PrecisKernels (compiled again for
// AVX-512 by PrecisAVX512); everything importing PrecisCore sees them.
@_exported import PrecisKernels

/// Vectorised elementwise math over unsafe pointers, 8 lanes at a time with a scalar tail.
///
/// Every function here works on caller-owned memory and allocates nothing.
public enum Vec {
    @inline(__always)
    public static func fill(_ p: UnsafeMutablePointer<Float>, _ value: Float, _ n: Int) {
        p.update(repeating: value, count: n)
    }

    /// Arrays at least this long are split over the compute workers.
    public static let parallelGrain = 1 << 16

    @inline(__always)
    public static func zero(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if n < parallelGrain { p.update(repeating: 0, count: n); return }
        Parallel.chunks(n, grain: parallelGrain) { _, r in (p + r.lowerBound).update(repeating: 0, count: r.count) }
    }

    @inline(__always)
    public static func copy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
        if n < parallelGrain { dst.update(from: src, count: n); return }
        Parallel.chunks(n, grain: parallelGrain) { _, r in (dst + r.lowerBound).update(from: src + r.lowerBound, count: r.count) }
    }

    /// y += x
    @inline(__always)
    public static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        splitIfLarge(n) { addSerial(y + $0, x + $0, $1) }
    }

    @inline(__always)
    static func addSerial(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(load8(y + i) + load8(x + i), y + i); i += 8 }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// y += x, then x = 0, in one pass (gathering a lane's gradients and clearing them for the next step).
    public static func moveAdd(_ y: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
        splitIfLarge(n) { lo, count in
            let y = y + lo, x = x + lo
            var i = 0
            while i + 8 <= count { store8(load8(y + i) + load8(x + i), y + i); store8(F8(), x + i); i += 8 }
            while i < count { y[i] += x[i]; x[i] = 0; i += 1 }
        }
    }

    /// body(start, count) over 0..<n: in chunks spread over the compute workers when n is large,
    /// else in one call.
    @inline(__always)
    static func splitIfLarge(_ n: Int, _ body: (_ start: Int, _ count: Int) -> Void) {
        if n >= parallelGrain {
            Parallel.chunks(n, grain: parallelGrain) { _, r in body(r.lowerBound, r.count) }
        } else {
            body(0, n)
        }
    }

    /// z = x + y
    @inline(__always)
    public static func sum(_ z: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store8(load8(x + i) + load8(y + i), z + i); i += 8 }
        while i < n { z[i] = x[i] + y[i]; i += 1 }
    }

    /// y += a·x
    @inline(__always)
    public static func axpy(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        let av = F8(repeating: a)
        while i + 8 <= n { store8(load8(y + i) + av * load8(x + i), y + i); i += 8 }
        while i < n { y[i] += a * x[i]; i += 1 }
    }

    /// x *= a
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ n: Int) {
        if n >= parallelGrain {
            Parallel.chunks(n, grain: parallelGrain) { _, r in scaleSerial(x + r.lowerBound, a, r.count) }
        } else {
            scaleSerial(x, a, n)
        }
    }

    @inline(__always)
    static func scaleSerial(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ n: Int) { Row.scale(x, a, n) }

    /// Σ x·y, accumulated in 8 float lanes then reduced.
    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float { Row.dot(x, y, n) }

    /// Σ x² in double precision (used for gradient norms, where the count can be millions): float
    /// partial sums over fixed blocks of 4096, added in order, so the result does not depend on the
    /// thread count.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        let blocks = (n + 4095) / 4096
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: Swift.max(1, blocks)) { buf in
            let partial = buf.baseAddress!
            Parallel.chunks(blocks, grain: 16) { _, range in
                for blk in range {
                    var i = blk * 4096
                    let end = min(n, i + 4096)
                    var acc = F8()
                    while i + 8 <= end { let v = load8(x + i); acc += v * v; i += 8 }
                    var s = Double(acc.sum())
                    while i < end { s += Double(x[i] * x[i]); i += 1 }
                    partial[blk] = s
                }
            }
            var total = 0.0
            for b in 0..<blocks { total += partial[b] }
            return total
        }
    }

    /// Σ x
    @inline(__always)
    public static func total(_ x: UnsafePointer<Float>, _ n: Int) -> Float { Row.total(x, n) }

    /// max x (n ≥ 1)
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float { Row.max(x, n) }

    /// Adds row vector `v` (length `cols`) to every row of `m` (rows×cols, contiguous).
    @inline(__always)
    public static func addRowVector(_ m: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows { add(m + r * cols, v, cols) }
    }

    /// acc[cols] += Σ over rows of m (rows × cols, rows `ld` apart, default `cols`); columns are spread over the workers,
    /// each summing its columns over the rows in order.
    @inline(__always)
    public static func addColumnSums(_ acc: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, rows: Int, cols: Int,
                                     ld: Int? = nil) {
        let blocks = cols / 8, ld = ld ?? cols
        if blocks == 0 || rows * cols < parallelGrain {
            for r in 0..<rows { addSerial(acc, m + r * ld, cols) }
            return
        }
        Parallel.chunks(blocks) { _, range in
            let lo = range.lowerBound * 8, hi = range.upperBound == blocks ? cols : range.upperBound * 8
            for r in 0..<rows { addSerial(acc + lo, m + r * ld + lo, hi - lo) }
        }
    }
}
