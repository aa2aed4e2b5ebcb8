import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// huggingface_hub's cache layout, so that Python and Precis share downloads:
///
///     <cache>/models--<owner>--<name>/
///         blobs/<etag>                  file contents, named by the Hub's ETag (sha256 for LFS files,
///                                       the git blob id otherwise); <etag>.incomplete while downloading
///         snapshots/<commit>/<path>     relative symlinks into blobs/
///         refs/<revision>               the commit a branch or tag pointed to when last resolved
///     <cache>/.locks/models--<owner>--<name>/<etag>.lock   flock(2)ed while a blob is written
public struct HubCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// `models--owner--name`.
    public static func folderName(_ repo: RepoID) -> String {
        "models--" + ([repo.owner, repo.name].compactMap { $0 }.joined(separator: "--"))
    }

    public func repoDir(_ repo: RepoID) -> String { root + "/" + Self.folderName(repo) }
    public func blobPath(_ repo: RepoID, etag: String) -> String { repoDir(repo) + "/blobs/" + etag }
    public func snapshotDir(_ repo: RepoID, commit: String) -> String { repoDir(repo) + "/snapshots/" + commit }
    public func refPath(_ repo: RepoID, revision: String) -> String { repoDir(repo) + "/refs/" + revision }
    func lockPath(_ repo: RepoID, etag: String) -> String { root + "/.locks/" + Self.folderName(repo) + "/" + etag + ".lock" }

    /// `owner/name` when `path` is a snapshot folder of this layout (`…/models--owner--name/snapshots/<commit>`),
    /// e.g. a model that was named by its Hub reference and resolved to the cache (for model cards).
    public static func repoID(ofSnapshotFolder path: String) -> String? {
        var parts = path.split(separator: "/").map(String.init)
        while parts.last == "." { parts.removeLast() }
        guard parts.count >= 3, parts[parts.count - 2] == "snapshots", HubReference.isCommitHash(parts[parts.count - 1]) else { return nil }
        let folder = parts[parts.count - 3]
        guard folder.hasPrefix("models--") else { return nil }
        let id = folder.dropFirst("models--".count).components(separatedBy: "--").joined(separator: "/")
        return (try? RepoID(id)).map(\.description)
    }

    /// The commit `revision` resolves to in the cache: itself for a commit id, else refs/<revision>.
    public func commit(for repo: RepoID, revision: String) -> String? {
        if HubReference.isCommitHash(revision) { return revision }
        guard let d = try? SmallFile.read(refPath(repo, revision: revision), limit: 256) else { return nil }
        let s = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return HubReference.isCommitHash(s) ? s : nil
    }

    /// Records that `revision` points at `commit` (not needed when the revision is the commit).
    public func writeRef(_ repo: RepoID, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let path = refPath(repo, revision: revision)
        if self.commit(for: repo, revision: revision) == commit { return }
        try makeDirectory((path as NSString).deletingLastPathComponent)
        try wrap(path) { try AtomicFile.write(Data(commit.utf8), to: path) }
    }

    /// The snapshot's file if it is there (through its symlink, to an existing blob).
    public func snapshotFile(_ repo: RepoID, commit: String, path: String) -> String? {
        let p = snapshotDir(repo, commit: commit) + "/" + path
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? p : nil
    }

    /// Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink (replacing what was there).
    public func link(_ repo: RepoID, commit: String, path: String, etag: String) throws {
        let pointer = snapshotDir(repo, commit: commit) + "/" + path
        let dir = (pointer as NSString).deletingLastPathComponent
        try makeDirectory(dir)
        // From snapshots/<commit>/<a>/<b> up to the repo folder: 2 + the path's depth.
        let depth = 2 + path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth) + "blobs/" + etag
        let tmp = pointer + ".link-\(getpid())"
        unlink(tmp)
        guard symlink(target, tmp) == 0 else { throw HubDownloadError.cache(path: tmp, reason: "symlink failed: \(String(cString: strerror(errno)))") }
        guard rename(tmp, pointer) == 0 else {
            let e = errno
            unlink(tmp)
            throw HubDownloadError.cache(path: pointer, reason: "rename failed: \(String(cString: strerror(e)))")
        }
    }

    /// Runs `body` holding the blob's lock (the file huggingface_hub's FileLock uses; flock(2), so
    /// a Python download of the same blob waits for this one and the other way round).
    func withBlobLock<T>(_ repo: RepoID, etag: String, _ body: () throws -> T) throws -> T {
        let path = lockPath(repo, etag: etag)
        try makeDirectory((path as NSString).deletingLastPathComponent)
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw HubDownloadError.cache(path: path, reason: "cannot open the lock: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw HubDownloadError.cache(path: path, reason: "flock failed: \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw HubDownloadError.cache(path: path, reason: "cannot create the folder: \(error.localizedDescription)")
        }
    }

    private func wrap(_ path: String, _ body: () throws -> Void) throws {
        do { try body() } catch let e as HubDownloadError { throw e } catch {
            throw HubDownloadError.cache(path: path, reason: "\(error)")
        }
    }

    /// Free bytes on the file system holding `path` (nil if unknown).
    static func freeBytes(at path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        let (v, o) = Int64(s.f_bavail).multipliedReportingOverflow(by: Int64(s.f_frsize))
        return o ? nil : v
    }
}
