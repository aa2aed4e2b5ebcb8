import Foundation
import Testing
import PrecisCore
import PrecisAVX512

/// The per-head attention products (`HeadGemm`: AVX-512 broadcast kernels, or OpenBLAS without
/// AVX-512) against a double-precision definition, over shapes with row and column tails, strided
/// operands, α, and the columns of C beyond n left alone.
@Suite struct HeadGemmTests {
    /// C = α·op(A)·op(B) in Double, with the same storage conventions as `BLAS.gemm`.
    static func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
                          b: [Float], ldb: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for kk in 0..<k {
                    let x = transA ? a[kk * lda + i] : a[i * lda + kk]
                    let y = transB ? b[j * ldb + kk] : b[kk * ldb + j]
                    s += Double(x) * Double(y)
                }
                c[i * n + j] = Double(alpha) * s
            }
        }
        return c
    }

    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (5, 16, 3), (6, 64, 64), (7, 17, 65), (13, 70, 9), (64, 64, 64), (257, 64, 256), (40, 130, 64),
        (256, 256, 64), (3, 200, 31), (12, 48, 1), (30, 64, 300), (19, 100, 129), (64, 256, 256),
    ]

    @Test(arguments: [(false, false), (true, false), (false, true)])
    func headProductsMatchTheDefinition(_ trans: (Bool, Bool)) {
        let (ta, tb) = trans
        var rng = SeededRNG(seed: 21)
        for (m, n, k) in Self.shapes {
            // Operands stored with spare columns, as a head's slice of a wider matrix is.
            let lda = (ta ? m : k) + 5, ldb = (tb ? k : n) + 3, ldc = n + 7
            let a = (0..<((ta ? k : m) * lda)).map { _ in Float(rng.normal()) }
            let b = (0..<((tb ? n : k) * ldb)).map { _ in Float(rng.normal()) }
            let alpha: Float = 0.125
            var c = [Float](repeating: 42, count: m * ldc)
            var scratch = [Float](repeating: .nan, count: HeadGemm.scratchFloats(n: n, k: k))
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    HeadGemm.run(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda,
                                 b: bp.baseAddress!, ldb: ldb, c: &c, ldc: ldc, scratch: &scratch)
                }
            }
            let ref = Self.reference(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb)
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    // Float accumulation over k terms of size ~1: error ~ k·2⁻²⁴·√k at worst.
                    let err = abs(Double(c[i * ldc + j]) - ref[i * n + j]) / (Double(alpha) * Double(k).squareRoot())
                    worst = max(worst, err)
                }
                for j in n..<ldc { #expect(c[i * ldc + j] == 42, "C[\(i), \(j)] beyond n was written (\(m)×\(n)×\(k))") }
            }
            #expect(worst < 1e-5, "\(ta ? "T" : "N")\(tb ? "T" : "N") \(m)×\(n)×\(k): error \(worst)")
        }
    }

    /// The transposition `nt` uses, alone: a k × n block from an n × k one (rows ld apart), in
    /// panels of 64 columns.
    @Test(.enabled(if: CPUFeatures.avx512)) func transposePanelsWritesTheTransposeByPanels() {
        for (n, k) in [(1, 1), (16, 64), (17, 64), (40, 3), (256, 64), (130, 5)] {
            let ldb = k + 2
            let b = (0..<(n * ldb)).map { Float($0) }
            var t = [Float](repeating: -1, count: k * n)
            b.withUnsafeBufferPointer { PrecisAVX512.VectorKernels.transposePanels(&t, $0.baseAddress!, rows: n, cols: k, ldb: ldb) }
            for j in 0..<n {
                let p = j / 64, w = min(64, n - 64 * p)
                for kk in 0..<k { #expect(t[64 * p * k + kk * w + j % 64] == b[j * ldb + kk], "n \(n) k \(k) j \(j) kk \(kk)") }
            }
        }
    }
}
