import PrecisCore
import PrecisModels

/// The batch every benchmark runs on: random token ids, every position real (no padding, every
/// label counted), so a step does the full work of its shape.
public enum RandomBatch {
    /// `batch` rows of `source` input ids and `target` labels, each row BOS (0) … EOS (2) with ids
    /// from 4 up to `vocab` − 1 between, drawn from `SeededRNG(seed)`.
    public static func make(vocab: Int, batch: Int, source: Int, target: Int, seed: UInt64) throws -> Seq2SeqBatch {
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
