import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS picks its kernels once, when the library loads. Debian's 0.3.21 does not recognise
/// recent Intel server CPUs (e.g. family 6 model 207) and falls back to the generic `Prescott`
/// (SSE3) kernels, which run sgemm 3–6× slower than the AVX-512 ones the CPU supports. Executables
/// call `selectBLASKernel()` first thing: when the user has not set `OPENBLAS_CORETYPE` and OpenBLAS
/// chose a generic kernel on a CPU with AVX-512 (or AVX2 + FMA), it sets the variable and re-executes
/// the process once, so the library loads with the right kernels. A user's setting always wins.
public enum BLASKernel {
    /// The kernel family OpenBLAS is using, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var current: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    static let generic: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                                       "coppermine", "northwood", "banias", "unknown"]

    /// The best OpenBLAS 0.3.21 core type for this CPU's flags, or nil if none is better than generic.
    public static func bestCoreType(cpuFlags: Set<String>) -> String? {
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) {
            return cpuFlags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        return nil
    }

    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            if let colon = line.firstIndex(of: ":") {
                return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
            }
        }
        return []
    }

    /// The core type `selectBLASKernel` would set, or nil when it would leave OpenBLAS alone.
    public static func recommendedCoreType() -> String? {
        if getenv("OPENBLAS_CORETYPE") != nil { return nil }
        guard generic.contains(current.lowercased()) else { return nil }
        return bestCoreType(cpuFlags: cpuFlags())
    }

    /// Re-executes the current process with `OPENBLAS_CORETYPE` set when that gives faster kernels.
    /// Returns normally when nothing needs to change (or re-execution failed, which is harmless).
    public static func selectBLASKernel() {
        guard getenv("PRECIS_BLAS_REEXEC") == nil, let core = recommendedCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("PRECIS_BLAS_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv only returns on failure: carry on with the generic kernels.
        for p in cargs { free(p) }
    }
}
