/// A reader of Prometheus's text exposition format (version 0.0.4): `# HELP` and `# TYPE` lines,
/// samples with labels (escaped values), `NaN` and `±Inf`, optional timestamps. It reads what the
/// listener serves back into values, for tests and tools; errors name the line.
package struct PrometheusText: Equatable {
    package struct Sample: Equatable {
        package var name: String
        package var labels: [String: String]
        package var value: Double
    }

    package struct ParseError: Error, Equatable, CustomStringConvertible {
        package var line: Int
        package var reason: String
        package var description: String { "line \(line): \(reason)" }
    }

    /// `# HELP` texts and `# TYPE`s by metric family name.
    package var help: [String: String] = [:]
    package var types: [String: String] = [:]
    package var samples: [Sample] = []

    /// The value of the sample named `name` whose labels include `labels` (nil: none; the first
    /// when several match).
    package func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { k, v in sample.labels[k] == v } }?.value
    }

    /// Every sample named `name`.
    package func samples(named name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// The family a sample belongs to: its own name, or for a histogram's or summary's series the
    /// name without `_bucket`, `_sum` or `_count`.
    package func family(of sampleName: String) -> String? {
        if types[sampleName] != nil { return sampleName }
        for suffix in ["_bucket", "_sum", "_count"] where sampleName.hasSuffix(suffix) {
            let base = String(sampleName.dropLast(suffix.count))
            if let t = types[base], t == "histogram" || t == "summary" { return base }
        }
        return nil
    }

    static let knownTypes: Set = ["counter", "gauge", "histogram", "summary", "untyped"]

    /// Parses `text`. Every sample's family must have been given a `# TYPE` before it.
    package static func parse(_ text: String) throws(ParseError) -> PrometheusText {
        var out = PrometheusText()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            let line = Substring(raw.hasSuffix("\r") ? raw.dropLast() : raw)
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            if line.hasPrefix("#") {
                let words = line.dropFirst().split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
                guard words.count >= 2, words[0] == "HELP" || words[0] == "TYPE" else { continue }   // a comment
                let name = String(words[1])
                guard isMetricName(name) else { throw ParseError(line: n, reason: "'\(name)' is not a metric name") }
                let rest = words.count > 2 ? String(words[2]) : ""
                if words[0] == "HELP" {
                    guard out.help[name] == nil else { throw ParseError(line: n, reason: "a second HELP for \(name)") }
                    out.help[name] = try unescape(rest, quotes: false, line: n)
                } else {
                    guard knownTypes.contains(rest) else { throw ParseError(line: n, reason: "'\(rest)' is not a metric type") }
                    guard out.types[name] == nil else { throw ParseError(line: n, reason: "a second TYPE for \(name)") }
                    guard !out.samples.contains(where: { $0.name == name }) else {
                        throw ParseError(line: n, reason: "TYPE for \(name) after its samples")
                    }
                    out.types[name] = rest
                }
                continue
            }
            let sample = try parseSample(line, line: n)
            guard out.family(of: sample.name) != nil else { throw ParseError(line: n, reason: "\(sample.name) has no TYPE line before it") }
            out.samples.append(sample)
        }
        return out
    }

    static func isMetricName<S: StringProtocol>(_ s: S) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCIILetter || f == "_" || f == ":" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
    }

    static func isLabelName<S: StringProtocol>(_ s: S) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCIILetter || f == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
    }

    /// `name{l="v",…} value [timestamp]`.
    static func parseSample(_ line: Substring, line n: Int) throws(ParseError) -> Sample {
        var rest = line[...]
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " || $0 == "\t" } ?? rest.endIndex
        let name = String(rest[..<nameEnd])
        guard isMetricName(name) else { throw ParseError(line: n, reason: "'\(name)' is not a metric name") }
        rest = rest[nameEnd...]
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while true {
                rest = rest.drop { $0 == " " }
                if rest.first == "}" { rest = rest.dropFirst(); break }
                guard let eq = rest.firstIndex(of: "=") else { throw ParseError(line: n, reason: "a label without '='") }
                let label = String(rest[..<eq]).trimmingSpaces
                guard isLabelName(label) else { throw ParseError(line: n, reason: "'\(label)' is not a label name") }
                rest = rest[rest.index(after: eq)...]
                guard rest.first == "\"" else { throw ParseError(line: n, reason: "label \(label)'s value is not quoted") }
                rest = rest.dropFirst()
                var value = "", escaped = false, closed = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        switch c {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw ParseError(line: n, reason: "label \(label): unknown escape \\\(c)")
                        }
                        escaped = false
                    } else if c == "\\" { escaped = true } else if c == "\"" { closed = true; break } else { value.append(c) }
                }
                guard closed else { throw ParseError(line: n, reason: "label \(label)'s value is not closed") }
                guard labels[label] == nil else { throw ParseError(line: n, reason: "label \(label) given twice") }
                labels[label] = value
                rest = rest.drop { $0 == " " }
                if rest.first == "," { rest = rest.dropFirst(); continue }
                guard rest.first == "}" else { throw ParseError(line: n, reason: "expected ',' or '}' after label \(label)") }
            }
        }
        let fields = rest.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 1 || fields.count == 2 else { throw ParseError(line: n, reason: "expected a value and at most a timestamp after \(name)") }
        guard let value = parseValue(fields[0]) else { throw ParseError(line: n, reason: "'\(fields[0])' is not a number") }
        if fields.count == 2, Int64(fields[1]) == nil { throw ParseError(line: n, reason: "'\(fields[1])' is not a timestamp") }
        return Sample(name: name, labels: labels, value: value)
    }

    static func parseValue<S: StringProtocol>(_ s: S) -> Double? {
        switch s {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default: return Double(String(s))
        }
    }

    /// A HELP text (`\\`, `\n`) or a label value (also `\"`).
    static func unescape(_ s: String, quotes: Bool, line n: Int) throws(ParseError) -> String {
        var out = "", escaped = false
        for c in s {
            if escaped {
                switch c {
                case "\\": out.append("\\")
                case "n": out.append("\n")
                case "\"" where quotes: out.append("\"")
                default: throw ParseError(line: n, reason: "unknown escape \\\(c)")
                }
                escaped = false
            } else if c == "\\" { escaped = true } else { out.append(c) }
        }
        guard !escaped else { throw ParseError(line: n, reason: "a trailing backslash") }
        return out
    }
}

private extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

private extension String {
    var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
