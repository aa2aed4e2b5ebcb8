import PrecisCore

/// One batch for a sequence-to-sequence model, row-major: `batchSize` rows of `sourceLength` input
/// ids (with a 0/1 attention mask) and `targetLength` labels (−100 where no loss is taken).
public struct Seq2SeqBatch: Sendable, Equatable {
    public var batchSize: Int
    public var sourceLength: Int
    public var targetLength: Int
    public var inputIds: [Int32]
    public var attentionMask: [Int32]
    public var labels: [Int32]

    public static let ignoreIndex: Int32 = -100

    public init(batchSize: Int, sourceLength: Int, targetLength: Int,
                inputIds: [Int32], attentionMask: [Int32], labels: [Int32]) throws {
        guard batchSize > 0 else { throw ModelError.badBatch(field: "input_ids", reason: "empty batch") }
        guard sourceLength > 0 else { throw ModelError.badBatch(field: "input_ids", reason: "source length is 0") }
        guard targetLength > 0 else { throw ModelError.badBatch(field: "labels", reason: "target length is 0") }
        guard inputIds.count == batchSize * sourceLength else {
            throw ModelError.badBatch(field: "input_ids", reason: "has \(inputIds.count) ids, expected \(batchSize)×\(sourceLength)")
        }
        guard attentionMask.count == inputIds.count else {
            throw ModelError.badBatch(field: "attention_mask", reason: "has \(attentionMask.count) values, expected \(inputIds.count)")
        }
        guard labels.count == batchSize * targetLength else {
            throw ModelError.badBatch(field: "labels", reason: "has \(labels.count) values, expected \(batchSize)×\(targetLength)")
        }
        if let bad = attentionMask.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw ModelError.badBatch(field: "attention_mask", reason: "value \(attentionMask[bad]) at index \(bad) is not 0 or 1")
        }
        self.batchSize = batchSize; self.sourceLength = sourceLength; self.targetLength = targetLength
        self.inputIds = inputIds; self.attentionMask = attentionMask; self.labels = labels
    }

    /// Checks ids against a vocabulary and lengths against the position limits (nil: no limit).
    public func validate(vocabSize: Int, maxSourcePositions: Int?, maxTargetPositions: Int?) throws {
        if let i = inputIds.firstIndex(where: { $0 < 0 || Int($0) >= vocabSize }) {
            throw ModelError.badBatch(field: "input_ids", reason: "id \(inputIds[i]) at row \(i / sourceLength), position \(i % sourceLength) is outside the vocabulary (size \(vocabSize))")
        }
        if let i = labels.firstIndex(where: { $0 != Self.ignoreIndex && ($0 < 0 || Int($0) >= vocabSize) }) {
            throw ModelError.badBatch(field: "labels", reason: "id \(labels[i]) at row \(i / targetLength), position \(i % targetLength) is outside the vocabulary (size \(vocabSize)) and is not -100")
        }
        if let limit = maxSourcePositions, sourceLength > limit {
            throw ModelError.badBatch(field: "input_ids", reason: "length \(sourceLength) exceeds max_position_embeddings \(limit)")
        }
        if let limit = maxTargetPositions, targetLength > limit {
            throw ModelError.badBatch(field: "labels", reason: "length \(targetLength) exceeds max_position_embeddings \(limit)")
        }
    }

    /// Checks ids against a vocabulary and both lengths against one position table.
    public func validate(vocabSize: Int, maxPositions: Int) throws {
        try validate(vocabSize: vocabSize, maxSourcePositions: maxPositions, maxTargetPositions: maxPositions)
    }

    /// Checks the batch against a model's vocabulary and position limits.
    public func validate(_ facts: Seq2SeqFacts) throws {
        try validate(vocabSize: facts.vocabSize, maxSourcePositions: facts.maxSourcePositions,
                     maxTargetPositions: facts.maxTargetPositions)
    }
}

extension Seq2SeqBatch {
    /// A batch of random token ids with every position real (no padding, every label counted), so a
    /// step does the full work of its shape: `batch` rows of `source` input ids and `target` labels,
    /// each row BOS (0) … EOS (2) with ids from 4 up to `vocab` − 1 between, drawn from
    /// `SeededRNG(seed)`. What the benchmarks run on, and what tests use for a full batch.
    public static func random(vocab: Int, batch: Int, source: Int, target: Int, seed: UInt64) throws -> Seq2SeqBatch {
        var rng = SeededRNG(seed: seed)
        func row(_ n: Int) -> [Int32] {
            (0..<n).map { j in j == 0 ? 0 : (j == n - 1 ? 2 : Int32(4 + Int(rng.next() % UInt64(vocab - 4)))) }
        }
        return try Seq2SeqBatch(batchSize: batch, sourceLength: source, targetLength: target,
                                inputIds: (0..<batch).flatMap { _ in row(source) },
                                attentionMask: Array(repeating: 1, count: batch * source),
                                labels: (0..<batch).flatMap { _ in row(target) })
    }
}
