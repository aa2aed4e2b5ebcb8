/// Inverted dropout driven by a counter-based hash, so a mask is a pure function of
/// (seed, stream, element index): the backward pass recomputes it instead of storing it, and the
/// same seed reproduces a run exactly on any number of threads or processes.
public enum Dropout {
    @inline(__always)
    static func threshold(_ p: Float) -> UInt32 {
        UInt32(min(Double(UInt32.max), (Double(p) * 4_294_967_296.0).rounded()))
    }

    /// y = x · mask / (1 − p) with mask ~ Bernoulli(1 − p). `y` may alias `x`. p = 0 copies.
    /// `offset` is the position of x[0] in the stream (so a tensor can be processed in pieces).
    public static func apply(
        _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int, p: Float,
        seed: UInt64, stream: UInt32, offset: Int = 0
    ) {
        if p <= 0 {
            if UnsafePointer(y) != x { Vec.copy(y, x, n) }
            return
        }
        if p >= 1 { Vec.zero(y, n); return }
        Parallel.chunks(n, grain: 1 << 15) { _, r in
            // The mask of element i depends on offset + i only, so any split gives the same mask.
            applySerial(y + r.lowerBound, x + r.lowerBound, count: r.count, p: p, seed: seed, stream: stream,
                        offset: offset + r.lowerBound)
        }
    }

    /// `apply`, also recording the keep decisions one bit per element (bit i % 8 of byte i / 8), so
    /// that backward can apply the same mask with `applyRecorded` instead of hashing again.
    public static func apply(
        _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int, p: Float,
        seed: UInt64, stream: UInt32, offset: Int = 0, recordingTo bits: UnsafeMutablePointer<UInt8>
    ) {
        if p <= 0 || p >= 1 { apply(y, x, count: n, p: p, seed: seed, stream: stream, offset: offset); return }
        // Chunks of whole bytes of the record.
        Parallel.chunks((n + 7) / 8, grain: 1 << 12) { _, r in
            let lo = r.lowerBound * 8, hi = min(n, r.upperBound * 8)
            applySerial(y + lo, x + lo, count: hi - lo, p: p, seed: seed, stream: stream, offset: offset + lo,
                        bits: bits + r.lowerBound)
        }
    }

    /// y = x · mask / (1 − p) with the mask `apply(…, recordingTo:)` recorded. `y` may alias `x`.
    public static func applyRecorded(
        _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int, p: Float, bits: UnsafePointer<UInt8>
    ) {
        if p <= 0 {
            if UnsafePointer(y) != x { Vec.copy(y, x, n) }
            return
        }
        if p >= 1 { Vec.zero(y, n); return }
        let scale = F8(repeating: 1 / (1 - p))
        Parallel.chunks((n + 7) / 8, grain: 1 << 12) { _, r in
            for g in r {
                let i = g * 8
                // An equality compare (SSE2 has it) builds the lane mask without leaving the registers.
                let values = bitValues
                let keep = (SIMD8<Int32>(repeating: Int32(bits[g])) & values) .== values
                if i + 8 <= n {
                    store8(F8(repeating: 0).replacing(with: load8(x + i) * scale, where: keep), y + i)
                } else {
                    for j in 0..<(n - i) { y[i + j] = keep[j] ? x[i + j] * scale[0] : 0 }
                }
            }
        }
    }

    static let bitValues = SIMD8<Int32>(1, 2, 4, 8, 16, 32, 64, 128)

    /// One thread's run of `apply` (the AVX-512 or AVX2 build of the same kernel when the CPU has one).
    static func applySerial(
        _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int, p: Float,
        seed: UInt64, stream: UInt32, offset: Int, bits: UnsafeMutablePointer<UInt8>? = nil
    ) {
        if let K = CPUFeatures.vectorKernels {
            K.dropout(y, x, count: n, threshold: threshold(p), scale: 1 / (1 - p), seed: seed, stream: stream,
                      offset: offset, bits: bits)
        } else {
            Row.dropout(y, x, count: n, threshold: threshold(p), scale: 1 / (1 - p), seed: seed, stream: stream,
                        offset: offset, bits: bits)
        }
    }
}
