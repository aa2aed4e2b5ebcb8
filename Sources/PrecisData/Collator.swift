import PrecisModels

/// `DataCollatorForSeq2Seq`: pads sources with the pad id (attention mask 0) and labels with −100,
/// each to the longest in the batch rounded up to a multiple of `padToMultipleOf`.
public struct Collator: Sendable {
    public var padId: Int32
    public var padToMultipleOf: Int

    public init(padId: Int32, padToMultipleOf: Int = 8) {
        self.padId = padId; self.padToMultipleOf = max(1, padToMultipleOf)
    }

    func round(_ n: Int) -> Int { (n + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf }

    public func batch(_ indices: [Int], from ds: TokenizedDataset) throws -> Seq2SeqBatch {
        let s = round(max(1, indices.map(ds.sourceLength).max() ?? 1))
        let t = round(max(1, indices.map(ds.targetLength).max() ?? 1))
        var ids = [Int32](repeating: padId, count: indices.count * s)
        var mask = [Int32](repeating: 0, count: indices.count * s)
        var labels = [Int32](repeating: Seq2SeqBatch.ignoreIndex, count: indices.count * t)
        for (r, i) in indices.enumerated() {
            for (j, v) in ds.source(i).enumerated() { ids[r * s + j] = v; mask[r * s + j] = 1 }
            for (j, v) in ds.target(i).enumerated() { labels[r * t + j] = v }
        }
        return try Seq2SeqBatch(batchSize: indices.count, sourceLength: s, targetLength: t,
                                inputIds: ids, attentionMask: mask, labels: labels)
    }
}
