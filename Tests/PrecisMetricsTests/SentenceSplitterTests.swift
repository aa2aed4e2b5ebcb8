import PrecisMetrics
import Testing

@Suite("Sentence splitter")
struct SentenceSplitterTests {
    @Test("splits after . ! ? before an uppercase letter, digit or quote", arguments: [
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("It costs 3.5 dollars. 10 people came.", ["It costs 3.5 dollars.", "10 people came."]),
        ("Wait... What?! \"Yes,\" she said.", ["Wait...", "What?!", "\"Yes,\" she said."]),
        ("He said \"stop.\" Then he left.", ["He said \"stop.\"", "Then he left."]),
        ("lower case. stays together", ["lower case. stays together"]),
        ("No space.Next", ["No space.Next"]),
        ("  padded.   Text  ", ["padded.", "Text"]),
        ("", []),
        ("   ", []),
    ])
    func rules(text: String, expected: [String]) {
        #expect(SentenceSplitter.split(text) == expected)
    }

    @Test("abbreviations and initials do not end sentences", arguments: [
        ("Mr. Smith met Dr. Jones.", ["Mr. Smith met Dr. Jones."]),
        ("Bring fruit, e.g. Apples. Then go.", ["Bring fruit, e.g. Apples.", "Then go."]),
        ("See J. Smith. He knows.", ["See J. Smith.", "He knows."]),
        ("So did I. Then we left.", ["So did I.", "Then we left."]),
        ("Pens, paper etc. Also (Pencils).", ["Pens, paper etc. Also (Pencils)."]),
    ])
    func abbreviations(text: String, expected: [String]) {
        #expect(SentenceSplitter.split(text) == expected)
    }

    @Test("addNewlinesBetweenSentences joins sentences with LF and keeps inner line breaks")
    func newlines() {
        #expect(addNewlinesBetweenSentences("A b. C d! E f?") == "A b.\nC d!\nE f?")
        #expect(addNewlinesBetweenSentences("first line\nsecond line. Next") == "first line\nsecond line.\nNext")
        #expect(addNewlinesBetweenSentences("Done.\n\nNew paragraph.") == "Done.\nNew paragraph.")
    }

    @Test("splitSummaries uses the splitter for rougeLsum")
    func scorerIntegration() {
        let target = "First sentence. Second sentence."
        let prediction = "Second sentence. First sentence."
        let split = RougeScorer(types: [.rougeLsum], useStemmer: true, splitSummaries: true)
        #expect(split.score(target: target, prediction: prediction)[.rougeLsum]?.fmeasure == 1)
        let unsplit = RougeScorer(types: [.rougeLsum], useStemmer: true)
        #expect(unsplit.score(target: target, prediction: prediction)[.rougeLsum]?.fmeasure == 0.5)
    }
}
