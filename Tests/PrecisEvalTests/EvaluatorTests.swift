import Foundation
import Testing
import PrecisCore
import PrecisData
import PrecisEval
import PrecisModels

private let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A randomly initialised bart-tiny (`configs/bart-tiny.json`) with the committed SAMSum tokenizer
/// (its vocabulary is bart-tiny's 8192). A fresh one per test: a model's generation caches are not
/// shared between threads.
private func tinyModel(seed: UInt64 = 3) throws -> SummarizationModel {
    let file = repo.appendingPathComponent("configs/bart-tiny.json").path
    let data = try Data(contentsOf: URL(fileURLWithPath: file))
    let model = try ModelRegistry.model(config: data, file: file)
    model.initializeWeights(seed: seed)
    let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let encoder = try TokenizerEncoder(file: repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path)
    var generation = try GenerationSettings(json: json, file: file)
    // An untrained model repeats its last token; banning repeats gives varied summaries.
    generation.maxLength = 16
    generation.noRepeatNgramSize = 1
    return SummarizationModel(model: model, encoder: encoder, generation: generation)
}

/// Short dialogues of different lengths, with reference summaries.
private let records: [SummarizationRecord] = [
    .init(source: "Tom: Are you coming to the match tonight?\nAnna: Yes, I'll be there at 7.", target: "Anna will come to the match at 7."),
    .init(source: "Mia: I lost my keys.\nLeo: Check the car.\nMia: Found them, thanks!", target: "Mia found her keys in the car."),
    .init(source: "Sam: Pizza or sushi?\nKate: Sushi, please.\nSam: OK, I'll order at 8.\nKate: Great.",
          target: "Sam will order sushi at 8 for Kate."),
    .init(source: "Ben: The meeting moved to Friday.\nOla: Which room?\nBen: Room 12, after lunch.",
          target: "The meeting is on Friday in room 12 after lunch."),
    .init(source: "Eve: Can you feed the cat?\nDan: Sure.", target: "Dan will feed Eve's cat."),
    .init(source: "Jo: Train is late again.\nAl: How late?\nJo: Twenty minutes. Start without me.\nAl: Will do.",
          target: "Jo's train is twenty minutes late, so Al will start without Jo."),
]

private let options = TokenizationOptions(maxSourceLength: 64, maxTargetLength: 32)

@Suite struct EvaluatorTests {
    /// run_summarization's --source_prefix: the tokenized inputs of generation and of the loss are
    /// those of the prefixed sources.
    @Test func sourcePrefixReachesTheModelInputs() throws {
        let sm = try tinyModel()
        let prefix = "summarize: "
        let texts = records.map(\.source)
        let plain = try sm.sourceIDs(texts, maxSourceLength: 64)
        let prefixed = try sm.sourceIDs(texts, sourcePrefix: prefix, maxSourceLength: 64)
        for (i, t) in texts.enumerated() {
            #expect(prefixed[i] == (try sm.encoder.encode(prefix + t, maxLength: 64)))
            #expect(prefixed[i] != plain[i])
            #expect(prefixed[i].count > plain[i].count)
        }
        // Generation with the prefix is generation from the texts with the prefix written in.
        let a = try sm.summarize(texts, sourcePrefix: prefix, batchSize: 2, maxSourceLength: 64)
        let b = try sm.summarize(texts.map { prefix + $0 }, batchSize: 2, maxSourceLength: 64)
        #expect(a.tokens == b.tokens)
        // The evaluation loss with the prefix is the loss of the prefixed sources, not of the bare ones.
        let prefixOptions = TokenizationOptions(maxSourceLength: 64, maxTargetLength: 32, sourcePrefix: prefix)
        let withPrefix = try Evaluator.shard(sm, records: records, batchSize: 1, options: prefixOptions, generate: true)
        let written = try Evaluator.shard(sm, records: records.map { .init(source: prefix + $0.source, target: $0.target) },
                                          batchSize: 1, options: options, generate: true)
        let bare = try Evaluator.shard(sm, records: records, batchSize: 1, options: options, generate: false)
        #expect(withPrefix.lossSum == written.lossSum)
        #expect(withPrefix.predictions == written.predictions)
        #expect(withPrefix.lossSum != bare.lossSum)
    }

    /// Evaluation spread over workers: shards of the examples, combined, give the report one run
    /// over all of them gives (one example per batch, so each example's loss is the same either way).
    @Test func twoShardsCombineToTheReportOfOneRun() throws {
        let sm = try tinyModel()
        let whole = try Evaluator.shard(sm, records: records, batchSize: 1, options: options, generate: true)
        let first = try Evaluator.shard(sm, records: Array(records[..<2]), batchSize: 1, options: options, generate: true)
        let second = try Evaluator.shard(sm, records: Array(records[2...]), batchSize: 1, options: options, generate: true)
        let references = records.map(\.target)
        let one = Evaluator.report(references: references, shards: [whole], seconds: 0)
        let combined = Evaluator.report(references: references, shards: [first, second], seconds: 0)

        #expect(whole.count == records.count && first.count + second.count == records.count)
        #expect(combined.predictions == one.predictions && one.predictions.count == records.count)
        #expect(Set(one.predictions).count > 1 && one.predictions.allSatisfy { !$0.isEmpty })
        #expect(combined.samples == one.samples && combined.genLen == one.genLen)
        #expect(combined.rouge == one.rouge && Set(one.rouge.keys) == ["rouge1", "rouge2", "rougeL", "rougeLsum"])
        #expect(abs(combined.loss - one.loss) <= 1e-12 * one.loss)
        // An untrained model's loss is about ln(vocabulary size).
        #expect(abs(one.loss - log(8192.0)) < 0.5, "loss \(one.loss)")
        #expect(one.metrics["eval_loss"] == one.loss && one.metrics["eval_gen_len"] == one.genLen)
        #expect(one.metrics["eval_samples"] == Double(records.count))
    }

    /// The mean generated length is summed as doubles: lengths whose integer sum overflows (a
    /// worker's report, before the coordinator bounded them) give a number, not a trap.
    @Test func hugeGeneratedLengthsDoNotOverflowTheMean() {
        let shard = EvaluationShard(lossSum: 2, count: 2, predictions: ["a b", "c"], genLengths: [Int.max, 1])
        let r = Evaluator.report(references: ["a b", "c"], shards: [shard], seconds: 1)
        #expect(r.genLen == (Double(Int.max) + 1) / 2)
        #expect(r.loss == 1 && r.samples == 2)
    }

    /// Generation follows the model's settings: the length limits (the decoder start token
    /// counted), the forced first and last tokens, no repeated tokens; without generation, only the loss.
    @Test func generationSettingsAreRespected() throws {
        let sm = try tinyModel()
        sm.generation.maxLength = 7
        sm.generation.minLength = 7
        let (_, tokens) = try sm.summarize(records.map(\.source), batchSize: 4, maxSourceLength: options.maxSourceLength)
        #expect(tokens.count == records.count)
        for t in tokens {
            #expect(t.count == 7, "\(t)")
            #expect(t.first == 2 && t.dropFirst().first == 0 && t.last == 2, "decoder start, forced BOS, forced EOS: \(t)")
            #expect(!t.dropFirst().dropLast().contains(2), "no EOS before the minimum length: \(t)")
            #expect(Set(t.dropLast()).count == t.count - 1, "no token repeated (no_repeat_ngram_size 1): \(t)")
        }
        let shard = try Evaluator.shard(sm, records: records, batchSize: 4, options: options, generate: true)
        #expect(shard.genLengths == tokens.map { $0.filter { $0 != 1 }.count })

        sm.generation.minLength = 0
        sm.generation.maxLength = 5
        let short = try Evaluator.shard(sm, records: records, batchSize: 4, options: options, generate: true)
        #expect(short.genLengths.allSatisfy { $0 <= 5 } && short.genLengths.count == records.count)

        let lossOnly = try Evaluator.shard(sm, records: records, batchSize: 4, options: options, generate: false)
        #expect(lossOnly.predictions.isEmpty && lossOnly.genLengths.isEmpty)
        #expect(lossOnly.lossSum == short.lossSum && lossOnly.count == records.count)
        let report = Evaluator.report(references: records.map(\.target), shards: [lossOnly], seconds: 1.5)
        #expect(report.rouge.isEmpty && report.metrics["eval_gen_len"] == nil && report.metrics["eval_rouge1"] == nil)
        #expect(report.metrics["eval_runtime"] == 1.5)
    }

    /// `report` on given shards: the mean loss per example, ROUGE × 100 against the references in
    /// order, the mean generated length.
    @Test func aReportCombinesLossRougeAndLengths() {
        let shards = [EvaluationShard(lossSum: 3, count: 2, predictions: ["the cat sat on the mat", "nothing alike"], genLengths: [8, 4]),
                      EvaluationShard(lossSum: 1.5, count: 1, predictions: ["the dog barked"], genLengths: [3])]
        let r = Evaluator.report(references: ["the cat sat on the mat", "a b", "the dog barked"], shards: shards, seconds: 0)
        #expect(r.loss == 1.5 && r.samples == 3 && r.genLen == 5)
        #expect(abs(r.rouge["rouge1"]! - 200.0 / 3) < 1e-9 && abs(r.rouge["rougeL"]! - 200.0 / 3) < 1e-9)
        #expect(r.predictions == shards.flatMap(\.predictions))
        #expect(r.metrics["eval_rouge1"] == r.rouge["rouge1"])
    }

    @Test func progressBarClock() {
        #expect(ProgressBar.clock(0) == "0:00")
        #expect(ProgressBar.clock(65) == "1:05")
        #expect(ProgressBar.clock(3725) == "1:02:05")
        let line = ProgressBar(label: "eval").line(done: 5, total: 10)
        #expect(line.hasPrefix("eval ") && line.contains(" 5/10 ") && line.contains(" 50%"))
    }
}
