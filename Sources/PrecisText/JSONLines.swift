import Foundation

/// Reading JSON Lines and plain-text line files with errors that name the file and line.
public enum JSONLines {
    /// Calls `body(text, line)` for every line of `path` (`"-"`: standard input), each as soon as
    /// it is read (`LineStream`: any length of input, lines of at most 512 MiB). Invalid UTF-8
    /// fails naming `file:line` (`<stdin>:line` for standard input).
    public static func forEachTextLine(path: String, _ body: (String, Int) throws(TokenizerError) -> Void) throws(TokenizerError) {
        let stream = LineStream(path: path)
        try stream.forEachLine { (line, number) throws(TokenizerError) in try body(try text(line, file: stream.name, line: number), number) }
    }

    /// Calls `body(record, line)` for every line of `path` (`"-"`: standard input) parsed as JSON,
    /// each as soon as it is read. Invalid UTF-8 or JSON (blank lines included) fails naming `file:line`.
    public static func forEachRecord(path: String, _ body: (JSONValue, Int) throws(TokenizerError) -> Void) throws(TokenizerError) {
        let stream = LineStream(path: path)
        try stream.forEachLine { (line, number) throws(TokenizerError) in try body(try record(line, file: stream.name, line: number), number) }
    }

    /// `forEachTextLine` over bytes in memory (split on LF, one trailing CR dropped; a final
    /// empty line after the last LF does not count).
    public static func forEachTextLine(in bytes: [UInt8], file: String,
                                       _ body: (String, Int) throws(TokenizerError) -> Void) throws(TokenizerError) {
        try bytes.withUnsafeBufferPointer { (buffer) throws(TokenizerError) in
            try LineReader.forEachLine(buffer) { (line, number) throws(TokenizerError) in try body(try text(line, file: file, line: number), number) }
        }
    }

    /// `forEachRecord` over bytes in memory.
    public static func forEachRecord(in bytes: [UInt8], file: String,
                                     _ body: (JSONValue, Int) throws(TokenizerError) -> Void) throws(TokenizerError) {
        try bytes.withUnsafeBufferPointer { (buffer) throws(TokenizerError) in
            try LineReader.forEachLine(buffer) { (line, number) throws(TokenizerError) in try body(try record(line, file: file, line: number), number) }
        }
    }

    private static func text(_ line: UnsafeBufferPointer<UInt8>, file: String, line number: Int) throws(TokenizerError) -> String {
        guard UTF8Validation.isValid(line) else { throw .invalidUTF8(file: file, line: number) }
        return String(decoding: line, as: UTF8.self)
    }

    private static func record(_ line: UnsafeBufferPointer<UInt8>, file: String, line number: Int) throws(TokenizerError) -> JSONValue {
        guard UTF8Validation.isValid(line) else { throw .invalidUTF8(file: file, line: number) }
        return try JSONValue.parseLine(utf8: line, file: file, line: number)
    }

    /// The string field `field` of a record, or an error naming `file:line` and the field.
    public static func string(_ record: JSONValue, _ field: String, file: String, line: Int) throws(TokenizerError) -> String {
        guard let object = record.objectValue else {
            throw .invalidField(file: "\(file):\(line)", field: field, message: "expected a JSON object per line, found \(record.typeName)")
        }
        guard let value = object[field] else { throw .missingField(file: "\(file):\(line)", field: field) }
        guard let s = value.stringValue else {
            throw .invalidField(file: "\(file):\(line)", field: field, message: "expected a string, found \(value.typeName)")
        }
        return s
    }

    /// The non-negative integer array field `field` of a record.
    public static func ids(_ record: JSONValue, _ field: String, file: String, line: Int) throws(TokenizerError) -> [Int] {
        guard let object = record.objectValue else {
            throw .invalidField(file: "\(file):\(line)", field: field, message: "expected a JSON object per line, found \(record.typeName)")
        }
        guard let value = object[field] else { throw .missingField(file: "\(file):\(line)", field: field) }
        guard let items = value.arrayValue else {
            throw .invalidField(file: "\(file):\(line)", field: field, message: "expected an array of ids, found \(value.typeName)")
        }
        var ids: [Int] = []
        ids.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard case let .int(id) = item, id >= 0, id <= Int(UInt32.max) else {
                throw .invalidField(file: "\(file):\(line)", field: "\(field)[\(i)]",
                                    message: "expected a non-negative integer id, found \(item.compactString())")
            }
            ids.append(id)
        }
        return ids
    }

    /// Appends `{"ids":[...]}` and a newline.
    public static func appendIDsLine(_ ids: [Int], to out: inout [UInt8]) {
        out.append(contentsOf: #"{"ids":["#.utf8)
        for (i, id) in ids.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendDecimal(id, to: &out)
        }
        out.append(contentsOf: "]}\n".utf8)
    }

    /// Appends `{"text":"..."}` and a newline.
    public static func appendTextLine(_ text: String, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"text":"#.utf8)
        JSONValue.writeString(text, into: &out)
        out.append(contentsOf: "}\n".utf8)
    }

    @inline(__always) static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value == 0 { out.append(UInt8(ascii: "0")); return }
        var v = value
        if v < 0 { out.append(UInt8(ascii: "-")); v = -v }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[n] = UInt8(v % 10) + UInt8(ascii: "0")
                v /= 10
                n += 1
            }
            for k in stride(from: n - 1, through: 0, by: -1) { out.append(d[k]) }
        }
    }
}
