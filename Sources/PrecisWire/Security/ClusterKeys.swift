import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who a key stands for. One key pair per role, shared by every process of that role (servers and
/// workers come and go, so an identity per process would mean new keys for every replacement):
/// the coordinator's, the servers', the workers' and the operator's (the CLI's `status` and
/// `evaluate` requests).
public enum KeyRole: String, CaseIterable, Sendable, Codable {
    case coordinator, server, worker, `operator`
}

/// A cluster's keys as one process sees them, read from a keys folder (`precis keys generate`):
///
/// - `ROLE.key_secret` — this role's secret certificate (mode 0600; refused when group or others may read it);
/// - `coordinator.key`, `server.key` — the public keys a client must know to reach the coordinator
///   and the servers (CURVE clients authenticate the server they connect to);
/// - `authorized_keys` — one `Z85-PUBLIC-KEY ROLE` per line: the keys the binding roles (the
///   coordinator, the servers) admit, and the role each stands for (the ZAP handler's User-Id).
///
/// Secrets are only ever read from these files, never from the YAML config or the command line.
public struct ClusterKeys: Sendable {
    public let dir: String
    public let role: KeyRole
    public let own: CurveKeyPair
    public let coordinatorKey: [UInt8]
    public let serverKey: [UInt8]
    /// Public key (Z85) → role, from `authorized_keys` (empty for roles that never bind).
    public let authorized: [String: KeyRole]

    public static func secretFile(_ dir: String, _ r: KeyRole) -> String { dir + "/\(r.rawValue).key_secret" }
    public static func publicFile(_ dir: String, _ r: KeyRole) -> String { dir + "/\(r.rawValue).key" }
    public static func authorizedFile(_ dir: String) -> String { dir + "/authorized_keys" }

    /// Reads `role`'s keys from `dir`.
    public static func load(dir: String, role: KeyRole) throws -> ClusterKeys {
        let own = try Certificate.readSecret(secretFile(dir, role))
        let coordinator = try Certificate.readPublic(publicFile(dir, .coordinator)).publicKey
        let server = try Certificate.readPublic(publicFile(dir, .server)).publicKey
        let binds = role == .coordinator || role == .server
        let authorized = binds ? try readAuthorized(authorizedFile(dir)) : [:]
        return ClusterKeys(dir: dir, role: role, own: own, coordinatorKey: coordinator, serverKey: server, authorized: authorized)
    }

    /// The role an authenticated public key stands for (nil: not authorized).
    public func role(of publicKey: [UInt8]) -> KeyRole? {
        publicKey.count == 32 ? authorized[Z85.encode(publicKey)] : nil
    }

    /// Parses `authorized_keys`: `KEY ROLE` per line, at most 4096 keys; comment lines start with `# `
    /// and a comment may follow the role.
    public static func parseAuthorized(_ text: String, file: String) throws -> [String: KeyRole] {
        var out: [String: KeyRole] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // `#` is a Z85 character: a comment is a line whose first word is `#`, or words after the role.
            var parts = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if parts.isEmpty || parts[0] == "#" { continue }
            if parts.count > 2 && parts[2].hasPrefix("#") { parts = Array(parts.prefix(2)) }
            guard parts.count == 2 else { throw SecurityError.badCertificate(file: file, reason: "line \(n + 1): expected `KEY ROLE`") }
            guard parts[0].utf8.count == 40, (try? Z85.decode(parts[0])) != nil else {
                throw SecurityError.badCertificate(file: file, reason: "line \(n + 1): not a 40-character Z85 public key")
            }
            guard let r = KeyRole(rawValue: parts[1]) else {
                throw SecurityError.badCertificate(file: file, reason: "line \(n + 1): unknown role \(parts[1].prefix(20)) (coordinator, server, worker, operator)")
            }
            guard out.count < 4096 else { throw SecurityError.badCertificate(file: file, reason: "more than 4096 keys") }
            out[parts[0]] = r
        }
        return out
    }

    static func readAuthorized(_ path: String) throws -> [String: KeyRole] {
        try parseAuthorized(try Certificate.readText(path), file: path)
    }

    /// Writes a new cluster's keys into `dir` (created 0700 if missing): for each role a secret
    /// certificate (0600) and a public one (0644), and `authorized_keys` listing the four public
    /// keys. Never overwrites a file. Returns the files written.
    @discardableResult
    public static func generate(into dir: String) throws -> [String] {
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let targets = KeyRole.allCases.flatMap { [secretFile(dir, $0), publicFile(dir, $0)] } + [authorizedFile(dir)]
        for f in targets where FileManager.default.fileExists(atPath: f) { throw SecurityError.exists(f) }
        var list = "# Public keys admitted by the coordinator and the servers, and the role each stands for.\n"
        for r in KeyRole.allCases {
            let pair = try CurveKeyPair.generate()
            try Certificate.create(secretFile(dir, r), text: Certificate.text(pair, role: r.rawValue, secret: true), mode: 0o600)
            try Certificate.create(publicFile(dir, r), text: Certificate.text(pair, role: r.rawValue, secret: false), mode: 0o644)
            list += "\(pair.publicText) \(r.rawValue)\n"
        }
        try Certificate.create(authorizedFile(dir), text: list, mode: 0o644)
        return targets
    }
}

/// Where a role may listen without keys: loopback (127.0.0.0/8, ::1, localhost), ipc:// and inproc://.
public enum BindPolicy {
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst(6))
        if host.hasPrefix("[") { host = String(host.dropFirst().prefix { $0 != "]" }) } else if let c = host.lastIndex(of: ":") { host = String(host[..<c]) }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Throws unless binding `endpoint` is safe: keys are on, the address is local, or `insecure` was asked for.
    public static func check(_ endpoint: String, keys: ClusterKeys?, insecure: Bool) throws {
        if keys == nil && !insecure && !isLocal(endpoint) { throw SecurityError.insecureBind(endpoint: endpoint) }
    }
}
