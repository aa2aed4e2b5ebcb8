import Foundation
import PrecisCore
import PrecisData
import PrecisEval
import PrecisTrain
import PrecisWire

extension Worker {
    /// An eval task: the loss and (with generation) the summaries of some validation examples, with
    /// the parameters of the version the coordinator names.
    func evaluate(_ t: EvalTaskMessage) throws {
        guard let model, let cfg = config else { return }
        let t0 = Member.now()
        if let folder = t.checkpoint, let file = t.dataFile { return try evaluateCheckpoint(t, folder: folder, file: file, cfg: cfg, t0: t0) }
        if evalPlan == nil {
            evalPlan = try EvaluationPlan(cfg, model: model)
            log("loaded \(evalPlan!.records.count) validation examples from \(cfg.training.validationFile)")
        }
        guard let ep = evalPlan else { return }
        if let why = t.dropReason(examples: ep.records.count) {
            log("eval task \(t.id) skipped: \(why) (the validation records)")
            return
        }
        let asTask = TaskMessage(step: t.version, contribution: -1, micro: [], firstMicro: 0, normalizer: 0, exactVersion: t.exactVersion,
                                 minVersion: t.exactVersion ? t.version : 0, clipNorm: 0)
        guard try ensureParameters(asTask) else {
            log("skipped eval task \(t.id): the servers have moved past version \(t.version)")
            return
        }
        let sm = SummarizationModel(model: model, encoder: try encoderForEval(), generation: ep.generation)
        let shard = try Evaluator.shard(sm, records: t.indices.map { ep.records[$0] }, batchSize: ep.batchSize, options: ep.options,
                                        generate: t.generate)
        try control.send(Control.frames(.evalResult, EvalResultMessage(
            id: t.id, indices: t.indices, lossSum: shard.lossSum, count: shard.count, predictions: shard.predictions,
            genLengths: shard.genLengths, seconds: Member.now() - t0)))
        log(String(format: "evaluated %d examples at version %d in %.1f s", t.indices.count, t.version, Member.now() - t0))
    }

    /// An eval task on a saved checkpoint (read from this host's disk) and a data file.
    func evaluateCheckpoint(_ t: EvalTaskMessage, folder: String, file: String, cfg: TrainingConfig, t0: Double) throws {
        var reply = EvalResultMessage(id: t.id, indices: t.indices, lossSum: 0, count: 0, predictions: [], genLengths: [], seconds: 0)
        do {
            let sm = try SummarizationModel(folder: folder)
            try BF16Setting.apply(cfg, to: sm.model)
            let ep = try EvaluationPlan(cfg, model: sm.model)
            if let m = cfg.training.generationMaxLength { sm.generation.maxLength = m; sm.generation.maxNewTokens = nil }
            if let b = cfg.training.generationNumBeams { sm.generation.numBeams = b }
            let a = cfg.training
            let records = try DatasetLoader.load(file, options: DatasetOptions(textColumn: a.textColumn, summaryColumn: a.summaryColumn,
                                                                             skipBadRecords: true)).records
            if let why = t.dropReason(examples: records.count) { throw WireError.badControl(type: "evalTask", reason: "\(why) (\(file))") }
            let shard = try Evaluator.shard(sm, records: t.indices.map { records[$0] }, batchSize: ep.batchSize, options: ep.options, generate: true)
            reply = EvalResultMessage(id: t.id, indices: t.indices, lossSum: shard.lossSum, count: shard.count, predictions: shard.predictions,
                                      genLengths: shard.genLengths, seconds: Member.now() - t0)
            log(String(format: "evaluated %d examples of %@ with %@ in %.1f s", t.indices.count, file, folder, Member.now() - t0))
        } catch {
            log("could not evaluate \(folder): \(error)")
            reply.count = -1
            reply.predictions = ["\(error)"]
        }
        try control.send(Control.frames(.evalResult, reply))
    }

    /// The tokenizer that decodes generated summaries (loaded on the first evaluation).
    func encoderForEval() throws -> TokenizerEncoder {
        if let e = evalEncoder { return e }
        let e = try TokenizerEncoder(file: config!.training.tokenizer)
        evalEncoder = e
        return e
    }
}
