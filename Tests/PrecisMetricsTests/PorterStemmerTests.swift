import Foundation
import PrecisMetrics
import Testing

@Suite("Porter stemmer (NLTK_EXTENSIONS)")
struct PorterStemmerTests {
    let stemmer = PorterStemmer()

    @Test("every word of porter.tsv stems exactly as NLTK")
    func matchesNLTK() throws {
        let lines = try RougeFixtures.lines("porter.tsv")
        #expect(lines.count > 30_000)
        var mismatches: [String] = []
        for line in lines {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            try #require(fields.count == 2, "bad line: \(line)")
            let got = stemmer.stem(String(fields[0]))
            if got != fields[1] { mismatches.append("\(fields[0]): expected \(fields[1]), got \(got)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(20))")
    }

    @Test("classic examples from Porter's paper and NLTK's special cases", arguments: [
        ("caresses", "caress"), ("ponies", "poni"), ("ties", "tie"), ("cats", "cat"),
        ("feed", "feed"), ("agreed", "agre"), ("plastered", "plaster"), ("bled", "bled"),
        ("motoring", "motor"), ("sing", "sing"), ("conflated", "conflat"), ("hopping", "hop"),
        ("falling", "fall"), ("filing", "file"), ("happy", "happi"), ("enjoy", "enjoy"),
        ("relational", "relat"), ("generalizations", "gener"), ("skies", "sky"), ("dying", "die"),
        ("news", "news"), ("innings", "inning"), ("proceed", "proceed"), ("died", "die"),
        ("spied", "spi"), ("flies", "fli"), ("owing", "owe"), ("by", "by"), ("yyyy", "yyyi"),
        ("radically", "radic"), ("archaeology", "archaeolog"), ("Running", "run"),
    ])
    func classic(word: String, stem: String) {
        #expect(stemmer.stem(word) == stem)
    }

    @Test("lowercase: false leaves the case alone, so uppercase suffixes do not match")
    func caseKept() {
        #expect(stemmer.stem("Running", lowercase: false) == "Run")
        #expect(stemmer.stem("DOGS", lowercase: false) == "DOGS")
    }

    @Test("a long run of y's is linear and does not crash")
    func longY() {
        let word = String(repeating: "y", count: 5_000) + "ing"
        #expect(!stemmer.stem(word).isEmpty)
    }
}
