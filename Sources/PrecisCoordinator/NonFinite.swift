import Foundation
import PrecisTrain
import PrecisWire

/// `stop_on_nonfinite`: a non-finite loss (a worker's report) or gradient norm (the servers' Σg² in
/// sync mode, a worker's own norm in ssp/async, where the worker then pushes nothing) ends the run at
/// that step. In sync mode the step is never applied, so the servers keep the previous step's
/// parameters; the checkpoints already on their way to disk are finished, nothing later is saved,
/// and every member is told to stop (exit status 1).
extension Coordinator {
    /// Notes a non-finite figure of `step` (1-based); true when the run is to stop.
    func noteNonFinite(step: Int, loss: Double?, gradientNorm: Double?) -> Bool {
        guard cfg.training.stopOnNonfinite else { return false }
        do { try NonFiniteStop.check(step: step, loss: loss, gradientNorm: gradientNorm) } catch let e as NonFiniteStop {
            nonFinite = e
            return true
        } catch { return false }
        return false
    }

    /// Ends the run: the checkpoint of an earlier step still being gathered or written is finished,
    /// then every member is told to stop. Returns the coordinator's exit status.
    func stopForNonFinite(_ stop: NonFiniteStop) -> Int32 {
        log("error: \(stop)")
        // A snapshot of the bad step itself (sync: asked for with an apply sent before a late loss report) is dropped.
        if consistency == .sync, let s = checkpoints.snapshot, s.step >= stop.step {
            checkpoints.snapshot = nil
            checkpoints.snapshotWaitsForEvaluation = false
        }
        let deadline = Member.now() + max(60, cfg.cluster.heartbeatTimeout * 3)
        while (checkpoints.snapshot != nil || checkpoints.writesInFlight > 0) && Member.now() < deadline {
            if checkpoints.snapshotWaitsForEvaluation { finishSnapshot() }   // the evaluation will not come
            do { try receive(timeoutMs: 50) } catch { log("while finishing the last checkpoint: \(error)"); break }
            if checkpoints.writes.pending > 0 { collectSaves() }
        }
        if checkpoints.snapshot != nil || checkpoints.writesInFlight > 0 {
            log("gave up waiting for the checkpoint under way")
        }
        if let kept = checkpointStore.latestValid() {
            log("the latest checkpoint, \(kept.path) (step \(kept.step)), is kept; nothing from step \(stop.step) on was saved")
        } else {
            log("no checkpoint was saved before step \(stop.step); no model was written to \(cfg.training.outputDir)")
        }
        broadcastShutdown("\(stop)", code: 1)
        return 1
    }
}
