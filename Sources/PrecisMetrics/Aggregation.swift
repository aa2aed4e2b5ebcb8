/// Arithmetic mean of each statistic per ROUGE type. A type missing from
/// some score dictionaries is averaged over those that have it.
///
/// Sums use numpy's pairwise summation (the algorithm behind `np.mean` on a
/// 1-D float64 array), so the result is bitwise equal to
/// `np.mean([s[type].fmeasure for s in scores])` and its siblings.
public func aggregateMean(_ scores: [[RougeType: Score]]) -> [RougeType: Score] {
    var columns: [RougeType: (p: [Double], r: [Double], f: [Double])] = [:]
    for dict in scores {
        for (type, s) in dict {
            columns[type, default: ([], [], [])].p.append(s.precision)
            columns[type]!.r.append(s.recall)
            columns[type]!.f.append(s.fmeasure)
        }
    }
    return columns.mapValues { c in
        let n = Double(c.p.count)
        return Score(precision: numpyPairwiseSum(c.p) / n,
                     recall: numpyPairwiseSum(c.r) / n,
                     fmeasure: numpyPairwiseSum(c.f) / n)
    }
}

/// numpy's float64 `add.reduce` on a contiguous array: plain loop below 8
/// values, eight interleaved accumulators up to 128, and recursive halving
/// (at a multiple of 8) above that.
func numpyPairwiseSum(_ values: [Double]) -> Double {
    values.withUnsafeBufferPointer { pairwiseSum($0.baseAddress, $0.count) }
}

private func pairwiseSum(_ a: UnsafePointer<Double>?, _ n: Int) -> Double {
    guard let a, n > 0 else { return 0 }
    if n < 8 {
        var sum = 0.0
        for i in 0..<n { sum += a[i] }
        return sum
    }
    if n <= 128 {
        var r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3]
        var r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7]
        var i = 8
        let blocked = n - n % 8
        while i < blocked {
            r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3]
            r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7]
            i += 8
        }
        var sum = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n {
            sum += a[i]
            i += 1
        }
        return sum
    }
    var half = n / 2
    half -= half % 8
    return pairwiseSum(a, half) + pairwiseSum(a + half, n - half)
}

/// rouge-score's `BootstrapAggregator`: a bootstrap confidence interval on
/// the mean of each statistic.
///
/// For each type, `samples` times: draw as many scores as were added,
/// uniformly with replacement, and take the mean precision, recall and
/// F-measure of the draw. `low`, `mid` and `high` are the
/// (1 − confidence)/2, 50th and 1 − (1 − confidence)/2 percentiles of those
/// bootstrap means (2.5 / 50 / 97.5 by default), each statistic separately,
/// with numpy's default linear interpolation between order statistics.
///
/// The resampling uses a seeded xoshiro256** generator rather than numpy's
/// global Mersenne Twister, so intervals are reproducible for a given seed but
/// not bitwise equal to Python's; they are statistically equivalent (same
/// estimator, same number of resamples). `mid` is the bootstrap median of the
/// mean, which is close to, but not exactly, the plain mean.
public struct BootstrapAggregator: Sendable {
    public let confidenceInterval: Double
    public let samples: Int
    public let seed: UInt64
    private var scores: [RougeType: [Score]] = [:]
    private var order: [RougeType] = []

    public init(confidenceInterval: Double = 0.95, samples: Int = 1000, seed: UInt64 = 42) {
        precondition(confidenceInterval >= 0 && confidenceInterval <= 1,
                     "confidenceInterval must be in [0, 1]")
        precondition(samples > 0, "samples must be positive")
        self.confidenceInterval = confidenceInterval
        self.samples = samples
        self.seed = seed
    }

    public mutating func addScores(_ scores: [RougeType: Score]) {
        for (type, score) in scores {
            if self.scores[type] == nil { order.append(type) }
            self.scores[type, default: []].append(score)
        }
    }

    /// Number of score dictionaries added for `type`.
    public func count(of type: RougeType) -> Int { scores[type]?.count ?? 0 }

    /// Confidence intervals per type. Types are resampled in the order they
    /// were first added, one generator for the whole call, so the result
    /// depends only on the seed and the added scores.
    public func aggregate() -> [RougeType: AggregateScore] {
        var rng = Xoshiro256StarStar(seed: seed)
        var result: [RougeType: AggregateScore] = [:]
        let delta = (1 - confidenceInterval) / 2
        let quantiles = [100 * delta, 100 * 0.5, 100 * (1 - delta)].map { $0 / 100 }
        for type in order {
            let rows = scores[type]!
            let n = rows.count
            var means = [[Double]](repeating: [Double](repeating: 0, count: samples), count: 3)
            for b in 0..<samples {
                var p = 0.0, r = 0.0, f = 0.0
                for _ in 0..<n {
                    let s = rows[rng.nextIndex(below: n)]
                    p += s.precision
                    r += s.recall
                    f += s.fmeasure
                }
                let count = Double(n)
                means[0][b] = p / count
                means[1][b] = r / count
                means[2][b] = f / count
            }
            for k in 0..<3 { means[k].sort() }
            let stats = quantiles.map { q in
                Score(precision: linearPercentile(means[0], q),
                      recall: linearPercentile(means[1], q),
                      fmeasure: linearPercentile(means[2], q))
            }
            result[type] = AggregateScore(low: stats[0], mid: stats[1], high: stats[2])
        }
        return result
    }
}

/// numpy's `percentile(..., method="linear")` on sorted data, with `q` in [0, 1].
func linearPercentile(_ sorted: [Double], _ q: Double) -> Double {
    let n = sorted.count
    precondition(n > 0)
    let virtualIndex = Double(n - 1) * q
    if virtualIndex >= Double(n - 1) { return sorted[n - 1] }
    if virtualIndex < 0 { return sorted[0] }
    let lower = virtualIndex.rounded(.down)
    let gamma = virtualIndex - lower
    let a = sorted[Int(lower)], b = sorted[Int(lower) + 1]
    let diff = b - a
    return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma
}

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform integer in 0..<bound (Lemire's multiply-and-reject), spelled
    /// out so the sequence does not depend on the standard library's version.
    mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0)
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }
}
