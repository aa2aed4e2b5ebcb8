import Foundation
import PrecisCore
import PrecisTrain
import PrecisWire

/// Losing a parameter server: the workers pause (no step opens), and when the server is back (a
/// replacement registers) — or at once with `--reshard`, over the survivors — every server is
/// rolled back to the latest checkpoint (or the initial parameters when there is none yet) and
/// training continues from there.
extension Coordinator {
    func serverLost(_ m: MemberInfo) throws {
        phase = .recovering
        stepOpen = false
        current = []
        evaluation = nil
        snapshot = nil; snapshotComplete = false
        pendingSave = false; pendingEval = false; draining = false
        outstanding = [:]; requeue = []
        attempt += 1
        try sendView()   // workers drop what they have queued
        if options.reshard {
            servers.removeAll { $0 == m.id }
            guard !servers.isEmpty else {
                log("no parameter server left: waiting for one to register")
                return
            }
            try rollBack(reason: "resharding over the \(servers.count) remaining server(s)")
        } else {
            log("paused: waiting for a parameter server to take \(m.name)'s place (start precis-ps again); "
                + "training then continues from the latest checkpoint")
        }
    }

    /// Every server back to the latest checkpoint, then training goes on from its step.
    func rollBack(reason: String) throws {
        let store = checkpointStore
        if let latest = store.latestValid(onSkip: { p, e in self.log("skipping \(p): \(e)") }) {
            startStep = try loadCheckpoint(latest.path)
        } else {
            log("no checkpoint yet: starting again from the initial parameters")
            let fresh = try LocalTrainer.loadModel(cfg.training.model, seed: cfg.training.seed)
            model.params.pointer.update(from: fresh.params.pointer, count: model.table.count)
            resumeMoments = nil
            startStep = 0
            history = []
            cursor = (0, 0)
            examples = 0
        }
        let lostSteps = (consistency == .sync ? step : completed) - startStep
        step = startStep; completed = startStep; issued = startStep
        for w in aliveWorkers { clocks[w] = startStep }
        log("\(reason): rolling back to step \(startStep) (\(lostSteps) step(s) to repeat)")
        try assignServers()
    }
}
