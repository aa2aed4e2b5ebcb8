import Foundation
import PrecisCore
import PrecisModels
#if canImport(Glibc)
import Glibc
#endif

/// What every benchmark measures with: a monotonic clock, medians, the process's peak memory, and
/// this machine's sgemm rate (a best-of peak, and one burst between two timed steps).
public enum Timing {
    /// Seconds on the monotonic clock (an arbitrary origin: only differences mean anything).
    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// The middle value (the mean of the two middle ones for an even count); 0 for none.
    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// Peak resident set size of this process so far, in MiB.
    public static func peakRSSMiB() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_maxrss) / 1024
    }

    /// Best fp32 GEMM throughput (GFLOP/s) over a few square and layer-shaped products, each run six
    /// times (the first untimed), with `threads` compute threads.
    public static func sgemmPeak(threads: Int) -> Double {
        return Compute.withThreads(threads) {
            var best = 0.0
            for (m, n, k) in [(1024, 1024, 1024), (2048, 1024, 256), (2048, 256, 1024)] {
                let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
                for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 }
                for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 }
                for rep in 0..<6 {
                    let t0 = now()
                    BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n,
                              beta: 0, c: c.pointer, ldc: n)
                    let dt = now() - t0
                    if rep > 0 { best = max(best, 2 * Double(m * n * k) / dt / 1e9) }
                }
            }
            return best
        }
    }

    /// One sgemm burst between two steps (the 1024 × 512 × 512 product, four times, with the compute
    /// workers): its GFLOP/s. It allocates nothing, so the peak RSS stays the training's: A and B are
    /// read from the parameters and C is written over the gradients, which the next step zeroes
    /// before its forward. Nil when the model has fewer than m·k + k·n parameters.
    public static func sgemmBurst(_ model: any Seq2SeqModel) -> Double? {
        let m = 1024, n = 512, k = 512
        guard model.params.count >= m * k + k * n, model.grads.count >= m * n else { return nil }
        let a = UnsafePointer(model.params.pointer), b = a + m * k
        let t0 = now()
        for _ in 0..<4 {
            BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                      beta: 0, c: model.grads.pointer, ldc: n)
        }
        return 8 * Double(m * n * k) / (now() - t0) / 1e9
    }
}
