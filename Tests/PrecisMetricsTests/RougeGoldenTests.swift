import Foundation
import PrecisMetrics
import Testing

/// One line of Tests/Fixtures/rouge/golden.jsonl (written by
/// tools/golden/make_rouge_golden.py from rouge-score 0.1.2).
struct GoldenPair: Decodable {
    let id: Int
    let kind: String
    let reference: String
    let prediction: String
    /// Type name -> [precision, recall, fmeasure].
    let plain: [String: [Double]]
    let stemmed: [String: [Double]]
}

/// Tests/Fixtures/rouge/aggregate.json: numpy means and a Python bootstrap
/// run over all golden pairs, per mode.
struct GoldenAggregate: Decodable {
    /// Type name -> [precision, recall, fmeasure].
    let mean: [String: [Double]]
    /// Type name -> "low"/"mid"/"high" -> [precision, recall, fmeasure].
    let bootstrap: [String: [String: [Double]]]
}

@Suite("rouge-score golden pairs")
struct RougeGoldenTests {
    static let types: [RougeType] = [.rouge1, .rouge2, .rougeL, .rougeLsum]

    static func loadPairs() throws -> [GoldenPair] {
        let decoder = JSONDecoder()
        return try RougeFixtures.lines("golden.jsonl").map {
            try decoder.decode(GoldenPair.self, from: Data($0.utf8))
        }
    }

    @Test("every pair agrees with rouge-score within 1e-6, and bitwise", arguments: [false, true])
    func goldenScores(useStemmer: Bool) throws {
        let pairs = try Self.loadPairs()
        #expect(pairs.count >= 2_000)
        let scorer = RougeScorer(types: Self.types, useStemmer: useStemmer)
        var failures: [String] = []
        var inexact = 0
        var compared = 0
        for pair in pairs {
            let expected = useStemmer ? pair.stemmed : pair.plain
            let got = scorer.score(target: pair.reference, prediction: pair.prediction)
            for type in Self.types {
                let want = try #require(expected[type.name])
                let score = try #require(got[type])
                let have = [score.precision, score.recall, score.fmeasure]
                for k in 0..<3 {
                    compared += 1
                    if have[k] != want[k] { inexact += 1 }
                    if !(abs(have[k] - want[k]) <= 1e-6) {
                        failures.append("pair \(pair.id) (\(pair.kind)) \(type.name)[\(k)]: want \(want[k]), got \(have[k])")
                    }
                }
            }
        }
        #expect(compared == pairs.count * 12)
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(10))")
        #expect(inexact == 0, "\(inexact) of \(compared) values within tolerance but not bitwise equal")
    }

    @Test("the fixture covers the edge cases it is meant to")
    func coverage() throws {
        let pairs = try Self.loadPairs()
        let kinds = Set(pairs.map(\.kind))
        for kind in ["edge", "synthetic", "long", "identical", "mixed_lines", "dialogue_lines"] {
            #expect(kinds.contains(kind), "no \(kind) pairs")
        }
        #expect(pairs.contains { $0.reference.isEmpty && $0.prediction.isEmpty })
        #expect(pairs.contains { $0.prediction.contains("\r\n") })
        #expect(pairs.contains { $0.reference.unicodeScalars.contains { $0.value > 0xFFFF } })
    }

    @Test("aggregateMean equals np.mean bitwise; bootstrap CI agrees with Python's statistically",
          arguments: [false, true])
    func aggregates(useStemmer: Bool) throws {
        let pairs = try Self.loadPairs()
        let golden = try JSONDecoder().decode(
            [String: GoldenAggregate].self, from: Data(try RougeFixtures.text("aggregate.json").utf8))
        let expected = try #require(golden[useStemmer ? "stemmed" : "plain"])
        let scorer = RougeScorer(types: Self.types, useStemmer: useStemmer)
        let scores = pairs.map { scorer.score(target: $0.reference, prediction: $0.prediction) }

        let mean = aggregateMean(scores)
        var aggregator = BootstrapAggregator()
        for s in scores { aggregator.addScores(s) }
        let intervals = aggregator.aggregate()

        for type in Self.types {
            let m = try #require(mean[type])
            #expect([m.precision, m.recall, m.fmeasure] == expected.mean[type.name], "\(type) mean")

            let ci = try #require(intervals[type])
            let python = try #require(expected.bootstrap[type.name])
            let ours = ["low": ci.low, "mid": ci.mid, "high": ci.high].mapValues {
                [$0.precision, $0.recall, $0.fmeasure]
            }
            for k in 0..<3 {
                for bound in ["low", "mid", "high"] {
                    let a = ours[bound]![k], b = python[bound]![k]
                    // Bootstrap noise on a percentile of 3,000+ scores is ~0.002.
                    #expect(abs(a - b) < 0.01, "\(type) \(bound)[\(k)]: \(a) vs Python \(b)")
                }
                let width = ours["high"]![k] - ours["low"]![k]
                let pythonWidth = python["high"]![k] - python["low"]![k]
                #expect(width > 0.7 * pythonWidth && width < 1.3 * pythonWidth, "\(type) width")
                #expect(abs(ours["mid"]![k] - expected.mean[type.name]![k]) < 0.005)
            }
        }
    }
}
