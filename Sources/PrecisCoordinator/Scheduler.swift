import PrecisTrain
import PrecisWire

/// Decides which worker computes what: the training schedule as pure logic over plain values (worker
/// ids, micro-batches of dataset indices, the messages it would send). The coordinator feeds it what
/// happened — a worker joined, was lost, reported — and sends what it returns.
///
/// Two kinds: `SyncScheduler` (every step's micro-batches split over the workers; the servers sum
/// them and the step closes on their norms) and `StalenessScheduler` (ssp/async: one task is one
/// update, handed out under a bound on how far a worker may run ahead).
package protocol Scheduler {
    /// Steps done: sync, the global step; ssp/async, tasks completed.
    var stepsDone: Int { get }
    /// Every step is done and nothing is left that the end must wait for.
    var isFinished: Bool { get }
    /// sync: the step open now (0-based); ssp/async: nil, there are no steps to open.
    var openStep: Int? { get }
    /// Contributions (sync) or tasks (ssp/async) handed out and not reported yet (for the metrics).
    var openContributions: Int { get }
    /// Where the next task's micro-batches start (ssp/async; recorded in checkpoints). sync steps
    /// know their micro-batches from the step alone and keep the cursor they were restarted with.
    var cursor: TaskCursor { get }

    /// Start again at `step` (a resumed checkpoint, or a rollback after `abandon`).
    mutating func restart(at step: Int, cursor: TaskCursor)
    /// The servers have their partitions: training (re)starts with these workers and `servers` servers.
    mutating func trainingStarts(workers: [Int], servers: Int)
    /// What to hand out now to the living `workers` (in rank order).
    mutating func nextWork(workers: [Int]) -> Work
    /// A worker joined a running training (it is in `workers` already).
    mutating func workerJoined(_ id: Int, workers: [Int]) -> [Assignment]
    /// A worker was lost (it is no longer in `workers`): what happens to its work.
    mutating func workerLost(_ id: Int, workers: [Int]) -> LossOutcome
    /// Why a `contributionDone` (of the current attempt, its fields sound) from `worker` is dropped
    /// before anything of it counts: it is not for work handed to that worker now (nil: it is).
    func refusal(_ d: DoneMessage, from worker: Int) -> String?
    /// A worker's `contributionDone` (of the current attempt).
    mutating func contributionDone(_ d: DoneMessage, from worker: Int, workers: [Int]) -> Completion
    /// A server was lost: drop every open step, task and queue (the run rolls back).
    mutating func abandon()
}

/// Where the next ssp/async task's micro-batches start: micro-batch `offset` of epoch `epoch`'s order.
package struct TaskCursor: Equatable, Sendable {
    package var epoch: Int
    package var offset: Int
    package init(epoch: Int = 0, offset: Int = 0) { self.epoch = epoch; self.offset = offset }
}

/// A task for a worker.
package struct Assignment {
    package let worker: Int
    package var task: TaskMessage
}

/// What `nextWork` hands out.
package enum Work {
    case nothing
    /// sync: no worker is alive to compute step `step` (returned once, until a step opens again).
    case paused(step: Int)
    /// sync: a step opens: the servers learn how many contributions to sum, the workers get theirs.
    case step(PlanMessage, [Assignment])
    /// ssp/async: tasks for idle workers.
    case tasks([Assignment])
}

/// What became of a lost worker's work.
package struct LossOutcome {
    /// sync: its contributions, now assigned to survivors.
    package var handedOver: [Assignment] = []
    /// ssp/async: its task, back at the front of the queue.
    package var requeued: TaskMessage?
    /// sync: the step could close without it.
    package var closed: ClosedStep?
}

/// What a `contributionDone` did.
package struct Completion {
    /// Its figures count (loss, tokens, bytes): it was the one expected and not a skip.
    package var counted: Bool
    package var closed: ClosedStep?
    package init(counted: Bool = false, closed: ClosedStep? = nil) { self.counted = counted; self.closed = closed }
}

/// A step (sync) or task (ssp/async) finished.
package struct ClosedStep: Equatable {
    /// Steps done now (1-based: the step that just finished).
    package let stepsDone: Int
    /// The step whose learning rate it was computed with (0-based).
    package let scheduleStep: Int
    /// sync: the global norm of the summed gradient; ssp/async: the worker's own.
    package let gradNorm: Double
    /// sync: contributions the servers summed whose worker's report never came (it left after
    /// pushing and before reporting), with the figures their pushes carried: they still belong in
    /// the step's loss and the run's examples.
    package var unreported: [Unreported] = []

    package struct Unreported: Equatable {
        package let contribution: Int
        package let figures: ContributionFigures
        package init(contribution: Int, figures: ContributionFigures) { self.contribution = contribution; self.figures = figures }
    }

    package init(stepsDone: Int, scheduleStep: Int, gradNorm: Double, unreported: [Unreported] = []) {
        self.stepsDone = stepsDone; self.scheduleStep = scheduleStep; self.gradNorm = gradNorm; self.unreported = unreported
    }
}

/// What a scheduler needs of the training plan: how steps are cut, and the micro-batches each epoch
/// visits. `TrainingPlan` is the real one.
package protocol MicroBatchSource {
    var totalSteps: Int { get }
    var stepsPerEpoch: Int { get }
    /// sync: micro-batches per step (over all planned workers); ssp/async: per task.
    var microPerStep: Int { get }
    /// The micro-batches of an epoch (dataset indices), in the order it visits them.
    func microBatches(epoch: Int) -> [[Int]]
    /// Label tokens of the examples of these micro-batches (a step's loss normaliser).
    func labelTokens(of micro: [[Int]]) -> Int
}

extension TrainingPlan: MicroBatchSource {
    package func labelTokens(of micro: [[Int]]) -> Int { labelTokens(micro.joined()) }
}

/// The latest epoch's micro-batches, kept so a step does not shuffle its epoch again.
struct EpochBatches {
    private var cached: (epoch: Int, batches: [[Int]])?

    mutating func of(_ epoch: Int, from source: some MicroBatchSource) -> [[Int]] {
        if let c = cached, c.epoch == epoch { return c.batches }
        let b = source.microBatches(epoch: epoch)
        cached = (epoch, b)
        return b
    }
}
