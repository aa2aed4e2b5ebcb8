@preconcurrency import Glibc
import Foundation
import Synchronization

/// How a role writes its log lines (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-12-02T05:45:36.584Z NAME: MESSAGE` — for people (and the tests and tools that grep the message).
    case text
    /// One JSON object per line (`ts`, `role`, `name`, `level`, `msg`, then structured fields) — for log shippers.
    case json

    /// The format named `name`, or an error message listing the choices.
    public static func parse(_ name: String) throws -> LogFormat {
        guard let f = LogFormat(rawValue: name) else {
            throw LogFormatError(description: "--log-format must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \"\(name)\"")
        }
        return f
    }
}

public struct LogFormatError: Error, CustomStringConvertible {
    public let description: String
}

/// A structured field of a JSON log line.
public enum LogField: Sendable, Equatable {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    var json: String {
        switch self {
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? "\(d)" : "null"
        case .string(let s): return Logging.quoted(s)
        case .bool(let b): return b ? "true" : "false"
        }
    }
}

/// The process's log settings and the formatting of its lines. Set once at start-up
/// (`configure`), read by every thread that logs (the settings are behind a Mutex).
public enum Logging {
    private struct Settings: Sendable {
        var format = LogFormat.text
        /// `coordinator`, `server`, `worker` or `precis` (JSON lines' `role`).
        var role = ""
    }

    private static let settings = Mutex(Settings())

    /// Chooses the format and names the role for JSON lines.
    public static func configure(format: LogFormat, role: String) {
        settings.withLock { $0 = Settings(format: format, role: role) }
    }

    public static var format: LogFormat { settings.withLock { $0.format } }
    public static var role: String { settings.withLock { $0.role } }

    /// UTC time as ISO 8601 with milliseconds: `2026-12-02T05:45:36.584Z`.
    public static func timestamp(seconds: Int, milliseconds: Int) -> String {
        var tmv = tm()
        var secs = time_t(seconds)
        gmtime_r(&secs, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), milliseconds)
    }

    /// The current UTC time, as `timestamp`.
    public static func now() -> String {
        var t = timeval()
        gettimeofday(&t, nil)
        return timestamp(seconds: Int(t.tv_sec), milliseconds: Int(t.tv_usec / 1000))
    }

    /// A message's level: `warning` or `error` when it starts so (`warning: …`, `error: …`), else `info`.
    public static func level(of message: String) -> String {
        if message.hasPrefix("warning") { return "warning" }
        if message.hasPrefix("error") { return "error" }
        return "info"
    }

    /// One log line (without the newline) in the configured format, stamped `ts`.
    public static func line(_ who: String, _ message: String, fields: KeyValuePairs<String, LogField> = [:], ts: String = Logging.now()) -> String {
        let s = settings.withLock { $0 }
        return render(who, message, fields: fields, ts: ts, format: s.format, role: s.role)
    }

    /// One log line in `format`: text `TS WHO: MESSAGE` (the fields left out), or a JSON object
    /// `{"ts","role","name","level","msg", fields…}` (`role` defaults to `who`; a field may not
    /// take one of those five names).
    public static func render(_ who: String, _ message: String, fields: KeyValuePairs<String, LogField> = [:], ts: String,
                              format: LogFormat, role: String) -> String {
        switch format {
        case .text:
            return "\(ts) \(who): \(message)"
        case .json:
            var out = "{\"ts\":\"\(ts)\",\"role\":\(quoted(role.isEmpty ? who : role)),\"name\":\(quoted(who)),"
                + "\"level\":\"\(level(of: message))\",\"msg\":\(quoted(message))"
            let reserved: Set<String> = ["ts", "role", "name", "level", "msg"]
            for (k, v) in fields where !reserved.contains(k) { out += ",\(quoted(k)):\(v.json)" }
            return out + "}"
        }
    }

    /// A line a program prints about itself, outside the role log (`precis train`'s own notes, a
    /// role's last `error:` line): unchanged in the text format, a JSON log line in the JSON format.
    public static func note(_ who: String, _ message: String) -> String {
        format == .json ? line(who, message) : message
    }

    /// `s` as a JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
