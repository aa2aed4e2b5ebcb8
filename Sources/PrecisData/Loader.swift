import Foundation
import PrecisCore

/// Column mapping and cleaning as transformers' `run_summarization.py` does it.
public struct DatasetOptions: Sendable, Equatable {
    /// Field holding the text to summarise (`text_column`).
    public var textColumn = "dialogue"
    /// Field holding the reference summary (`summary_column`).
    public var summaryColumn = "summary"
    /// Skip (and count) bad records instead of failing on the first one.
    public var skipBadRecords = false

    public init(textColumn: String = "dialogue", summaryColumn: String = "summary", skipBadRecords: Bool = false) {
        self.textColumn = textColumn; self.summaryColumn = summaryColumn; self.skipBadRecords = skipBadRecords
    }
}

/// What a load produced: the records and the bad records that were skipped.
public struct LoadedDataset: Sendable {
    public var file: String
    public var records: [SummarizationRecord]
    public var skipped: [DataError]

    /// One line for logs: "train.jsonl: 14731 records, 1 skipped (first: train.jsonl:6055: field 'dialogue' is empty)".
    public var summary: String {
        var s = "\(file): \(records.count) records"
        if !skipped.isEmpty { s += ", \(skipped.count) skipped (first: \(skipped[0]))" }
        return s
    }
}

/// Loads JSON Lines, a JSON array of objects, or CSV with a header.
public enum DatasetLoader {
    public enum Format: String, Sendable { case jsonl, json, csv }

    public static func format(of path: String) throws -> Format {
        switch (path as NSString).pathExtension.lowercased() {
        case "jsonl", "ndjson": return .jsonl
        case "json": return .json
        case "csv": return .csv
        default: throw DataError.unknownFormat(file: path)
        }
    }

    /// The largest dataset file read (its records are held in memory).
    public static let maxFileBytes = 1 << 32

    public static func load(_ path: String, options: DatasetOptions = DatasetOptions()) throws -> LoadedDataset {
        let format = try format(of: path)
        let data: Data
        do { data = try SmallFile.read(path, limit: maxFileBytes) } catch { throw DataError.cannotRead(file: path, reason: error.description) }
        return try load(data: data, file: path, format: format, options: options)
    }

    public static func load(data: Data, file: String, format: Format, options: DatasetOptions) throws -> LoadedDataset {
        var out = LoadedDataset(file: file, records: [], skipped: [])
        func accept(_ make: () throws -> SummarizationRecord) throws {
            do { out.records.append(try make()) } catch let e as DataError where options.skipBadRecords && e.line != nil {
                out.skipped.append(e)
            }
        }
        switch format {
        case .jsonl:
            var lineNo = 0
            var start = data.startIndex
            while start < data.endIndex {
                lineNo += 1
                let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
                let lineData = data[start..<end]
                start = end < data.endIndex ? data.index(after: end) : end
                if lineData.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                let n = lineNo
                try accept {
                    guard String(data: lineData, encoding: .utf8) != nil else { throw DataError.invalidUTF8(file: file, line: n) }
                    let obj: Any
                    do { obj = try JSONSerialization.jsonObject(with: lineData, options: [.fragmentsAllowed]) } catch {
                        throw DataError.invalidJSON(file: file, line: n, reason: "\(shortReason(error))")
                    }
                    guard let dict = obj as? [String: Any] else {
                        throw DataError.invalidJSON(file: file, line: n, reason: "not an object")
                    }
                    return try record(dict, file: file, line: n, options: options)
                }
            }
        case .json:
            let obj: Any
            do { obj = try JSONSerialization.jsonObject(with: data) } catch {
                throw DataError.invalidJSON(file: file, line: 1, reason: "\(shortReason(error))")
            }
            guard let array = obj as? [Any] else {
                throw DataError.invalidJSON(file: file, line: 1, reason: "expected an array of objects")
            }
            for (i, item) in array.enumerated() {
                // "line" is the 1-based index of the element for a JSON array.
                try accept {
                    guard let dict = item as? [String: Any] else {
                        throw DataError.invalidJSON(file: file, line: i + 1, reason: "element \(i + 1) is not an object")
                    }
                    return try record(dict, file: file, line: i + 1, options: options)
                }
            }
        case .csv:
            guard let text = String(data: data, encoding: .utf8) else {
                let bad = firstInvalidUTF8Line(data)
                throw DataError.invalidUTF8(file: file, line: bad)
            }
            let rows = try CSV.parse(text, file: file)
            guard let header = rows.first else { return out }
            for (r, row) in rows.dropFirst().enumerated() {
                let line = row.line
                if row.fields.count == 1 && row.fields[0].isEmpty { continue }
                try accept {
                    guard row.fields.count == header.fields.count else {
                        throw DataError.badCSV(file: file, line: line,
                                               reason: "row \(r + 1) has \(row.fields.count) fields, the header has \(header.fields.count)")
                    }
                    var dict: [String: Any] = [:]
                    for (k, v) in zip(header.fields, row.fields) { dict[k] = v }
                    return try record(dict, file: file, line: line, options: options)
                }
            }
        }
        return out
    }

    static func record(_ dict: [String: Any], file: String, line: Int, options: DatasetOptions) throws -> SummarizationRecord {
        func field(_ name: String) throws -> String {
            guard let v = dict[name] else { throw DataError.missingField(file: file, line: line, field: name) }
            guard let s = v as? String else { throw DataError.notAString(file: file, line: line, field: name) }
            // \r\n and lone \r become \n; surrounding whitespace is kept as the corpus has it.
            let clean = s.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            if clean.allSatisfy(\.isWhitespace) { throw DataError.emptyField(file: file, line: line, field: name) }
            return clean
        }
        let id: String? = (dict["id"] as? String) ?? (dict["id"] as? NSNumber).map { "\($0)" }
        return SummarizationRecord(id: id, source: try field(options.textColumn), target: try field(options.summaryColumn))
    }

    static func shortReason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    static func firstInvalidUTF8Line(_ data: Data) -> Int {
        var line = 1
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            if String(data: data[start..<end], encoding: .utf8) == nil { return line }
            line += 1
            start = end < data.endIndex ? data.index(after: end) : end
        }
        return line
    }
}

/// RFC 4180 CSV: comma-separated, fields optionally double-quoted ("" is a quote inside a quoted
/// field, which may span lines).
enum CSV {
    struct Row { var fields: [String]; var line: Int }

    static func parse(_ text: String, file: String) throws -> [Row] {
        var rows: [Row] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1, rowLine = 1
        var chars = Array(text.unicodeScalars)[...]
        var justClosedQuote = false
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { inQuotes = false; justClosedQuote = true }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                if field.isEmpty && !justClosedQuote { inQuotes = true } else {
                    throw DataError.badCSV(file: file, line: line, reason: "stray quote inside an unquoted field")
                }
            case ",":
                fields.append(field); field = ""; justClosedQuote = false
            case "\r":
                if chars.first == "\n" { continue }
                fallthrough
            case "\n":
                fields.append(field); field = ""; justClosedQuote = false
                rows.append(Row(fields: fields, line: rowLine)); fields = []
                line += 1; rowLine = line
            default:
                if justClosedQuote {
                    throw DataError.badCSV(file: file, line: line, reason: "text after a closing quote")
                }
                field.unicodeScalars.append(c)
            }
        }
        if inQuotes { throw DataError.badCSV(file: file, line: rowLine, reason: "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty || justClosedQuote {
            fields.append(field)
            rows.append(Row(fields: fields, line: rowLine))
        }
        return rows
    }
}
