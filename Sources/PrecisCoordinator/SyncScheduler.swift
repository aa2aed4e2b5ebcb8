import PrecisWire

/// Bulk-synchronous steps. Each step's micro-batches (gradient_accumulation × the planned workers'
/// micro-batches, in the epoch's order) are split into `contributions` contiguous groups (one per
/// planned worker), dealt to the living workers in rank order (round-robin when fewer are alive; a
/// worker computes each of its contributions separately). The groups depend on the config alone, not
/// on how many workers are up, so every contribution's gradient — and the servers' sum, added in
/// contribution order — is the same bits whoever computes it: a run that loses workers ends with the
/// parameters of one that did not. The servers sum the contributions; the step closes when every
/// server has reported its norm (it is applying the step) and every contribution has reported (or its
/// worker is gone). A contribution whose report never came (its worker left after pushing) is
/// counted from the figures its pushes carried, which the servers send with their norms.
///
/// A lost worker's contributions go to the least-loaded survivor (fewest contributions this step,
/// then lowest id) — done ones too, as its pushes may not all have reached the servers; with no
/// survivor they wait unassigned for the next worker to join.
package struct SyncScheduler: Scheduler {
    /// Part of the open step, computed by one worker.
    package struct Contribution: Equatable {
        package var micro: [[Int]]
        /// Index of its first micro-batch within the step (fixes the dropout seeds).
        package var firstMicro: Int
        /// The worker computing it; -1 while no worker is alive to take it.
        package var worker: Int
        package var done = false
        /// Its report (loss, tokens, bytes) went into the step's figures. It stays set when a done
        /// contribution is handed over: the second report of the same computation is not counted again
        /// (the chaos soak saw a step's loss with one contribution in it twice).
        package var counted = false
    }

    /// The step being computed.
    package struct OpenStep {
        package let step: Int
        package var contributions: [Contribution]
        /// Label tokens of the whole step (every contribution's loss is divided by it).
        package let normalizer: Int
        /// Σg² reported by each server (by server index).
        package var norms: [Int: Double] = [:]
        /// Each contribution's figures as its pushes carried them (from the first server's report
        /// that has them all).
        package var figures: [ContributionFigures] = []

        /// The step's mean token loss by its pushes' figures (nil before a server has sent them):
        /// known once the servers hold every contribution, reported or not.
        package var lossFromFigures: Double? { figures.isEmpty ? nil : ContributionFigures(adding: figures).meanLoss }
    }

    package let source: any MicroBatchSource
    /// Steps done (the next step to open).
    package private(set) var step = 0
    package private(set) var open: OpenStep?
    package private(set) var cursor = TaskCursor()
    private var servers = 0
    private var pauseNoted = false
    private var epochs = EpochBatches()

    /// Contributions per step (at most the step's micro-batches): the planned workers.
    package let contributions: Int

    package init(source: any MicroBatchSource, contributions: Int) {
        self.source = source
        self.contributions = max(1, contributions)
    }

    package var stepsDone: Int { step }
    package var isFinished: Bool { step >= source.totalSteps }
    package var openStep: Int? { open?.step }
    package var openContributions: Int { open?.contributions.reduce(0) { $0 + ($1.done ? 0 : 1) } ?? 0 }

    package mutating func restart(at step: Int, cursor: TaskCursor) {
        self.step = step
        self.cursor = cursor
        open = nil
    }

    package mutating func trainingStarts(workers: [Int], servers: Int) { self.servers = servers }

    /// Opens the next step when none is open.
    package mutating func nextWork(workers: [Int]) -> Work {
        guard open == nil, step < source.totalSteps else { return .nothing }
        guard !workers.isEmpty else {
            if pauseNoted { return .nothing }
            pauseNoted = true
            return .paused(step: step)
        }
        pauseNoted = false
        let micro = Array(stepMicroBatches(step))
        let k = min(self.contributions, micro.count)
        var contributions: [Contribution] = []
        var start = 0
        for c in 0..<k {
            let n = micro.count / k + (c < micro.count % k ? 1 : 0)
            contributions.append(Contribution(micro: Array(micro[start..<start + n]), firstMicro: start, worker: workers[c % workers.count]))
            start += n
        }
        open = OpenStep(step: step, contributions: contributions, normalizer: source.labelTokens(of: micro))
        return .step(PlanMessage(step: step, contributions: k), contributions.indices.map(assignment))
    }

    /// Contributions left without a worker go to the newcomer.
    package mutating func workerJoined(_ id: Int, workers: [Int]) -> [Assignment] { handOver(from: -1, workers: workers) }

    package mutating func workerLost(_ id: Int, workers: [Int]) -> LossOutcome {
        LossOutcome(handedOver: handOver(from: id, workers: workers), closed: closeIfComplete(workers: workers))
    }

    /// A report counts only from the worker the contribution is assigned to now: after a hand-over,
    /// the new worker's (its computation, or its `skipped`), not a late one from the worker lost.
    package func refusal(_ d: DoneMessage, from worker: Int) -> String? {
        guard let s = open, d.step == s.step else { return "step \(d.step) is not open" + (open.map { " (step \($0.step) is)" } ?? "") }
        guard s.contributions.indices.contains(d.contribution) else { return "step \(d.step) has no contribution \(d.contribution)" }
        let assigned = s.contributions[d.contribution].worker
        guard assigned == worker else {
            return "contribution \(d.contribution) of step \(d.step) is assigned to " + (assigned < 0 ? "no worker" : "worker \(assigned)")
        }
        return nil
    }

    package mutating func contributionDone(_ d: DoneMessage, from worker: Int, workers: [Int]) -> Completion {
        guard var s = open, d.step == s.step, d.contribution >= 0, d.contribution < s.contributions.count else { return Completion() }
        if d.skipped == true {
            // Handed over after its first worker had pushed it: the servers have it, and its figures
            // (`closeIfComplete`).
            s.contributions[d.contribution].done = true
            open = s
            return Completion(closed: closeIfComplete(workers: workers))
        }
        guard !s.contributions[d.contribution].done else { return Completion() }
        let first = !s.contributions[d.contribution].counted
        s.contributions[d.contribution].done = true
        s.contributions[d.contribution].counted = true
        open = s
        return Completion(counted: first, closed: closeIfComplete(workers: workers))
    }

    package mutating func abandon() { open = nil }

    // MARK: the servers' norms

    /// A server's Σg² for the open step. Once every server's is in, returns the global norm (servers
    /// added in index order): the servers may apply the step.
    package mutating func recordNorm(_ n: NormMessage) -> Double? {
        guard var s = open, n.step == s.step else { return nil }
        s.norms[n.server] = n.sumOfSquares
        if s.figures.isEmpty, let f = n.contributions, f.count == s.contributions.count { s.figures = f }
        open = s
        guard s.norms.count == servers else { return nil }
        return (0..<servers).reduce(0.0) { $0 + (s.norms[$1] ?? 0) }.squareRoot()
    }

    /// Closes the open step if it is complete: the servers have its norm (they are applying it) and
    /// every contribution has reported or its worker is gone.
    package mutating func closeIfComplete(workers: [Int]) -> ClosedStep? {
        guard let s = open, s.norms.count == servers,
              s.contributions.allSatisfy({ $0.done || !workers.contains($0.worker) }) else { return nil }
        let norm = (0..<servers).reduce(0.0) { $0 + (s.norms[$1] ?? 0) }.squareRoot()
        step += 1
        open = nil
        let unreported = s.figures.isEmpty ? [] : s.contributions.indices.filter { !s.contributions[$0].counted }
            .map { ClosedStep.Unreported(contribution: $0, figures: s.figures[$0]) }
        return ClosedStep(stepsDone: step, scheduleStep: s.step, gradNorm: norm, unreported: unreported)
    }

    // MARK: helpers

    /// The micro-batches of step `s`.
    package mutating func stepMicroBatches(_ s: Int) -> ArraySlice<[Int]> {
        let batches = epochs.of(s / source.stepsPerEpoch, from: source)
        let lo = min(batches.count, (s % source.stepsPerEpoch) * source.microPerStep)
        return batches[lo..<min(batches.count, lo + source.microPerStep)]
    }

    private func assignment(_ c: Int) -> Assignment {
        let s = open!
        let con = s.contributions[c]
        return Assignment(worker: con.worker, task: TaskMessage(
            step: s.step, contribution: c, micro: con.micro, firstMicro: con.firstMicro, normalizer: s.normalizer,
            exactVersion: true, minVersion: s.step, clipNorm: 0))
    }

    /// `from`'s contributions to the least-loaded living workers (`from` -1: the unassigned ones).
    private mutating func handOver(from dead: Int, workers: [Int]) -> [Assignment] {
        guard var s = open, s.norms.count < servers else { return [] }
        var moved: [Assignment] = []
        for c in s.contributions.indices where s.contributions[c].worker == dead {
            guard !workers.isEmpty else { s.contributions[c].worker = -1; continue }
            var load: [Int: Int] = [:]
            for con in s.contributions where con.worker >= 0 { load[con.worker, default: 0] += 1 }
            let to = workers.min { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }!
            s.contributions[c].worker = to
            s.contributions[c].done = false
            open = s
            moved.append(assignment(c))
        }
        open = s
        return moved
    }
}
