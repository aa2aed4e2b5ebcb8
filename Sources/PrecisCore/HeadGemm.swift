import PrecisAVX512

/// The per-head products of attention (scores Q·Kᵀ, context P·V and their gradients), one thread
/// each: k or n is the head dimension (64 in BART), thin shapes for which OpenBLAS spends a fifth of
/// its time packing operands. With AVX-512 they run as `AVX512Kernels.broadcastGemm` (C's rows in
/// registers, B's rows streamed, nothing packed); otherwise through `BLAS.gemm`. The two give results
/// within rounding of each other, not the same bits; each is deterministic.
public enum HeadGemm {
    /// Floats of scratch a product of n columns, k deep, needs: Bᵀ for `nt` (k·n) and the kernel's
    /// own (a chunk of B, packed).
    public static func scratchFloats(transB: Bool = true, n: Int, k: Int) -> Int {
        (transB ? k * n : 0) + AVX512Kernels.broadcastScratch
    }

    /// C[m×n] = α·op(A)·op(B), as `BLAS.gemm` with β = 0 (dispatches to `nn`, `tn` or `nt`; op(A)·Bᵀ
    /// with transposed A is not a head product and goes to OpenBLAS).
    public static func run(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>,
                           lda: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                           scratch: UnsafeMutablePointer<Float>) {
        switch (transA, transB) {
        case (false, false): nn(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, scratch: scratch)
        case (true, false): tn(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, scratch: scratch)
        case (false, true): nt(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, scratch: scratch)
        case (true, true):
            BLAS.gemm(transA: true, transB: true, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 0, c: c, ldc: ldc, parallel: false)
        }
    }

    /// C[m×n] = α·A·B: A m×k (rows `lda` apart), B k×n (`ldb`), C overwritten (`ldc`).
    @inline(__always)
    public static func nn(m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                          b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                          scratch: UnsafeMutablePointer<Float>) {
        if CPUFeatures.avx512 {
            AVX512Kernels.broadcastGemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStride: lda, kStride: 1, b: b, ldb: ldb,
                                        c: c, ldc: ldc, scratch: scratch)
        } else {
            BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 0, c: c, ldc: ldc, parallel: false)
        }
    }

    /// C[m×n] = α·Aᵀ·B: A k×m (`lda`), B k×n (`ldb`), C overwritten (`ldc`).
    @inline(__always)
    public static func tn(m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                          b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                          scratch: UnsafeMutablePointer<Float>) {
        if CPUFeatures.avx512 {
            AVX512Kernels.broadcastGemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStride: 1, kStride: lda, b: b, ldb: ldb,
                                        c: c, ldc: ldc, scratch: scratch)
        } else {
            BLAS.gemm(transA: true, transB: false, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 0, c: c, ldc: ldc, parallel: false)
        }
    }

    /// C[m×n] = α·A·Bᵀ: A m×k (`lda`), B n×k (`ldb`), C overwritten (`ldc`). Bᵀ is written into
    /// `scratch` first (`scratchFloats(n:k:)` floats).
    @inline(__always)
    public static func nt(m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                          b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                          scratch: UnsafeMutablePointer<Float>) {
        if CPUFeatures.avx512 {
            AVX512Kernels.transposePanels(scratch, b, rows: n, cols: k, ldb: ldb)
            AVX512Kernels.broadcastGemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStride: lda, kStride: 1, b: scratch, ldb: nil,
                                        c: c, ldc: ldc, scratch: scratch + k * n)
        } else {
            BLAS.gemm(transA: false, transB: true, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 0, c: c, ldc: ldc, parallel: false)
        }
    }
}
