import CBF16Kernels

/// bf16 matrix products with fp32 accumulation: C = alpha · A · B + beta · C for a `BF16Rows` A
/// [m × k] and a `PackedBF16Matrix` B [k × n], on the best kernel this CPU runs (AMX, then
/// AVX-512-BF16; `BF16Support`). Inputs are rounded to bf16 once, when packed; every product of
/// two bf16 values is exact in fp32 and the sums are fp32 (so the result differs from the exact
/// product of the rounded inputs by at most about k · 2⁻²⁴ · Σ|a||b|). Allocates nothing.
public enum BF16Gemm {
    /// The kernel products run on here, or nil (then `unavailableReason` says why).
    /// (Read once: `kernels` looks at the environment, too slow for every product.)
    public static let kernel: BF16Kernel? = BF16Support.current.kernels.first

    /// Why bf16 products cannot run here (the missing CPU flags), or nil when they can.
    public static let unavailableReason: String? = BF16Support.current.unavailableReason

    /// The kernel to use, or the error naming the missing flags.
    public static func requireKernel() throws(BF16Error) -> BF16Kernel {
        guard let k = kernel else { throw .unavailable(unavailableReason ?? "no bf16 kernel") }
        return k
    }

    /// Runs `iterations` × 24 independent `VDPBF16PS` zmm instructions on the calling thread (no
    /// memory operands): timed, the rate at which this core issues them, the AVX-512-BF16 kernel's
    /// ceiling. Throws where the CPU lacks AVX-512-BF16 (the instruction would fault).
    public static func avx512IssueLoop(iterations: UInt64) throws(BF16Error) -> Float {
        guard BF16Support.current.supports(.avx512bf16) else {
            throw .unavailable(unavailableReason ?? "no AVX-512-BF16 on this CPU")
        }
        return precis_bf16_avx512_issue_loop(iterations)
    }

    /// C[m × n] (row stride `ldc`) = alpha · A · B + beta · C. With beta 0, C is only written (it may
    /// hold anything). Products large enough are split into blocks of rows or of 16-column panels
    /// over the compute workers (pass `parallel: false` inside a parallel region). `kernel` picks one
    /// (it must run here); nil takes the best.
    public static func multiply(
        _ a: BF16Rows, _ b: PackedBF16Matrix, alpha: Float = 1, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, kernel: BF16Kernel? = nil, parallel: Bool = true
    ) throws(BF16Error) {
        try multiply(a, b, alpha: alpha, beta: beta, c: c, ldc: ldc, kernel: kernel,
                     splitInto: parallel ? nil : 1)
    }

    /// `multiply` split into `splitInto` parts whatever the product's size (nil: as `parallel: true`
    /// decides); the parts run serially when the compute width is 1, so tests reach every split.
    package static func multiply(
        _ a: BF16Rows, _ b: PackedBF16Matrix, alpha: Float = 1, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, kernel: BF16Kernel?, splitInto: Int?
    ) throws(BF16Error) {
        let chosen: BF16Kernel
        if let kernel {
            guard BF16Support.current.supports(kernel) else {
                throw .kernelUnsupported(kernel, "this CPU/OS reports \(BF16Support.current)")
            }
            chosen = kernel
        } else {
            chosen = try requireKernel()
        }
        guard a.k == b.k else { throw .mismatch("A is \(a.m) × \(a.k) but B is \(b.k) × \(b.n)") }
        guard ldc >= max(1, b.n) else { throw .mismatch("ldc \(ldc) < n \(b.n)") }
        let (m, n, k) = (a.m, b.n, a.k)
        if m == 0 || n == 0 { return }
        let pa = UnsafePointer(a.storage.pointer), pb = UnsafePointer(b.storage.pointer)
        let run: (Int, Int, Int, Int) -> Void = { r0, r1, p0, p1 in
            switch chosen {
            case .avx512bf16:
                precis_bf16_gemm_avx512(pa, pb, c, ldc, m, n, k, alpha, beta, r0, r1, p0, p1)
            case .amx:
                precis_bf16_gemm_amx(pa, pb, c, ldc, m, n, k, alpha, beta, r0, r1, p0, p1)
            case .portable:
                precis_bf16_gemm_portable(pa, pb, c, ldc, m, n, k, alpha, beta, r0, r1, p0, p1)
            }
        }
        let panels = (n + 15) / 16
        let parts = splitInto ?? (m * n * max(k, 1) >= 1 << 21 ? Parallel.available : 1)
        if parts <= 1 {
            run(0, m, 0, panels)
            return
        }
        // Rows in blocks of 48 (whole 6-row AVX-512 blocks and 16-row AMX tiles), panels in fours
        // (whole 64-column AVX-512 blocks and AMX's pairs of panels); the larger side is split.
        let rowBlocks = (m + 47) / 48, panelBlocks = (panels + 3) / 4
        if rowBlocks >= panelBlocks {
            Parallel.run(min(parts, rowBlocks)) { i in
                let q = min(parts, rowBlocks)
                let lo = rowBlocks * i / q * 48, hi = min(m, rowBlocks * (i + 1) / q * 48)
                if hi > lo { run(lo, hi, 0, panels) }
            }
        } else {
            Parallel.run(min(parts, panelBlocks)) { i in
                let q = min(parts, panelBlocks)
                let lo = panelBlocks * i / q * 4, hi = min(panels, panelBlocks * (i + 1) / q * 4)
                if hi > lo { run(0, m, lo, hi) }
            }
        }
    }

    /// The same product from fp32 A in its sgemm form (`BLAS.gemm`'s transA / lda): A is converted
    /// into `scratch` (which keeps its storage between calls), then multiplied by the packed B.
    public static func multiply(
        transA: Bool, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int, scratch: inout BF16Rows,
        _ b: PackedBF16Matrix, alpha: Float = 1, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
        kernel: BF16Kernel? = nil, parallel: Bool = true
    ) throws(BF16Error) {
        try scratch.load(a, lda: lda, transposed: transA, m: m, k: k)
        try multiply(scratch, b, alpha: alpha, beta: beta, c: c, ldc: ldc, kernel: kernel, parallel: parallel)
    }

    /// C[m × n] = alpha · op(A) · op(B) + beta · C from fp32 operands in `BLAS.gemm`'s form, both
    /// converted to bf16 in the running thread's scratch (`precis_bf16_sgemm`): for products whose
    /// operands both change every call (a weight gradient dYᵀ·X). Large products are split by rows
    /// of C over the compute workers (each converts all of op(B)); pass `parallel: false` inside a
    /// parallel region.
    public static func sgemm(
        kernel: BF16Kernel, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true
    ) {
        if m == 0 || n == 0 { return }
        let code: Int32 = kernel == .amx ? 1 : kernel == .portable ? 2 : 0
        func part(_ lo: Int, _ hi: Int) {
            // Row i of op(A) starts at a + i·lda, or at a + i when A is stored transposed.
            let rc = precis_bf16_sgemm(code, transA ? 1 : 0, transB ? 1 : 0, hi - lo, n, k, alpha,
                                       transA ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc)
            if rc != 0 { fatalError("bf16 product \(m) × \(n) × \(k): no memory for the converted operands") }
        }
        let blocks = (m + 47) / 48
        let parts = min(blocks, parallel && m * n * max(k, 1) >= 1 << 21 ? Parallel.available : 1)
        if parts <= 1 { part(0, m); return }
        Parallel.run(parts) { i in
            let lo = blocks * i / parts * 48, hi = min(m, blocks * (i + 1) / parts * 48)
            if hi > lo { part(lo, hi) }
        }
    }

    /// Rows [r0, r1) of C = alpha · A · B + beta · C over operands already converted and packed (a
    /// part of a product another lane may run: `BF16RowsTask`).
    @inline(__always)
    static func rows(kernel: BF16Kernel, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>,
                     ldc: Int, m: Int, n: Int, k: Int, alpha: Float, beta: Float, r0: Int, r1: Int) {
        let panels = (n + 15) / 16
        switch kernel {
        case .avx512bf16: precis_bf16_gemm_avx512(a, b, c, ldc, m, n, k, alpha, beta, r0, r1, 0, panels)
        case .amx: precis_bf16_gemm_amx(a, b, c, ldc, m, n, k, alpha, beta, r0, r1, 0, panels)
        case .portable: precis_bf16_gemm_portable(a, b, c, ldc, m, n, k, alpha, beta, r0, r1, 0, panels)
        }
    }
}

/// Rows [r0, r1) of a bf16 product whose operands are packed already (a `BF16Rows` A and a
/// `PackedBF16Matrix` B, kept alive by the poster until it settles): what a lane posts on a
/// `WorkBoard` so that another lane can run part of it. Plain pointers: posting allocates nothing.
/// r0 must be a multiple of 16 (AMX tiles), as every cut of 48 rows is.
public struct BF16RowsTask {
    public var kernel: BF16Kernel
    public var a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>
    public var c: UnsafeMutablePointer<Float>, ldc: Int
    public var m: Int, n: Int, k: Int
    public var alpha: Float, beta: Float
    public var r0: Int, r1: Int

    /// Rows r0..<r1 of C = alpha · A · B + beta · C.
    public init(kernel: BF16Kernel, a: BF16Rows, b: PackedBF16Matrix, alpha: Float = 1, beta: Float,
                c: UnsafeMutablePointer<Float>, ldc: Int, rows: Range<Int>) {
        precondition(a.k == b.k && rows.lowerBound % 16 == 0 && rows.upperBound <= a.m, "bf16 part \(rows) of \(a.m) × \(a.k) · \(b.k) × \(b.n)")
        self.kernel = kernel
        self.a = UnsafePointer(a.storage.pointer); self.b = UnsafePointer(b.storage.pointer)
        self.c = c; self.ldc = ldc; self.m = a.m; self.n = b.n; self.k = a.k
        self.alpha = alpha; self.beta = beta; self.r0 = rows.lowerBound; self.r1 = rows.upperBound
    }

    @inline(__always)
    public func run() {
        BF16Gemm.rows(kernel: kernel, a: a, b: b, c: c, ldc: ldc, m: m, n: n, k: k, alpha: alpha, beta: beta, r0: r0, r1: r1)
    }
}
