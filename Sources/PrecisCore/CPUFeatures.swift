import Foundation

/// What this CPU supports, read once from /proc/cpuinfo. `PRECIS_NO_AVX512=1` turns the AVX-512
/// kernels off (to compare, or to rule them out).
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
}
