/// Vectorised elementwise math over unsafe pointers, 8 lanes at a time with a scalar tail.
///
/// Every function here works on caller-owned memory and allocates nothing.
public typealias F8 = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always) func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

/// exp(x) for 8 lanes: Cody–Waite range reduction and a degree-6 polynomial (max relative error
/// ≈ 1e-7; inputs are clamped to [-87.3, 88.3], so exp(-inf) gives ≈1e-38, not 0). Rounding to an
/// integer uses the 1.5·2²³ "magic number" so that every operation stays a vector instruction
/// (Swift's generic SIMD rounding and Int conversion compile to scalar loops).
@inline(__always) public func vexp(_ xIn: F8) -> F8 {
    let lo = F8(repeating: -87.3), hi = F8(repeating: 88.3)
    var x = xIn.replacing(with: lo, where: xIn .< lo)
    x = x.replacing(with: hi, where: x .> hi)
    let t = x * 1.44269504088896341 + 12582912.0
    let fx = t - 12582912.0
    let n = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    var r = x - fx * 0.693359375
    r = r + fx * 2.12194440e-4
    var p = F8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * (r * r) + r + 1
    // 2ⁿ built from its bits: (n + 127) · 2²³ (a multiply, since SIMD shifts are not vectorised).
    let scale = unsafeBitCast((n &+ 127) &* 8_388_608, to: F8.self)
    return p * scale
}

/// erf(x) for 8 lanes (Abramowitz & Stegun 7.1.26; absolute error ≤ 1.5e-7).
@inline(__always) public func verf(_ x: F8) -> F8 {
    let ax = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * ax)
    var p = F8(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    p = p * t
    let y = 1 - p * vexp(-(ax * ax))
    return y.replacing(with: -y, where: x .< 0)
}

/// Scalar exp matching `vexp` lane for lane.
@inline(__always) public func sexp(_ x: Float) -> Float { vexp(F8(repeating: x))[0] }

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
    static func scaleSerial(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ n: Int) {
        var i = 0
        let av = F8(repeating: a)
        while i + 8 <= n { store8(load8(x + i) * av, x + i); i += 8 }
        while i < n { x[i] *= a; i += 1 }
    }

    /// Σ x·y, accumulated in 8 float lanes then reduced.
    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F8()
        var i = 0
        while i + 8 <= n { acc += load8(x + i) * load8(y + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

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
    public static func total(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F8()
        var i = 0
        while i + 8 <= n { acc += load8(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    /// max x (n ≥ 1)
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if n >= 8 {
            var acc = load8(x)
            i = 8
            while i + 8 <= n { let v = load8(x + i); acc = acc.replacing(with: v, where: v .> acc); i += 8 }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

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
