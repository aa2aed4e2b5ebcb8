import Testing
import PrecisCoordinator

@Suite struct EvalTaskIdTests {
    /// Ids used to be run × 1000 + share with checkpoint evaluations from 1,000,000 up: the 1000th
    /// training evaluation's results were taken for a checkpoint evaluation's and dropped.
    @Test func idsRoundTripForEveryRunAndShare() {
        for run in [0, 1, 999, 1000, 1001, 123_456, 1 << 40] {
            for share in [0, 1, 999, 1000, EvalTaskId.maxShares - 1] {
                let id = EvalTaskId(run: run, share: share)
                #expect(EvalTaskId(wire: id.wire) == id)
            }
        }
        #expect(EvalTaskId(run: 1000, share: 0).wire != EvalTaskId(run: 1, share: 0).wire)
    }

    @Test func negativeIdsNameNoTask() {
        #expect(EvalTaskId(wire: -1) == nil)
        #expect(EvalTaskId(wire: Int.min) == nil)
    }
}
