/// The extractive baselines of the SAMSum paper (Gliwa et al., 2019), which every report can show
/// beside a model: the dialogue's utterances are its lines (after `\r\n` → `\n`), whitespace-only
/// lines dropped, and the "summary" is three of them, one per line.
public enum ExtractiveBaseline: String, Sendable, CaseIterable {
    /// The first three utterances, in order.
    case lead3 = "lead-3"
    /// The three utterances with the most whitespace-separated words, longest first (ties keep
    /// dialogue order).
    case longest3 = "longest-3"

    public static func utterances(_ dialogue: String) -> [String] {
        // Split on LF at the scalar level ("\r\n" is one Character), dropping the CR of a CRLF.
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var scalars = dialogue.unicodeScalars.makeIterator()
        var pendingCR = false
        while let c = scalars.next() {
            if c == "\n" {
                lines.append(String(current)); current = String.UnicodeScalarView(); pendingCR = false
                continue
            }
            if pendingCR { current.append("\r"); pendingCR = false }
            if c == "\r" { pendingCR = true } else { current.append(c) }
        }
        if pendingCR { current.append("\r") }
        lines.append(String(current))
        return lines.filter { !$0.unicodeScalars.allSatisfy(\.properties.isWhitespace) }
    }

    public func summarize(_ dialogue: String) -> String {
        let u = Self.utterances(dialogue)
        switch self {
        case .lead3:
            return u.prefix(3).joined(separator: "\n")
        case .longest3:
            let words = u.map { $0.split(whereSeparator: { $0.unicodeScalars.allSatisfy(\.properties.isWhitespace) }).count }
            let order = u.indices.sorted { words[$0] > words[$1] || (words[$0] == words[$1] && $0 < $1) }
            return order.prefix(3).map { u[$0] }.joined(separator: "\n")
        }
    }
}
