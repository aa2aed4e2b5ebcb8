import Foundation
import Testing
import PrecisBench
import PrecisCore
import PrecisModels

/// `precis bench gemm --bf16`'s parts: the peak computed from /proc/cpuinfo's clock and vendor, and
/// one run over two small products (skipped where no bf16 kernel runs).
@Suite struct BF16GemmProfileTests {
    @Test func peakIsThreadsTimesClockTimesFlopsPerCycle() {
        let amd = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu MHz\t\t: 2600.000\n"
        let intel = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t\t: 2000.000\n"
        let a = BF16GemmProfile.peak(kernel: .avx512bf16, threads: 2, cpuinfo: amd)
        #expect(a.flopsPerCycle == 64 && Swift.abs(a.gflops - 2 * 2.6 * 64) < 1e-9)
        let i = BF16GemmProfile.peak(kernel: .avx512bf16, threads: 1, cpuinfo: intel)
        #expect(i.flopsPerCycle == 128 && Swift.abs(i.gflops - 2.0 * 128) < 1e-9)
        let x = BF16GemmProfile.peak(kernel: .amx, threads: 4, cpuinfo: intel)
        #expect(x.flopsPerCycle == 1024 && Swift.abs(x.gflops - 4 * 2.0 * 1024) < 1e-9)
        #expect(BF16GemmProfile.peak(kernel: .amx, threads: 1, cpuinfo: "garbage").gflops == 0)
    }

    @Test(.enabled(if: BF16Gemm.kernel != nil, "no bf16 kernel on this CPU (avx512_bf16 / amx_tile + amx_bf16 absent)"))
    func runTimesEveryShapeThreeWays() throws {
        let products = [
            MatrixProduct(name: "proj x·Wᵀ", m: 40, n: 48, k: 33, transA: false, transB: true, count: 2, pass: .forward),
            MatrixProduct(name: "head P·V (per head)", m: 20, n: 16, k: 20, transA: false, transB: false, count: 3, pass: .forward,
                          perHead: true, lda: 20, ldb: 64, ldc: 64),
        ]
        // The current width: other suites run in this process at the same time, so it is not changed.
        let rows = try BF16GemmProfile.run(products, threads: Compute.threads, rounds: 1)
        #expect(rows.map(\.name) == ["proj x·Wᵀ", "head P·V (per head)"])
        for r in rows {
            #expect(r.fp32Gflops > 0 && r.bf16Gflops > 0 && r.bf16PackedGflops > 0)
            #expect(r.fp32Gflops.isFinite && r.bf16Gflops.isFinite && r.bf16PackedGflops.isFinite)
        }
    }
}
