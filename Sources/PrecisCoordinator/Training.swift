import Foundation
import PrecisCore
import PrecisWire

/// Training: sending what the scheduler decides, feeding it the workers' and servers' reports, and
/// what a finished step sets off (its report; sync: the evaluation at its end; ssp/async: the drain
/// for a checkpoint or evaluation).
extension Coordinator {
    /// The scheduler in sync mode (nil otherwise); changes made through it are kept.
    var sync: SyncScheduler? {
        get { scheduler as? SyncScheduler }
        set { if let newValue { scheduler = newValue } }
    }

    /// The scheduler in ssp/async mode (nil otherwise); changes made through it are kept.
    var staleness: StalenessScheduler? {
        get { scheduler as? StalenessScheduler }
        set { if let newValue { scheduler = newValue } }
    }

    func send(_ work: Work) throws {
        switch work {
        case .nothing: break
        case .paused(let step): log("no workers: paused at step \(step) until one joins")
        case .step(let p, let tasks):
            for sid in membership.servers { try router.send(to: membership[sid]!.identity, Control.frames(.plan, p, epoch: membership.epoch)) }
            for a in tasks { try sendTask(a) }
        case .tasks(let tasks):
            for a in tasks { try sendTask(a) }
        }
    }

    /// A task to its worker, stamped with the current attempt.
    func sendTask(_ a: Assignment) throws {
        guard let w = membership[a.worker] else { return }
        var t = a.task
        t.attempt = attempt
        status.taskSent(to: a.worker, step: t.step, contribution: t.contribution, attempt: attempt, now: Member.now())
        try router.send(to: w.identity, Control.frames(.task, t, epoch: membership.epoch, step: UInt64(t.step)))
    }

    /// A worker's report. One whose fields are out of range (`DoneMessage.dropReason`), or that is
    /// not for work the scheduler handed to `worker`, is dropped (thrown: logged with the peer)
    /// before any of it counts, a non-finite loss included.
    func contributionDone(_ d: DoneMessage, from worker: Int) throws {
        guard (d.attempt ?? 0) == attempt, phase == .training, nonFinite == nil else { return }
        if let why = d.dropReason(totalSteps: plan.totalSteps) ?? scheduler.refusal(d, from: worker) {
            throw CoordinatorError.invalidRequest(why)
        }
        // sync: the worker's gradNorm is 0 (the servers' norms are checked in `serverNorm`).
        if d.skipped != true, noteNonFinite(step: d.step + 1, loss: d.figures.meanLoss,
                                            gradientNorm: d.gradNorm) { return }
        if d.skipped != true { membership.countContribution(of: worker) }
        status.contributionDone(d, from: worker, now: Member.now())
        let c = scheduler.contributionDone(d, from: worker, workers: membership.aliveWorkers)
        if c.counted {
            metrics.record(d)
            observed.contribution(gradientWireBytes: d.wireBytes, gradientRawBytes: d.rawBytes,
                                  parameterWireBytes: d.pullWireBytes, parameterRawBytes: d.pullRawBytes)
        }
        if let closed = c.closed { stepClosed(closed) }
    }

    /// sync: a server's Σg². With every server's in: the clip coefficient from the global norm, and
    /// `apply` to every server (asking for a snapshot when the step ends with a checkpoint).
    /// `sender`: the member it came from; it must be the server of the slot the report names
    /// (`NormMessage.dropReason`), or it is dropped (thrown: logged with the peer).
    func serverNorm(_ n: NormMessage, from sender: Int?) throws {
        if let why = n.dropReason(senderSlot: sender.flatMap(membership.serverIndex(of:))) { throw CoordinatorError.invalidRequest(why) }
        // Unassigned contributions (no worker was alive) would still be missing: norms only come once all are in.
        guard nonFinite == nil, let total = sync?.recordNorm(n) else { return }
        // The step is not applied: the servers keep the parameters of the step before. A
        // contribution's non-finite loss stops it too, whether its worker's report has come or not.
        if noteNonFinite(step: n.step + 1, loss: nil, gradientNorm: total) { return }
        if let loss = sync?.open?.lossFromFigures, noteNonFinite(step: n.step + 1, loss: loss, gradientNorm: nil) { return }
        let clip: Float = cfg.training.maxGradNorm > 0 ? GradClip.coefficient(totalNorm: total, maxNorm: cfg.training.maxGradNorm) : 1
        let save = isSaveStep(n.step + 1)
        if save { beginSnapshot(step: n.step + 1) }
        for sid in membership.servers {
            try router.send(to: membership[sid]!.identity, Control.frames(.apply, ApplyMessage(step: n.step, clip: clip, snapshot: save),
                                                                          epoch: membership.epoch))
        }
        if let closed = sync?.closeIfComplete(workers: membership.aliveWorkers) { stepClosed(closed) }
    }

    /// A step (sync) or task (ssp/async) finished: report it, then what its end sets off.
    func stepClosed(_ c: ClosedStep) {
        let s = c.stepsDone
        for u in c.unreported {
            metrics.record(u.figures)
            log("step \(s): contribution \(u.contribution) counted from the figures its pushes carried (its worker left before reporting)")
        }
        let report = metrics.stepCompleted(s, learningRate: plan.schedule.lr(at: c.scheduleStep), gradNorm: c.gradNorm,
                                           workers: membership.aliveWorkers.count, now: Member.now())
        let p = report.progress
        observed.stepCompleted(step: s, epoch: p.epoch, loss: metrics.lastStepLoss, learningRate: p.learningRate, gradNorm: c.gradNorm,
                               examplesPerSecond: p.examplesPerSecond)
        if options.progressLines { Member.emit(ReportLine.progress(report.progress)) }
        lastProgress = report.progress
        status.stepClosed(StatusReport.HistoryPoint(step: s, loss: metrics.lastStepLoss, learningRate: report.progress.learningRate,
                                                    gradNorm: c.gradNorm, examplesPerSecond: report.progress.examplesPerSecond))
        if let line = report.logLine {
            Member.log("coordinator", line, fields: ["step": .int(s), "total_steps": .int(plan.totalSteps), "loss": .double(metrics.history.last?["loss"] ?? 0),
                                                     "learning_rate": .double(report.progress.learningRate), "grad_norm": .double(c.gradNorm),
                                                     "examples_per_second": .double(report.progress.examplesPerSecond),
                                                     "workers": .int(report.progress.workers)])
            publishLogs(step: s, scalars: report.scalars)
        }
        if consistency == .sync {
            guard isEvalStep(s) else { return }
            do { try startEval(step: s) } catch {
                observed.evaluationFailed()
                log("evaluation at step \(s) skipped: \(error)")
            }
        } else {
            staleness?.hold(checkpoint: isSaveStep(s), evaluation: isEvalStep(s))
        }
    }

    /// ssp/async: once a drain has no task in flight, start what it is for (the evaluation, the
    /// checkpoint's snapshot); release it when both are over.
    func advanceDrain() throws {
        guard phase == .training, let s = staleness, s.isDrained, let due = s.drain else { return }
        if due.evaluation && evaluations.current == nil {
            try startEval(step: s.stepsDone)
            if evaluations.current == nil { staleness?.evaluationOver() }   // nothing to evaluate, or no worker
        }
        if due.checkpoint && checkpoints.snapshot == nil {
            staleness?.checkpointRequested()
            requestSnapshot(step: s.stepsDone)
        }
        let servicesIdle = checkpoints.snapshot == nil && evaluations.current == nil
        if staleness?.drain?.isSatisfied == true && servicesIdle { staleness?.release() }
    }
}
