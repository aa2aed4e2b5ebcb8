import Foundation
import Testing
import PrecisBench
import PrecisCore
import PrecisModels

/// `precis bench gemm --bf16`'s parts: the peak (AMX's from /proc/cpuinfo's clock, AVX-512-BF16's measured), and
/// one run over two small products (skipped where no bf16 kernel runs).
@Suite struct BF16GemmProfileTests {
    @Test func amxPeakIsThreadsTimesClockTimesFlopsPerCycle() {
        let intel = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t\t: 2000.000\n"
        let x = BF16GemmProfile.peak(kernel: .amx, threads: 4, cpuinfo: intel)
        #expect(x.flopsPerCycle == 1024 && Swift.abs(x.gflops - 4 * 2.0 * 1024) < 1e-9)
        #expect(BF16GemmProfile.peak(kernel: .amx, threads: 1, cpuinfo: "garbage").gflops == 0)
        #expect(BF16GemmProfile.peak(kernel: .portable, threads: 2, cpuinfo: intel).gflops == 0)
    }

    /// The AVX-512-BF16 peak is the issue loop's measured rate, stated per cycle of the given clock.
    @Test(.enabled(if: BF16Support.current.supports(.avx512bf16), "no AVX-512-BF16 on this CPU"))
    func avx512PeakIsMeasured() throws {
        let measured = try BF16GemmProfile.measuredAVX512Peak(threads: 1, iterations: 100_000)
        #expect(measured > 0 && measured.isFinite)
        let cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2000.000\n"
        let p = BF16GemmProfile.peak(kernel: .avx512bf16, threads: 1, cpuinfo: cpuinfo)
        #expect(p.flopsPerCycle > 0 && Swift.abs(p.gflops - 2.0 * p.flopsPerCycle) < 1e-9)
        #expect(p.how.contains("measured"))
        // Without a clock the rate cannot be put per cycle: no peak is claimed.
        #expect(BF16GemmProfile.peak(kernel: .avx512bf16, threads: 1, cpuinfo: "garbage").gflops == 0)
    }

    @Test(.enabled(if: !BF16Support.current.supports(.avx512bf16), "this CPU has AVX-512-BF16"))
    func avx512PeakIsRefusedWithoutTheInstruction() {
        #expect(throws: BF16Error.self) { try BF16GemmProfile.measuredAVX512Peak(threads: 1, iterations: 10) }
        #expect(BF16GemmProfile.peak(kernel: .avx512bf16, threads: 1).gflops == 0)
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
