import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Marks the threads that are running an iteration of a parallel region, so that a region opened
/// inside another runs serially on its worker instead of oversubscribing the cores.
private let insideRegion: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// Fork–join parallelism for the numerics: `Parallel.width` workers (the caller plus
/// `width − 1` Dispatch threads). OpenBLAS itself runs single-threaded (see `Compute`), so there is
/// exactly one pool of compute threads and nothing spins against anything else.
public enum Parallel {
    /// Set by `Compute.setThreads` before any parallel region runs. Reads from inside a region see the
    /// value the region started with: it is only written while no region is running.
    nonisolated(unsafe) public private(set) static var width = 1

    static func setWidth(_ n: Int) { width = max(1, n) }

    /// The workers a parallel region opened here would get: `width`, or 1 inside another region
    /// (whose iterations already occupy the workers), so callers do not split work that would then
    /// run serially anyway.
    @inline(__always)
    public static var available: Int { pthread_getspecific(insideRegion) != nil ? 1 : width }

    /// Runs body(0..<n), spread over the workers; returns when all are done.
    @inline(__always)
    public static func run(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 || width <= 1 || pthread_getspecific(insideRegion) != nil {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = ForkJoinBody(body)
            DispatchQueue.concurrentPerform(iterations: n) { i in
                pthread_setspecific(insideRegion, UnsafeRawPointer(bitPattern: 1))
                shared.body(i)
                pthread_setspecific(insideRegion, nil)
            }
        }
    }

    /// Splits 0..<total into at most `width` (and `maxParts`) contiguous chunks of at least `grain` items each and runs
    /// body(chunk index, range) for each.
    @inline(__always)
    /// `maxParts` bounds the chunk count for callers that hold one scratch buffer per chunk (the width
    /// may have grown since they allocated them).
    public static func chunks(_ total: Int, grain: Int = 1, maxParts: Int = .max, _ body: (Int, Range<Int>) -> Void) {
        let parts = max(1, min(available, maxParts, total / max(1, grain)))
        if parts == 1 {
            if total > 0 { body(0, 0..<total) }
            return
        }
        run(parts) { i in
            let lo = total * i / parts, hi = total * (i + 1) / parts
            body(i, lo..<hi)
        }
    }
}

/// The one place Precis crosses the Sendable check for compute: a fork–join body.
///
/// Why it is safe: `concurrentPerform` returns only after every iteration has finished, so the body
/// (and the pointers it captures) never outlives the caller's stack frame; and every parallel region
/// in Precis gives each iteration a disjoint slice of the output (or its own scratch) while all
/// shared inputs are only read.
private struct ForkJoinBody: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
