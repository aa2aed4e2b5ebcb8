import CSpin
import Dispatch
import Synchronization
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

/// The thread count set for the calling thread by `Parallel.withWidth` (absent: the process's).
private let threadWidth: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// Fork–join parallelism for the numerics: `Parallel.width` workers (the caller plus `width − 1`
/// threads of a persistent pool). OpenBLAS itself runs single-threaded (see `Compute`), so there is
/// exactly one pool of compute threads and nothing spins against anything else.
public enum Parallel {
    /// The process's thread count, set by `Compute.setThreads` (a role's or the CLI's, once at start).
    private static let processWidth = Atomic<Int>(1)

    /// The workers of a region opened on this thread: the count `withWidth` set for the calling thread,
    /// else the process's. A computation that runs under `withWidth` keeps its count, and so its
    /// chunking and its bits, whatever another thread of the process sets meanwhile.
    @inline(__always)
    public static var width: Int {
        if let w = pthread_getspecific(threadWidth) { return Int(bitPattern: w) }
        return processWidth.load(ordering: .relaxed)
    }

    static func setWidth(_ n: Int) { processWidth.store(max(1, n), ordering: .relaxed) }

    /// Runs `body` with `n` workers for the regions this thread opens, then restores the count it had.
    static func withWidth<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(threadWidth)
        pthread_setspecific(threadWidth, UnsafeRawPointer(bitPattern: max(1, n)))
        defer { pthread_setspecific(threadWidth, previous) }
        return try body()
    }

    /// The workers a parallel region opened here would get: `width`, or 1 inside another region
    /// (whose iterations already occupy the workers), so callers do not split work that would then
    /// run serially anyway.
    @inline(__always)
    public static var available: Int { pthread_getspecific(insideRegion) != nil ? 1 : width }

    /// Runs body(0..<n), spread over the workers; returns when all are done.
    @inline(__always)
    public static func run(_ n: Int, _ body: (Int) -> Void) {
        let width = self.width
        if n <= 1 || width <= 1 || pthread_getspecific(insideRegion) != nil {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var box = ForkJoinBody(body)
            if !ComputePool.shared(width - 1).run(n, &box) {
                // Another thread is using the pool (e.g. a server's optimizer beside a worker's
                // encoder): this region takes Dispatch's threads instead.
                let shared = box
                DispatchQueue.concurrentPerform(iterations: n) { i in
                    pthread_setspecific(insideRegion, UnsafeRawPointer(bitPattern: 1))
                    shared.body(i)
                    pthread_setspecific(insideRegion, nil)
                }
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

    /// How long (in spin-wait hints, ≈ 20–40 ns each) a pool thread keeps watching for the next region
    /// before it sleeps. Regions come back to back in a training step or a decoding loop; waking a
    /// sleeping thread costs tens of microseconds on a VM, spinning a little costs nothing.
    static let spinLimit = 1 << 12
}

/// The one place Precis crosses the Sendable check for compute: a fork–join body.
///
/// Why it is safe: a region returns only after every iteration has finished, so the body (and the
/// pointers it captures) never outlives the caller's stack frame; and every parallel region in
/// Precis gives each iteration a disjoint slice of the output (or its own scratch) while all shared
/// inputs are only read.
struct ForkJoinBody: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}

/// Persistent compute threads for `Parallel.run`: one region at a time. A region is published as a
/// generation number with a claim counter (`ticket`: generation in the high bits, next iteration in
/// the low 32); any thread, the caller included, claims iterations by compare-and-swap on it, so a
/// thread that wakes late for an old generation can never run an iteration of a newer one.
public final class ComputePool: Sendable {
    private static let instance = Mutex<ComputePool?>(nil)

    /// The pool, with at least `threads` threads (made on first use, replaced when more are needed;
    /// an outgrown pool's threads stay asleep).
    static func shared(_ threads: Int) -> ComputePool {
        instance.withLock { pool in
            let threads = min(threads, 63)
            if let p = pool, p.threads >= threads { return p }
            let p = ComputePool(threads: threads)
            pool = p
            return p
        }
    }

    public let threads: Int
    private let busy = Atomic<Bool>(false)
    private let ticket = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    /// Pool threads with an index below this take part in the current region.
    private let active = Atomic<Int>(0)
    /// Per generation parity: the body's address and the iteration count.
    private let body0 = Atomic<Int>(0), body1 = Atomic<Int>(0)
    private let count0 = Atomic<Int>(0), count1 = Atomic<Int>(0)
    /// Bit w set: pool thread w is asleep (or about to be) on `wakeups[w]`.
    private let parked = Atomic<UInt64>(0)
    private let wakeups: [DispatchSemaphore]
    /// The region's caller, asleep (or about to be) until the last iteration finishes.
    private let callerParked = Atomic<Bool>(false)
    private let callerWakeup = DispatchSemaphore(value: 0)

    /// A pool of `threads` threads (`Parallel` keeps one for the process; tests make their own).
    public init(threads: Int) {
        self.threads = threads
        wakeups = (0..<threads).map { _ in DispatchSemaphore(value: 0) }
        for w in 0..<threads {
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
            let context = Unmanaged.passRetained(WorkerStart(pool: self, index: w)).toOpaque()
            var tid = pthread_t()
            pthread_create(&tid, &attr, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.loop(start.index)
                return nil
            }, context)
            pthread_attr_destroy(&attr)
        }
    }

    private final class WorkerStart: Sendable {
        let pool: ComputePool
        let index: Int
        init(pool: ComputePool, index: Int) { self.pool = pool; self.index = index }
    }

    private func body(_ generation: Int) -> Int {
        generation & 1 == 0 ? body0.load(ordering: .acquiring) : body1.load(ordering: .acquiring)
    }
    private func count(_ generation: Int) -> Int {
        generation & 1 == 0 ? count0.load(ordering: .acquiring) : count1.load(ordering: .acquiring)
    }

    /// Runs body(0..<n) on the pool and the calling thread; false (nothing run) when another thread
    /// holds the pool.
    @discardableResult
    public func run(_ n: Int, _ body: (Int) -> Void) -> Bool {
        withoutActuallyEscaping(body) { body in
            var box = ForkJoinBody(body)
            return run(n, &box)
        }
    }

    func run(_ n: Int, _ box: inout ForkJoinBody) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        withUnsafePointer(to: &box) { p in
            let generation = (ticket.load(ordering: .relaxed) >> 32) + 1
            if generation & 1 == 0 {
                body0.store(Int(bitPattern: p), ordering: .releasing); count0.store(n, ordering: .releasing)
            } else {
                body1.store(Int(bitPattern: p), ordering: .releasing); count1.store(n, ordering: .releasing)
            }
            remaining.store(n, ordering: .releasing)
            let helpers = min(threads, n - 1)
            active.store(helpers, ordering: .releasing)
            ticket.store(generation << 32, ordering: .sequentiallyConsistent)
            let helperBits: UInt64 = helpers >= 64 ? ~0 : (1 << UInt64(helpers)) - 1
            let asleep = parked.bitwiseAnd(~helperBits, ordering: .sequentiallyConsistent).oldValue & helperBits
            if asleep != 0 {
                for w in 0..<helpers where asleep & (1 << UInt64(w)) != 0 { wakeups[w].signal() }
            }
            pthread_setspecific(insideRegion, UnsafeRawPointer(bitPattern: 1))
            work(generation)
            pthread_setspecific(insideRegion, nil)
            // The others' last iterations: spin briefly, then sleep until the thread that finishes
            // the last one wakes us (a lane can finish tens of milliseconds after the other when one
            // vCPU is slower; spinning that long would burn a core other threads could use).
            var spins = 0
            while remaining.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins < Parallel.spinLimit { precis_cpu_relax(); continue }
                // The same handshake as a pool thread's sleep: either the finisher sees us parked,
                // or we see its last decrement here. A stray signal only makes a later wait return
                // early, and this loop checks again.
                callerParked.store(true, ordering: .sequentiallyConsistent)
                if remaining.load(ordering: .sequentiallyConsistent) > 0 { callerWakeup.wait() }
                callerParked.store(false, ordering: .sequentiallyConsistent)
            }
        }
        return true
    }

    /// Claims and runs iterations of `generation` until none is left (or a newer region started).
    private func work(_ generation: Int) {
        let address = body(generation), n = count(generation)
        while true {
            let t = ticket.load(ordering: .acquiring)
            guard t >> 32 == generation, t & 0xFFFF_FFFF < n else { return }
            guard ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            UnsafePointer<ForkJoinBody>(bitPattern: address)!.pointee.body(t & 0xFFFF_FFFF)
            if remaining.subtract(1, ordering: .sequentiallyConsistent).newValue == 0,
               callerParked.exchange(false, ordering: .sequentiallyConsistent) {
                callerWakeup.signal()
            }
        }
    }

    /// A pool thread: watch for the next generation (spinning a while, then asleep), help with it.
    private func loop(_ w: Int) {
        pthread_setspecific(insideRegion, UnsafeRawPointer(bitPattern: 1))
        var seen = 0, spins = 0
        while true {
            let generation = ticket.load(ordering: .acquiring) >> 32
            if generation != seen {
                seen = generation
                spins = 0
                if w < active.load(ordering: .acquiring) { work(generation) }
                continue
            }
            spins += 1
            if spins < Parallel.spinLimit {
                precis_cpu_relax()
                continue
            }
            // Announce the sleep, then check once more: the publisher stores the ticket before it
            // reads `parked` (both sequentially consistent), so either it sees us parked and signals,
            // or we see its ticket here.
            let bit: UInt64 = 1 << UInt64(w)
            parked.bitwiseOr(bit, ordering: .sequentiallyConsistent)
            if ticket.load(ordering: .sequentiallyConsistent) >> 32 == seen { wakeups[w].wait() }
            parked.bitwiseAnd(~bit, ordering: .sequentiallyConsistent)
            spins = 0
        }
    }
}
