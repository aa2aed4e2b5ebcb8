import Foundation
import PrecisCore
import PrecisEval
import PrecisTrain
import PrecisWire

/// An evaluation spread over the workers: the validation examples, sorted by length and dealt out
/// round-robin so each worker gets a similar load, one eval task per worker.
struct EvalRun {
    struct Chunk {
        var indices: [Int]
        var worker: Int
        var result: EvalResultMessage?
    }
    let id: Int
    let step: Int
    let started: Double
    var chunks: [Chunk]
}

extension Coordinator {
    func isEvalStep(_ global: Int) -> Bool { EvaluationPlan.isEvalStep(global, cfg, stepsPerEpoch: plan.stepsPerEpoch) }

    func startEval(step s: Int) throws {
        if evalPlan == nil { evalPlan = try EvaluationPlan(cfg, model: model) }
        guard let ep = evalPlan, !ep.records.isEmpty else { if snapshotComplete { finishSnapshot() }; return }
        let workers = aliveWorkers
        guard !workers.isEmpty else {
            log("no workers to evaluate step \(s) with: skipped")
            if snapshotComplete { finishSnapshot() }
            return
        }
        let order = ep.records.indices.sorted { ep.records[$0].source.utf8.count > ep.records[$1].source.utf8.count }
        var chunks = workers.map { EvalRun.Chunk(indices: [], worker: $0) }
        for (k, i) in order.enumerated() { chunks[k % chunks.count].indices.append(i) }
        chunks.removeAll { $0.indices.isEmpty }
        evalCounter += 1
        evaluation = EvalRun(id: evalCounter, step: s, started: Member.now(), chunks: chunks)
        for c in chunks.indices { try sendEvalTask(c) }
        log("evaluating step \(s): \(ep.records.count) validation examples over \(chunks.count) worker(s)\(ep.generate ? ", with generation" : "")")
    }

    func sendEvalTask(_ c: Int) throws {
        guard let e = evaluation, let w = members[e.chunks[c].worker], let ep = evalPlan else { return }
        try router.send(to: w.identity, Control.frames(.evalTask, EvalTaskMessage(
            id: e.id * 1000 + c, version: e.step, exactVersion: consistency == .sync, indices: e.chunks[c].indices, generate: ep.generate)))
    }

    func evalResult(_ r: EvalResultMessage) throws {
        guard var e = evaluation, r.id / 1000 == e.id else { return }
        let c = r.id % 1000
        guard c < e.chunks.count, e.chunks[c].result == nil, r.indices == e.chunks[c].indices else { return }
        e.chunks[c].result = r
        evaluation = e
        if e.chunks.allSatisfy({ $0.result != nil }) { try finishEval() }
    }

    /// A worker died during an evaluation: its unfinished share goes to another.
    func reassignEval(from dead: Int) throws {
        guard var e = evaluation else { return }
        let alive = aliveWorkers
        for c in e.chunks.indices where e.chunks[c].worker == dead && e.chunks[c].result == nil {
            guard let to = alive.min(by: { a, b in e.chunks.filter { $0.worker == a }.count < e.chunks.filter { $0.worker == b }.count }) else { continue }
            e.chunks[c].worker = to
            evaluation = e
            log("evaluation share \(c) handed to \(members[to]!.name)")
            try sendEvalTask(c)
        }
    }

    func finishEval() throws {
        guard let e = evaluation, let ep = evalPlan else { return }
        evaluation = nil
        let results = e.chunks.compactMap(\.result)
        let refs = results.flatMap { $0.indices.map { ep.records[$0].target } }
        let shards = results.map { EvaluationShard(lossSum: $0.lossSum, count: $0.count, predictions: $0.predictions, genLengths: $0.genLengths) }
        let report = Evaluator.report(references: refs, shards: shards, seconds: Member.now() - e.started)
        var entry = report.metrics
        entry["step"] = Double(e.step)
        entry["epoch"] = (Double(e.step) / Double(plan.stepsPerEpoch) * 100).rounded() / 100
        entry["eval_samples_per_second"] = Double(report.samples) / max(report.seconds, 1e-9)
        history.append(entry)
        let rouge = ["rouge1", "rouge2", "rougeL", "rougeLsum"].compactMap { k in report.rouge[k].map { String(format: "%@ %.2f", k, $0) } }
        log(String(format: "eval at step %d: loss %.4f", e.step, report.loss) + (rouge.isEmpty ? "" : ", " + rouge.joined(separator: ", "))
            + (ep.generate ? String(format: ", gen_len %.1f", report.genLen) : "") + String(format: " (%d examples, %.1f s)", report.samples, report.seconds))
        if let (key, greater) = cfg.training.bestMetric, let v = entry[key] {
            if best == nil || (greater ? v > best!.value : v < best!.value) {
                best = (v, e.step, nil)
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
        if snapshotComplete { finishSnapshot() }
        pendingEval = false
    }
}
