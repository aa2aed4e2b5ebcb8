import Foundation
import Testing
import PrecisMetrics
import PrecisTestSupport

/// The SAMSum paper's extractive baselines on the bundled test split, against values computed with
/// Python rouge-score 0.1.2 (stemming, numpy mean) on the same definitions.
@Suite struct BaselineTests {
    static let testSplit: [(dialogue: String, summary: String)]? = {
        let data = (try? TestData.samsum("test")).flatMap { FileManager.default.contents(atPath: $0) }
        guard let data else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let d = o["dialogue"] as? String, let s = o["summary"] as? String else { return nil }
            return (d, s)
        }
    }()

    @Test(arguments: [
        (ExtractiveBaseline.lead3, [0.3130781411623813, 0.0867653738126267, 0.24165606072976495, 0.2756612941427513]),
        (ExtractiveBaseline.longest3, [0.3193496852844067, 0.10124541214389988, 0.22674535563242518, 0.2763872101446968]),
    ])
    func samsumTestSplitMatchesRougeScore(_ baseline: ExtractiveBaseline, _ want: [Double]) throws {
        let split = try #require(Self.testSplit)
        #expect(split.count == 819)
        let types: [RougeType] = [.rouge1, .rouge2, .rougeL, .rougeLsum]
        let scores = RougeScorer(types: types, useStemmer: true)
            .score(targets: split.map(\.summary), predictions: split.map { baseline.summarize($0.dialogue) })
        let mean = aggregateMean(scores)
        for (t, w) in zip(types, want) { #expect(abs(mean[t]!.fmeasure - w) < 1e-9, "\(baseline) \(t)") }
    }

    @Test func utterancesAndSelection() {
        let d = "A: one two\r\n\r\nB: three four five six\n  \nC: seven\nD: eight nine ten\r\nE: x y z w"
        #expect(ExtractiveBaseline.utterances(d) == ["A: one two", "B: three four five six", "C: seven", "D: eight nine ten", "E: x y z w"])
        #expect(ExtractiveBaseline.lead3.summarize(d) == "A: one two\nB: three four five six\nC: seven")
        // Word counts 3, 5, 2, 4, 5 → longest first, ties in dialogue order.
        #expect(ExtractiveBaseline.longest3.summarize(d) == "B: three four five six\nE: x y z w\nD: eight nine ten")
        #expect(ExtractiveBaseline.lead3.summarize("") == "")
    }
}
