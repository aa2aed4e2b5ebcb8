import PrecisCore

/// The order in which an epoch visits examples: a deterministic function of (seed, epoch), so every
/// process computes the same order and the coordinator can hand out index ranges of it.
public enum Sampler {
    /// A Fisher–Yates shuffle of 0..<count seeded by (seed, epoch).
    public static func shuffled(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = SeededRNG(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
        var order = Array(0..<count)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        return order
    }

    /// transformers' `LengthGroupedSampler`: shuffle, cut into megabatches of `batchSize × mult`
    /// examples (mult = min(count / (4·batchSize), 50), at least 1), sort each megabatch by length,
    /// longest first, and move the longest example of all to the very front (so an out-of-memory
    /// shape shows up on the first step).
    public static func lengthGrouped(lengths: [Int], batchSize: Int, seed: UInt64, epoch: Int) -> [Int] {
        let n = lengths.count
        if n == 0 { return [] }
        let mult = max(1, min(n / max(1, 4 * batchSize), 50))
        let mega = mult * batchSize
        let order = shuffled(count: n, seed: seed, epoch: epoch)
        var groups: [[Int]] = stride(from: 0, to: n, by: mega).map { start in
            Array(order[start..<min(n, start + mega)]).sorted { lengths[$0] > lengths[$1] }
        }
        // The longest example leads.
        var best = (g: 0, i: 0)
        for (g, grp) in groups.enumerated() where lengths[grp[0]] > lengths[groups[best.g][best.i]] { best = (g, 0) }
        let tmp = groups[0][0]
        groups[0][0] = groups[best.g][best.i]
        groups[best.g][best.i] = tmp
        return groups.flatMap { $0 }
    }

    /// Consecutive batches of `batchSize` indices (the last one shorter unless `dropLast`).
    public static func batches(_ order: [Int], batchSize: Int, dropLast: Bool = false) -> [[Int]] {
        stride(from: 0, to: order.count, by: batchSize).compactMap { start in
            let end = min(order.count, start + batchSize)
            if dropLast && end - start < batchSize { return nil }
            return Array(order[start..<end])
        }
    }
}
