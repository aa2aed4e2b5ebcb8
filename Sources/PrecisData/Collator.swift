import PrecisCore
import PrecisModels

/// `DataCollatorForSeq2Seq`: pads sources with the pad id (attention mask 0) and labels with −100,
/// each to the longest in the batch rounded up to a multiple of `padToMultipleOf`. With `noise`
/// (the denoising objective), each source goes through it first, seeded by (`seed`, step, example),
/// and the labels stay the clean text.
public struct Collator: Sendable {
    public var padId: Int32
    public var padToMultipleOf: Int
    public var noise: DenoisingNoise?
    public var seed: UInt64
    /// The longest noisy source (the model's source positions): a mask inserted past it is left out.
    public var maxSourceLength: Int

    public init(padId: Int32, padToMultipleOf: Int = 8, noise: DenoisingNoise? = nil, seed: UInt64 = 0, maxSourceLength: Int = 0) {
        self.padId = padId; self.padToMultipleOf = max(1, padToMultipleOf)
        self.noise = noise; self.seed = seed; self.maxSourceLength = maxSourceLength
    }

    func round(_ n: Int) -> Int { (n + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf }

    /// The batch of `indices`; `step` seeds the noise (unused without it).
    public func batch(_ indices: [Int], from ds: TokenizedDataset, step: Int = 0) throws -> Seq2SeqBatch {
        let sources: [[Int32]] = indices.map { i in
            guard let noise else { return Array(ds.source(i)) }
            return noise.apply(ds.source(i), seed: DenoisingNoise.seed(runSeed: seed, step: step, example: i),
                               maxLength: maxSourceLength)
        }
        let s = round(max(1, sources.map(\.count).max() ?? 1))
        let t = round(max(1, indices.map(ds.targetLength).max() ?? 1))
        var ids = [Int32](repeating: padId, count: indices.count * s)
        var mask = [Int32](repeating: 0, count: indices.count * s)
        var labels = [Int32](repeating: Seq2SeqBatch.ignoreIndex, count: indices.count * t)
        for (r, i) in indices.enumerated() {
            for (j, v) in sources[r].enumerated() { ids[r * s + j] = v; mask[r * s + j] = 1 }
            for (j, v) in ds.target(i).enumerated() { labels[r * t + j] = v }
        }
        return try Seq2SeqBatch(batchSize: indices.count, sourceLength: s, targetLength: t,
                                inputIds: ids, attentionMask: mask, labels: labels)
    }
}
