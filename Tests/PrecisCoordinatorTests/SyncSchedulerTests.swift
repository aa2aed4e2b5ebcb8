import Testing
import PrecisCoordinator
import PrecisWire

@Suite struct SyncSchedulerTests {
    /// Steps of `micro` micro-batches, `steps` steps per epoch; two servers.
    /// Planned for `planned` workers (default: as many as `workers`).
    func scheduler(micro: Int, steps: Int = 3, total: Int = 6, workers: [Int], planned: Int? = nil) -> SyncScheduler {
        let source = FakeBatches(epochs: [FakeBatches.pairs(micro * steps), FakeBatches.pairs(micro * steps, from: 1_000)],
                                 totalSteps: total, stepsPerEpoch: steps, microPerStep: micro)
        var s = SyncScheduler(source: source, contributions: planned ?? workers.count)
        s.trainingStarts(workers: workers, servers: 2)
        return s
    }

    /// Opens the next step; the test fails when none opens.
    func open(_ s: inout SyncScheduler, workers: [Int]) -> (PlanMessage, [Assignment])? {
        guard case .step(let plan, let tasks) = s.nextWork(workers: workers) else {
            Issue.record("no step opened")
            return nil
        }
        return (plan, tasks)
    }

    /// Every server's norm report, each with the figures the contributions' pushes carried.
    func norms(_ s: inout SyncScheduler, step: Int, _ sumsOfSquares: [Double], figures: [ContributionFigures]? = nil) -> Double? {
        var total: Double?
        for (i, v) in sumsOfSquares.enumerated() {
            total = s.recordNorm(NormMessage(step: step, server: i, sumOfSquares: v, contributions: figures))
        }
        return total
    }

    /// Figures as contribution `c`'s pushes would carry them.
    func figures(_ c: Int) -> ContributionFigures { ContributionFigures(lossSum: 10.5 + Double(c), tokens: 30 + c, examples: 2) }

    @Test func aStepsMicroBatchesAreSplitOverTheWorkersInRankOrder() throws {
        var s = scheduler(micro: 7, workers: [10, 20, 30])
        let (plan, tasks) = try #require(open(&s, workers: [10, 20, 30]))
        #expect(plan.step == 0 && plan.contributions == 3)
        #expect(tasks.map(\.worker) == [10, 20, 30])
        // 7 over 3: 3 + 2 + 2, contiguous, in the epoch's order.
        #expect(tasks.map(\.task.micro.count) == [3, 2, 2])
        #expect(tasks.map(\.task.firstMicro) == [0, 3, 5])
        #expect(tasks.flatMap(\.task.micro) == FakeBatches.pairs(7))
        #expect(tasks.map(\.task.contribution) == [0, 1, 2])
        // Every contribution is normalised by the whole step's label tokens: examples 0…13, i + 1 tokens each.
        #expect(tasks.allSatisfy { $0.task.normalizer == (1...14).reduce(0, +) })
        #expect(tasks.allSatisfy { $0.task.exactVersion && $0.task.minVersion == 0 && $0.task.step == 0 && $0.task.clipNorm == 0 })
        #expect(s.openStep == 0)
        #expect(s.nextWork(workers: [10, 20, 30]).isNothing, "one step at a time")
    }

    /// Found by the chaos soak: with a worker down, the step used to be cut into fewer, larger
    /// contributions, whose gradients (micro-batches accumulated in one backward) differ in the last
    /// bits from the sum of the smaller ones, so the run drifted from an undisturbed one. The groups
    /// now depend on the plan alone: fewer workers take several contributions each.
    @Test func fewerWorkersThanPlannedTakeSeveralContributionsOfTheSameGroups() throws {
        var full = scheduler(micro: 7, workers: [10, 20, 30])
        var short = scheduler(micro: 7, workers: [10, 20], planned: 3)
        let (_, all) = try #require(open(&full, workers: [10, 20, 30]))
        let (plan, some) = try #require(open(&short, workers: [10, 20]))
        #expect(plan.contributions == 3)
        #expect(some.map(\.task.contribution) == [0, 1, 2])
        #expect(some.map(\.task.micro) == all.map(\.task.micro))
        #expect(some.map(\.task.firstMicro) == all.map(\.task.firstMicro))
        #expect(some.map(\.task.normalizer) == all.map(\.task.normalizer))
        #expect(some.map(\.worker) == [10, 20, 10], "round-robin in rank order")
        // One worker alone computes all three, still as three contributions.
        var alone = scheduler(micro: 7, workers: [5], planned: 3)
        let (_, one) = try #require(open(&alone, workers: [5]))
        #expect(one.map(\.worker) == [5, 5, 5] && one.map(\.task.micro) == all.map(\.task.micro))
        // More workers than planned: the extra ones stay idle (spares for a loss).
        var more = scheduler(micro: 7, workers: [1, 2, 3, 4], planned: 3)
        let (_, spare) = try #require(open(&more, workers: [1, 2, 3, 4]))
        #expect(spare.map(\.worker) == [1, 2, 3] && spare.map(\.task.micro) == all.map(\.task.micro))
    }

    @Test func moreWorkersThanMicroBatchesLeavesSomeIdle() throws {
        var s = scheduler(micro: 2, workers: [1, 2, 3])
        let (plan, tasks) = try #require(open(&s, workers: [1, 2, 3]))
        #expect(plan.contributions == 2)
        #expect(tasks.map(\.worker) == [1, 2])
    }

    @Test func stepsFollowTheEpochsOrder() throws {
        var s = scheduler(micro: 2, steps: 2, workers: [1])
        for step in 0..<3 {
            let (_, tasks) = try #require(open(&s, workers: [1]))
            #expect(tasks[0].task.step == step)
            if step == 2 { #expect(tasks[0].task.micro == FakeBatches.pairs(2, from: 1_000), "step 2 is the first of epoch 1") }
            _ = norms(&s, step: step, [1, 1])
            #expect(s.contributionDone(done(step: step), from: 1, workers: [1]).closed?.stepsDone == step + 1)
        }
    }

    @Test func aLostWorkersContributionsGoToTheLeastLoadedSurvivors() throws {
        let all = [1, 2, 3, 4]
        var s = scheduler(micro: 4, workers: all)
        _ = try #require(open(&s, workers: all))
        // Worker 1 lost: every survivor has one contribution; the lowest id takes it.
        let first = s.workerLost(1, workers: [2, 3, 4])
        #expect(first.handedOver.map(\.worker) == [2])
        #expect(first.handedOver.map(\.task.contribution) == [0])
        #expect(first.closed == nil)
        // Worker 2 lost with two: one each to 3 and 4.
        let second = s.workerLost(2, workers: [3, 4])
        #expect(second.handedOver.map(\.task.contribution) == [0, 1])
        #expect(second.handedOver.map(\.worker) == [3, 4])
        #expect(s.open?.contributions.map(\.worker) == [3, 4, 3, 4])
        // A handed-over task is the same contribution: same micro-batches, first index, normaliser.
        #expect(second.handedOver[1].task.micro == FakeBatches.pairs(4)[1...1].map { $0 })
        #expect(second.handedOver[1].task.firstMicro == 1)
    }

    @Test func aDoneContributionIsHandedOverToo() throws {
        var s = scheduler(micro: 2, workers: [1, 2])
        _ = try #require(open(&s, workers: [1, 2]))
        #expect(s.contributionDone(done(step: 0, contribution: 0), from: 1, workers: [1, 2]).counted)
        // Its pushes may not all have reached the servers: the survivor computes it again (or skips it).
        let lost = s.workerLost(1, workers: [2])
        #expect(lost.handedOver.map(\.task.contribution) == [0])
        #expect(s.open?.contributions[0].done == false)
        // Its second report (the same computation) completes it but is not counted again: the step's
        // loss and byte figures hold each contribution once (found by the chaos soak: a step's logged
        // loss had the handed-over contribution in it twice).
        let again = s.contributionDone(done(step: 0, contribution: 0), from: 2, workers: [2])
        #expect(!again.counted && s.open?.contributions[0].done == true)
        #expect(s.contributionDone(done(step: 0, contribution: 1), from: 2, workers: [2]).counted)
        _ = norms(&s, step: 0, [1, 1], figures: [figures(0), figures(1)])
        let closed = s.closeIfComplete(workers: [2])
        #expect(closed?.stepsDone == 1)
        #expect(closed?.unreported.isEmpty == true, "both reports were counted: nothing is taken from the servers' figures")
    }

    /// Found by review: any worker could report a contribution assigned to another (its figures
    /// counted, its NaN loss stopping the run). A report counts only from the contribution's worker;
    /// after a hand-over, from the new one (its computation or its skip), not the one lost.
    @Test func aReportCountsOnlyFromTheContributionsWorker() throws {
        var s = scheduler(micro: 3, workers: [1, 2, 3])
        _ = try #require(open(&s, workers: [1, 2, 3]))
        #expect(s.refusal(done(step: 0, contribution: 0), from: 1) == nil)
        #expect(s.refusal(done(step: 0, contribution: 1), from: 1) == "contribution 1 of step 0 is assigned to worker 2")
        #expect(s.refusal(done(step: 1, contribution: 0), from: 1) != nil, "not the open step")
        #expect(s.refusal(done(step: 0, contribution: 3), from: 1) != nil, "no such contribution")
        #expect(s.refusal(done(step: 0, contribution: 0), from: 99) != nil, "not a worker of the step")
        // Worker 1 is lost: its contribution goes to worker 2, whose report counts; a late one from 1 does not.
        _ = s.workerLost(1, workers: [2, 3])
        #expect(s.refusal(done(step: 0, contribution: 0), from: 1) == "contribution 0 of step 0 is assigned to worker 2")
        #expect(s.refusal(done(step: 0, contribution: 0), from: 2) == nil)
        #expect(s.refusal(done(step: 0, contribution: 0, skipped: true), from: 2) == nil)
        // With no survivor the contribution waits unassigned: nobody's report is its.
        _ = s.workerLost(2, workers: [3]); _ = s.workerLost(3, workers: [])
        #expect(s.refusal(done(step: 0, contribution: 0), from: 2) == "contribution 0 of step 0 is assigned to no worker")
        _ = s.workerJoined(9, workers: [9])
        #expect(s.refusal(done(step: 0, contribution: 2), from: 9) == nil)
    }

    @Test func withNoSurvivorContributionsWaitForANewcomer() throws {
        var s = scheduler(micro: 4, workers: [1])
        _ = try #require(open(&s, workers: [1]))
        let lost = s.workerLost(1, workers: [])
        #expect(lost.handedOver.isEmpty && lost.closed == nil)
        #expect(s.open?.contributions.map(\.worker) == [-1])
        #expect(s.nextWork(workers: []).isNothing, "the step stays open")
        let given = s.workerJoined(9, workers: [9])
        #expect(given.map(\.worker) == [9])
        #expect(given.map(\.task.micro) == [FakeBatches.pairs(4)])
        #expect(s.contributionDone(done(step: 0), from: 9, workers: [9]).counted)
        #expect(norms(&s, step: 0, [4, 5]) == 3)
        #expect(s.closeIfComplete(workers: [9])?.stepsDone == 1)
    }

    @Test func aStepClosesWithEveryNormAndEveryContribution() throws {
        var s = scheduler(micro: 2, workers: [1, 2])
        _ = try #require(open(&s, workers: [1, 2]))
        #expect(s.recordNorm(NormMessage(step: 0, server: 0, sumOfSquares: 9)) == nil, "one server of two")
        #expect(s.recordNorm(NormMessage(step: 5, server: 1, sumOfSquares: 7)) == nil, "another step's norm is ignored")
        #expect(s.recordNorm(NormMessage(step: 0, server: 1, sumOfSquares: 16)) == 5)
        #expect(s.closeIfComplete(workers: [1, 2]) == nil, "no contribution has reported")
        let first = s.contributionDone(done(step: 0, contribution: 0), from: 1, workers: [1, 2])
        #expect(first.counted && first.closed == nil)
        #expect(!s.contributionDone(done(step: 0, contribution: 0), from: 1, workers: [1, 2]).counted, "counted once")
        #expect(!s.contributionDone(done(step: 1, contribution: 1), from: 2, workers: [1, 2]).counted, "another step")
        #expect(!s.contributionDone(done(step: 0, contribution: 7), from: 2, workers: [1, 2]).counted, "no such contribution")
        let last = s.contributionDone(done(step: 0, contribution: 1), from: 2, workers: [1, 2])
        #expect(last.counted)
        #expect(last.closed == ClosedStep(stepsDone: 1, scheduleStep: 0, gradNorm: 5))
        #expect(s.stepsDone == 1 && s.openStep == nil)
    }

    /// A skipped contribution's worker computed nothing: its figures come from what its first
    /// worker's pushes carried, which the servers report with their norms (a server without
    /// partitions has none; another's are taken).
    @Test func aSkippedContributionIsCountedFromTheFiguresItsPushesCarried() throws {
        var s = scheduler(micro: 2, workers: [1, 2])
        _ = try #require(open(&s, workers: [1, 2]))
        #expect(s.recordNorm(NormMessage(step: 0, server: 0, sumOfSquares: 1, contributions: [])) == nil)
        #expect(s.open?.lossFromFigures == nil, "no figures yet")
        #expect(s.recordNorm(NormMessage(step: 0, server: 1, sumOfSquares: 3, contributions: [figures(0), figures(1)])) == 2)
        // The step's loss is known from them before any report (stop_on_nonfinite checks it before the step is applied).
        #expect(s.open?.lossFromFigures == (figures(0).lossSum + figures(1).lossSum) / Double(figures(0).tokens + figures(1).tokens))
        #expect(s.contributionDone(done(step: 0, contribution: 0), from: 1, workers: [1, 2]).counted)
        let skipped = s.contributionDone(done(step: 0, contribution: 1, skipped: true), from: 2, workers: [1, 2])
        #expect(!skipped.counted)
        #expect(skipped.closed == ClosedStep(stepsDone: 1, scheduleStep: 0, gradNorm: 2, unreported: [.init(contribution: 1, figures: figures(1))]))
    }

    @Test func theServersHavingTheStepALostWorkersReportIsNotAwaited() throws {
        var s = scheduler(micro: 2, workers: [1, 2])
        _ = try #require(open(&s, workers: [1, 2]))
        _ = norms(&s, step: 0, [1, 0], figures: [figures(0), figures(1)])
        #expect(s.contributionDone(done(step: 0, contribution: 0), from: 1, workers: [1, 2]).closed == nil)
        // Every norm is in, so worker 2 pushed everything: its contribution stays with it, and the
        // step closes, with its loss and examples from what its pushes carried.
        let lost = s.workerLost(2, workers: [1])
        #expect(lost.handedOver.isEmpty)
        #expect(lost.closed == ClosedStep(stepsDone: 1, scheduleStep: 0, gradNorm: 1, unreported: [.init(contribution: 1, figures: figures(1))]))
    }

    @Test func noWorkersPausesOnceAndTheRunEndsAtTotalSteps() throws {
        var s = scheduler(micro: 1, steps: 1, total: 2, workers: [])
        guard case .paused(let step) = s.nextWork(workers: []) else { Issue.record("not paused"); return }
        #expect(step == 0)
        #expect(s.nextWork(workers: []).isNothing, "said once")
        for step in 0..<2 {
            _ = try #require(open(&s, workers: [3]))
            _ = norms(&s, step: step, [1, 1])
            _ = s.contributionDone(done(step: step), from: 3, workers: [3])
        }
        #expect(s.isFinished && s.stepsDone == 2)
        #expect(s.nextWork(workers: [3]).isNothing)
    }

    @Test func abandonAndRestart() throws {
        var s = scheduler(micro: 2, workers: [1])
        _ = try #require(open(&s, workers: [1]))
        s.abandon()
        #expect(s.openStep == nil && s.stepsDone == 0)
        s.restart(at: 4, cursor: TaskCursor(epoch: 0, offset: 3))
        let (plan, tasks) = try #require(open(&s, workers: [1]))
        #expect(plan.step == 4)
        #expect(tasks[0].task.micro == Array(FakeBatches.pairs(6, from: 1_000)[2..<4]), "step 4 is the second of epoch 1")
        #expect(s.cursor == TaskCursor(epoch: 0, offset: 3), "sync keeps the cursor it was restarted with")
    }
}

extension Work {
    var isNothing: Bool { if case .nothing = self { true } else { false } }
}
