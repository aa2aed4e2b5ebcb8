import Foundation
import PrecisCore
import PrecisTrain
import PrecisWire

/// Losing a parameter server: the workers pause (no step opens), and when the server is back (a
/// replacement registers) — or at once with `--reshard`, over the survivors — every server is
/// rolled back to the latest checkpoint (or the initial parameters when there is none yet) and
/// training continues from there.
extension Coordinator {
    func serverLost(_ m: ClusterMember) throws {
        phase = .recovering
        scheduler.abandon()
        evaluations.current = nil
        checkpoints.snapshot = nil
        checkpoints.snapshotWaitsForEvaluation = false
        attempt += 1
        try sendView()   // workers drop what they have queued
        if options.reshard {
            membership.removeServer(m.id)
            guard !membership.servers.isEmpty else {
                log("no parameter server left: waiting for one to register")
                return
            }
            try rollBack(reason: "resharding over the \(membership.servers.count) remaining server(s)")
        } else {
            log("paused: waiting for a parameter server to take \(m.name)'s place (start precis-ps again); "
                + "training then continues from the latest checkpoint")
        }
    }

    /// Every server back to the latest checkpoint, then training goes on from its step.
    /// The verification and read of the checkpoint (SHA-256 of every file; gigabytes for a large
    /// model) go on while a `HeartbeatStandIn` keeps the members from taking the pause for a dead
    /// coordinator (they would register again, and a server's return would roll back once more).
    func rollBack(reason: String) throws {
        let point = try standingIn("rolling back") { () throws -> ResumePoint in
            // A checkpoint still being written is the newest point to go back to, and reading one while
            // its writer replaces an older copy of the same step would mix the two (its manifest then
            // names other bytes, and it would be skipped).
            waitForCheckpointWrites(before: "rolling back")
            if let latest = latestValidCheckpoint() { return try loadCheckpoint(verified: latest) }
            log("no checkpoint yet: starting again from the initial parameters")
            let fresh = try LocalTrainer.loadModel(cfg.training.model, seed: cfg.training.seed)
            model.params.pointer.update(from: fresh.params.pointer, count: model.table.count)
            return .initial
        }
        let stepsBefore = scheduler.stepsDone
        restart(from: point)
        if startStep < stepsBefore {
            log("\(reason): rolling back to step \(startStep) (\(stepsBefore - startStep) step(s) to repeat)")
        } else {
            log("\(reason): rolling back to step \(startStep) (nothing to repeat)")
        }
        try assignServers()
    }
}
