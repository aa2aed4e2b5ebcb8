import Foundation
import PrecisAVX2
import PrecisAVX512
import PrecisKernels

/// What this CPU supports, read once from /proc/cpuinfo. `PRECIS_NO_AVX512=1` turns the AVX-512
/// kernels off and `PRECIS_NO_AVX2=1` the AVX2 ones (to compare, or to rule them out).
public enum CPUFeatures {
    public static let flags: Set<String> = BLASKernel.cpuFlags()

    /// AVX-512 F/BW/VL/DQ (what the `PrecisAVX512` module is compiled for), on x86-64.
    public static let avx512: Bool = {
        #if arch(x86_64)
        if ProcessInfo.processInfo.environment["PRECIS_NO_AVX512"] != nil { return false }
        return ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()

    /// AVX2 with FMA, BMI1/2, F16C, LZCNT and MOVBE (`-target-cpu haswell`, what the `PrecisAVX2`
    /// module is compiled for), on x86-64.
    public static let avx2: Bool = {
        #if arch(x86_64)
        if ProcessInfo.processInfo.environment["PRECIS_NO_AVX2"] != nil { return false }
        return ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "abm", "movbe"].allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()

    /// The widest vector-kernel module this CPU runs (`PrecisAVX512`, else `PrecisAVX2`), or nil
    /// (then callers run PrecisKernels' portable bodies as compiled for the baseline). All give the
    /// same bits.
    public static let vectorKernels: (any VectorKernelSet.Type)? =
        avx512 ? PrecisAVX512.VectorKernels.self : avx2 ? PrecisAVX2.VectorKernels.self : nil

    /// The name of `vectorKernels`' ISA, for logs and benchmarks: "AVX-512", "AVX2" or "portable".
    public static var vectorISA: String { avx512 ? "AVX-512" : avx2 ? "AVX2" : "portable" }
}
