import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// Where `hub_url` points: a Hugging Face-compatible HTTP hub, or a plain directory.
public enum HubDestination: Equatable, Sendable, CustomStringConvertible {
    /// `https://host[:port][/prefix]` or `http://…` (the trailing `/` dropped).
    case http(URL)
    /// `file:///root`: revisions are copied under `root/<repo id>/`.
    case directory(String)

    public static let huggingFace = HubDestination.http(URL(string: "https://huggingface.co")!)

    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased() else {
            throw HubError.invalidHubURL(Redact.text(text))
        }
        switch scheme {
        case "https", "http":
            guard url.host != nil, url.user == nil, url.password == nil, url.query == nil else {
                throw HubError.invalidHubURL(Redact.text(text))
            }
            var s = trimmed
            while s.hasSuffix("/") { s.removeLast() }
            self = .http(URL(string: s)!)
        case "file":
            let path = url.path
            guard path.hasPrefix("/"), url.host == nil || url.host == "" || url.host == "localhost" else {
                throw HubError.invalidHubURL(text)
            }
            self = .directory(path)
        default:
            throw HubError.invalidHubURL(Redact.text(text))
        }
    }

    public var description: String {
        switch self {
        case let .http(u): return Redact.url(u)
        case let .directory(p): return "file://" + p
        }
    }
}

/// A repository id, `name` or `owner/name`, with the Hub's rules for each part (letters, digits,
/// `-`, `_`, `.`; no `--` or `..`; not starting or ending with `-` or `.`; at most 96 characters).
public struct RepoID: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let owner: String?
    public let name: String

    public init(_ text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 1 || parts.count == 2 else {
            throw HubError.invalidRepoID(text, reason: "expected 'name' or 'owner/name'")
        }
        for p in parts { try Self.check(p, in: text) }
        owner = parts.count == 2 ? parts[0] : nil
        name = parts.last!
    }

    static func check(_ part: String, in id: String) throws {
        func fail(_ r: String) -> HubError { .invalidRepoID(id, reason: r) }
        if part.isEmpty { throw fail("empty part") }
        if part.count > 96 { throw fail("'\(part)' is longer than 96 characters") }
        if !part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) {
            throw fail("only letters, digits, '-', '_' and '.' are allowed")
        }
        if part.contains("--") || part.contains("..") { throw fail("'--' and '..' are not allowed") }
        if let f = part.first, let l = part.last, "-.".contains(f) || "-.".contains(l) {
            throw fail("a part cannot start or end with '-' or '.'")
        }
    }

    public var description: String { owner.map { "\($0)/\(name)" } ?? name }
}

/// What a push produced.
public struct CommitResult: Equatable, Sendable {
    /// The commit id (HTTP hub) or revision number (directory hub); nil when nothing changed and no
    /// commit was made.
    public var commitOid: String?
    public var commitURL: String?
    /// Paths committed (new or changed), relative to the folder.
    public var uploaded: [String]
    /// Paths the hub already had with the same content (not sent).
    public var unchanged: [String]
    /// The LFS objects whose bytes were transferred (a subset of `uploaded`).
    public var lfsTransferred: [String]
    public var deleted: [String]

    public init(commitOid: String?, commitURL: String?, uploaded: [String], unchanged: [String] = [],
                lfsTransferred: [String] = [], deleted: [String] = []) {
        self.commitOid = commitOid; self.commitURL = commitURL; self.uploaded = uploaded
        self.unchanged = unchanged; self.lfsTransferred = lfsTransferred; self.deleted = deleted
    }
}

/// Something a folder can be pushed to as one commit.
public protocol HubPusher: Sendable {
    func push(folder: String, message: String) throws -> CommitResult
}

/// A repository on either kind of hub: creates it (HTTP; an existing one is fine) and pushes.
public struct HubRepository: HubPusher, CustomStringConvertible {
    public let destination: HubDestination
    public let repo: RepoID
    public let revision: String
    public let isPrivate: Bool
    let client: HubClient?

    public init(destination: HubDestination, repo: String, token: HubToken?, private isPrivate: Bool = false,
                revision: String = "main", requestTimeout: TimeInterval = 120) throws {
        self.destination = destination
        self.repo = try RepoID(repo)
        self.revision = revision
        self.isPrivate = isPrivate
        if case let .http(url) = destination {
            client = HubClient(endpoint: url, token: token, requestTimeout: requestTimeout)
        } else {
            client = nil
        }
    }

    public func push(folder: String, message: String) throws -> CommitResult {
        switch destination {
        case .http:
            try client!.createRepo(repo.description, private: isPrivate)
            return try client!.upload(folder: folder, repo: repo.description, revision: revision, message: message)
        case let .directory(root):
            return try DirectoryHub(root: root).push(folder: folder, repo: repo.description, message: message)
        }
    }

    public var description: String { "\(repo) on \(destination)" }
}

/// The files of a folder to push, recursively, as sorted relative paths. Skips `.git/`, `.cache/`
/// and temporaries (`.tmp-*` entries and `*.tmp-<pid>` files from interrupted atomic writes).
/// Links are followed, and each folder is entered once (by device and inode): a link back to a
/// folder above it (`loop -> ..`) is left out instead of walking it again and again.
enum FolderListing {
    struct Entry { let relative: String; let absolute: String; let size: Int64 }

    /// A folder's identity on its file system.
    private struct FolderID: Hashable { let device: UInt64; let inode: UInt64 }

    static func files(in folder: String) throws -> [Entry] {
        var st = stat()
        guard stat(folder, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { throw HubError.io(path: folder, reason: "not a folder") }
        var out: [Entry] = []
        var entered: Set = [FolderID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))]
        try walk(folder, prefix: "", into: &out, entered: &entered)
        return out.sorted { $0.relative < $1.relative }
    }

    static func skipped(_ name: String) -> Bool {
        if name == ".git" || name == ".cache" || name.hasPrefix(".tmp-") { return true }
        if let r = name.range(of: ".tmp-", options: .backwards), !name[r.upperBound...].isEmpty,
           name[r.upperBound...].allSatisfy(\.isNumber) { return true }
        return false
    }

    private static func walk(_ dir: String, prefix: String, into out: inout [Entry], entered: inout Set<FolderID>) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw HubError.io(path: dir, reason: "cannot list: \(error.localizedDescription)")
        }
        for name in names.sorted() where !skipped(name) {
            let abs = (dir as NSString).appendingPathComponent(name)
            let rel = prefix.isEmpty ? name : prefix + "/" + name
            var st = stat()
            guard stat(abs, &st) == 0 else { throw HubError.io(path: abs, reason: "cannot stat") }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                guard entered.insert(FolderID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))).inserted else { continue }
                try walk(abs, prefix: rel, into: &out, entered: &entered)
            } else if (st.st_mode & S_IFMT) == S_IFREG {
                out.append(Entry(relative: rel, absolute: abs, size: Int64(st.st_size)))
            }
        }
    }
}
