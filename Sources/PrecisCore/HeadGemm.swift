import PrecisAVX512

/// The per-head products of attention (scores Q·Kᵀ, context P·V and their gradients), one thread
/// each: k or n is the head dimension (64 in BART), thin shapes for which OpenBLAS spends a fifth of
/// its time packing operands. With AVX-512 they run as `PrecisAVX512.VectorKernels.broadcastGemm` (C's
/// rows in registers, B's rows streamed in L1-sized chunks, A not packed); otherwise (AVX2 included:
/// its 16 registers cannot hold the 6 × 64 block) through `BLAS.gemm`. The two give results
/// within rounding of each other, not the same bits; each is deterministic.
public enum HeadGemm {
    /// Floats of scratch a product of n columns, k deep, needs: Bᵀ for `nt` (k·n) and the kernel's
    /// own (a chunk of B, packed).
    public static func scratchFloats(transB: Bool = true, n: Int, k: Int) -> Int {
        (transB ? k * n : 0) + PrecisAVX512.VectorKernels.broadcastScratch
    }

    /// C[m×n] = α·op(A)·op(B), as `BLAS.gemm` with β = 0: A is m×k (k×m when `transA`), rows `lda`
    /// apart; B is k×n (n×k when `transB`); C is overwritten, rows `ldc` apart. With AVX-512 and
    /// `transB`, Bᵀ is written into `scratch` first (`scratchFloats(n:k:)` floats in all). Aᵀ·Bᵀ
    /// is not a head product and goes to OpenBLAS.
    public static func run(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>,
                           lda: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                           scratch: UnsafeMutablePointer<Float>) {
        guard CPUFeatures.avx512, !(transA && transB) else {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 0, c: c, ldc: ldc, parallel: false)
            return
        }
        // a(i, k) is A[i·lda + k], or A[k·lda + i] when A is stored transposed.
        let rowStride = transA ? 1 : lda, kStride = transA ? lda : 1
        if transB {
            PrecisAVX512.VectorKernels.transposePanels(scratch, b, rows: n, cols: k, ldb: ldb)
            PrecisAVX512.VectorKernels.broadcastGemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStride: rowStride, kStride: kStride,
                                        b: scratch, ldb: nil, c: c, ldc: ldc, scratch: scratch + k * n)
        } else {
            PrecisAVX512.VectorKernels.broadcastGemm(m: m, n: n, k: k, alpha: alpha, a: a, rowStride: rowStride, kStride: kStride,
                                        b: b, ldb: ldb, c: c, ldc: ldc, scratch: scratch)
        }
    }
}
