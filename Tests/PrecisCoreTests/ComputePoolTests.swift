import Foundation
import Synchronization
import Testing
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// The compute pool behind `Parallel.run`, on a pool of its own (the process-wide one follows the
/// global thread count, which tests leave alone).
@Suite struct ComputePoolTests {
    /// Thousands of regions of every small size, back to back, after pauses long enough for the
    /// pool's threads to fall asleep, and with an iteration now and then long enough for the caller
    /// to fall asleep waiting: every iteration runs exactly once, the region returns only when all
    /// have finished, and the pool's threads do take part.
    @Test func everyIterationRunsExactlyOnceAndBeforeTheRegionReturns() {
        let pool = ComputePool(threads: 3)
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        defer { hits.deallocate() }
        let threads = Mutex<Set<UInt>>([])
        var wrong = 0
        for trial in 0..<3000 {
            let n = 1 + trial % 16
            hits.initialize(repeating: 0, count: n)
            let ran = pool.run(n) { i in
                // Uneven work, so iterations finish out of order.
                var x = 0.0
                for j in 0..<((i * 37 + trial) % 200) { x += Double(j) }
                // Now and then one iteration takes milliseconds: whoever waits for it goes to sleep
                // and must be woken by the thread that finishes it.
                if trial % 50 == 0 && i == n - 1 { usleep(2_000) }
                hits[i] += x >= 0 ? 1 : 0
                let me = UInt(pthread_self())
                threads.withLock { _ = $0.insert(me) }
            }
            #expect(ran)
            for i in 0..<n where hits[i] != 1 { wrong += 1 }
            if trial % 500 == 499 { usleep(3_000) }  // long enough for the pool threads to park
        }
        #expect(wrong == 0)
        #expect(threads.withLock { $0.count } > 1)
    }

    /// While a region runs, the pool is taken: a second caller is told so (and runs nothing), and
    /// `Parallel.run` inside an iteration runs serially on that thread.
    @Test func aBusyPoolRefusesAndNestedRegionsRunSerially() {
        let pool = ComputePool(threads: 2)
        let refused = Mutex(0), nestedIterations = Mutex(0)
        pool.run(3) { _ in
            let inner = pool.run(2) { _ in }
            if !inner { refused.withLock { $0 += 1 } }
            let me = pthread_self()
            Parallel.run(4) { _ in
                #expect(pthread_equal(pthread_self(), me) != 0)
                nestedIterations.withLock { $0 += 1 }
            }
        }
        #expect(refused.withLock { $0 } == 3)
        #expect(nestedIterations.withLock { $0 } == 12)
    }
}
