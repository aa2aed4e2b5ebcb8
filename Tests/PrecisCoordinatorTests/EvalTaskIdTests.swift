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

/// Found by review: any worker could send the result of an evaluation share dealt to another.
@Suite struct EvalShareTests {
    @Test func aShareCountsOnlyFromTheWorkerItIsDealtTo() {
        var run = EvalRun(id: 1, step: 10, started: 0, chunks: [EvalRun.Chunk(indices: [0, 2], worker: 5), EvalRun.Chunk(indices: [1], worker: 6)])
        #expect(EvalRun.refusal(share: 0, of: run, from: 5) == nil)
        #expect(EvalRun.refusal(share: 1, of: run, from: 5) == "evaluation share 1 is assigned to worker 6")
        #expect(EvalRun.refusal(share: 0, of: run, from: nil) != nil)
        // Handed over after a loss: the new worker's result counts, a late one from the worker lost does not.
        run.chunks[1].worker = 5
        #expect(EvalRun.refusal(share: 1, of: run, from: 5) == nil && EvalRun.refusal(share: 1, of: run, from: 6) != nil)
    }
}
