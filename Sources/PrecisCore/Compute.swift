import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide compute settings: how many threads the numerics use.
///
/// The thread count is always explicit. Precis runs one pool of `threads` compute workers
/// (`Parallel`): large GEMMs are split by rows or columns across them, attention heads and
/// elementwise kernels are spread over them, and OpenBLAS itself is pinned to one thread
/// (`BLAS.singleThreaded`, once per process), so its own pool never spins against ours.
/// Each output element is computed by exactly one single-threaded GEMM call, so results do not depend
/// on the thread count.
public enum Compute {
    /// Cores this process may run on (Foundation reads the affinity mask and cgroup quota), at least 1.
    public static var availableCores: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Sets the number of compute threads for every following call. Call it while no computation runs.
    public static func setThreads(_ n: Int) {
        _ = BLAS.singleThreaded
        Parallel.setWidth(n)
    }

    /// The number of compute threads.
    public static var threads: Int { Parallel.width }
}
