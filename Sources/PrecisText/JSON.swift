/// A JSON value, as read from `tokenizer.json`, `vocab.json` or a JSON Lines record.
///
/// Integers without a fraction or exponent that fit `Int` are kept as `.int`; other numbers
/// are `.double`. Objects keep their keys in document order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var isNull: Bool { if case .null = self { return true } else { return false } }
    public var boolValue: Bool? { if case let .bool(b) = self { return b } else { return nil } }
    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case let .object(o) = self { return o } else { return nil } }
    /// The value as an integer (a `.double` with an integral value also counts).
    public var intValue: Int? {
        switch self {
        case let .int(i): return i
        case let .double(d) where d.rounded() == d && abs(d) < 9.0e15: return Int(d)
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
    /// `value["key"]` for objects, `nil` otherwise.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// A short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON object: key/value pairs in document order. Lookups return the last value of a key.
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public var entries: [(key: String, value: JSONValue)]

    public init(_ entries: [(key: String, value: JSONValue)] = []) { self.entries = entries }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        entries = elements.map { (key: $0.0, value: $0.1) }
    }

    public subscript(key: String) -> JSONValue? {
        get {
            for i in entries.indices.reversed() where entries[i].key == key { return entries[i].value }
            return nil
        }
        set {
            if let i = entries.lastIndex(where: { $0.key == key }) {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append((key: key, value: newValue))
            }
        }
    }

    public var count: Int { entries.count }
    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> { entries.makeIterator() }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.entries.count == b.entries.count
            && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

// MARK: - Parsing

/// A JSON syntax error at a byte offset of the parsed text.
struct JSONSyntaxError: Error {
    var message: String
    var offset: Int
}

extension JSONValue {
    /// Parses a JSON document. `file` names the input in errors, which carry the line and
    /// column of the problem.
    public static func parse(_ text: String, file: String = "<string>") throws(TokenizerError) -> JSONValue {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(TokenizerError) -> JSONValue in try parse(utf8: buffer, file: file) }
        }
        return try result.get()
    }

    /// Parses a JSON document from UTF-8 bytes (which are validated).
    public static func parse(utf8 buffer: UnsafeBufferPointer<UInt8>, file: String) throws(TokenizerError) -> JSONValue {
        if !UTF8Validation.isValid(buffer) {
            throw .invalidUTF8(file: file, line: UTF8Validation.firstInvalidLine(buffer))
        }
        do {
            return try parseValidated(buffer)
        } catch {
            let (line, column) = lineAndColumn(buffer, offset: error.offset)
            throw .invalidJSON(file: file, line: 0, message: "\(error.message) at line \(line), column \(column)")
        }
    }

    /// Parses one JSON Lines record (already known to be valid UTF-8); errors name `file:line`.
    public static func parseLine(utf8 buffer: UnsafeBufferPointer<UInt8>, file: String, line: Int) throws(TokenizerError) -> JSONValue {
        do {
            return try parseValidated(buffer)
        } catch {
            let (_, column) = lineAndColumn(buffer, offset: error.offset)
            throw .invalidJSON(file: file, line: line, message: "\(error.message) at column \(column)")
        }
    }

    static func parseValidated(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: buffer)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.pos != buffer.count { throw JSONSyntaxError(message: "unexpected data after the JSON value", offset: parser.pos) }
        return value
    }

    static func lineAndColumn(_ buffer: UnsafeBufferPointer<UInt8>, offset: Int) -> (Int, Int) {
        var line = 1, lineStart = 0
        for i in 0..<min(offset, buffer.count) where buffer[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        // Column in Unicode scalars, 1-based.
        var column = 1
        var i = lineStart
        while i < min(offset, buffer.count) {
            if buffer[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return (line, column)
    }
}

struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var pos = 0
    static let maxDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    @inline(__always) mutating func skipWhitespace() {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { break }
        }
    }

    func describeHere() -> String {
        if pos >= bytes.count { return "end of input" }
        let b = bytes[pos]
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard pos < bytes.count else { throw JSONSyntaxError(message: "unexpected end of input", offset: pos) }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw JSONSyntaxError(message: "expected a JSON value, found \(describeHere())", offset: pos)
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let n = literal.utf8CodeUnitCount
        let start = pos
        if pos + n <= bytes.count {
            var ok = true
            literal.withUTF8Buffer { lit in
                for i in 0..<n where bytes[start + i] != lit[i] { ok = false; break }
            }
            if ok { pos += n; return }
        }
        throw JSONSyntaxError(message: "expected a JSON value, found \(describeHere())", offset: pos)
    }

    mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        if depth > Self.maxDepth { throw JSONSyntaxError(message: "nesting deeper than \(Self.maxDepth)", offset: pos) }
        pos += 1
        var entries: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(JSONObject(entries)) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
                throw JSONSyntaxError(message: "expected a string key, found \(describeHere())", offset: pos)
            }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else {
                throw JSONSyntaxError(message: "expected ':' after an object key, found \(describeHere())", offset: pos)
            }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            entries.append((key: key, value: value))
            skipWhitespace()
            guard pos < bytes.count else { throw JSONSyntaxError(message: "unterminated object", offset: pos) }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(JSONObject(entries)) }
            throw JSONSyntaxError(message: "expected ',' or '}' in an object, found \(describeHere())", offset: pos)
        }
    }

    mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        if depth > Self.maxDepth { throw JSONSyntaxError(message: "nesting deeper than \(Self.maxDepth)", offset: pos) }
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard pos < bytes.count else { throw JSONSyntaxError(message: "unterminated array", offset: pos) }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw JSONSyntaxError(message: "expected ',' or ']' in an array, found \(describeHere())", offset: pos)
        }
    }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw JSONSyntaxError(message: "truncated \\u escape", offset: pos) }
        var v: UInt32 = 0
        for i in 0..<4 {
            guard let h = Self.hexValue(bytes[pos + i]) else {
                throw JSONSyntaxError(message: "invalid \\u escape", offset: pos + i)
            }
            v = v << 4 | h
        }
        pos += 4
        return v
    }

    /// Parses a string starting at the opening quote. The input is valid UTF-8.
    mutating func parseString() throws(JSONSyntaxError) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw JSONSyntaxError(message: "unescaped control character in a string", offset: pos) }
            pos += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<pos]))
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw JSONSyntaxError(message: "unescaped control character in a string", offset: pos) }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escapeStart = pos - 2
                var code = try parseHex4()
                if code >= 0xD800 && code < 0xDC00 {
                    guard pos + 2 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw JSONSyntaxError(message: "unpaired surrogate escape", offset: escapeStart)
                    }
                    pos += 2
                    let low = try parseHex4()
                    guard low >= 0xDC00 && low < 0xE000 else {
                        throw JSONSyntaxError(message: "unpaired surrogate escape", offset: escapeStart)
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if code >= 0xDC00 && code < 0xE000 {
                    throw JSONSyntaxError(message: "unpaired surrogate escape", offset: escapeStart)
                }
                let scalar = Unicode.Scalar(code)!
                out.append(contentsOf: UTF8.encode(scalar)!)
            default:
                throw JSONSyntaxError(message: "invalid escape '\\\(Character(Unicode.Scalar(e)))'", offset: pos - 2)
            }
        }
        throw JSONSyntaxError(message: "unterminated string", offset: bytes.count)
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = pos
        var isInteger = true
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        func digits(_ p: inout Int) -> Int {
            let s = p
            while p < bytes.count && bytes[p] >= UInt8(ascii: "0") && bytes[p] <= UInt8(ascii: "9") { p += 1 }
            return p - s
        }
        guard pos < bytes.count else { throw JSONSyntaxError(message: "invalid number", offset: start) }
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
        } else if digits(&pos) == 0 {
            throw JSONSyntaxError(message: "invalid number", offset: start)
        }
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            if digits(&pos) == 0 { throw JSONSyntaxError(message: "invalid number", offset: start) }
        }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            isInteger = false
            pos += 1
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            if digits(&pos) == 0 { throw JSONSyntaxError(message: "invalid number", offset: start) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if isInteger, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw JSONSyntaxError(message: "invalid number", offset: start) }
        return .double(d)
    }
}

// MARK: - Writing

extension JSONValue {
    /// Compact JSON (no whitespace), like `serde_json::to_string`.
    public func compactString() -> String {
        var out: [UInt8] = []
        write(into: &out, pretty: false, indent: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// Pretty JSON with two-space indentation, like `serde_json::to_string_pretty`
    /// (the format `tokenizers` uses for `tokenizer.json`).
    public func prettyString() -> String {
        var out: [UInt8] = []
        write(into: &out, pretty: true, indent: 0)
        return String(decoding: out, as: UTF8.self)
    }

    func write(into out: inout [UInt8], pretty: Bool, indent: Int) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .int(i): out.append(contentsOf: String(i).utf8)
        case let .double(d):
            if d.isFinite { out.append(contentsOf: d.description.utf8) } else { out.append(contentsOf: "null".utf8) }
        case let .string(s): JSONValue.writeString(s, into: &out)
        case let .array(items):
            if items.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { JSONValue.newline(&out, indent + 1) }
                item.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { JSONValue.newline(&out, indent) }
            out.append(UInt8(ascii: "]"))
        case let .object(object):
            if object.entries.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (i, entry) in object.entries.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { JSONValue.newline(&out, indent + 1) }
                JSONValue.writeString(entry.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(UInt8(ascii: " ")) }
                entry.value.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { JSONValue.newline(&out, indent) }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func newline(_ out: inout [UInt8], _ indent: Int) {
        out.append(0x0A)
        for _ in 0..<indent { out.append(0x20); out.append(0x20) }
    }

    /// Appends `s` as a JSON string literal: `"` and `\` escaped, control characters as
    /// `\n`, `\t`, ... or `\u00XX`, everything else (non-ASCII included) verbatim.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0x08: out.append(0x5C); out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(0x5C); out.append(UInt8(ascii: "f"))
            case 0..<0x20:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - UTF-8 validation

/// Strict UTF-8 validation (no overlongs, no surrogates, nothing above U+10FFFF).
public enum UTF8Validation {
    public static func isValid(_ buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        firstInvalidOffset(buffer) == nil
    }

    /// The byte offset of the first invalid sequence, or `nil` when the buffer is valid.
    public static func firstInvalidOffset(_ buffer: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = buffer.count
        var i = 0
        while i < n {
            // ASCII fast path, 8 bytes at a time.
            while i + 8 <= n {
                let word = UnsafeRawPointer(buffer.baseAddress! + i).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            if i >= n { break }
            let b0 = buffer[i]
            if b0 < 0x80 { i += 1; continue }
            func cont(_ k: Int) -> Bool { i + k < n && buffer[i + k] & 0xC0 == 0x80 }
            if b0 >= 0xC2 && b0 <= 0xDF {
                if !cont(1) { return i }
                i += 2
            } else if b0 >= 0xE0 && b0 <= 0xEF {
                guard cont(1), cont(2) else { return i }
                let b1 = buffer[i + 1]
                if b0 == 0xE0 && b1 < 0xA0 { return i }  // overlong
                if b0 == 0xED && b1 >= 0xA0 { return i }  // surrogate
                i += 3
            } else if b0 >= 0xF0 && b0 <= 0xF4 {
                guard cont(1), cont(2), cont(3) else { return i }
                let b1 = buffer[i + 1]
                if b0 == 0xF0 && b1 < 0x90 { return i }  // overlong
                if b0 == 0xF4 && b1 >= 0x90 { return i }  // above U+10FFFF
                i += 4
            } else {
                return i
            }
        }
        return nil
    }

    /// The 1-based line (LF-separated) of the first invalid sequence, 0 if the buffer is valid.
    public static func firstInvalidLine(_ buffer: UnsafeBufferPointer<UInt8>) -> Int {
        guard let offset = firstInvalidOffset(buffer) else { return 0 }
        var line = 1
        for i in 0..<offset where buffer[i] == 0x0A { line += 1 }
        return line
    }
}
