import Foundation
import PrecisCore

/// Where and how to download, from the environment variables huggingface_hub reads:
/// `HF_ENDPOINT` (default https://huggingface.co), `HF_TOKEN` (then `HUGGING_FACE_HUB_TOKEN`, then
/// the token file `HF_TOKEN_PATH` or `$HF_HOME/token` that `hf auth login` writes),
/// `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) = 1/true/yes/on, and the cache `HF_HUB_CACHE`
/// (then `HUGGINGFACE_HUB_CACHE`, then `$HF_HOME/hub`, `HF_HOME` defaulting to
/// `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`). `HF_HUB_MAX_FILE_BYTES` bounds one file.
public struct HubSettings: Sendable, CustomStringConvertible {
    public var endpoint: URL
    public var token: HubToken?
    public var offline: Bool
    public var cacheDir: String
    /// No single file bigger than this is downloaded (default 64 GiB).
    public var maxFileBytes: Int64
    /// Seconds to connect, and the window over which a request must average 1 KiB/s or fail; an
    /// API or HEAD request must also end within 5 × this (`HubDownloader.apiDurationFactor`).
    public var timeout: TimeInterval = 60

    public static let defaultEndpoint = "https://huggingface.co"
    public static let defaultMaxFileBytes: Int64 = 64 << 30

    public init(endpoint: URL, token: HubToken?, offline: Bool, cacheDir: String, maxFileBytes: Int64 = HubSettings.defaultMaxFileBytes) {
        self.endpoint = endpoint
        self.token = token
        self.offline = offline
        self.cacheDir = cacheDir
        self.maxFileBytes = maxFileBytes
    }

    public init(environment env: [String: String] = ProcessInfo.processInfo.environment) throws {
        func value(_ k: String) -> String? {
            guard let v = env[k]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            return v
        }
        let endpointText = value("HF_ENDPOINT") ?? Self.defaultEndpoint
        var trimmed = endpointText
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              url.host != nil, url.user == nil, url.password == nil, url.query == nil else {
            throw HubDownloadError.invalidReference(endpointText, reason: "HF_ENDPOINT must be http(s)://host[:port][/path]")
        }
        let home = NSHomeDirectory()
        let hfHome = value("HF_HOME") ?? ((value("XDG_CACHE_HOME") ?? home + "/.cache") + "/huggingface")
        let cache = value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") ?? hfHome + "/hub"
        var token = HubToken.resolve(configured: nil, environment: env)
        if token == nil {
            let path = value("HF_TOKEN_PATH") ?? hfHome + "/token"
            if let d = try? SmallFile.read(path, limit: 4095) {
                let t = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty { token = HubToken(t) }
            }
        }
        var limit = Self.defaultMaxFileBytes
        if let m = value("HF_HUB_MAX_FILE_BYTES") {
            guard let n = Int64(m), n > 0 else {
                throw HubDownloadError.invalidReference(m, reason: "HF_HUB_MAX_FILE_BYTES must be a positive number of bytes")
            }
            limit = n
        }
        let truthy: Set<String> = ["1", "on", "yes", "true"]
        let offline = [value("HF_HUB_OFFLINE"), value("TRANSFORMERS_OFFLINE")].contains { $0.map { truthy.contains($0.lowercased()) } ?? false }
        self.init(endpoint: url, token: token, offline: offline, cacheDir: (cache as NSString).expandingTildeInPath, maxFileBytes: limit)
    }

    public var description: String {
        "HubSettings(\(Redact.url(endpoint)), token: \(token == nil ? "none" : "set"), offline: \(offline), cache: \(cacheDir))"
    }
}
