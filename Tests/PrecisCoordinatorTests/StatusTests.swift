import Foundation
import Testing
import PrecisCoordinator
import PrecisWire
import PrecisTrain

@Suite struct StatusTests {
    @Test func theStatusReportListsTheRunAndEveryMember() throws {
        let clock = FakeClock(50)
        var m = Membership(plannedServers: 1, heartbeatTimeout: 10, clock: clock, firstId: 3_000)
        _ = m.register(registration(.server, "ps0", endpoint: "tcp://10.0.0.1:7000"), identity: identity("ps0/1"), phase: .waiting)
        _ = m.register(registration(.worker, "w0", pid: 11), identity: identity("w0/11"), phase: .waiting)
        _ = m.register(registration(.worker, "w1", pid: 12), identity: identity("w1/12"), phase: .waiting)
        clock.advance(3.26)
        _ = m.heartbeat(3_001)
        m.countContribution(of: 3_001)
        m.countContribution(of: 3_001)
        _ = m.lose(3_002)
        clock.advance(1.5)
        let r = StatusReport(phase: .training, stepsDone: 7, maxSteps: 40, consistency: .ssp, endpoint: "tcp://10.0.0.9:5555",
                             membership: m, now: clock.now())
        #expect(r.state == .training && r.step == 7 && r.maxSteps == 40 && r.consistency == "ssp" && r.endpoint == "tcp://10.0.0.9:5555")
        #expect(r.epoch == 5, "three joins and a loss")
        #expect(r.servers == [StatusReport.MemberStatus(name: "ps0", host: "host-ps0", pid: 4242, alive: true, contributions: 0,
                                                        endpoint: "tcp://10.0.0.1:7000", secondsSinceHeartbeat: 4.8, role: "server", state: "silent")])
        #expect(r.workers == [
            StatusReport.MemberStatus(name: "w0", host: "host-w0", pid: 11, alive: true, contributions: 2, endpoint: "", secondsSinceHeartbeat: 1.5,
                                      role: "worker", state: "alive"),
            StatusReport.MemberStatus(name: "w1", host: "host-w1", pid: 12, alive: false, contributions: 0, endpoint: "", secondsSinceHeartbeat: 4.8,
                                      role: "worker", state: "lost"),
        ])

        // On the wire: a statusReply control message with the keys `precis cluster status` reads.
        let message = try DataMessage(frames: Control.frames(.statusReply, r))
        #expect(message.header.type == .statusReply)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
        // The first version's keys, and the lists added since (figures absent before the first step).
        #expect(Set(json.keys) == ["state", "step", "max_steps", "epoch", "consistency", "endpoint", "servers", "workers",
                                   "evaluations", "checkpoints", "pushes"])
        let worker = try #require((json["workers"] as? [[String: Any]])?.first)
        #expect(Set(worker.keys) == ["name", "host", "pid", "alive", "contributions", "endpoint", "seconds_since_heartbeat", "role", "state",
                                     "examples", "compute_seconds", "examples_per_second", "contributions_per_second",
                                     "seconds_per_contribution", "task_age_seconds", "straggler"])
        #expect(json["state"] as? String == "training")
        #expect(try Control.decode(StatusReport.self, message) == r)
    }

    /// A reply from a coordinator of the first version (no added fields) still decodes.
    @Test func aReplyWithoutTheAddedFieldsDecodes() throws {
        let old = #"{"consistency":"sync","endpoint":"tcp://127.0.0.1:5","epoch":3,"max_steps":40,"servers":[],"state":"training","step":7,"#
            + #""workers":[{"alive":false,"contributions":2,"endpoint":"","host":"h","name":"w0","pid":9,"seconds_since_heartbeat":1.5}]}"#
        let r = try JSONDecoder.statusDecoder.decode(StatusReport.self, from: Data(old.utf8))
        #expect(r.step == 7 && r.loss == nil && r.evaluations.isEmpty && r.history == nil)
        #expect(r.workers[0].state == "lost" && r.workers[0].role == "" && !r.workers[0].straggler)
    }

    /// The straggler rule: more than 1.5× the median pace and at least 0.5 s above it; two figures at least.
    @Test func stragglersAreNotablySlowerThanTheMedian() {
        #expect(StragglerRule.flags([1.0, 1.1, 0.9, 3.0]) == [false, false, false, true])
        #expect(StragglerRule.flags([0.01, 0.012, 0.03]) == [false, false, false], "3× slower but only 18 ms: noise")
        #expect(StragglerRule.flags([2.0, nil]) == [false, false], "one figure: nothing to compare")
        #expect(StragglerRule.flags([0.1, 5.0]) == [false, true])
        #expect(StragglerRule.flags([]) == [])
    }

    /// Paces from the workers' reports: a worker whose task has been out for long overtakes its own
    /// mean; its rates come from what it reported.
    @Test func theTrackerTimesEachWorkersTasks() {
        var t = StatusTracker()
        for step in 0..<3 {
            let at = 10.0 + Double(step)
            t.taskSent(to: 1, step: step, contribution: 0, attempt: 0, now: at)
            t.taskSent(to: 2, step: step, contribution: 1, attempt: 0, now: at)
            t.contributionDone(DoneMessage(step: step, contribution: 0, lossSum: 4, tokens: 2, examples: 4, computeSeconds: 0.2, waitSeconds: 0,
                                           wireBytes: 0, rawBytes: 0, gradNorm: 0, encodeSeconds: 0.05), from: 1, now: at + 0.25)
            t.contributionDone(DoneMessage(step: step, contribution: 1, lossSum: 4, tokens: 2, examples: 4, computeSeconds: 0.3, waitSeconds: 0,
                                           wireBytes: 0, rawBytes: 0, gradNorm: 0), from: 2, now: at + 0.3)
        }
        #expect(t.workers[1]?.examples == 12 && abs((t.workers[1]?.computeSeconds ?? 0) - 0.75) < 1e-12)
        #expect(abs((t.workers[1]?.secondsPerContribution ?? 0) - 0.25) < 1e-12)
        #expect(t.stragglers([1, 2], now: 13) == [1: false, 2: false])
        // Worker 2 gets step 3 and stays silent: 4 s later it is the straggler.
        t.taskSent(to: 1, step: 3, contribution: 0, attempt: 0, now: 13)
        t.taskSent(to: 2, step: 3, contribution: 1, attempt: 0, now: 13)
        t.contributionDone(DoneMessage(step: 3, contribution: 0, lossSum: 4, tokens: 2, examples: 4, computeSeconds: 0.2, waitSeconds: 0,
                                       wireBytes: 0, rawBytes: 0, gradNorm: 0), from: 1, now: 13.2)
        #expect(t.workers[2]?.taskAge(now: 17) == 4 && t.workers[1]?.taskAge(now: 17) == 0)
        #expect(t.stragglers([1, 2], now: 17) == [1: false, 2: true])
        // A rollback (a new attempt) drops the tasks of the old one.
        t.taskSent(to: 1, step: 3, contribution: 0, attempt: 1, now: 18)
        #expect(t.workers[2]?.taskAge(now: 19) == 0)
        // Evaluation shares count as tasks too.
        t.evalTaskSent(to: 2, run: 1, share: 0, attempt: 1, now: 19)
        #expect(t.workers[2]?.taskAge(now: 21) == 2)
        t.evalTaskDone(by: 2, run: 1, share: 0, now: 21)
        #expect(t.workers[2]?.taskAge(now: 22) == 0)
    }

    /// The tracker forgets the workers the membership forgot (it keeps its latest dead only).
    @Test func theTrackerForgetsWorkersTheMembershipForgot() {
        var t = StatusTracker()
        for w in 1...3 { t.taskSent(to: w, step: 0, contribution: w, attempt: 0, now: 1) }
        t.forget(workersNotIn: [2, 3, 40])
        #expect(Set(t.workers.keys) == [2, 3])
    }

    /// A resumed checkpoint's log_history is taken as far as its steps are steps: any other number
    /// there (trainer_state.json is a file anyone may edit) is passed over, never converted (before,
    /// a step of -Infinity trapped the coordinator).
    @Test func aResumedHistoryWithoutRealStepsIsPassedOver() {
        var t = StatusTracker()
        let odd: [Double] = [-.infinity, .infinity, .nan, -1, 1e300, 2.5, -1e300]
        var history = odd.map { ["step": $0, "loss": 1, "eval_loss": 1] }
        history += [["step": 3, "loss": 2], ["step": 4, "loss": 3, "eval_loss": 2.5], ["step": 11, "loss": 9]]
        t.restart(at: 10, history: history)
        #expect(t.curve.map(\.step) == [3, 4] && t.curve.map(\.loss) == [2, 3])
        #expect(t.evaluations.map(\.step) == [4])
    }

    /// The curve keeps at most 2000 points, each the mean of the steps it stands for, and a rollback
    /// drops the steps after the checkpoint.
    @Test func theCurveIsBoundedAndRewinds() {
        var t = StatusTracker()
        func point(_ s: Int) -> StatusReport.HistoryPoint {
            StatusReport.HistoryPoint(step: s, loss: Double(s), learningRate: 1e-3, gradNorm: 1, examplesPerSecond: 10)
        }
        var largest = 0
        for s in 1...5000 {
            t.stepClosed(point(s))
            largest = max(largest, t.curve.count)
        }
        #expect(largest == StatusReport.historyLimit, "the curve held \(largest) points at most")
        let curve = t.curve
        #expect(curve.count <= StatusReport.historyLimit && curve.count >= StatusReport.historyLimit / 2, "\(curve.count)")
        #expect(curve.last?.step == 5000 && zip(curve, curve.dropFirst()).allSatisfy { $0.step < $1.step })
        #expect(t.stride == 4)
        // The latest points stand for 4 steps each: their mean loss (the loss is the step here), at the last one's step.
        let recent = curve.dropLast().suffix(10)
        #expect(recent.allSatisfy { $0.loss == Double($0.step) - 1.5 }, "\(recent.map { ($0.step, $0.loss) })")
        #expect(zip(recent, recent.dropFirst()).allSatisfy { $1.step - $0.step == 4 })
        // Rolled back to step 3000: steps after it are gone, new ones follow.
        t.stepClosed(point(3001))
        #expect(t.curve.last?.step == 3001 && t.curve.allSatisfy { $0.step <= 3001 })
        // Evaluations from a checkpoint's log_history on a fresh tracker.
        var fresh = StatusTracker()
        fresh.restart(at: 10, history: [["step": 5, "loss": 3, "learning_rate": 1e-3, "grad_norm": 2],
                                        ["step": 5, "epoch": 0.4, "eval_loss": 2.5, "eval_rouge1": 12.5],
                                        ["step": 10, "loss": 2.8, "learning_rate": 9e-4, "grad_norm": 1.5]])
        #expect(fresh.curve.map(\.step) == [5, 10] && fresh.evaluations == [StatusReport.EvaluationStatus(step: 5, metrics: ["eval_loss": 2.5, "eval_rouge1": 12.5])])
    }

    /// The board hands other threads the latest snapshot as JSON; the live page is self-contained.
    @Test func theBoardAndTheLivePage() throws {
        let board = StatusBoard()
        let before = try JSONDecoder.statusDecoder.decode(StatusReport.self, from: board.statusJSON())
        #expect(before.state == .waiting && before.workers.isEmpty)
        var r = StatusReport(state: .training, step: 3, maxSteps: 9, epoch: 2, consistency: "sync", endpoint: "tcp://127.0.0.1:1", servers: [], workers: [])
        r.loss = .nan
        r.history = [StatusReport.HistoryPoint(step: 3, loss: 2, learningRate: 1e-3, gradNorm: 1, examplesPerSecond: 5)]
        board.publish(r)
        let data = LivePage.statusJSON(board)
        let back = try JSONDecoder.statusDecoder.decode(StatusReport.self, from: data)
        #expect(back.step == 3 && back.history?.count == 1 && back.loss?.isNaN == true)
        // Readers on other threads at once.
        let snapshot = r
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            if i % 2 == 0 { board.publish(snapshot) } else { _ = board.statusJSON() }
        }
        let html = LivePage.html
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("fetch(\"status.json\"") && html.contains("<canvas"))
        for external in ["src=\"http", "href=\"http", "@import", "url(http", "src=\"//", "<link "] {
            #expect(!html.contains(external), "the page loads \(external)")
        }
        for attribute in ["data-curves-drawn", "data-members", "data-evaluations", "data-polls"] { #expect(html.contains(attribute)) }
    }

    @Test func aNegativeSampleCountIsRefusedWithAMessage() {
        #expect(CheckpointEvaluation.invalid(maxSamples: -1) == "max samples must be 0 or more, not -1")
        #expect(CheckpointEvaluation.invalid(maxSamples: 0) == nil)
        #expect(CheckpointEvaluation.invalid(maxSamples: nil) == nil)
        #expect(throws: CoordinatorError.self) {
            try CheckpointEvaluation.local(checkpoint: "/nonexistent", dataFile: "/nonexistent", config: TrainingConfig(), maxSamples: -5)
        }
    }
}
