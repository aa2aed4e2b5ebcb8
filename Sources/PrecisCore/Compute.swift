import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide compute settings: how many threads OpenBLAS may use.
///
/// The thread count is always explicit. Nothing else in Precis spawns compute threads, so
/// `threads` OpenBLAS threads never compete with a second pool (no oversubscription).
public enum Compute {
    /// Cores this process may run on (Foundation reads the affinity mask and cgroup quota), at least 1.
    public static var availableCores: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Sets the number of threads OpenBLAS uses for every following call.
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}
