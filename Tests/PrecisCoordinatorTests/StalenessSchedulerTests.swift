import Testing
import PrecisCoordinator
import PrecisWire

@Suite struct StalenessSchedulerTests {
    /// Epochs of `perEpoch` micro-batches, `micro` per task.
    func scheduler(_ bound: StalenessScheduler.Bound, perEpoch: Int = 12, micro: Int = 1, total: Int = 20,
                   workers: [Int]) -> StalenessScheduler {
        let source = FakeBatches(epochs: [FakeBatches.pairs(perEpoch), FakeBatches.pairs(perEpoch, from: 1_000)],
                                 totalSteps: total, stepsPerEpoch: perEpoch / micro, microPerStep: micro)
        var s = StalenessScheduler(source: source, bound: bound, clipNorm: 1.0)
        s.trainingStarts(workers: workers, servers: 1)
        return s
    }

    func tasks(_ s: inout StalenessScheduler, _ workers: [Int]) -> [Assignment] {
        if case .tasks(let t) = s.nextWork(workers: workers) { return t }
        return []
    }

    /// The worker reports the task it holds.
    @discardableResult
    func report(_ s: inout StalenessScheduler, _ worker: Int, workers: [Int]) -> Completion {
        guard let t = s.outstanding[worker] else { Issue.record("worker \(worker) holds no task"); return Completion() }
        return s.contributionDone(done(step: t.step, gradNorm: 0.25), from: worker, workers: workers)
    }

    @Test func sspKeepsAWorkerWithinTheBoundOfTheSlowest() {
        var s = scheduler(.steps(1), workers: [1, 2])
        let first = tasks(&s, [1, 2])
        #expect(first.map(\.worker) == [1, 2])
        #expect(first.map(\.task.step) == [0, 1])
        #expect(first.allSatisfy { !$0.task.exactVersion && $0.task.clipNorm == 1.0 && $0.task.contribution == 0 })
        // Worker 1 runs ahead while worker 2 computes.
        report(&s, 1, workers: [1, 2])
        #expect(tasks(&s, [1, 2]).map(\.worker) == [1], "one ahead: allowed")
        report(&s, 1, workers: [1, 2])
        #expect(s.clocks[1] == 2 && s.clocks[2] == 0)
        #expect(tasks(&s, [1, 2]).isEmpty, "two ahead of the slowest: held back")
        report(&s, 2, workers: [1, 2])
        #expect(tasks(&s, [1, 2]).map(\.worker).sorted() == [1, 2])
        #expect(s.largestGap == 1)
    }

    @Test func asyncHasNoBound() {
        var s = scheduler(.unbounded, workers: [1, 2])
        _ = tasks(&s, [1, 2])
        for _ in 0..<5 {
            report(&s, 1, workers: [1, 2])
            #expect(tasks(&s, [1, 2]).map(\.worker) == [1])
        }
        #expect(s.clocks[1] == 5 && s.clocks[2] == 0)
        #expect(s.largestGap == 5)
    }

    @Test func aCompletedTaskIsAStepWithTheWorkersOwnNorm() {
        var s = scheduler(.unbounded, workers: [1])
        _ = tasks(&s, [1])
        let c = report(&s, 1, workers: [1])
        #expect(c.counted)
        #expect(c.closed == ClosedStep(stepsDone: 1, scheduleStep: 0, gradNorm: 0.25))
        #expect(!s.contributionDone(done(step: 0), from: 1, workers: [1]).counted, "no task outstanding")
        _ = tasks(&s, [1])
        #expect(!s.contributionDone(done(step: 0), from: 1, workers: [1]).counted, "another step than the task's")
        #expect(!s.contributionDone(done(step: 1, skipped: true), from: 1, workers: [1]).counted, "skips are sync only")
        #expect(s.outstanding[1]?.step == 1)
    }

    /// A report counts only for the task its worker holds now.
    @Test func aReportCountsOnlyForItsWorkersTask() {
        var s = scheduler(.unbounded, workers: [1, 2])
        _ = tasks(&s, [1, 2])
        #expect(s.refusal(done(step: 0), from: 1) == nil)
        #expect(s.refusal(done(step: 1), from: 1) == "worker 1's task is step 0, not 1", "worker 2's task")
        #expect(s.refusal(done(step: 0), from: 7) == "worker 7 has no task out")
        _ = s.workerLost(1, workers: [2])
        #expect(s.refusal(done(step: 0), from: 1) != nil, "its task went back to the queue")
    }

    @Test func aLostWorkersTaskGoesFirst() {
        var s = scheduler(.steps(2), workers: [1, 2])
        _ = tasks(&s, [1, 2])
        let lost = s.workerLost(1, workers: [2])
        #expect(lost.requeued?.step == 0)
        #expect(s.workerLost(1, workers: [2]).requeued == nil, "nothing left to requeue")
        report(&s, 2, workers: [2])
        let next = tasks(&s, [2])
        #expect(next.map(\.task.step) == [0], "the requeued task before a new one")
        #expect(next[0].task.micro == [[0, 1]])
        report(&s, 2, workers: [2])
        #expect(tasks(&s, [2]).map(\.task.step) == [2])
    }

    @Test func aNewcomerStartsLevelWithTheSlowest() {
        var s = scheduler(.steps(1), workers: [1, 2])
        _ = tasks(&s, [1, 2])
        report(&s, 1, workers: [1, 2]); report(&s, 2, workers: [1, 2])
        _ = tasks(&s, [1, 2])
        report(&s, 1, workers: [1, 2])
        #expect(s.workerJoined(3, workers: [1, 2, 3]).isEmpty)
        #expect(s.clocks[3] == 1)
    }

    @Test func theCursorWalksIntoTheNextEpochWithoutSpanningIt() {
        // 5 micro-batches an epoch, 2 per task: [0 1] [2 3] [4] | [0 1] of the next epoch.
        var s = scheduler(.unbounded, perEpoch: 5, micro: 2, workers: [1])
        var micro: [[[Int]]] = []
        for _ in 0..<4 {
            let t = tasks(&s, [1])
            micro.append(t.first?.task.micro ?? [])
            #expect(t.first?.task.normalizer == (t.first?.task.micro ?? []).joined().reduce(0) { $0 + $1 + 1 })
            report(&s, 1, workers: [1])
        }
        let e0 = FakeBatches.pairs(5), e1 = FakeBatches.pairs(5, from: 1_000)
        #expect(micro == [[e0[0], e0[1]], [e0[2], e0[3]], [e0[4]], [e1[0], e1[1]]])
        #expect(s.cursor == TaskCursor(epoch: 1, offset: 2))
        #expect(s.issued == 4 && s.completed == 4)
    }

    @Test func restartingResumesTheCursor() {
        var s = scheduler(.unbounded, perEpoch: 5, micro: 2, workers: [1])
        s.restart(at: 3, cursor: TaskCursor(epoch: 1, offset: 2))
        s.trainingStarts(workers: [1], servers: 1)
        #expect(s.clocks[1] == 3)
        let t = tasks(&s, [1])
        #expect(t.first?.task.step == 3)
        #expect(t.first?.task.micro == [[1_004, 1_005], [1_006, 1_007]])
    }

    @Test func noTaskBeyondTheTotal() {
        var s = scheduler(.unbounded, total: 2, workers: [1, 2, 3])
        #expect(tasks(&s, [1, 2, 3]).map(\.worker) == [1, 2])
        #expect(!s.isFinished, "tasks in flight")
        report(&s, 1, workers: [1, 2, 3]); report(&s, 2, workers: [1, 2, 3])
        #expect(s.isFinished)
    }

    @Test func aDrainHoldsTasksUntilTheCheckpointAndEvaluationAreOver() {
        var s = scheduler(.unbounded, workers: [1, 2])
        _ = tasks(&s, [1, 2])
        report(&s, 1, workers: [1, 2])
        s.hold(checkpoint: true, evaluation: true)
        #expect(s.drain == StalenessScheduler.Drain(checkpoint: true, evaluation: true))
        #expect(tasks(&s, [1, 2]).isEmpty, "no new task while draining")
        #expect(!s.isDrained, "worker 2's task is in flight")
        report(&s, 2, workers: [1, 2])
        #expect(s.isDrained)
        s.checkpointRequested()
        #expect(s.drain == StalenessScheduler.Drain(checkpoint: false, evaluation: true))
        #expect(!(s.drain?.isSatisfied ?? true))
        s.evaluationOver()
        #expect(s.drain?.isSatisfied == true)
        #expect(tasks(&s, [1, 2]).isEmpty, "held until released")
        s.release()
        #expect(s.drain == nil)
        #expect(tasks(&s, [1, 2]).count == 2)
    }

    @Test func aRunDoesNotFinishWhileItsEvaluationIsDue() {
        var s = scheduler(.unbounded, total: 1, workers: [1])
        _ = tasks(&s, [1])
        report(&s, 1, workers: [1])
        s.hold(checkpoint: false, evaluation: true)
        #expect(!s.isFinished)
        s.evaluationOver()
        #expect(s.isFinished)
    }

    @Test func holdingForNothingIsNoDrain() {
        var s = scheduler(.unbounded, workers: [1])
        s.hold(checkpoint: false, evaluation: false)
        #expect(s.drain == nil)
    }

    @Test func abandonDropsTasksQueueAndDrain() {
        var s = scheduler(.steps(1), workers: [1, 2])
        _ = tasks(&s, [1, 2])
        _ = s.workerLost(1, workers: [2])
        s.hold(checkpoint: true, evaluation: false)
        s.abandon()
        #expect(s.outstanding.isEmpty && s.requeue.isEmpty && s.drain == nil)
        #expect(s.openStep == nil)
    }
}
