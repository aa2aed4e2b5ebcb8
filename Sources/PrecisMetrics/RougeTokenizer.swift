/// rouge-score's default tokenizer (`rouge_score.tokenize.tokenize`).
///
/// The steps, in rouge-score's order:
/// 1. lowercase the whole text (Python `str.lower()`);
/// 2. replace every run of characters outside `[a-z0-9]` by one space;
/// 3. split on whitespace;
/// 4. with stemming, replace each token longer than 3 characters by its
///    Porter stem (`PorterStemmer`, NLTK extensions);
/// 5. drop tokens that are empty or not entirely `[a-z0-9]`.
///
/// Steps 1–3 are done in one pass over the Unicode scalars. After Python's
/// lowercasing only ASCII letters and digits survive step 2, plus two non-ASCII
/// scalars whose lowercase form contains an ASCII letter: U+0130 (`İ`, which
/// lowercases to `i` + U+0307, so it yields `i` followed by a separator) and
/// U+212A (Kelvin sign, which lowercases to `k`). Everything else — accented
/// letters, CJK, emoji, non-ASCII digits — is a separator, as in rouge-score.
public struct RougeTokenizer: Sendable {
    public let useStemmer: Bool
    private let stemmer = PorterStemmer()

    public init(useStemmer: Bool = false) {
        self.useStemmer = useStemmer
    }

    public func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        forEachToken(in: text) { tokens.append(String(decoding: $0, as: UTF8.self)) }
        return tokens
    }

    /// Calls `body` with the bytes of each final token, in order.
    func forEachToken(in text: String, _ body: ([UInt8]) -> Void) {
        var current: [UInt8] = []
        current.reserveCapacity(32)

        func flush() {
            guard !current.isEmpty else { return }
            if useStemmer && current.count > 3 { stemmer.stemASCII(&current) }
            if !current.isEmpty && current.allSatisfy(isTokenByte) { body(current) }
            current.removeAll(keepingCapacity: true)
        }

        for scalar in text.unicodeScalars {
            let v = scalar.value
            switch v {
            case 0x61...0x7A, 0x30...0x39:  // a-z, 0-9
                current.append(UInt8(v))
            case 0x41...0x5A:  // A-Z
                current.append(UInt8(v + 0x20))
            case 0x212A:  // KELVIN SIGN -> "k"
                current.append(0x6B)
            case 0x130:  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> "i" + U+0307
                current.append(0x69)
                flush()
            default:
                flush()
            }
        }
        flush()
    }
}

@inline(__always)
private func isTokenByte(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
}
