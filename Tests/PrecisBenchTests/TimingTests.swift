import Testing
import PrecisBench

@Suite struct TimingTests {
    @Test func medianOfOddAndEvenCounts() {
        #expect(Timing.median([3, 1, 2]) == 2)
        #expect(Timing.median([5]) == 5)
        #expect(Timing.median([4, 1, 3, 2]) == 2.5, "the mean of the two middle values")
        #expect(Timing.median([7, 7, 1, 100]) == 7)
        #expect(Timing.median([]) == 0)
    }

    @Test func clockIsMonotonicAndPeakMemoryIsReported() {
        let a = Timing.now(), b = Timing.now()
        #expect(b >= a)
        #expect(Timing.peakRSSMiB() > 1, "a test process holds more than a MiB")
    }
}
