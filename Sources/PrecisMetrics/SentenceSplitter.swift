/// A small, deterministic rule-based sentence splitter, used to put one
/// sentence per line before ROUGE-Lsum (the Hugging Face summarization
/// recipe does the same with `nltk.sent_tokenize`; this splitter is a
/// documented approximation of it, not a reimplementation of punkt).
///
/// The text is scanned as Swift `Character`s. A sentence ends after a
/// *terminator run* when all of these hold:
///
/// 1. the run is one or more of `.` `!` `?` (e.g. `.`, `?!`, `...`),
///    optionally followed by closing characters `"` `'` `”` `’` `)` `]`;
/// 2. it is followed by at least one whitespace character (spaces, tabs and
///    line breaks all count);
/// 3. the first character after that whitespace is an uppercase letter, a
///    digit, or an opening quote/bracket (`"` `'` `“` `‘` `(` `[`);
/// 4. the run is not a single `.` ending an abbreviation: the word before
///    the period (the non-whitespace characters before it, with opening
///    quotes/brackets removed), lowercased, is not in `abbreviations`
///    (`mr`, `mrs`, `dr`, `e.g`, `i.e`, `etc`, …) and is not a single
///    uppercase letter other than `I` (an initial, as in `J. Smith`).
///
/// The end of the text also ends a sentence. Each sentence is trimmed of
/// surrounding whitespace and empty sentences are dropped; whitespace inside
/// a sentence, including line breaks, is kept verbatim (as NLTK does).
public enum SentenceSplitter {
    /// Lowercased words that, followed by a single `.`, do not end a sentence.
    public static let abbreviations: Set<String> = [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "cf", "approx",
    ]

    private static let terminators: Set<Character> = [".", "!", "?"]
    private static let closers: Set<Character> = ["\"", "'", "”", "’", ")", "]"]
    private static let openers: Set<Character> = ["\"", "'", "“", "‘", "(", "["]

    /// Splits `text` into sentences following the rules above.
    public static func split(_ text: String) -> [String] {
        let chars = Array(text)
        var sentences: [String] = []
        var start = 0
        var i = 0
        while i < chars.count {
            guard terminators.contains(chars[i]) else {
                i += 1
                continue
            }
            let runStart = i
            while i < chars.count && terminators.contains(chars[i]) { i += 1 }
            let runLength = i - runStart
            while i < chars.count && closers.contains(chars[i]) { i += 1 }
            let sentenceEnd = i
            var next = i
            while next < chars.count && chars[next].isWhitespace { next += 1 }
            guard next > sentenceEnd, next < chars.count else { continue }
            let first = chars[next]
            guard first.isUppercase || first.isNumber || openers.contains(first) else { continue }
            if runLength == 1 && chars[runStart] == "." && endsAbbreviation(chars, before: runStart) {
                continue
            }
            appendTrimmed(chars[start..<sentenceEnd], to: &sentences)
            start = next
            i = next
        }
        appendTrimmed(chars[start..<chars.count], to: &sentences)
        return sentences
    }

    private static func endsAbbreviation(_ chars: [Character], before end: Int) -> Bool {
        var wordStart = end
        while wordStart > 0 && !chars[wordStart - 1].isWhitespace { wordStart -= 1 }
        while wordStart < end && openers.contains(chars[wordStart]) { wordStart += 1 }
        let word = String(chars[wordStart..<end])
        if word.count == 1, let c = word.first, c.isUppercase, c != "I" { return true }
        return abbreviations.contains(word.lowercased())
    }

    private static func appendTrimmed(_ slice: ArraySlice<Character>, to out: inout [String]) {
        var lo = slice.startIndex, hi = slice.endIndex
        while lo < hi && slice[lo].isWhitespace { lo += 1 }
        while hi > lo && slice[hi - 1].isWhitespace { hi -= 1 }
        if lo < hi { out.append(String(slice[lo..<hi])) }
    }
}

/// Puts each sentence of `text` on its own line (joined with `"\n"`), using
/// `SentenceSplitter`, the preprocessing the Hugging Face summarization
/// recipe applies before ROUGE-Lsum.
public func addNewlinesBetweenSentences(_ text: String) -> String {
    SentenceSplitter.split(text).joined(separator: "\n")
}
