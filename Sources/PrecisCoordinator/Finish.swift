import Foundation
import PrecisCore
import PrecisModels
import PrecisTrain
import PrecisWire

/// The end of the run: the servers' final parameters (fp32 master copies), the model folder and
/// trainer_state.json, the best model when asked for, the summary, the hub, and `shutdown` to everyone.
extension Coordinator {
    func finish() throws {
        guard let p = layout.plan else { return }
        // The members wait, idle, for `shutdown`: a long save or hub upload must not look like a
        // dead coordinator to them (they would register again, then give up).
        try standingIn("finishing") { try saveTheRun(p) }
        broadcastShutdown("training finished", code: 0)
    }

    /// Everything `finish` does before `shutdown`; it uses the data sockets, not the router.
    private func saveTheRun(_ p: PartitionPlan) throws {
        let steps = scheduler.stepsDone
        let want = consistency == .sync ? steps : plan.totalSteps
        let h = WireHeader(type: .pullParameters, codec: .none, epoch: membership.epoch, step: UInt64(want), partition: UInt32.max, count: 0,
                           payloadLength: 0, checksum: CRC32C.checksum([]))
        for (_, s) in layout.dataSockets { try s.send([h.bytes(), []]) }
        var got = Set<Int>()
        let codec = ShardCodec()
        let deadline = Member.now() + max(60, cfg.cluster.heartbeatTimeout * 3)
        while got.count < p.count {
            guard Member.now() < deadline else {
                let missing = Set((0..<p.count).filter { !got.contains($0) }.map { p.owner[$0] }).sorted()
                throw CoordinatorError.timeout("the final parameters: \(p.count - got.count) partition(s) missing from "
                                               + missing.map { membership[membership.servers[$0]]!.name }.joined(separator: ", "))
            }
            let socks = layout.dataSockets.keys.sorted().map { layout.dataSockets[$0]! }
            let ready = try ZMQPoll.wait(socks, timeoutMs: 100)
            for (i, s) in socks.enumerated() where ready[i] {
                // A reply that is not a whole partition at the version asked for is dropped (and
                // logged): without a good one the partition is still missing at the deadline.
                while let f = try s.tryReceive() {
                    let m: DataMessage
                    do { m = try DataMessage(frames: f) } catch {
                        dropData("dropped a final-parameters reply: \(error)")
                        continue
                    }
                    let part = Int(m.header.partition)
                    guard m.header.type == .parameters, part < p.count else { continue }
                    let r = p.range(part)
                    // (In sync every partition is at the version asked for; in ssp/async a partition's
                    // version is its own count of updates.)
                    if case .failure(let why) = ServerShard.check(m.header, values: r.count, minStep: consistency == .sync ? want : 0) {
                        dropData("dropped the final parameters of partition \(part): \(why)")
                        continue
                    }
                    do { try m.decode(into: model.params.pointer + r.lowerBound, capacity: r.count, using: codec) } catch {
                        dropData("dropped the final parameters of partition \(part): \(error)")
                        continue
                    }
                    got.insert(part)
                }
            }
        }
        // The checkpoints being written first: the best one may be among them (load_best_model_at_end).
        waitForCheckpointWrites(before: "the final save")
        let seconds = metrics.elapsed(now: Member.now())
        try LocalTrainer.save(model: model, tokenizerFile: cfg.training.tokenizer, to: cfg.training.outputDir, step: steps,
                              epochs: Double(steps) / Double(plan.stepsPerEpoch), history: metrics.history, seconds: seconds,
                              examples: metrics.examples, generation: plan.generationDefaults(for: model))
        var savedStep = steps
        if cfg.training.loadBestModelAtEnd, let b = checkpoints.best, let bp = b.path {
            _ = try ModelFolder.loadWeights(into: model, folder: bp)
            try ModelFolder.save(model, to: cfg.training.outputDir, generation: plan.generationDefaults(for: model))
            savedStep = b.step
            log("load_best_model_at_end: the model in \(cfg.training.outputDir) is \(bp) (\(cfg.training.bestMetric?.key ?? "") \(b.value))")
        }
        var finalState = trainerState(globalStep: steps)
        finalState.logHistory.append(["step": Double(steps), "train_runtime": seconds,
                                      "train_samples_per_second": Double(metrics.examples) / max(seconds, 1e-9)])
        try finalState.write(to: (cfg.training.outputDir as NSString).appendingPathComponent("trainer_state.json"))
        // Trainer's results files, the resolved config and the model card of the model saved.
        try RunArtifacts.write(runOutcome(globalStep: steps, seconds: seconds, savedStep: savedStep), config: cfg,
                               baseModel: LocalTrainer.baseModel(cfg.training.model), to: cfg.training.outputDir)
        log("saved \(cfg.training.outputDir) after \(steps) steps in \(String(format: "%.1f", seconds)) s")
        if let r = metrics.summary {
            log(r.logLine)
            if options.progressLines { Member.emit(ReportLine.summary(r)) }
        }
        let gap = staleness.map { "; largest clock gap \($0.largestGap) (staleness \(cfg.cluster.staleness))" } ?? ""
        log("contributions per worker: " + membership.all.filter { $0.role == .worker }.map { "\($0.name) \($0.contributions)" }
            .joined(separator: ", ") + (consistency == .ssp ? gap : ""))
        hubAtEnd(savedStep: savedStep)
    }
}

extension Coordinator {
    /// The run so far, as the results files and model cards report it.
    func runOutcome(globalStep: Int, seconds: Double, savedStep: Int) -> RunOutcome {
        RunOutcome(globalStep: globalStep, epoch: Double(globalStep) / Double(plan.stepsPerEpoch), seconds: seconds,
                   examples: metrics.examples, trainSamples: plan.dataset.count, history: metrics.history, savedStep: savedStep,
                   plannedWorkers: cfg.cluster.workers, warmupSteps: plan.warmupSteps, totalSteps: plan.totalSteps,
                   onCluster: true)
    }
}
