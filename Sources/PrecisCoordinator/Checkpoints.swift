import Foundation
import PrecisCore
import PrecisData
import PrecisModels
import PrecisTrain
import PrecisWire
import Synchronization

/// A checkpoint being gathered from the servers: the parameters and AdamW moments of every
/// partition at one step boundary.
struct SnapshotInProgress {
    let step: Int
    let params: FloatBuffer
    let m: FloatBuffer
    let v: FloatBuffer
    var received = Set<Int>()   // partition * 3 + kind
    var optimizerSteps: [Int: Int] = [:]
    let started: Double
}

/// What the writer thread reports back to the event loop.
final class SaveResults: Sendable {
    private let items = Mutex<[(step: Int, path: String?, error: String?, seconds: Double, bytes: Int64)]>([])
    func add(_ r: (step: Int, path: String?, error: String?, seconds: Double, bytes: Int64)) { items.withLock { $0.append(r) } }
    func take() -> [(step: Int, path: String?, error: String?, seconds: Double, bytes: Int64)] {
        items.withLock { let r = $0; $0 = []; return r }
    }
    var pending: Int { items.withLock { $0.count } }
}

/// The checkpoint service's state: the snapshot being gathered, the writes under way, the best
/// checkpoint, and the moments of a resumed checkpoint.
struct CheckpointState {
    var snapshot: SnapshotInProgress?
    /// Every shard of `snapshot` is in, but the step's evaluation is still running: Trainer evaluates
    /// before it saves, so the checkpoint waits for the metrics.
    var snapshotWaitsForEvaluation = false
    /// Finished writes, reported by the writer threads.
    let writes = SaveResults()
    var writesInFlight = 0
    /// The longest a rollback or the final save waits for the writes under way (a disk that hangs
    /// must not hang the run with it).
    static let writeWaitLimit: Double = 600
    /// The best evaluation so far (`metric_for_best_model`) and, once saved, its checkpoint.
    var best: BestCheckpoint?
    /// AdamW moments of the checkpoint resumed from, sent to the servers with the parameters.
    var resumeMoments: (m: FloatBuffer, v: FloatBuffer)?
}

/// The best evaluation so far and its checkpoint (nil until that step's checkpoint is saved).
struct BestCheckpoint: Equatable {
    var value: Double
    var step: Int
    var path: String?
}

/// Where a run (re)starts: a checkpoint's step, moments, history, best, async cursor and examples
/// seen, or the beginning (`initial`).
struct ResumePoint {
    var step: Int
    var moments: (m: FloatBuffer, v: FloatBuffer)?
    var history: [[String: Double]]
    /// nil: the best so far stays as it is.
    var best: BestCheckpoint?
    var cursor: TaskCursor
    var examples: Int

    static var initial: ResumePoint { ResumePoint(step: 0, moments: nil, history: [], best: nil, cursor: TaskCursor(), examples: 0) }
}

/// `training_state.json`: what a checkpoint needs beyond the weights and moments to continue exactly:
/// the step (which fixes the epoch, its shuffled order and the dropout seeds), the async task cursor,
/// and what the data and schedule were.
struct TrainingState: Codable {
    var globalStep: Int
    var consistency: String
    var plannedWorkers: Int
    var seed: Int
    var dataDigest: String
    var stepsPerEpoch: Int
    var totalSteps: Int
    var cursorEpoch: Int
    var cursorOffset: Int
    var examplesSeen: Int

    /// The most examples a checkpoint may say it has seen (far beyond any run; the counts added to
    /// it afterwards cannot overflow).
    static let examplesLimit = 1 << 50

    /// What makes this state unusable for a run whose epochs have `microBatchesPerEpoch`
    /// micro-batches, or nil: a file changed by hand (its manifest digest made to match) must not
    /// put a negative or overflowing step, epoch or cursor into the run.
    func problem(microBatchesPerEpoch: Int, consistency run: Consistency) -> String? {
        let limit = TrainingArguments.maxStepsLimit
        // The data position is the step's in sync and the cursor's in ssp/async: a checkpoint of one
        // resumed under the other would restart the data elsewhere than the schedule.
        if consistency != run.rawValue {
            return "the checkpoint was trained with consistency \(consistency), this run's is \(run.rawValue): resume it with cluster.consistency: \(consistency)"
        }
        if !(0...limit).contains(globalStep) { return "global_step \(globalStep) is not in 0…\(limit)" }
        if !(0...limit).contains(cursorEpoch) { return "cursor_epoch \(cursorEpoch) is not in 0…\(limit)" }
        if !(0...microBatchesPerEpoch).contains(cursorOffset) {
            return "cursor_offset \(cursorOffset) is not in 0…\(microBatchesPerEpoch) (the micro-batches of an epoch)"
        }
        if !(0...Self.examplesLimit).contains(examplesSeen) { return "examples_seen \(examplesSeen) is not in 0…\(Self.examplesLimit)" }
        return nil
    }
}

extension Coordinator {
    var checkpointStore: CheckpointStore { CheckpointStore(outputDir: cfg.training.outputDir) }

    /// Whether the step that just finished (1-based `global`) ends with a checkpoint.
    func isSaveStep(_ global: Int) -> Bool {
        switch cfg.training.saveStrategy {
        // Trainer also saves at the last step whenever a save strategy is on.
        case "steps": return global % cfg.training.saveSteps == 0 || global == plan.totalSteps
        case "epoch": return global % plan.stepsPerEpoch == 0 || global == plan.totalSteps
        default: return false
        }
    }

    func beginSnapshot(step: Int) {
        checkpoints.snapshot = SnapshotInProgress(step: step, params: FloatBuffer(count: model.table.count), m: FloatBuffer(count: model.table.count),
                                                  v: FloatBuffer(count: model.table.count), started: Member.now())
    }

    /// A parameters or moments shard for the snapshot under way.
    func receiveSnapshotShard(_ m: DataMessage) {
        guard var s = checkpoints.snapshot, let p = layout.plan else { return }
        let part = Int(m.header.partition)
        guard part < p.count else { return dropData("dropped a snapshot shard for partition \(part): the plan has \(p.count)") }
        let r = p.range(part)
        let shard: ServerShard.Accepted
        switch ServerShard.check(m.header, values: r.count) {
        case .success(let a): shard = a
        case .failure(let why): return dropData("dropped a snapshot shard for partition \(part): \(why)")
        }
        let dst = [s.params, s.m, s.v][shard.kind]
        do { try m.decode(into: dst.pointer + r.lowerBound, capacity: r.count, using: ShardCodec()) } catch {
            return dropData("dropped a snapshot shard for partition \(part): \(error)")
        }
        s.received.insert(part * 3 + shard.kind)
        s.optimizerSteps[part] = shard.step
        checkpoints.snapshot = s
        if s.received.count == 3 * p.count {
            // Trainer evaluates before it saves, so the checkpoint's state knows the step's metrics.
            let evalComing = scheduler.openStep.map { $0 + 1 == s.step } == true && isEvalStep(s.step)
            if evaluations.current != nil || evalComing { checkpoints.snapshotWaitsForEvaluation = true } else { finishSnapshot() }
        }
    }

    /// Every shard is in: hand the checkpoint to the writer thread.
    func finishSnapshot() {
        guard let s = checkpoints.snapshot else { return }
        checkpoints.snapshot = nil
        checkpoints.snapshotWaitsForEvaluation = false
        if consistency != .sync, s.optimizerSteps.values.contains(where: { $0 != s.step }) {
            // A contribution was still on its way to a server: ask again.
            log("snapshot at step \(s.step) caught a server mid-update; asking again")
            requestSnapshot(step: s.step)
            return
        }
        let global = s.step
        model.params.pointer.update(from: s.params.pointer, count: model.table.count)
        let weights = ModelFolder.weightsWriter(model)
        var moments = SafeTensorsWriter()
        moments.metadata = ["format": "precis-adamw", "step": String(global)]
        for e in model.table.entries {
            moments.add("exp_avg." + e.name, floats: UnsafeBufferPointer(start: s.m.pointer + e.offset, count: e.count), shape: e.shape)
            moments.add("exp_avg_sq." + e.name, floats: UnsafeBufferPointer(start: s.v.pointer + e.offset, count: e.count), shape: e.shape)
        }
        let optimizer = moments
        var state = trainerState(globalStep: global)
        let path = checkpointStore.path(step: global)
        if let b = checkpoints.best, b.step == global { state.bestModelCheckpoint = path }
        let cursor = scheduler.cursor
        let training = TrainingState(globalStep: global, consistency: consistency.rawValue, plannedWorkers: cfg.cluster.workers,
                                     seed: cfg.training.seed, dataDigest: plan.digest, stepsPerEpoch: plan.stepsPerEpoch,
                                     totalSteps: plan.totalSteps, cursorEpoch: cursor.epoch, cursorOffset: cursor.offset,
                                     examplesSeen: metrics.examples)
        do {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            enc.keyEncodingStrategy = .convertToSnakeCase
            let small: [(String, Data)] = [
                ("config.json", try model.configJSON()),
                ("generation_config.json", try JSONSerialization.data(withJSONObject: plan.generationDefaults(for: model),
                                                                     options: [.prettyPrinted, .sortedKeys])),
                ("trainer_state.json", try state.jsonData()),
                ("training_state.json", try enc.encode(training)),
            ] + (try ModelFolder.tokenizerFiles(for: model, tokenizerJSON: try TokenizerFolder.tokenizerJSON(path: cfg.training.tokenizer),
                                           file: cfg.training.tokenizer)).map { ($0.name, $0.data) }
            let store = checkpointStore
            let results = checkpoints.writes
            let started = s.started
            checkpoints.writesInFlight += 1
            let t = Thread {
                do {
                    let files: [CheckpointStore.File] = [.writer("model.safetensors") { try weights.write(to: $0) },
                                                         .writer("optimizer.safetensors") { try optimizer.write(to: $0) }]
                        + small.map { CheckpointStore.File.data($0.0, $0.1) }
                    let p = try store.save(step: global, files: files)
                    let bytes = (try? FileManager.default.contentsOfDirectory(atPath: p))?.reduce(Int64(0)) {
                        $0 + (((try? FileManager.default.attributesOfItem(atPath: p + "/" + $1))?[.size] as? NSNumber)?.int64Value ?? 0)
                    } ?? 0
                    results.add((global, p, nil, Member.now() - started, bytes))
                } catch {
                    results.add((global, nil, "\(error)", Member.now() - started, 0))
                }
            }
            t.name = "checkpoint-writer"
            t.start()
            log(String(format: "checkpoint at step %d: the servers' shards are in (%.3f s); writing %@ in the background", global,
                       Member.now() - s.started, path))
        } catch {
            observed.checkpointFailed()
            log("could not prepare checkpoint-\(global): \(error)")
        }
    }

    /// Waits for the checkpoint writes under way (they end by themselves) and takes in their results,
    /// so that what comes next — `what`: a rollback, the final save — sees them; at most
    /// `CheckpointState.writeWaitLimit` seconds, then goes on without them (logged).
    func waitForCheckpointWrites(before what: String) {
        guard checkpoints.writesInFlight > 0 else { return }
        let started = Member.now()
        while checkpoints.writesInFlight > 0 && Member.now() - started < CheckpointState.writeWaitLimit {
            if checkpoints.writes.pending > 0 { collectSaves() } else { Thread.sleep(forTimeInterval: 0.01) }
        }
        if checkpoints.writesInFlight > 0 {
            log(String(format: "warning: %d checkpoint write(s) still under way after %.0f s; %@ without them",
                       checkpoints.writesInFlight, CheckpointState.writeWaitLimit, what))
        } else {
            log(String(format: "waited %.1f s for the checkpoint being written before %@", Member.now() - started, what))
        }
    }

    /// Finished saves: rotation and hub pushes.
    func collectSaves() {
        for r in checkpoints.writes.take() {
            checkpoints.writesInFlight -= 1
            guard let path = r.path else {
                observed.checkpointFailed()
                log("checkpoint-\(r.step) was not saved: \(r.error ?? "unknown error")")
                status.checkpoint(StatusReport.CheckpointStatus(step: r.step, path: nil, bytes: 0, seconds: r.seconds, error: r.error ?? "unknown error"))
                continue
            }
            observed.checkpointSaved(seconds: r.seconds)
            log(String(format: "saved %@ (%.1f MB, %.2f s after the step)", path, Double(r.bytes) / 1e6, r.seconds))
            status.checkpoint(StatusReport.CheckpointStatus(step: r.step, path: path, bytes: Int(r.bytes), seconds: (r.seconds * 1000).rounded() / 1000))
            if let limit = cfg.training.saveTotalLimit {
                var keep: Set<String> = [path]
                if let bp = checkpoints.best?.path { keep.insert(bp) }
                if let pushing = hub?.pushedCheckpoint { keep.insert(pushing) }
                do {
                    for d in try checkpointStore.rotate(limit: limit, keep: keep) {
                        log("removed \(d) (save_total_limit \(limit))")
                        status.checkpointRemoved(d)
                    }
                } catch { log("rotation failed: \(error)") }
            }
            if checkpoints.best?.step == r.step { checkpoints.best?.path = path }
            hubAfterSave(checkpoint: path, step: r.step)
        }
    }

    func requestSnapshot(step: Int) {
        beginSnapshot(step: step)
        for sid in membership.servers {
            try? router.send(to: membership[sid]!.identity, Control.frames(.snapshot, SnapshotMessage(tag: step)))
        }
    }

    /// Trainer's trainer_state.json for the run so far.
    func trainerState(globalStep: Int) -> TrainerState {
        var s = TrainerState()
        s.globalStep = globalStep
        s.epoch = Double(globalStep) / Double(plan.stepsPerEpoch)
        s.maxSteps = plan.totalSteps
        s.numTrainEpochs = Int((Double(plan.totalSteps) / Double(plan.stepsPerEpoch)).rounded(.up))
        s.loggingSteps = cfg.training.loggingSteps
        s.evalSteps = cfg.training.evalSteps ?? cfg.training.loggingSteps
        s.saveSteps = cfg.training.saveSteps
        s.trainBatchSize = cfg.training.perDeviceTrainBatchSize
        s.bestMetric = checkpoints.best?.value
        s.bestModelCheckpoint = checkpoints.best?.path
        s.bestGlobalStep = checkpoints.best?.step
        s.logHistory = metrics.history
        return s
    }

    // MARK: resuming

    /// The checkpoint `resume_from_checkpoint` names ("latest" / "true": the newest valid one in the
    /// output folder), verified against its manifest.
    func verifiedCheckpoint(_ spec: String) throws -> String {
        if spec == "latest" || spec == "true" {
            guard let path = latestValidCheckpoint() else {
                throw CoordinatorError.checkpoint("resume_from_checkpoint: no valid checkpoint in \(cfg.training.outputDir)")
            }
            return path
        }
        try checkpointStore.verify(spec)
        return spec
    }

    /// The newest checkpoint in the output folder that verifies against its manifest (each one
    /// skipped is logged with why), or nil when there is none.
    func latestValidCheckpoint() -> String? {
        checkpointStore.latestValid(onSkip: { p, e in self.log("skipping \(p): \(e)") })?.path
    }

    /// Loads a checkpoint already verified against its manifest (`verifiedCheckpoint`,
    /// `CheckpointStore.latestValid`: each hashes every file, so it is not done twice) into the
    /// coordinator's copy of the model; returns the rest of what resuming from it needs.
    func loadCheckpoint(verified path: String) throws -> ResumePoint {
        _ = try ModelFolder.loadWeights(into: model, folder: path)
        let (m, v) = try OptimizerMoments.read(checkpoint: path, table: model.table)
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        let stateFile = path + "/training_state.json"
        let data: Data
        do { data = try SmallFile.read(stateFile, limit: 16 << 20) } catch {
            throw CoordinatorError.checkpoint("\(stateFile): \(error)")
        }
        let ts: TrainingState
        do { ts = try dec.decode(TrainingState.self, from: data) } catch { throw CoordinatorError.checkpoint("\(stateFile): \(error)") }
        if let problem = ts.problem(microBatchesPerEpoch: plan.microBatchesPerEpoch, consistency: consistency) {
            throw CoordinatorError.checkpoint("\(stateFile): \(problem)")
        }
        guard ts.globalStep <= plan.totalSteps else {
            throw CoordinatorError.checkpoint("\(stateFile): the checkpoint is at step \(ts.globalStep), past this run's last step "
                                              + "(\(plan.totalSteps)): nothing is left to train (raise max_steps or num_train_epochs to go on from it)")
        }
        let manifestStep = try CheckpointStore.readManifest(path).step
        guard ts.globalStep == manifestStep else {
            throw CoordinatorError.checkpoint("\(stateFile): global_step \(ts.globalStep), but the checkpoint's manifest says step \(manifestStep)")
        }
        guard ts.dataDigest == plan.digest else {
            throw CoordinatorError.checkpoint("\(stateFile): the checkpoint was trained on other data (digest \(ts.dataDigest), now \(plan.digest))")
        }
        let trainer = try TrainerState.read(path: path + "/trainer_state.json")
        log("resuming from \(path) at step \(ts.globalStep)")
        return ResumePoint(step: ts.globalStep, moments: (m, v), history: trainer.logHistory,
                           best: bestCheckpoint(trainer, at: ts.globalStep, file: path + "/trainer_state.json"),
                           cursor: TaskCursor(epoch: ts.cursorEpoch, offset: ts.cursorOffset), examples: ts.examplesSeen)
    }

    /// The best checkpoint a resumed trainer_state.json names, when it can be one: a finite metric
    /// and, if it names a folder, one of this run's checkpoints (`load_best_model_at_end` loads it as
    /// the final model). Anything else is logged and passed over: the run then keeps the best of what
    /// it evaluates from here on.
    func bestCheckpoint(_ trainer: TrainerState, at step: Int, file: String) -> BestCheckpoint? {
        guard let value = trainer.bestMetric else { return nil }
        guard value.isFinite else {
            log("\(file): best_metric \(value) is not a finite number: passed over")
            return nil
        }
        if let p = trainer.bestModelCheckpoint {
            let ours = Set(checkpointStore.list().map { URL(fileURLWithPath: $0.path).standardizedFileURL.path })
            guard ours.contains(URL(fileURLWithPath: p).standardizedFileURL.path) else {
                log("\(file): best_model_checkpoint '\(p)' is not a checkpoint of \(cfg.training.outputDir): passed over")
                return nil
            }
        }
        return BestCheckpoint(value: value, step: trainer.bestGlobalStep ?? step, path: trainer.bestModelCheckpoint)
    }

    /// Every part starts again at `point`.
    func restart(from point: ResumePoint) {
        startStep = point.step
        checkpoints.resumeMoments = point.moments
        if let b = point.best { checkpoints.best = b }
        scheduler.restart(at: point.step, cursor: point.cursor)
        metrics.restart(at: point.step, history: point.history, examples: point.examples)
        status.restart(at: point.step, history: point.history)
    }
}
