import Foundation
import PrecisCore
import PrecisModels

/// `precis bench gemm`: each shape of matrix product a training step runs (`matrixProducts`), timed
/// alone with the strides and kernel training uses, so the step's profile can be read against the
/// machine's peak.
public enum GemmProfile {
    /// One shape of the step: the products of one name and shape, forward and backward, together.
    public struct Shape: Sendable, Equatable {
        public var name: String
        public var m: Int, n: Int, k: Int, transA: Bool, transB: Bool
        public var lda: Int, ldb: Int, ldc: Int
        /// Products of this shape per step.
        public var calls: Int
        /// Attention's per-head products (`MatrixProduct.perHead`), timed with both kernels.
        public var perHead: Bool
    }

    public struct Row: Sendable {
        public var name: String
        public var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, calls: Int
        public var gflops: Double
        public var msPerStep: Double
        /// Whether training runs this shape with this kernel (per-head products are timed both ways).
        public var inStep = true
    }

    /// The step's products merged by name and shape (counts added up), in the order first listed.
    public static func shapes(_ products: [MatrixProduct]) -> [Shape] {
        var out: [Shape] = []
        for p in products {
            let s = Shape(name: p.name, m: p.m, n: p.n, k: p.k, transA: p.transA, transB: p.transB,
                          lda: p.lda, ldb: p.ldb, ldc: p.ldc, calls: p.count, perHead: p.perHead)
            if let i = out.firstIndex(where: { var o = $0; o.calls = s.calls; return o == s }) {
                out[i].calls += s.calls
            } else {
                out.append(s)
            }
        }
        return out
    }

    /// Times each shape of `products` with `threads` compute threads: the best of three rounds of
    /// 8 products (64 for per-head ones, spread over the threads one product per thread, as
    /// training's (row, head) pairs are), from which its GFLOP/s and its ms per step.
    public static func run(_ products: [MatrixProduct], threads: Int) -> [Row] {
        return Compute.withThreads(threads) {
            var rows: [Row] = []
            for s in shapes(products) {
                let (m, n, k, ta, tb) = (s.m, s.n, s.k, s.transA, s.transB)
                let (lda, ldb, ldc) = (s.lda, s.ldb, s.ldc)
                let a = FloatBuffer(count: (ta ? k : m) * lda), bb = FloatBuffer(count: (tb ? n : k) * ldb)
                let cc = FloatBuffer(count: m * ldc)
                for i in 0..<a.count { a[i] = Float(i % 13) * 0.01 }
                for i in 0..<bb.count { bb[i] = Float(i % 11) * 0.01 }
                let reps = s.perHead ? 64 : 8
                // The head kernel's scratch, one per worker (per-head shapes only).
                let scratch = s.perHead
                    ? (0..<max(1, Parallel.available)).map { _ in FloatBuffer(count: HeadGemm.scratchFloats(n: n, k: k)) } : []
                for kernel in s.perHead ? ["OpenBLAS", "HeadGemm"] : [""] {
                    var best = Double.infinity
                    for _ in 0..<3 {
                        let t0 = Timing.now()
                        if s.perHead {
                            // Independent heads spread over the workers, one thread per product.
                            Parallel.chunks(reps) { w, r in
                                for _ in r {
                                    if kernel == "OpenBLAS" {
                                        BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda,
                                                  b: bb.pointer, ldb: ldb, beta: 0, c: cc.pointer, ldc: ldc, parallel: false)
                                    } else {
                                        HeadGemm.run(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda, b: bb.pointer,
                                                     ldb: ldb, c: cc.pointer, ldc: ldc, scratch: scratch[w].pointer)
                                    }
                                }
                            }
                        } else {
                            for _ in 0..<reps {
                                BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda,
                                          b: bb.pointer, ldb: ldb, beta: 0, c: cc.pointer, ldc: ldc)
                            }
                        }
                        best = min(best, (Timing.now() - t0) / Double(reps))
                    }
                    let gf = 2 * Double(m * n * k) / best / 1e9
                    rows.append(Row(name: kernel.isEmpty ? s.name : s.name.replacingOccurrences(of: "per head", with: "per head, \(kernel)"),
                                    m: m, n: n, k: k, transA: ta, transB: tb, calls: s.calls, gflops: gf,
                                    msPerStep: best * Double(s.calls) * 1000,
                                    inStep: kernel.isEmpty || (kernel == "HeadGemm") == CPUFeatures.avx512))
                }
            }
            return rows
        }
    }
}
