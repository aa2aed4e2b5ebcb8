import Foundation
import PrecisCore
import PrecisModels

/// `precis bench gemm --bf16`: every shape of the step's products (`GemmProfile.shapes`) timed as
/// an fp32 sgemm and as a bf16 product (`BF16Gemm`), interleaved round by round so that a machine
/// shared with other work slows both alike, against the bf16 kernel's peak.
public enum BF16GemmProfile {
    public struct Row: Sendable {
        public var name: String
        public var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, calls: Int, perHead: Bool
        /// fp32 with the kernel training runs for this shape (OpenBLAS, or `HeadGemm` for per-head products with AVX-512).
        public var fp32Gflops: Double
        /// bf16 with both operands packed beforehand (a weight packed once per step, and the kernel alone).
        public var bf16Gflops: Double
        /// bf16 converting and packing both operands inside every product (the cost when neither is reused).
        public var bf16PackedGflops: Double
    }

    /// The bf16 kernel's nominal peak: threads × clock × FLOPs per cycle per core.
    public struct Peak: Sendable {
        public var kernel: BF16Kernel
        public var threads: Int
        public var ghz: Double
        public var flopsPerCycle: Double
        public var how: String
        public var gflops: Double { Double(threads) * ghz * flopsPerCycle }
    }

    /// The kernel's ceiling. AMX: nominal, `TDPBF16PS` does 16 × 16 × 32 multiply-adds = 16,384
    /// FLOPs and issues one every 16 cycles, 1,024 FLOP/cycle/core at /proc/cpuinfo's `cpu MHz` (what
    /// the VM reports; turbo and throttling are not seen, so the percentages are indicative).
    /// AVX-512-BF16: measured, because the issue rate of `VDPBF16PS` (64 FLOPs on a zmm register)
    /// differs between cores and from the tables: `measuredAVX512Peak`. Portable: none claimed.
    public static func peak(kernel: BF16Kernel, threads: Int, cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> Peak {
        var mhz = 0.0
        for line in (cpuinfo ?? "").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "cpu MHz", mhz == 0 { mhz = Double(parts[1]) ?? 0 }
        }
        switch kernel {
        case .amx:
            return Peak(kernel: kernel, threads: threads, ghz: mhz / 1000, flopsPerCycle: 1024,
                        how: "TDPBF16PS: 16×16×32 multiply-adds per 16 cycles = 1024 FLOP/cycle/core")
        case .avx512bf16:
            guard let measured = try? measuredAVX512Peak(threads: threads), mhz > 0 else {
                return Peak(kernel: kernel, threads: threads, ghz: mhz / 1000, flopsPerCycle: 0,
                            how: "VDPBF16PS issue rate not measured (no AVX-512-BF16 here, or no clock in /proc/cpuinfo)")
            }
            let perCycle = measured / (Double(threads) * mhz / 1000)
            return Peak(kernel: kernel, threads: threads, ghz: mhz / 1000, flopsPerCycle: perCycle,
                        how: String(format: "VDPBF16PS zmm, 64 FLOP, issued in a loop: %.1f GFLOP/s measured = %.2f per cycle at that clock",
                                    measured, perCycle / 64))
        case .portable:
            return Peak(kernel: kernel, threads: threads, ghz: mhz / 1000, flopsPerCycle: 0,
                        how: "portable C kernel (emulated bf16): no peak is claimed")
        }
    }

    /// GFLOP/s of `threads` threads each issuing `VDPBF16PS` zmm instructions in a loop of 24
    /// independent chains without memory operands (`BF16Gemm.avx512IssueLoop`), 64 FLOPs each: the
    /// AVX-512-BF16 kernel's ceiling on this core. The best of three timings of about 50 million
    /// instructions per thread. Throws where the CPU lacks AVX-512-BF16.
    public static func measuredAVX512Peak(threads: Int, iterations: UInt64 = 2_000_000) throws -> Double {
        _ = try BF16Gemm.avx512IssueLoop(iterations: 1)
        let n = max(1, threads)
        return Compute.withThreads(n) {
            var best = 0.0
            for _ in 0..<3 {
                let t0 = Timing.now()
                Parallel.run(n) { _ in _ = try? BF16Gemm.avx512IssueLoop(iterations: iterations) }
                let dt = Timing.now() - t0
                best = max(best, Double(n) * Double(iterations) * 24 * 64 / dt / 1e9)
            }
            return best
        }
    }

    /// One worker's operands for the per-head products (each worker its own C and packing scratch).
    final class Lane {
        let c: FloatBuffer
        var rows: BF16Rows
        var packed: PackedBF16Matrix
        /// A refusal met inside the timed loop (written only by the worker that owns this lane).
        var failure: BF16Error?
        init(m: Int, n: Int, k: Int, ldc: Int, rows: BF16Rows, packed: PackedBF16Matrix) {
            c = FloatBuffer(count: m * ldc); self.rows = rows; self.packed = packed
        }
    }

    /// Times each shape `rounds` times, fp32 then bf16 then bf16 with packing in every round; the
    /// best of each. Whole-batch products run split over the workers as training runs them;
    /// per-head ones run one product per worker, 64 of them spread over the workers.
    public static func run(_ products: [MatrixProduct], threads: Int, rounds: Int = 3) throws -> [Row] {
        return try Compute.withThreads(threads) {
            _ = try BF16Gemm.requireKernel()
            var out: [Row] = []
            for s in GemmProfile.shapes(products) {
                let (m, n, k, ta, tb) = (s.m, s.n, s.k, s.transA, s.transB)
                let (lda, ldb, ldc) = (s.lda, s.ldb, s.ldc)
                let a = FloatBuffer(count: (ta ? k : m) * lda), b = FloatBuffer(count: (tb ? n : k) * ldb)
                for i in 0..<a.count { a[i] = Float(i % 13) * 0.01 }
                for i in 0..<b.count { b[i] = Float(i % 11) * 0.01 }
                let rows = try BF16Rows(a.pointer, lda: lda, transposed: ta, m: m, k: k)
                let packed = try PackedBF16Matrix(b.pointer, ldb: ldb, transposed: tb, k: k, n: n)
                let workers = s.perHead ? max(1, Parallel.available) : 1
                let lanes = (0..<workers).map { _ in Lane(m: m, n: n, k: k, ldc: ldc, rows: rows, packed: packed) }
                // Each lane's own copies, so repacking inside the timed loop never copies on write.
                for lane in lanes {
                    try lane.rows.load(a.pointer, lda: lda, transposed: ta, m: m, k: k)
                    try lane.packed.repack(b.pointer, ldb: ldb, transposed: tb, k: k, n: n)
                }
                let scratch = s.perHead && CPUFeatures.avx512
                    ? (0..<workers).map { _ in FloatBuffer(count: HeadGemm.scratchFloats(n: n, k: k)) } : []
                let reps = s.perHead ? 64 : 8
                var best = [Double](repeating: .infinity, count: 3)
                for _ in 0..<rounds {
                    for variant in 0..<3 {
                        let t0 = Timing.now()
                        if s.perHead {
                            Parallel.chunks(reps, maxParts: workers) { w, r in
                                let lane = lanes[w]
                                for _ in r {
                                    do throws(BF16Error) {
                                        switch variant {
                                        case 0:
                                            if scratch.isEmpty {
                                                BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer,
                                                          ldb: ldb, beta: 0, c: lane.c.pointer, ldc: ldc, parallel: false)
                                            } else {
                                                HeadGemm.run(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer,
                                                             ldb: ldb, c: lane.c.pointer, ldc: ldc, scratch: scratch[w].pointer)
                                            }
                                        case 1:
                                            try BF16Gemm.multiply(lane.rows, lane.packed, beta: 0, c: lane.c.pointer, ldc: ldc, parallel: false)
                                        default:
                                            try lane.packed.repack(b.pointer, ldb: ldb, transposed: tb, k: k, n: n)
                                            try BF16Gemm.multiply(transA: ta, m: m, k: k, a: a.pointer, lda: lda, scratch: &lane.rows,
                                                                  lane.packed, beta: 0, c: lane.c.pointer, ldc: ldc, parallel: false)
                                        }
                                    } catch { lane.failure = error }
                                }
                            }
                        } else {
                            let lane = lanes[0]
                            for _ in 0..<reps {
                                switch variant {
                                case 0:
                                    BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: ldb,
                                              beta: 0, c: lane.c.pointer, ldc: ldc)
                                case 1:
                                    try BF16Gemm.multiply(lane.rows, lane.packed, beta: 0, c: lane.c.pointer, ldc: ldc)
                                default:
                                    try lane.packed.repack(b.pointer, ldb: ldb, transposed: tb, k: k, n: n)
                                    try BF16Gemm.multiply(transA: ta, m: m, k: k, a: a.pointer, lda: lda, scratch: &lane.rows,
                                                          lane.packed, beta: 0, c: lane.c.pointer, ldc: ldc)
                                }
                            }
                        }
                        // Per-head: reps products over the workers; whole-batch: reps products one after another.
                        best[variant] = min(best[variant], (Timing.now() - t0) / Double(reps))
                    }
                }
                if let failure = lanes.compactMap(\.failure).first { throw failure }
                let flops = 2 * Double(m * n * k) / 1e9
                out.append(Row(name: s.name, m: m, n: n, k: k, transA: ta, transB: tb, calls: s.calls, perHead: s.perHead,
                               fp32Gflops: flops / best[0], bf16Gflops: flops / best[1], bf16PackedGflops: flops / best[2]))
            }
            return out
        }
    }
}
