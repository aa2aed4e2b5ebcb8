import PrecisMetrics
import Testing

@Suite("Aggregation")
struct AggregationTests {
    static func sampleScores() -> [[RougeType: Score]] {
        let scorer = RougeScorer(types: [.rouge1, .rougeL])
        let texts = [
            ("the cat sat on the mat", "a cat sat on a mat"),
            ("one two three four five", "one two six"),
            ("hello world", "goodbye moon"),
            ("a b c d e f g", "a c e g b d f"),
            ("summaries are short", "summaries are usually short"),
            ("x", "x"),
        ]
        var out: [[RougeType: Score]] = []
        for round in 0..<20 {
            for (i, (t, p)) in texts.enumerated() where (round + i) % 3 != 0 {
                out.append(scorer.score(target: t, prediction: p))
            }
        }
        return out
    }

    @Test("aggregateMean is the per-statistic mean")
    func mean() {
        let a = Score(precision: 1, recall: 0.5, fmeasure: 2.0 / 3)
        let b = Score(precision: 0, recall: 0.25, fmeasure: 0)
        let m = aggregateMean([[.rouge1: a], [.rouge1: b]])
        #expect(m[.rouge1] == Score(precision: 0.5, recall: 0.375, fmeasure: 1.0 / 3))
        #expect(aggregateMean([]).isEmpty)
    }

    @Test("bootstrap interval brackets the mean, mid close to it")
    func bootstrap() {
        let scores = Self.sampleScores()
        var aggregator = BootstrapAggregator()
        for s in scores { aggregator.addScores(s) }
        #expect(aggregator.count(of: .rouge1) == scores.count)
        let result = aggregator.aggregate()
        let mean = aggregateMean(scores)
        for type in [RougeType.rouge1, .rougeL] {
            let ci = try! #require(result[type])
            let mu = mean[type]!
            for (lo, mid, hi, m) in [
                (ci.low.precision, ci.mid.precision, ci.high.precision, mu.precision),
                (ci.low.recall, ci.mid.recall, ci.high.recall, mu.recall),
                (ci.low.fmeasure, ci.mid.fmeasure, ci.high.fmeasure, mu.fmeasure),
            ] {
                #expect(lo <= mid && mid <= hi)
                #expect(lo < m && m < hi)
                #expect(abs(mid - m) < 0.02, "mid \(mid) vs mean \(m)")
                #expect(hi - lo < 0.25)
            }
        }
    }

    @Test("bootstrap is deterministic for a seed and exact for constant scores")
    func deterministic() {
        let scores = Self.sampleScores()
        var a = BootstrapAggregator(seed: 7), b = BootstrapAggregator(seed: 7)
        var c = BootstrapAggregator(seed: 8)
        for s in scores {
            a.addScores(s)
            b.addScores(s)
            c.addScores(s)
        }
        #expect(a.aggregate() == b.aggregate())
        #expect(a.aggregate() != c.aggregate())

        var constant = BootstrapAggregator(samples: 50)
        let s = Score(precision: 0.25, recall: 0.5, fmeasure: 1.0 / 3)
        for _ in 0..<10 { constant.addScores([.rougeLsum: s]) }
        let ci = constant.aggregate()[.rougeLsum]!
        // The mean of ten equal values can differ from them in the last bit.
        for bound in [ci.low, ci.mid, ci.high] {
            #expect(abs(bound.precision - s.precision) < 1e-15)
            #expect(abs(bound.recall - s.recall) < 1e-15)
            #expect(abs(bound.fmeasure - s.fmeasure) < 1e-15)
        }

        var single = BootstrapAggregator()
        single.addScores([.rouge2: s])
        #expect(single.aggregate()[.rouge2] == AggregateScore(low: s, mid: s, high: s))
        #expect(BootstrapAggregator().aggregate().isEmpty)
    }
}
