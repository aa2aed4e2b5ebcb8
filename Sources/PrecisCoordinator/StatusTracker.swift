import Foundation
import Synchronization
import PrecisWire

/// What the status reply says beyond the membership and the step counter, kept by the event loop
/// as the run goes: each worker's pace, the training curve (bounded), evaluations, checkpoints.
/// No clock of its own: times are given by the caller (seconds on one monotonic scale).
package struct StatusTracker {
    /// One worker's figures.
    package struct WorkerPace: Equatable {
        package var examples = 0
        /// Forward + backward + gradient encoding, summed over its contributions.
        package var computeSeconds = 0.0
        /// The same per contribution, its last `recentCount`.
        package var recent: [Double] = []
        /// When it got its first task.
        package var firstTaskAt: Double?
        /// When its latest contribution was reported.
        package var lastDoneAt: Double?
        /// Unfinished tasks (step, contribution) and when each was sent.
        package var outstanding: [TaskKey: Double] = [:]

        /// Mean of `recent` (nil before its first contribution).
        package var secondsPerContribution: Double? { recent.isEmpty ? nil : recent.reduce(0, +) / Double(recent.count) }

        /// Seconds its oldest unfinished task has been out, counted from the later of that task's
        /// sending and its latest report (a worker works through its tasks one after the other).
        package func taskAge(now: Double) -> Double {
            guard let first = outstanding.values.min() else { return 0 }
            return max(0, now - max(first, lastDoneAt ?? first))
        }

        /// The pace `StragglerRule` compares: nil with no figure yet.
        package func pace(now: Double) -> Double? {
            let age = taskAge(now: now)
            guard let s = secondsPerContribution else { return age > 0 ? age : nil }
            return max(s, age)
        }
    }

    /// A training task (step, contribution), or an evaluation share (step −1 − run, contribution share).
    package struct TaskKey: Hashable { package let step: Int; package let contribution: Int }

    /// Contributions per worker that `secondsPerContribution` averages.
    package static let recentCount = 20
    /// Checkpoints kept in the list (the latest).
    package static let checkpointLimit = 200
    package static let evaluationLimit = 1000

    package private(set) var workers: [Int: WorkerPace] = [:]
    /// The attempt the outstanding tasks belong to (a rollback drops them all).
    private var attempt = 0
    /// The curve: at most `StatusReport.historyLimit` points; each stands for `stride` steps (their mean).
    package private(set) var history: [StatusReport.HistoryPoint] = []
    package private(set) var stride = 1
    /// Steps gathered for the next point.
    private var pending: [StatusReport.HistoryPoint] = []
    /// The latest finished step.
    package private(set) var latest: StatusReport.HistoryPoint?
    package private(set) var evaluations: [StatusReport.EvaluationStatus] = []
    package private(set) var checkpoints: [StatusReport.CheckpointStatus] = []

    package init() {}

    // MARK: workers

    package mutating func taskSent(to worker: Int, step: Int, contribution: Int, attempt: Int, now: Double) {
        if attempt != self.attempt {
            self.attempt = attempt
            for id in workers.keys { workers[id]?.outstanding = [:] }
        }
        var w = workers[worker] ?? WorkerPace()
        if w.firstTaskAt == nil { w.firstTaskAt = now }
        w.outstanding[TaskKey(step: step, contribution: contribution)] = now
        workers[worker] = w
    }

    /// A `contributionDone` of the current attempt (computed, or skipped: then only the task is done).
    package mutating func contributionDone(_ d: DoneMessage, from worker: Int, now: Double) {
        var w = workers[worker] ?? WorkerPace()
        w.outstanding[TaskKey(step: d.step, contribution: d.contribution)] = nil
        w.lastDoneAt = now
        if d.skipped != true {
            let seconds = d.computeSeconds + (d.encodeSeconds ?? 0)
            w.examples += d.examples
            w.computeSeconds += seconds
            w.recent.append(seconds)
            if w.recent.count > Self.recentCount { w.recent.removeFirst(w.recent.count - Self.recentCount) }
        }
        workers[worker] = w
    }

    /// An evaluation share sent to `worker` (it counts in the worker's task age like a training task).
    package mutating func evalTaskSent(to worker: Int, run: Int, share: Int, attempt: Int, now: Double) {
        taskSent(to: worker, step: -1 - run, contribution: share, attempt: attempt, now: now)
    }

    /// Its result came in.
    package mutating func evalTaskDone(by worker: Int, run: Int, share: Int, now: Double) {
        guard workers[worker]?.outstanding.removeValue(forKey: TaskKey(step: -1 - run, contribution: share)) != nil else { return }
        workers[worker]?.lastDoneAt = now
    }

    /// The worker left or was lost: its tasks went elsewhere.
    package mutating func workerGone(_ worker: Int) { workers[worker]?.outstanding = [:] }

    /// Drops the figures of workers the membership no longer knows (it keeps the latest dead only).
    package mutating func forget(workersNotIn known: Set<Int>) {
        for id in workers.keys where !known.contains(id) { workers[id] = nil }
    }

    /// Straggler flags for `ids` (the living workers), by `StragglerRule`.
    package func stragglers(_ ids: [Int], now: Double) -> [Int: Bool] {
        let flags = StragglerRule.flags(ids.map { workers[$0]?.pace(now: now) })
        return Dictionary(uniqueKeysWithValues: zip(ids, flags))
    }

    // MARK: the curve

    /// A finished step. A step at or before the last point (the run rolled back) first drops the
    /// points from there on.
    package mutating func stepClosed(_ p: StatusReport.HistoryPoint) {
        if let last = latest, p.step <= last.step { rewind(to: p.step) }
        latest = p
        pending.append(p)
        guard pending.count >= stride else { return }
        history.append(Self.mean(pending))
        pending = []
        // Halved on reaching the limit: with the pending mean `curve` adds, the curve stays within it.
        if history.count >= StatusReport.historyLimit {
            history = Swift.stride(from: 0, to: history.count, by: 2).map { i in
                i + 1 < history.count ? Self.mean([history[i], history[i + 1]]) : history[i]
            }
            stride *= 2
        }
    }

    /// The curve with the steps not yet averaged into a point (so the latest step always shows).
    package var curve: [StatusReport.HistoryPoint] { pending.isEmpty ? history : history + [Self.mean(pending)] }

    /// Points for the steps before `step` only.
    mutating func rewind(to step: Int) {
        history.removeAll { $0.step >= step }
        pending.removeAll { $0.step >= step }
        if let l = latest, l.step >= step { latest = pending.last ?? history.last }
        evaluations.removeAll { $0.step > step }
    }

    /// The mean loss and gradient norm of `points`, at the last one's step, learning rate and throughput.
    static func mean(_ points: [StatusReport.HistoryPoint]) -> StatusReport.HistoryPoint {
        guard var last = points.last else { return StatusReport.HistoryPoint(step: 0, loss: 0, learningRate: 0, gradNorm: 0, examplesPerSecond: 0) }
        let n = Double(points.count)
        last.loss = points.map(\.loss).reduce(0, +) / n
        last.gradNorm = points.map(\.gradNorm).reduce(0, +) / n
        return last
    }

    /// (Re)starting at `step` with a checkpoint's log_history: its logged steps and evaluations.
    package mutating func restart(at step: Int, history logHistory: [[String: Double]]) {
        rewind(to: step + 1)
        if history.isEmpty && pending.isEmpty {
            for e in logHistory {
                guard let s = Self.loggedStep(e, atMost: step), let loss = e["loss"] else { continue }
                stepClosed(StatusReport.HistoryPoint(step: s, loss: loss, learningRate: e["learning_rate"] ?? 0,
                                                     gradNorm: e["grad_norm"] ?? 0, examplesPerSecond: 0))
            }
        }
        if evaluations.isEmpty {
            for e in logHistory where e["eval_loss"] != nil || e.keys.contains(where: { $0.hasPrefix("eval_rouge") }) {
                if let s = Self.loggedStep(e, atMost: step) { evaluated(step: s, entry: e) }
            }
        }
    }

    /// A log_history entry's step when it is a whole number from 0 to `step`, else nil: a resumed
    /// checkpoint's trainer_state.json may hold any number there (-Infinity, 1e300, 2.5).
    static func loggedStep(_ e: [String: Double], atMost step: Int) -> Int? {
        guard let s = e["step"], s >= 0, s <= Double(step) else { return nil }
        return Int(exactly: s)
    }

    // MARK: evaluations and checkpoints

    /// An evaluation's log_history entry.
    package mutating func evaluated(step: Int, entry: [String: Double]) {
        evaluations.append(StatusReport.EvaluationStatus(step: step, metrics: entry.filter { $0.key != "step" && $0.key != "epoch" }))
        if evaluations.count > Self.evaluationLimit { evaluations.removeFirst(evaluations.count - Self.evaluationLimit) }
    }

    package mutating func checkpoint(_ c: StatusReport.CheckpointStatus) {
        checkpoints.append(c)
        if checkpoints.count > Self.checkpointLimit { checkpoints.removeFirst(checkpoints.count - Self.checkpointLimit) }
    }

    /// `save_total_limit` removed the folder at `path`.
    package mutating func checkpointRemoved(_ path: String) {
        for i in checkpoints.indices where checkpoints[i].path == path { checkpoints[i].removed = true }
    }
}

/// The hub pushes, as the status shows them: the event loop records each folder it hands to the
/// uploader, the uploader's thread its outcome; a Mutex keeps the two apart.
package final class PushLog: Sendable {
    package static let limit = 200
    private let entries = Mutex<[StatusReport.PushStatus]>([])

    package init() {}

    package func queued(folder: String, message: String) {
        entries.withLock {
            $0.append(StatusReport.PushStatus(folder: folder, message: message, outcome: "queued"))
            if $0.count > Self.limit { $0.removeFirst($0.count - Self.limit) }
        }
    }

    /// The uploader's outcome for `folder` (the latest entry for it).
    package func finished(folder: String, outcome: String, attempts: Int, commitURL: String?, error: String?) {
        entries.withLock { list in
            if let i = list.lastIndex(where: { $0.folder == folder && $0.outcome == "queued" }) {
                list[i].outcome = outcome; list[i].attempts = attempts; list[i].commitURL = commitURL; list[i].error = error
            } else {
                list.append(StatusReport.PushStatus(folder: folder, message: "", outcome: outcome, attempts: attempts, commitURL: commitURL, error: error))
            }
        }
    }

    package var all: [StatusReport.PushStatus] { entries.withLock { $0 } }
}
