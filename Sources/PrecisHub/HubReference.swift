import Foundation

/// `org/name[@revision]`: a model repository on the Hub and the branch, tag or commit to take.
public struct HubReference: Equatable, Sendable, CustomStringConvertible {
    public let repo: RepoID
    public let revision: String

    public static let defaultRevision = "main"

    public init(repo: RepoID, revision: String = HubReference.defaultRevision) throws {
        try Self.checkRevision(revision, in: "\(repo)@\(revision)")
        self.repo = repo
        self.revision = revision
    }

    /// Parses `org/name` or `org/name@revision` (a bare `name` only with `requireOwner: false`).
    public init(parsing text: String, requireOwner: Bool = true) throws {
        var id = Substring(text), rev = Self.defaultRevision
        if let at = text.firstIndex(of: "@") {
            id = text[..<at]
            rev = String(text[text.index(after: at)...])
        }
        let repo: RepoID
        do { repo = try RepoID(String(id)) } catch let e as HubError {
            throw HubDownloadError.invalidReference(text, reason: "\(e)")
        }
        if requireOwner && repo.owner == nil {
            throw HubDownloadError.invalidReference(text, reason: "expected 'owner/name'")
        }
        try Self.checkRevision(rev, in: text)
        self.repo = repo
        self.revision = rev
    }

    /// Whether `text` reads as a repository reference rather than a path or a preset name:
    /// `owner/name[@revision]` with Hub-valid parts, not absolute, not starting with `.` or `~`, and
    /// not naming a `.json`/`.yaml` file. The caller asks this only for text that is not an
    /// existing local path.
    public static func looksLikeReference(_ text: String) -> Bool {
        guard let first = text.first, !"/.~".contains(first) else { return false }
        let id = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)[0]
        for suffix in [".json", ".yaml", ".yml", ".safetensors", ".bin"] where id.lowercased().hasSuffix(suffix) { return false }
        guard let r = try? HubReference(parsing: text), r.repo.owner != nil else { return false }
        return true
    }

    /// A 40-hex commit id (then the cache's snapshot folder is the answer, no refs needed).
    public var isCommit: Bool { Self.isCommitHash(revision) }

    public static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func checkRevision(_ rev: String, in text: String) throws {
        func fail(_ r: String) -> HubDownloadError { .invalidReference(text, reason: r) }
        if rev.isEmpty { throw fail("empty revision after '@'") }
        if rev.utf8.count > 255 { throw fail("revision longer than 255 bytes") }
        if rev.hasPrefix("/") || rev.hasSuffix("/") { throw fail("revision cannot start or end with '/'") }
        for part in rev.split(separator: "/", omittingEmptySubsequences: false) {
            if part.isEmpty || part == "." || part == ".." { throw fail("revision '\(rev)' has an empty, '.' or '..' part") }
        }
        if !rev.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0.value != 127 && !"\\:?*[~^\"".unicodeScalars.contains($0) }) {
            throw fail("revision '\(rev)' has a space, control or reserved character")
        }
    }

    public var description: String { revision == Self.defaultRevision ? "\(repo)" : "\(repo)@\(revision)" }
}
