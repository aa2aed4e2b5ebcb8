import PrecisMetrics
import Testing

private func expectScore(_ s: Score?, _ p: Double, _ r: Double, _ f: Double,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    guard let s else {
        Issue.record("missing score", sourceLocation: sourceLocation)
        return
    }
    #expect(abs(s.precision - p) < 1e-12, "precision \(s.precision) != \(p)", sourceLocation: sourceLocation)
    #expect(abs(s.recall - r) < 1e-12, "recall \(s.recall) != \(r)", sourceLocation: sourceLocation)
    #expect(abs(s.fmeasure - f) < 1e-12, "fmeasure \(s.fmeasure) != \(f)", sourceLocation: sourceLocation)
}

@Suite("Tokenizer")
struct RougeTokenizerTests {
    @Test("lowercases, splits on non-[a-z0-9], drops non-ASCII letters")
    func basics() {
        let t = RougeTokenizer()
        #expect(t.tokenize("The Quick, brown-fox!") == ["the", "quick", "brown", "fox"])
        #expect(t.tokenize("Zoë and Jürgen — café ☕") == ["zo", "and", "j", "rgen", "caf"])
        #expect(t.tokenize("3.5 at 10:30") == ["3", "5", "at", "10", "30"])
        #expect(t.tokenize("日本語 🙂 ?!...") == [])
        #expect(t.tokenize("") == [])
        #expect(t.tokenize(" \t\r\n ") == [])
        #expect(t.tokenize("Ｆｕｌｌ １２３") == [])
    }

    @Test("Python lowercasing quirks: U+0130 and the Kelvin sign")
    func unicodeLowercasing() {
        let t = RougeTokenizer()
        #expect(t.tokenize("İstanbul") == ["i", "stanbul"])
        #expect(t.tokenize("\u{212A}elvin") == ["kelvin"])
    }

    @Test("stemming applies only to tokens longer than 3 characters")
    func stemming() {
        let t = RougeTokenizer(useStemmer: true)
        #expect(t.tokenize("Running cats was this dies ties") == ["run", "cat", "was", "thi", "die", "tie"])
        #expect(t.tokenize("ties") == ["tie"])
        #expect(t.tokenize("its was has") == ["its", "was", "has"])
    }
}

@Suite("RougeScorer")
struct RougeScorerTests {
    let all: [RougeType] = [.rouge1, .rouge2, .rouge3, .rougeL, .rougeLsum]

    @Test("hand-checked n-gram and LCS scores")
    func quickBrownFox() {
        let scorer = RougeScorer(types: all)
        let s = scorer.score(target: "The quick brown fox jumps over the lazy dog",
                             prediction: "The quick brown dog jumps on the log.")
        // 6 shared unigrams ("the" twice); 8 prediction and 9 target tokens.
        expectScore(s[.rouge1], 6.0 / 8, 6.0 / 9, 12.0 / 17)
        // "the quick", "quick brown".
        expectScore(s[.rouge2], 2.0 / 7, 2.0 / 8, 4.0 / 15)
        // "the quick brown", out of 6 and 7 trigrams.
        expectScore(s[.rouge3], 1.0 / 6, 1.0 / 7, 2.0 / 13)
        // LCS "the quick brown jumps the".
        expectScore(s[.rougeL], 5.0 / 8, 5.0 / 9, 10.0 / 17)
        // Single line each: Lsum equals L.
        #expect(s[.rougeLsum] == s[.rougeL])
    }

    @Test("rouge-score's own unit-test values")
    func upstreamValues() {
        let scorer = RougeScorer(types: [.rouge1, .rouge2, .rougeL, .rougeLsum])
        let s = scorer.score(target: "testing one two", prediction: "testing")
        expectScore(s[.rouge1], 1, 1.0 / 3, 0.5)
        let t = scorer.score(target: "testing one two", prediction: "testing one")
        expectScore(t[.rouge2], 1, 0.5, 2.0 / 3)
        let u = scorer.score(target: "w1 w2 w3 w4 w5", prediction: "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5")
        expectScore(u[.rougeLsum], 0.4, 0.8, 2 * 0.4 * 0.8 / 1.2)
        for text in ["", "/"] {
            let z = scorer.score(target: "w1 w2 w3 w4 w5", prediction: text)
            for type in [RougeType.rouge1, .rouge2, .rougeL, .rougeLsum] { #expect(z[type] == .zero) }
        }
    }

    @Test("rougeLsum rewards reordered sentences, rougeL does not")
    func lsumVersusL() {
        let scorer = RougeScorer(types: [.rougeL, .rougeLsum])
        let s = scorer.score(target: "a b c\nd e", prediction: "d e\na b c")
        expectScore(s[.rougeL], 0.6, 0.6, 0.6)
        expectScore(s[.rougeLsum], 1, 1, 1)
        // Without line breaks both sides are one sentence.
        let flat = scorer.score(target: "a b c d e", prediction: "d e a b c")
        #expect(flat[.rougeLsum] == flat[.rougeL])
    }

    @Test("rougeLsum clips hits by token counts across sentences")
    func lsumClipping() {
        let scorer = RougeScorer(types: [.rougeLsum])
        let s = scorer.score(target: "a b\na b", prediction: "a b")
        expectScore(s[.rougeLsum], 1, 0.5, 2.0 / 3)
    }

    @Test("rougeLsum splits on LF only and keeps whitespace-only lines")
    func lsumLineHandling() {
        let scorer = RougeScorer(types: [.rougeLsum])
        let crlf = scorer.score(target: "a b c\r\nd e", prediction: "d e\r\na b c")
        expectScore(crlf[.rougeLsum], 1, 1, 1)
        let blank = scorer.score(target: "a b\n\n   \nc", prediction: "c\n \na b")
        expectScore(blank[.rougeLsum], 1, 1, 1)
        let onlyBlank = scorer.score(target: " \n \n", prediction: "a")
        #expect(onlyBlank[.rougeLsum] == .zero)
    }

    @Test("stemming makes inflected forms match")
    func stemmedMatch() {
        let plain = RougeScorer(types: [.rouge1]).score(target: "the cats were running", prediction: "a cat runs")
        #expect(plain[.rouge1] == .zero)
        let stemmed = RougeScorer(types: [.rouge1], useStemmer: true)
            .score(target: "the cats were running", prediction: "a cat runs")
        expectScore(stemmed[.rouge1], 2.0 / 3, 0.5, 2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5))
    }

    @Test("empty inputs give zeros, identical inputs give ones")
    func extremes() {
        let scorer = RougeScorer(types: all)
        let empty = scorer.score(target: "", prediction: "")
        for type in all { #expect(empty[type] == .zero, "\(type)") }
        let same = scorer.score(target: "one two three four\nfive", prediction: "one two three four\nfive")
        for type in all { expectScore(same[type], 1, 1, 1) }
        let short = scorer.score(target: "one two", prediction: "one two")
        expectScore(short[.rouge3], 0, 0, 0)
    }

    @Test("scoreMulti keeps the best F-measure per type")
    func multi() {
        let scorer = RougeScorer(types: [.rouge1, .rougeL])
        let best = scorer.scoreMulti(targets: ["x y z", "a b c", "a c b"], prediction: "a b c")
        expectScore(best[.rouge1], 1, 1, 1)
        expectScore(best[.rougeL], 1, 1, 1)
    }

    @Test("RougeType names round-trip as in rouge-score")
    func names() {
        for name in ["rouge1", "rouge2", "rouge9", "rougeL", "rougeLsum"] {
            #expect(RougeType(name: name)?.name == name)
        }
        #expect(RougeType(name: "rouge1") == .rouge1)
        #expect(RougeType(name: "rouge0") == nil)
        #expect(RougeType(name: "rouge10") == nil)
        #expect(RougeType(name: "rougeX") == nil)
    }

    @Test("long inputs score quickly and exactly")
    func longInput() {
        let words = (0..<3000).map { "w\($0 % 97)" }
        let text = words.joined(separator: " ")
        let scorer = RougeScorer(types: [.rougeL, .rougeLsum])
        let s = scorer.score(target: text, prediction: text)
        expectScore(s[.rougeL], 1, 1, 1)
        expectScore(s[.rougeLsum], 1, 1, 1)
    }
}
