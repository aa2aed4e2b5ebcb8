import PrecisWire

/// ssp and async: each task is one update (gradient_accumulation micro-batches, taken from a cursor
/// that walks the epochs' orders; a task never spans two epochs), the worker clips its own gradient,
/// and each server applies it on arrival. A worker's clock counts the tasks it completed; it gets its
/// next task only while its clock is at most `staleness` ahead of the slowest living worker's (ssp),
/// or always (async). A lost worker's task goes back to the front of the queue.
///
/// A checkpoint or an evaluation needs one version of the parameters, so it **drains** the workers
/// first: `hold` stops new tasks; once the tasks in flight have reported (`isDrained`) the
/// coordinator starts what is due, and `release` lets tasks flow again when both are over.
package struct StalenessScheduler: Scheduler {
    /// How far ahead of the slowest worker a worker may run.
    package enum Bound: Equatable {
        /// ssp: at most this many completed tasks ahead.
        case steps(Int)
        /// async: no bound.
        case unbounded
    }

    /// What a drain is for. While a drain is on, no task goes out.
    package struct Drain: Equatable {
        /// A checkpoint is due and not yet asked of the servers.
        package var checkpoint = false
        /// An evaluation is due, or running.
        package var evaluation = false
        package init(checkpoint: Bool = false, evaluation: Bool = false) { self.checkpoint = checkpoint; self.evaluation = evaluation }
        /// Nothing is due any more.
        package var isSatisfied: Bool { !checkpoint && !evaluation }
    }

    package let source: any MicroBatchSource
    package let bound: Bound
    /// The global norm each worker clips its own gradient to (0: off).
    package let clipNorm: Double
    /// Completed tasks per worker.
    package private(set) var clocks: [Int: Int] = [:]
    /// The task each worker is computing.
    package private(set) var outstanding: [Int: TaskMessage] = [:]
    /// Tasks of lost workers, handed out before new ones.
    package private(set) var requeue: [TaskMessage] = []
    /// Tasks created (their `step` numbers them) and tasks completed.
    package private(set) var issued = 0
    package private(set) var completed = 0
    package private(set) var cursor = TaskCursor()
    /// The largest clock gap a task was handed out at (reported at the end, against the bound).
    package private(set) var largestGap = 0
    /// nil: tasks flow.
    package private(set) var drain: Drain?
    private var epochs = EpochBatches()

    package init(source: any MicroBatchSource, bound: Bound, clipNorm: Double) {
        self.source = source
        self.bound = bound
        self.clipNorm = clipNorm
    }

    package var stepsDone: Int { completed }
    /// Every task reported, and no evaluation is waiting for them.
    package var isFinished: Bool { completed >= source.totalSteps && outstanding.isEmpty && drain?.evaluation != true }
    package var openStep: Int? { nil }
    package var openContributions: Int { outstanding.count }

    package mutating func restart(at step: Int, cursor: TaskCursor) {
        issued = step
        completed = step
        self.cursor = cursor
    }

    /// Every worker starts level with the steps done.
    package mutating func trainingStarts(workers: [Int], servers: Int) {
        for w in workers { clocks[w] = completed }
    }

    /// Tasks for the idle workers whose clocks the bound allows (none while draining).
    package mutating func nextWork(workers: [Int]) -> Work {
        guard drain == nil else { return .nothing }
        let slowest = slowestClock(workers)
        var out: [Assignment] = []
        for w in workers where outstanding[w] == nil {
            let clock = clocks[w] ?? slowest
            if case .steps(let staleness) = bound, clock - slowest > staleness { continue }
            guard let t = nextTask() else { break }
            largestGap = max(largestGap, clock - slowest)
            outstanding[w] = t
            out.append(Assignment(worker: w, task: t))
        }
        return out.isEmpty ? .nothing : .tasks(out)
    }

    /// A newcomer starts level with the slowest worker.
    package mutating func workerJoined(_ id: Int, workers: [Int]) -> [Assignment] {
        clocks[id] = slowestClock(workers)
        return []
    }

    package mutating func workerLost(_ id: Int, workers: [Int]) -> LossOutcome {
        guard let t = outstanding.removeValue(forKey: id) else { return LossOutcome() }
        requeue.insert(t, at: 0)
        return LossOutcome(requeued: t)
    }

    /// A report counts only for the task its worker is computing (a lost worker's went back to the queue).
    package func refusal(_ d: DoneMessage, from worker: Int) -> String? {
        guard let t = outstanding[worker] else { return "worker \(worker) has no task out" }
        return t.step == d.step ? nil : "worker \(worker)'s task is step \(t.step), not \(d.step)"
    }

    package mutating func contributionDone(_ d: DoneMessage, from worker: Int, workers: [Int]) -> Completion {
        guard d.skipped != true, let t = outstanding[worker], t.step == d.step else { return Completion() }
        outstanding[worker] = nil
        clocks[worker, default: 0] += 1
        completed += 1
        return Completion(counted: true, closed: ClosedStep(stepsDone: completed, scheduleStep: d.step, gradNorm: d.gradNorm))
    }

    package mutating func abandon() {
        outstanding = [:]
        requeue = []
        drain = nil
    }

    // MARK: the drain

    /// A checkpoint and/or an evaluation is due: no new task goes out until they are over.
    package mutating func hold(checkpoint: Bool, evaluation: Bool) {
        guard checkpoint || evaluation else { return }
        var d = drain ?? Drain()
        d.checkpoint = d.checkpoint || checkpoint
        d.evaluation = d.evaluation || evaluation
        drain = d
    }

    /// A drain is on and every task in flight has reported: the parameters are at one version.
    package var isDrained: Bool { drain != nil && outstanding.isEmpty }
    /// The checkpoint was asked of the servers.
    package mutating func checkpointRequested() { drain?.checkpoint = false }
    /// The evaluation finished (or could not start).
    package mutating func evaluationOver() { drain?.evaluation = false }
    /// Tasks flow again (once nothing is due and the checkpoint's shards are in).
    package mutating func release() { drain = nil }

    // MARK: helpers

    /// The slowest living worker's clock (0 when none has one).
    package func slowestClock(_ workers: [Int]) -> Int { workers.compactMap { clocks[$0] }.min() ?? 0 }

    /// The queue's first task, or a new one from the cursor (nil once every step was issued).
    private mutating func nextTask() -> TaskMessage? {
        if !requeue.isEmpty { return requeue.removeFirst() }
        guard issued < source.totalSteps else { return nil }
        var micro: [[Int]] = []
        while micro.count < source.microPerStep {
            let b = epochs.of(cursor.epoch, from: source)
            if cursor.offset >= b.count {
                cursor = TaskCursor(epoch: cursor.epoch + 1, offset: 0)
                if micro.isEmpty { continue } else { break }
            }
            micro.append(b[cursor.offset])
            cursor.offset += 1
        }
        let t = TaskMessage(step: issued, contribution: 0, micro: micro, firstMicro: 0, normalizer: source.labelTokens(of: micro),
                            exactVersion: false, minVersion: 0, clipNorm: clipNorm)
        issued += 1
        return t
    }
}
