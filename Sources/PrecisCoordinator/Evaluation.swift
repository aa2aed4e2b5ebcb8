import Foundation
import PrecisCore
import PrecisData
import PrecisEval
import PrecisTrain
import PrecisWire

/// An eval task's id as the wire carries it: the evaluation run's number and the share of it the
/// task holds, so a result finds its run and share. Runs of both kinds (training evaluations and a
/// client's checkpoint evaluation) are numbered by one counter, so their ids never collide.
public struct EvalTaskId: Equatable, Sendable {
    /// Shares per run the id can carry (more workers than this evaluate in this many shares).
    public static let maxShares = 1 << 16
    public let run: Int
    public let share: Int

    public init(run: Int, share: Int) { self.run = run; self.share = share }
    /// Nil for an id no task was given (negative).
    public init?(wire: Int) {
        guard wire >= 0 else { return nil }
        run = wire / Self.maxShares; share = wire % Self.maxShares
    }
    public var wire: Int { run * Self.maxShares + share }
}

/// An evaluation spread over the workers: the validation examples, sorted by length and dealt out
/// round-robin so each worker gets a similar load, one eval task per worker.
package struct EvalRun {
    package struct Chunk {
        package var indices: [Int]
        package var worker: Int
        package var result: EvalResultMessage?
        package init(indices: [Int], worker: Int, result: EvalResultMessage? = nil) { self.indices = indices; self.worker = worker; self.result = result }
    }
    package let id: Int
    package let step: Int
    package let started: Double
    package var chunks: [Chunk]

    package init(id: Int, step: Int, started: Double, chunks: [Chunk]) { self.id = id; self.step = step; self.started = started; self.chunks = chunks }

    /// Why a result for share `c` from `sender` is dropped: the share is handed to another worker (nil: it is the sender's).
    package static func refusal(share c: Int, of run: EvalRun, from sender: Int?) -> String? {
        let w = run.chunks[c].worker
        return w == sender ? nil : "evaluation share \(c) is assigned to worker \(w)"
    }

    /// The examples, longest source first, dealt round-robin: one share per worker, similar loads.
    static func deal(_ records: [PrecisData.SummarizationRecord], to workers: [Int]) -> [Chunk] {
        let order = records.indices.sorted { records[$0].source.utf8.count > records[$1].source.utf8.count }
        var chunks = workers.prefix(EvalTaskId.maxShares).map { Chunk(indices: [], worker: $0) }
        for (k, i) in order.enumerated() { chunks[k % chunks.count].indices.append(i) }
        return chunks.filter { !$0.indices.isEmpty }
    }
}

/// The evaluation service's state: the validation set (loaded on first use), the evaluation of the
/// training parameters under way, and a client's evaluation of a saved checkpoint.
struct EvaluationState {
    /// The validation examples and generation settings; nil until the first evaluation.
    var plan: EvaluationPlan?
    /// The evaluation of the training parameters under way.
    var current: EvalRun?
    /// A client's evaluation of a saved checkpoint (`precis-coordinator evaluate`), beside training.
    var external: ExternalEval?
    /// Numbers the evaluations (both kinds, one sequence; see `EvalTaskId`).
    var counter = 0
}

extension Coordinator {
    /// Whether a result belongs to the client's checkpoint evaluation (else to a training evaluation).
    func isExternalResult(_ r: EvalResultMessage) -> Bool {
        guard let e = evaluations.external, let id = EvalTaskId(wire: r.id) else { return false }
        return id.run == e.run.id
    }

    func isEvalStep(_ global: Int) -> Bool { EvaluationPlan.isEvalStep(global, cfg, stepsPerEpoch: plan.stepsPerEpoch) }

    func startEval(step s: Int) throws {
        if evaluations.plan == nil { evaluations.plan = try EvaluationPlan(cfg, model: model) }
        guard let ep = evaluations.plan, !ep.records.isEmpty else {
            if checkpoints.snapshotWaitsForEvaluation { finishSnapshot() }
            return
        }
        let workers = membership.aliveWorkers
        guard !workers.isEmpty else {
            observed.evaluationFailed()
            log("no workers to evaluate step \(s) with: skipped")
            if checkpoints.snapshotWaitsForEvaluation { finishSnapshot() }
            return
        }
        let chunks = EvalRun.deal(ep.records, to: workers)
        evaluations.counter += 1
        evaluations.current = EvalRun(id: evaluations.counter, step: s, started: Member.now(), chunks: chunks)
        for c in chunks.indices { try sendEvalTask(c) }
        log("evaluating step \(s): \(ep.records.count) validation examples over \(chunks.count) worker(s)\(ep.generate ? ", with generation" : "")")
    }

    func sendEvalTask(_ c: Int) throws {
        guard let e = evaluations.current, let w = membership[e.chunks[c].worker], let ep = evaluations.plan else { return }
        status.evalTaskSent(to: e.chunks[c].worker, run: e.id, share: c, attempt: attempt, now: Member.now())
        try router.send(to: w.identity, Control.frames(.evalTask, EvalTaskMessage(
            id: EvalTaskId(run: e.id, share: c).wire, version: e.step, exactVersion: consistency == .sync, indices: e.chunks[c].indices, generate: ep.generate)))
    }


    /// `sender`: the worker it came from. A result is dropped (thrown: logged with the peer) when its
    /// fields do not add up (`EvalResultMessage.dropReason`: one loss, prediction and length per
    /// example), or when its share is handed to another worker (after a loss, a late result from the
    /// worker lost does not count).
    func evalResult(_ r: EvalResultMessage, from sender: Int?) throws {
        guard var e = evaluations.current, let id = EvalTaskId(wire: r.id), id.run == e.id else { return }
        let c = id.share
        guard c < e.chunks.count, e.chunks[c].result == nil, r.indices == e.chunks[c].indices else { return }
        if let why = r.dropReason ?? (r.count < 0 ? "a training evaluation's share cannot fail" : nil)
            ?? EvalRun.refusal(share: c, of: e, from: sender) {
            throw CoordinatorError.invalidRequest(why)
        }
        e.chunks[c].result = r
        evaluations.current = e
        status.evalTaskDone(by: e.chunks[c].worker, run: e.id, share: c, now: Member.now())
        if e.chunks.allSatisfy({ $0.result != nil }) { try finishEval() }
    }

    /// A worker died during an evaluation: its unfinished share goes to another.
    func reassignEval(from dead: Int) throws {
        guard var e = evaluations.current else { return }
        let alive = membership.aliveWorkers
        for c in e.chunks.indices where e.chunks[c].worker == dead && e.chunks[c].result == nil {
            guard let to = alive.min(by: { a, b in e.chunks.filter { $0.worker == a }.count < e.chunks.filter { $0.worker == b }.count }) else { continue }
            e.chunks[c].worker = to
            evaluations.current = e
            log("evaluation share \(c) handed to \(membership[to]!.name)")
            try sendEvalTask(c)
        }
    }

    func finishEval() throws {
        guard let e = evaluations.current, let ep = evaluations.plan else { return }
        evaluations.current = nil
        let results = e.chunks.compactMap(\.result)
        let refs = results.flatMap { $0.indices.map { ep.records[$0].target } }
        let shards = results.map { EvaluationShard(lossSum: $0.lossSum, count: $0.count, predictions: $0.predictions, genLengths: $0.genLengths) }
        let report = Evaluator.report(references: refs, shards: shards, seconds: Member.now() - e.started)
        observed.evaluationFinished(seconds: report.seconds)
        var entry = report.metrics
        entry["step"] = Double(e.step)
        entry["epoch"] = (Double(e.step) / Double(plan.stepsPerEpoch) * 100).rounded() / 100
        entry["eval_samples_per_second"] = Double(report.samples) / max(report.seconds, 1e-9)
        metrics.history.append(entry)
        status.evaluated(step: e.step, entry: entry)
        publishLogs(step: e.step, scalars: TensorBoardTags.scalars(from: entry))
        let rouge = ["rouge1", "rouge2", "rougeL", "rougeLsum"].compactMap { k in report.rouge[k].map { String(format: "%@ %.2f", k, $0) } }
        log(String(format: "eval at step %d: loss %.4f", e.step, report.loss) + (rouge.isEmpty ? "" : ", " + rouge.joined(separator: ", "))
            + (ep.generate ? String(format: ", gen_len %.1f", report.genLen) : "") + String(format: " (%d examples, %.1f s)", report.samples, report.seconds))
        if let (key, greater) = cfg.training.bestMetric, let v = entry[key] {
            if checkpoints.best.map({ greater ? v > $0.value : v < $0.value }) ?? true {
                checkpoints.best = BestCheckpoint(value: v, step: e.step, path: nil)
                log("best \(key) so far: \(v) at step \(e.step)")
            }
        }
        // Predictions beside the run, as the recipe's generated_predictions.txt.
        if ep.generate {
            var byIndex = [Int: String]()
            for r in results { for (i, p) in zip(r.indices, r.predictions) { byIndex[i] = p } }
            let lines = ep.records.indices.compactMap { byIndex[$0].map { p in (try? String(decoding: JSONSerialization.data(withJSONObject: ["prediction": p]), as: UTF8.self)) ?? "" } }
            try? FileManager.default.createDirectory(atPath: cfg.training.outputDir, withIntermediateDirectories: true)
            try? AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8),
                                  to: (cfg.training.outputDir as NSString).appendingPathComponent("eval_predictions-\(e.step).jsonl"))
        }
        if checkpoints.snapshotWaitsForEvaluation { finishSnapshot() }
        staleness?.evaluationOver()
    }
}

/// An evaluation of a saved checkpoint asked for by a client (`precis-coordinator evaluate
/// --coordinator …`), spread over the running cluster's workers beside the training.
struct ExternalEval {
    let client: [UInt8]
    let request: EvaluateRequest
    let references: [String]
    var run: EvalRun
}

extension Coordinator {
    func startExternalEval(_ req: EvaluateRequest, client: [UInt8]) throws {
        func fail(_ why: String) throws {
            log("evaluation of \(req.checkpoint) refused: \(why)")
            try router.send(to: client, Control.frames(.evaluateReply, EvaluateReply(metrics: [:], error: why, outputDir: nil)))
        }
        guard evaluations.external == nil else { return try fail("another checkpoint evaluation is running") }
        if let why = CheckpointEvaluation.invalid(maxSamples: req.maxSamples) { return try fail(why) }
        let workers = membership.aliveWorkers
        guard !workers.isEmpty else { return try fail("no workers are up") }
        let a = cfg.training
        let records: [PrecisData.SummarizationRecord]
        do {
            records = try DatasetLoader.load(req.dataFile, options: DatasetOptions(textColumn: a.textColumn, summaryColumn: a.summaryColumn,
                                                                                  skipBadRecords: true)).records
        } catch { return try fail("\(error)") }
        let recs = req.maxSamples.map { Array(records.prefix($0)) } ?? records
        guard !recs.isEmpty else { return try fail("\(req.dataFile) has no examples") }
        let chunks = EvalRun.deal(recs, to: workers)
        evaluations.counter += 1
        let run = EvalRun(id: evaluations.counter, step: -1, started: Member.now(), chunks: chunks)
        evaluations.external = ExternalEval(client: client, request: req, references: recs.map(\.target), run: run)
        for c in chunks.indices { try sendExternalEvalTask(c) }
        log("evaluating \(req.checkpoint) on \(req.dataFile): \(recs.count) examples over \(chunks.count) worker(s)")
    }

    func sendExternalEvalTask(_ c: Int) throws {
        guard let e = evaluations.external, let w = membership[e.run.chunks[c].worker] else { return }
        try router.send(to: w.identity, Control.frames(.evalTask, EvalTaskMessage(
            id: EvalTaskId(run: e.run.id, share: c).wire, version: 0, exactVersion: false, indices: e.run.chunks[c].indices, generate: true,
            checkpoint: e.request.checkpoint, dataFile: e.request.dataFile)))
    }

    /// A worker died during a checkpoint evaluation: its unfinished share goes to the least-loaded
    /// survivor; with none left, the client gets an error instead of waiting for its timeout.
    func reassignExternalEval(from dead: Int) throws {
        guard var e = evaluations.external else { return }
        let alive = membership.aliveWorkers
        for c in e.run.chunks.indices where e.run.chunks[c].worker == dead && e.run.chunks[c].result == nil {
            guard let to = alive.min(by: { a, b in
                (e.run.chunks.filter { $0.worker == a && $0.result == nil }.count, a) < (e.run.chunks.filter { $0.worker == b && $0.result == nil }.count, b)
            }) else {
                evaluations.external = nil
                let why = "every worker was lost during the evaluation"
                observed.evaluationFailed()
                log("evaluation of \(e.request.checkpoint) failed: \(why)")
                try router.send(to: e.client, Control.frames(.evaluateReply, EvaluateReply(metrics: [:], error: why, outputDir: nil)))
                return
            }
            e.run.chunks[c].worker = to
            evaluations.external = e
            log("evaluation share \(c) of \(e.request.checkpoint) handed to \(membership[to]!.name)")
            try sendExternalEvalTask(c)
        }
    }

    /// `sender`: the worker it came from (checked as for a training evaluation's result).
    func externalResult(_ r: EvalResultMessage, from sender: Int?) throws {
        guard var e = evaluations.external, let id = EvalTaskId(wire: r.id), id.run == e.run.id else { return }
        let c = id.share
        guard c < e.run.chunks.count, e.run.chunks[c].result == nil else { return }
        if let why = r.dropReason ?? EvalRun.refusal(share: c, of: e.run, from: sender) { throw CoordinatorError.invalidRequest(why) }
        if r.count < 0 {
            evaluations.external = nil
            let why = r.predictions.first ?? "a worker failed"
            observed.evaluationFailed()
            log("evaluation of \(e.request.checkpoint) failed: \(why)")
            try router.send(to: e.client, Control.frames(.evaluateReply, EvaluateReply(metrics: [:], error: why, outputDir: nil)))
            return
        }
        guard r.indices == e.run.chunks[c].indices else {
            return log("dropped an evaluation result for share \(c) of \(e.request.checkpoint): it does not match the share's \(e.run.chunks[c].indices.count) example(s)")
        }
        e.run.chunks[c].result = r
        evaluations.external = e
        guard e.run.chunks.allSatisfy({ $0.result != nil }) else { return }
        evaluations.external = nil
        let results = e.run.chunks.compactMap(\.result)
        let refs = results.flatMap { $0.indices.map { e.references[$0] } }
        let shards = results.map { EvaluationShard(lossSum: $0.lossSum, count: $0.count, predictions: $0.predictions, genLengths: $0.genLengths) }
        let report = Evaluator.report(references: refs, shards: shards, seconds: Member.now() - e.run.started)
        observed.evaluationFinished(seconds: report.seconds)
        var predictions = [Int: String]()
        for r in results { for (i, p) in zip(r.indices, r.predictions) { predictions[i] = p } }
        let out = try CheckpointEvaluation.write(report: report, predictions: e.references.indices.map { predictions[$0] ?? "" },
                                                 checkpoint: e.request.checkpoint, dataFile: e.request.dataFile)
        log(String(format: "evaluated %@: loss %.4f, rouge1 %.2f, rouge2 %.2f, rougeL %.2f, rougeLsum %.2f; written to %@",
                   e.request.checkpoint, report.loss, report.rouge["rouge1"] ?? 0, report.rouge["rouge2"] ?? 0, report.rouge["rougeL"] ?? 0,
                   report.rouge["rougeLsum"] ?? 0, out))
        try router.send(to: e.client, Control.frames(.evaluateReply, EvaluateReply(metrics: report.metrics, error: nil, outputDir: out)))
    }
}

/// Evaluating a saved checkpoint: predictions and metrics written beside it, in `eval-<split>/`.
public enum CheckpointEvaluation {
    /// Writes `predictions.jsonl` and `eval_results.json`; returns the folder.
    public static func write(report: EvaluationReport, predictions: [String], checkpoint: String, dataFile: String) throws -> String {
        let split = ((dataFile as NSString).lastPathComponent as NSString).deletingPathExtension
        let out = (checkpoint as NSString).appendingPathComponent("eval-\(split)")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let lines = try predictions.map { String(decoding: try JSONSerialization.data(withJSONObject: ["prediction": $0]), as: UTF8.self) }
        try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: (out as NSString).appendingPathComponent("predictions.jsonl"))
        var metrics: [String: Any] = report.metrics
        metrics["data"] = dataFile
        metrics["checkpoint"] = checkpoint
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: metrics, options: [.prettyPrinted, .sortedKeys]),
                             to: (out as NSString).appendingPathComponent("eval_results.json"))
        return out
    }

    /// Why `maxSamples` cannot be used (nil when it can: absent, or 0 or more).
    public static func invalid(maxSamples: Int?) -> String? {
        guard let n = maxSamples, n < 0 else { return nil }
        return "max samples must be 0 or more, not \(n)"
    }

    /// Evaluates in this process (no cluster up): the same report, the same files.
    public static func local(checkpoint: String, dataFile: String, config: TrainingConfig, maxSamples: Int?,
                             progress: (String, Int, Int) -> Void = { _, _, _ in }) throws -> (EvaluationReport, String) {
        if let why = invalid(maxSamples: maxSamples) { throw CoordinatorError.invalidRequest(why) }
        let sm = try SummarizationModel(folder: checkpoint)
        try BF16Setting.apply(config, to: sm.model)
        let a = config.training
        if let m = a.generationMaxLength { sm.generation.maxLength = m; sm.generation.maxNewTokens = nil }
        if let b = a.generationNumBeams { sm.generation.numBeams = b }
        let records = try DatasetLoader.load(dataFile, options: DatasetOptions(textColumn: a.textColumn, summaryColumn: a.summaryColumn,
                                                                              skipBadRecords: true)).records
        let recs = maxSamples.map { Array(records.prefix($0)) } ?? records
        let report = try Evaluator.evaluate(sm, records: recs, batchSize: a.perDeviceEvalBatchSize,
                                            options: TokenizationOptions(maxSourceLength: a.maxSourceLength, maxTargetLength: a.maxTargetLength,
                                                                         sourcePrefix: a.sourcePrefix), progress: progress)
        return (report, try write(report: report, predictions: report.predictions, checkpoint: checkpoint, dataFile: dataFile))
    }

    /// Asks a running coordinator to evaluate on its workers; nil when none answers at `endpoint`.
    public static func onCluster(endpoint: String, request: EvaluateRequest, timeoutSeconds: Double,
                                 keys: ClusterKeys? = nil) throws -> EvaluateReply? {
        guard (try? ClusterStatus.query(endpoint: endpoint, timeoutMs: 2000, keys: keys)) != nil else { return nil }
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .dealer)
        try keys?.secureToCoordinator(s)
        try s.connect(endpoint)
        try s.send(Control.frames(.evaluateRequest, request))
        let deadline = Member.now() + timeoutSeconds
        while Member.now() < deadline {
            guard let f = try? s.receive(timeoutMs: 1000) else { continue }
            let m = try DataMessage(frames: f)
            if m.header.type == .evaluateReply { return try Control.decode(EvaluateReply.self, m) }
        }
        throw CoordinatorError.timeout("the evaluation of \(request.checkpoint) on the cluster at \(endpoint)")
    }
}
