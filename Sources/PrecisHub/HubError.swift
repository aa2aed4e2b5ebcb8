import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong pushing to a hub. Texts never contain the token: messages that come
/// from a server are redacted, and URLs lose their query strings (pre-signed storage URLs).
public enum HubError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidHubURL(String)
    case invalidRepoID(String, reason: String)
    /// HTTP 401.
    case authenticationFailed(hub: String)
    /// HTTP 403.
    case accessDenied(hub: String, repo: String)
    /// Any other unexpected HTTP status; `message` is the server's (redacted, shortened) answer.
    case http(status: Int, method: String, url: String, message: String)
    /// The request did not get an answer (connection refused, reset, timed out, DNS).
    case network(method: String, url: String, reason: String)
    /// The server answered 2xx with something this client cannot use.
    case badResponse(url: String, reason: String)
    /// The LFS batch answer reported an error for one object.
    case lfsObject(path: String, reason: String)
    case io(path: String, reason: String)
    case other(String)

    public var description: String {
        switch self {
        case let .invalidHubURL(u):
            return "invalid hub_url '\(u)': expected https://host, http://host or file:///path"
        case let .invalidRepoID(id, r):
            return "invalid repository id '\(id)': \(r)"
        case let .authenticationFailed(hub):
            return "authentication failed for hub \(hub): check hub_token or HF_TOKEN"
        case let .accessDenied(hub, repo):
            return "access denied to \(repo) on hub \(hub) (HTTP 403): the token needs write access to it"
        case let .http(status, method, url, message):
            return "HTTP \(status) from \(method) \(url)" + (message.isEmpty ? "" : ": \(message)")
        case let .network(method, url, reason):
            return "\(method) \(url) failed: \(reason)"
        case let .badResponse(url, reason):
            return "unexpected answer from \(url): \(reason)"
        case let .lfsObject(path, reason):
            return "LFS upload of \(path) refused: \(reason)"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .other(text):
            return text
        }
    }

    /// Worth another attempt: no answer, a server error (5xx) or rate limiting (429).
    public var isRetryable: Bool {
        switch self {
        case .network: return true
        case let .http(status, _, _, _): return status >= 500 || status == 429
        default: return false
        }
    }

    /// Any error as a `HubError` (file errors from PrecisCore become `.io`).
    public static func wrap(_ error: Error) -> HubError {
        if let e = error as? HubError { return e }
        if let e = error as? FileIOError, case let .io(path, op, code) = e {
            return .io(path: path, reason: "\(op) failed: \(String(cString: strerror(code)))")
        }
        return .other("\(error)")
    }
}

/// Keeps secrets out of text.
public enum Redact {
    /// Replaces `secret` and anything shaped like a Hugging Face token (`hf_` + 8 or more letters
    /// and digits) or a bearer credential with `[REDACTED]`.
    public static func text(_ text: String, secret: String? = nil) -> String {
        var s = text
        if let secret, !secret.isEmpty { s = s.replacingOccurrences(of: secret, with: "[REDACTED]") }
        s = replaceRuns(in: s, after: "Bearer ", minimum: 1)
        s = replaceRuns(in: s, after: "hf_", minimum: 8)
        return s
    }

    /// A URL for messages: scheme, host, port and path only (no user info, no query, no fragment).
    public static func url(_ url: URL) -> String {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "<url>" }
        c.user = nil; c.password = nil; c.query = nil; c.fragment = nil
        return c.string ?? "<url>"
    }

    private static func replaceRuns(in s: String, after prefix: String, minimum: Int) -> String {
        var out = ""
        var rest = Substring(s)
        while let r = rest.range(of: prefix) {
            out += rest[..<r.lowerBound]
            let after = rest[r.upperBound...]
            let run = after.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
            if run.count >= minimum {
                out += prefix + "[REDACTED]"
                rest = after[run.endIndex...]
            } else {
                out += prefix
                rest = after
            }
        }
        return out + rest
    }
}

/// A token that does not print itself.
public struct HubToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let value: String
    public init(_ value: String) { self.value = value }

    public var description: String { "[REDACTED]" }
    public var debugDescription: String { "[REDACTED]" }
    public var customMirror: Mirror { Mirror(self, children: []) }

    /// The configured token if non-empty, else `HF_TOKEN` (then the older `HUGGING_FACE_HUB_TOKEN`)
    /// from the environment.
    public static func resolve(configured: String?,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> HubToken? {
        for candidate in [configured, environment["HF_TOKEN"], environment["HUGGING_FACE_HUB_TOKEN"]] {
            if let t = candidate?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty { return HubToken(t) }
        }
        return nil
    }
}
