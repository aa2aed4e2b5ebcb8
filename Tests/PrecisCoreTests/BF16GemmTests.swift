import Foundation
import Testing
import PrecisCore

/// The bf16 products (`BF16Gemm` over `BF16Rows` and `PackedBF16Matrix`): each kernel against a
/// Double reference computed on the bf16-rounded inputs, over shapes with row, column and inner
/// tails (m, n, k not multiples of 16 or 32, k odd), all four transpose forms, strided operands,
/// beta 0 and 1; the packing round trip; the CPU detection. A kernel the CPU lacks is skipped,
/// saying so (this VM hides AMX, so the AMX tests skip here).
@Suite struct BF16GemmTests {
    static let u = 0x1p-24  // fp32 unit roundoff

    /// A deterministic pseudo-random fill in [-1, 1) (with some exact zeros and large magnitudes).
    static func fill(_ count: Int, seed: UInt64) -> [Float] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { i in
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            let x = Float(Int64(bitPattern: s >> 11) % 2_000_000) / 1_000_000
            return i % 29 == 0 ? 0 : (i % 31 == 0 ? x * 300 : x)
        }
    }

    struct Case: CustomStringConvertible, Sendable {
        var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, pad: Int
        var description: String { "\(m)×\(n)×\(k) \(transA ? "T" : "N")\(transB ? "T" : "N") pad \(pad)" }
    }

    /// Shapes with tails everywhere (plus exact multiples), each in the four transpose forms; the
    /// odd cases with leading dimensions beyond the rows they stride over.
    static let cases: [Case] = {
        let shapes = [(1, 1, 1), (5, 17, 3), (6, 64, 32), (16, 16, 32), (37, 45, 19), (33, 70, 67), (7, 200, 301),
                      (64, 48, 1), (100, 130, 64), (49, 33, 95)]
        var out: [Case] = []
        for (i, (m, n, k)) in shapes.enumerated() {
            for form in 0..<4 { out.append(Case(m: m, n: n, k: k, transA: form & 1 == 1, transB: form & 2 == 2, pad: (i + form) % 2 * 3)) }
        }
        out.append(Case(m: 200, n: 300, k: 64, transA: false, transB: true, pad: 0))   // big enough to split over workers
        out.append(Case(m: 130, n: 520, k: 40, transA: true, transB: false, pad: 5))
        return out
    }()

    /// Runs one case with `kernel`, for beta 0 (C holding NaNs, which must not leak in) and beta 1,
    /// and checks every element of C against the Double reference on the rounded inputs, and that
    /// the columns of each row beyond n are left alone.
    static func check(_ cs: Case, kernel: BF16Kernel) throws {
        let (m, n, k) = (cs.m, cs.n, cs.k)
        let lda = (cs.transA ? m : k) + cs.pad, ldb = (cs.transB ? k : n) + cs.pad, ldc = n + 2 + cs.pad
        let a = fill((cs.transA ? k : m) * lda, seed: UInt64(m * 7 + k)), b = fill((cs.transB ? n : k) * ldb, seed: UInt64(n * 13 + k))
        let packed = try a.withUnsafeBufferPointer { _ in
            try b.withUnsafeBufferPointer { try PackedBF16Matrix($0.baseAddress!, ldb: ldb, transposed: cs.transB, k: k, n: n) }
        }
        var rows = try BF16Rows(capacityRows: 1, k: 1)
        // (1, 0) and (1, 1) take the AMX kernel's direct path (whole tiles start from zero or C and
        // are stored into C), (0.5, 1) the pass over C that scales and adds.
        for (alpha, beta) in [(Float(1), Float(0)), (Float(1), Float(1)), (Float(0.5), Float(1))] {
            let c0 = fill(m * ldc, seed: 99)
            var c = c0
            if beta == 0 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] = .nan } } }
            try a.withUnsafeBufferPointer { pa in
                try c.withUnsafeMutableBufferPointer { pc in
                    try BF16Gemm.multiply(transA: cs.transA, m: m, k: k, a: pa.baseAddress!, lda: lda, scratch: &rows, packed,
                                          alpha: alpha, beta: beta, c: pc.baseAddress!, ldc: ldc, kernel: kernel)
                }
            }
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0, abs = 0.0
                    for l in 0..<k {
                        let x = Double(BF16.rounded(cs.transA ? a[l * lda + i] : a[i * lda + l]))
                        let y = Double(BF16.rounded(cs.transB ? b[j * ldb + l] : b[l * ldb + j]))
                        s += x * y; abs += Swift.abs(x * y)
                    }
                    let cOld = beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j])
                    let ref = Double(alpha) * s + cOld
                    // Tolerance: each product of two bf16 values (8-bit significands) is exact in fp32;
                    // summing k of them in fp32 (in any order, pairwise inside VDPBF16PS/TDPBF16PS) errs by
                    // at most γ_k·Σ|a||b| ≈ k·u·Σ|a||b| (u = 2⁻²⁴); scaling by alpha and adding beta·C
                    // round twice more: (k + 2)·u·|alpha|·Σ|a||b| + 2u·(|beta·C| + |ref|). With alpha 1
                    // and beta 1 the AMX kernel starts the sum from C, so C's value takes part in every
                    // one of the k additions: (k + 2)·u·|C| instead of 2u·|C|. And a floor for denormal
                    // flushing (AMX flushes denormals), far below these values' scale.
                    let cTerm = alpha == 1 && beta == 1 ? Double(k + 2) * u * Swift.abs(cOld) : 2 * u * Swift.abs(cOld)
                    let tol = Double(k + 2) * u * Double(alpha) * abs + cTerm + 2 * u * Swift.abs(ref) + 1e-30
                    let got = Double(c[i * ldc + j])
                    #expect(Swift.abs(got - ref) <= tol, "\(kernel.rawValue) \(cs) α \(alpha) β \(beta): C[\(i)][\(j)] = \(got), reference \(ref), tolerance \(tol)")
                    if !(Swift.abs(got - ref) <= tol) { return }
                    worst = max(worst, Swift.abs(got - ref) / max(tol, 1e-300))
                }
                for j in n..<ldc where c[i * ldc + j] != c0[i * ldc + j] {
                    Issue.record("\(kernel.rawValue) \(cs): C[\(i)][\(j)] beyond n was written")
                    return
                }
            }
            #expect(worst <= 1)
        }
    }

    @Test(.enabled(if: BF16Support.current.supports(.avx512bf16),
                   "AVX-512-BF16 absent: this CPU/OS lacks avx512_bf16 (or the ZMM state in XCR0), so VDPBF16PS cannot run"),
          arguments: cases)
    func avx512BF16KernelMatchesReference(_ cs: Case) throws {
        try Self.check(cs, kernel: .avx512bf16)
    }

    @Test(.enabled(if: BF16Support.current.supports(.amx),
                   "AMX absent: CPUID/XCR0 report no amx_tile/amx_bf16 tile state here (or Linux refused ARCH_REQ_XCOMP_PERM), so TDPBF16PS cannot run"),
          arguments: cases)
    func amxKernelMatchesReference(_ cs: Case) throws {
        try Self.check(cs, kernel: .amx)
    }

    /// The portable kernel (what `PRECIS_BF16_EMULATE=1` runs on CPUs without bf16 instructions)
    /// has the hardware kernels' arithmetic: it meets the same bound on every case, on any CPU.
    @Test(arguments: cases)
    func portableKernelMatchesReference(_ cs: Case) throws {
        try Self.check(cs, kernel: .portable)
    }

    /// `BF16Gemm.sgemm` — both fp32 operands converted per call in the running thread's scratch,
    /// as weight gradients run — gives the same bits as converting A, packing B and multiplying, on
    /// every kernel that runs here (each element's sum is formed the same way whatever the cuts).
    @Test(arguments: cases)
    func sgemmFormIsThePackedProduct(_ cs: Case) throws {
        let (m, n, k) = (cs.m, cs.n, cs.k)
        let lda = (cs.transA ? m : k) + cs.pad, ldb = (cs.transB ? k : n) + cs.pad, ldc = n + cs.pad
        let a = Self.fill((cs.transA ? k : m) * lda, seed: UInt64(m + 3 * k)), b = Self.fill((cs.transB ? n : k) * ldb, seed: UInt64(n + 5 * k))
        let c0 = Self.fill(m * ldc, seed: 5)
        let kernels = BF16Support.current.kernels.filter { $0 != .portable } + [.portable]
        for kernel in kernels {
            let packed = try PackedBF16Matrix(b, ldb: ldb, transposed: cs.transB, k: k, n: n)
            let rows = try BF16Rows(a, lda: lda, transposed: cs.transA, m: m, k: k)
            var viaPacked = c0, viaSgemm = c0
            try BF16Gemm.multiply(rows, packed, alpha: 0.5, beta: 1, c: &viaPacked, ldc: ldc, kernel: kernel)
            BF16Gemm.sgemm(kernel: kernel, transA: cs.transA, transB: cs.transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                           b: b, ldb: ldb, beta: 1, c: &viaSgemm, ldc: ldc)
            #expect(viaPacked == viaSgemm, "\(kernel.rawValue) \(cs)")
        }
    }

    /// Both kernels give results within the tolerance of each other's reference, so also within
    /// 2× of it of each other; where both run, compare them directly on one layer-sized product.
    @Test(.enabled(if: BF16Support.current.supports(.amx) && BF16Support.current.supports(.avx512bf16),
                   "AMX absent here: nothing to compare the AVX-512-BF16 kernel with"))
    func kernelsAgree() throws {
        let (m, n, k) = (77, 96, 130)
        let a = Self.fill(m * k, seed: 1), b = Self.fill(n * k, seed: 2)
        let rows = try BF16Rows(a, lda: k, transposed: false, m: m, k: k)
        let packed = try PackedBF16Matrix(b, ldb: k, transposed: true, k: k, n: n)
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        try BF16Gemm.multiply(rows, packed, beta: 0, c: &c1, ldc: n, kernel: .amx)
        try BF16Gemm.multiply(rows, packed, beta: 0, c: &c2, ldc: n, kernel: .avx512bf16)
        for i in 0..<m {
            for j in 0..<n {
                var abs = 0.0
                for l in 0..<k { abs += Swift.abs(Double(BF16.rounded(a[i * k + l])) * Double(BF16.rounded(b[j * k + l]))) }
                // Each is within (k + 2)·u·Σ|a||b| of the exact product of the rounded inputs.
                #expect(Swift.abs(Double(c1[i * n + j]) - Double(c2[i * n + j])) <= 2 * Double(k + 2) * Self.u * abs, "C[\(i)][\(j)]")
            }
        }
    }

    /// Split into parts (rows in 48-row blocks, or 16-column panels in fours), the product is the
    /// same bits as unsplit: every element is computed by one part, in the same order.
    @Test(.enabled(if: BF16Gemm.kernel != nil, "no bf16 kernel on this CPU (avx512_bf16 / amx_tile + amx_bf16 absent)"))
    func splitProductsMatchTheWholeProduct() throws {
        for (m, n, k) in [(200, 70, 37), (20, 300, 40), (97, 97, 64)] {
            let a = Self.fill(m * k, seed: 5), b = Self.fill(k * n, seed: 6)
            let rows = try BF16Rows(a, lda: k, transposed: false, m: m, k: k)
            let packed = try PackedBF16Matrix(b, ldb: n, transposed: false, k: k, n: n)
            var whole = [Float](repeating: 0, count: m * n)
            try BF16Gemm.multiply(rows, packed, beta: 0, c: &whole, ldc: n, kernel: nil, splitInto: 1)
            for parts in [2, 3, 5] {
                var split = [Float](repeating: .nan, count: m * n)
                try BF16Gemm.multiply(rows, packed, beta: 0, c: &split, ldc: n, kernel: nil, splitInto: parts)
                #expect(split.map(\.bitPattern) == whole.map(\.bitPattern), "\(m)×\(n)×\(k) in \(parts) parts")
            }
        }
    }

    // MARK: - packing

    /// Every element of a packed operand reads back as the fp32 input rounded to bf16 (round to
    /// nearest even), for every transpose form, tails and strides; repacking reuses the storage when
    /// it is the only holder and copies on write when another value shares it.
    @Test func packingRoundTrips() throws {
        for (m, k, pad) in [(1, 1, 0), (17, 33, 3), (40, 7, 1), (16, 64, 0)] {
            for t in [false, true] {
                let ld = (t ? m : k) + pad
                let src = Self.fill((t ? k : m) * ld, seed: UInt64(m + k))
                let rows = try BF16Rows(src, lda: ld, transposed: t, m: m, k: k)
                // The same fp32 array read as B: op(B) is k' × n' = m × k (rows of op(B) are op(A)'s rows).
                let packed = try PackedBF16Matrix(src, ldb: ld, transposed: t, k: m, n: k)
                for i in 0..<m {
                    for j in 0..<k {
                        let x = t ? src[j * ld + i] : src[i * ld + j]
                        #expect(rows.element(row: i, col: j).bitPattern == BF16.rounded(x).bitPattern)
                        #expect(packed.element(row: i, col: j).bitPattern == BF16.rounded(x).bitPattern)
                    }
                }
            }
        }
        var p = try PackedBF16Matrix([1, 2, 3, 4, 5, 6], ldb: 3, transposed: false, k: 2, n: 3)
        let before = ObjectIdentifier(p.storage)
        try p.repack([7, 8], ldb: 2, transposed: true, k: 2, n: 1)
        #expect(ObjectIdentifier(p.storage) == before, "a smaller repack reuses the storage")
        #expect(p.k == 2 && p.n == 1 && p.element(row: 1, col: 0) == 8)
        let copy = p
        try p.repack([9, 10], ldb: 2, transposed: true, k: 2, n: 1)
        #expect(copy.element(row: 0, col: 0) == 7 && p.element(row: 0, col: 0) == 9, "copy on write")
    }

    /// Round to nearest even at the bf16 boundary, and the special values.
    @Test func conversionRoundsToNearestEven() {
        #expect(BF16.bits(1) == 0x3F80)
        #expect(BF16.bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie, even below
        #expect(BF16.bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie, even above
        #expect(BF16.bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(BF16.bits(-2.5) == 0xC020)
        #expect(BF16.bits(.infinity) == 0x7F80 && BF16.bits(-.infinity) == 0xFF80)
        #expect(BF16.bits(.greatestFiniteMagnitude) == 0x7F80)  // rounds up to infinity
        #expect(BF16.value(BF16.bits(.nan)).isNaN && BF16.value(BF16.bits(Float(bitPattern: 0x7F80_0001))).isNaN)
        // The C packing's conversion is the same function: compare on a spread of bit patterns.
        let xs = (0..<4096).map { Float(bitPattern: UInt32(truncatingIfNeeded: $0 &* 0x9E37_79B1)) }
        // Every packing form (the AVX-512F packers where the CPU has them, the scalar ones under
        // PRECIS_NO_AVX512): B as a column and as a transposed row, A as a row and as a transposed column.
        let n = xs.count
        let b = try? PackedBF16Matrix(xs, ldb: 1, transposed: false, k: n, n: 1)
        let bt = try? PackedBF16Matrix(xs, ldb: n, transposed: true, k: n, n: 1)
        let a = try? BF16Rows(xs, lda: n, transposed: false, m: 1, k: n)
        let at = try? BF16Rows(xs, lda: n, transposed: true, m: n, k: 1)
        let forms: [(String, (Int) -> Float?)] = [
            ("B", { i in b?.element(row: i, col: 0) }), ("Bᵀ", { i in bt?.element(row: i, col: 0) }),
            ("A", { i in a?.element(row: 0, col: i) }), ("Aᵀ", { i in at?.element(row: i, col: 0) }),
        ]
        for (name, read) in forms {
            var wrong = 0
            for (i, x) in xs.enumerated() {
                let got = read(i)
                if !(got?.bitPattern == BF16.rounded(x).bitPattern || (got?.isNaN == true && x.isNaN)) { wrong += 1 }
            }
            #expect(wrong == 0, "\(name): \(wrong) of \(n) bit patterns converted differently")
        }
    }

    // MARK: - errors and detection

    @Test func shapeErrorsAreRefused() throws {
        let x = [Float](repeating: 1, count: 64)
        #expect(throws: BF16Error.self) { try PackedBF16Matrix(x, ldb: 2, transposed: false, k: 2, n: 3) }
        #expect(throws: BF16Error.self) { try PackedBF16Matrix(x, ldb: 4, transposed: false, k: -1, n: 3) }
        #expect(throws: BF16Error.self) { try BF16Rows(x, lda: 2, transposed: true, m: 3, k: 2) }
        #expect(throws: BF16Error.self) { try BF16Rows(capacityRows: Int.max / 2, k: Int.max / 2) }
        let rows = try BF16Rows(x, lda: 4, transposed: false, m: 4, k: 4)
        let packed = try PackedBF16Matrix(x, ldb: 4, transposed: false, k: 3, n: 4)
        var c = [Float](repeating: 0, count: 16)
        do {
            try BF16Gemm.multiply(rows, packed, beta: 0, c: &c, ldc: 4)
            Issue.record("k 4 against k 3 was accepted")
        } catch let e {
            // On a CPU without a kernel the unavailability is reported first; either names the problem.
            if case .mismatch(let s) = e { #expect(s.contains("4 × 4") && s.contains("3 × 4")) }
            else if case .unavailable = e { #expect(BF16Gemm.kernel == nil) }
            else { Issue.record("unexpected \(e)") }
        }
        if !BF16Support.current.supports(.amx) {
            let ok = try PackedBF16Matrix(x, ldb: 4, transposed: false, k: 4, n: 4)
            #expect(throws: BF16Error.self) { try BF16Gemm.multiply(rows, ok, beta: 0, c: &c, ldc: 4, kernel: .amx) }
        }
    }

    /// CPUID's answer agrees with the kernel's (/proc/cpuinfo's flags, which Linux derives from
    /// CPUID), the kernel choice follows the support, and the refusal names the missing flags.
    @Test func detectionMatchesCPUInfo() {
        let s = BF16Support.current, flags = CPUFeatures.flags
        #if arch(x86_64)
        if !flags.isEmpty {
            #expect(s.avx512f == flags.contains("avx512f"))
            #expect(s.avx512bf16 == flags.contains("avx512_bf16"))
            #expect(s.amxTile == flags.contains("amx_tile"))
            #expect(s.amxBF16 == flags.contains("amx_bf16"))
        }
        #endif
        let env = ProcessInfo.processInfo.environment
        if env["PRECIS_NO_AVX512"] == nil {
            #expect(s.kernels.contains(.avx512bf16) == s.supports(.avx512bf16))
            if env["PRECIS_NO_AMX"] == nil { #expect(s.kernels.contains(.amx) == s.supports(.amx)) }
        }
        #expect((s.unavailableReason == nil) == !s.kernels.isEmpty)
        #expect(BF16Gemm.kernel == s.kernels.first)
        if s.supports(.amx) { #expect(s.amxPermission == true) }
        // The portable kernel is offered only when asked for, and then last.
        let emulated = env["PRECIS_BF16_EMULATE"] == "1"
        #expect(s.kernels.contains(.portable) == emulated)
        if emulated { #expect(s.kernels.last == .portable) }
        let none = BF16Support(avx512f: true, avx512bf16: false, amxTile: false, amxBF16: false, osAVX512: true, osAMX: false, amxPermission: nil)
        #expect(none.kernels == (emulated ? [.portable] : []))
        let why = none.unavailableReason ?? ""
        if emulated {
            #expect(none.unavailableReason == nil)
        } else if env["PRECIS_NO_AVX512"] != nil {
            // The opt-out comes first: the message says it, whatever the CPU lacks.
            #expect(why.contains("PRECIS_NO_AVX512"), "\(why)")
        } else {
            #expect(why.contains("avx512_bf16") && why.contains("amx_tile"), "\(why)")
        }
    }
}
