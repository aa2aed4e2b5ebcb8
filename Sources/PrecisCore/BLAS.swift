import COpenBLAS

/// Row-major GEMM through `cblas_sgemm`.
public enum BLAS {
    /// OpenBLAS runs single-threaded inside our own pool. Pinned once, before the first BLAS call of the
    /// process (a thread-safe lazy global): changing OpenBLAS's thread count while another thread is
    /// inside OpenBLAS can crash it, so it is never changed again.
    static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major with leading dimensions
    /// `lda`, `ldb`, `ldc` (elements between consecutive rows as stored).
    /// Products large enough are split into `Parallel.width` blocks of rows or of columns of C
    /// (whichever C has more of), each computed by one single-threaded sgemm; pass `parallel: false`
    /// inside a parallel region.
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true
    ) {
        if m == 0 || n == 0 { return }
        _ = singleThreaded
        let parts = parallel && m * n * k >= 1 << 21 ? Parallel.available : 1
        if parts <= 1 {
            single(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        // Split the larger side: each block packs its slice of that operand and all of the other, so
        // the duplicated packing is the smaller operand.
        if m >= n || n < 16 * parts {
            // Rows of C ↔ rows of op(A): row i of op(A) starts at a + i·lda, or at a + i when A is transposed.
            Parallel.run(parts) { i in
                let lo = (m * i / parts) & ~7, hi = i == parts - 1 ? m : (m * (i + 1) / parts) & ~7
                if hi > lo {
                    single(transA, transB, hi - lo, n, k, alpha, transA ? a + lo : a + lo * lda, lda,
                           b, ldb, beta, c + lo * ldc, ldc)
                }
            }
        } else {
            // Columns of C ↔ columns of op(B): column j starts at b + j, or at b + j·ldb when B is transposed.
            Parallel.run(parts) { i in
                let lo = (n * i / parts) & ~7, hi = i == parts - 1 ? n : (n * (i + 1) / parts) & ~7
                if hi > lo {
                    single(transA, transB, m, hi - lo, k, alpha, a, lda, transB ? b + lo * ldb : b + lo, ldb,
                           beta, c + lo, ldc)
                }
            }
        }
    }

    @inline(__always)
    static func single(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Strided batched GEMM: `count` independent products whose operands start `strideA`, `strideB`,
    /// `strideC` elements apart (used for attention heads).
    @inline(__always)
    public static func gemmBatched(
        count: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, strideA: Int,
        b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int
    ) {
        for i in 0..<count {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                 a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                 beta: beta, c: c + i * strideC, ldc: ldc)
        }
    }

    /// y[m] = alpha · op(A)[m×n] · x + beta · y (row-major A).
    @inline(__always)
    public static func gemv(
        trans: Bool, rows: Int, cols: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>
    ) {
        if rows == 0 || cols == 0 { return }
        _ = singleThreaded
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(rows), Int32(cols), alpha,
                    a, Int32(lda), x, 1, beta, y, 1)
    }
}
