import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide compute settings: how many threads the numerics use.
///
/// The thread count is always explicit. Precis runs one pool of `threads` compute workers
/// (`Parallel`): a model step runs its batch in lanes, one per worker (see `LaneRunner`);
/// elsewhere large GEMMs are split by rows or columns across them and elementwise kernels are spread
/// over them; OpenBLAS itself is pinned to one thread (`BLAS.singleThreaded`, once per process), so
/// its own pool never spins against ours. Results do not depend on the thread count beyond float
/// rounding, and are bitwise the same run after run for a given count.
public enum Compute {
    /// Cores this process may run on (Foundation reads the affinity mask and cgroup quota), at least 1.
    public static var availableCores: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Sets the process's number of compute threads, for every following call on a thread without
    /// its own (`withThreads`). A role or the CLI calls it once at start, while no computation runs.
    public static func setThreads(_ n: Int) {
        _ = BLAS.singleThreaded
        Parallel.setWidth(n)
    }

    /// Runs `body` with `n` compute threads for the computations the calling thread starts, whatever
    /// the process's count is or becomes meanwhile: what a library caller (a trainer, a benchmark)
    /// uses, so that two of them in one process neither change each other's thread count nor, with
    /// it, each other's bits.
    public static func withThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        _ = BLAS.singleThreaded
        return try Parallel.withWidth(n, body)
    }

    /// The number of compute threads of computations started on this thread.
    public static var threads: Int { Parallel.width }
}
