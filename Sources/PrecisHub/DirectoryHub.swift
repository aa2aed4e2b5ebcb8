import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// A hub that is a plain directory (`hub_url: file:///root`), for clusters without internet access
/// and for tests:
///
///     root/<repo id>/revisions/0001/…   a full copy of each pushed folder, never modified
///     root/<repo id>/main               the latest revision's name ("0002\n")
///     root/<repo id>/log.jsonl          one line per push: revision, message, time, files with sha256
///
/// A revision is copied into a temporary folder, fsynced and renamed into place, so a crash
/// never leaves a half-written revision; `main` is replaced atomically after the log line.
public struct DirectoryHub: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// One line of `log.jsonl`.
    public struct LogEntry: Codable, Equatable, Sendable {
        public struct File: Codable, Equatable, Sendable {
            public var path: String
            public var size: Int64
            public var sha256: String
        }
        public var revision: String
        public var message: String
        public var time: String
        public var files: [File]
    }

    public func repoPath(_ repo: String) throws -> String {
        (root as NSString).appendingPathComponent(try RepoID(repo).description)
    }

    public func revisionPath(repo: String, revision: String) throws -> String {
        ((try repoPath(repo) as NSString).appendingPathComponent("revisions") as NSString).appendingPathComponent(revision)
    }

    /// The pushed revisions, oldest first: folders named by ASCII digits that make a number
    /// (anything else in `revisions/`, "½" or "١" included, is not a revision).
    public func revisions(repo: String) throws -> [String] {
        try numberedRevisions(repo: repo).map(\.name)
    }

    /// The revisions with their numbers, oldest first.
    private func numberedRevisions(repo: String) throws -> [(number: Int, name: String)] {
        let dir = (try repoPath(repo) as NSString).appendingPathComponent("revisions")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { name -> (number: Int, name: String)? in
            guard !name.isEmpty, name.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = Int(name) else { return nil }
            return (n, name)
        }.sorted { $0.number < $1.number }
    }

    /// The revision `main` names, if any push happened.
    public func latestRevision(repo: String) throws -> String? {
        let path = (try repoPath(repo) as NSString).appendingPathComponent("main")
        let data: Data
        do { data = try SmallFile.read(path, limit: 4096) } catch .missing { return nil } catch {
            throw HubError.io(path: path, reason: error.description)
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func log(repo: String) throws -> [LogEntry] {
        let path = (try repoPath(repo) as NSString).appendingPathComponent("log.jsonl")
        let data: Data
        do { data = try SmallFile.read(path, limit: 256 << 20) } catch .missing { return [] } catch {
            throw HubError.io(path: path, reason: error.description)
        }
        return try data.split(separator: 0x0A).map { line in
            do { return try JSONDecoder().decode(LogEntry.self, from: Data(line)) } catch {
                throw HubError.io(path: path, reason: "unreadable log line: \(error)")
            }
        }
    }

    /// Copies `folder` as the next revision of `repo` and points `main` at it.
    @discardableResult
    public func push(folder: String, repo: String, message: String) throws -> CommitResult {
        let files = try FolderListing.files(in: folder)
        let repoDir = try repoPath(repo)
        let revisionsDir = (repoDir as NSString).appendingPathComponent("revisions")
        try mkdir(revisionsDir)

        let tmp = (revisionsDir as NSString).appendingPathComponent(".tmp-\(getpid())-\(UUID().uuidString)")
        try mkdir(tmp)
        var entries: [LogEntry.File] = []
        var revision = ""
        do {
            for f in files {
                let dest = (tmp as NSString).appendingPathComponent(f.relative)
                try mkdir((dest as NSString).deletingLastPathComponent)
                let (size, sha) = try copy(f.absolute, to: dest)
                entries.append(.init(path: f.relative, size: size, sha256: sha))
            }
            try syncTree(tmp)
            // Take the next number; if another pusher took it first, the rename fails: take the next.
            let last = try numberedRevisions(repo: repo).last
            func after(_ n: Int, _ name: String) throws -> Int {
                let (next, overflow) = n.addingReportingOverflow(1)
                if overflow {
                    throw HubError.io(path: (revisionsDir as NSString).appendingPathComponent(name),
                                      reason: "no revision number follows this one; move it out of revisions/")
                }
                return next
            }
            var next = try last.map { try after($0.number, $0.name) } ?? 1
            while true {
                let digits = String(next)
                revision = String(repeating: "0", count: max(0, 4 - digits.count)) + digits  // 0001, 0002, …
                let dest = (revisionsDir as NSString).appendingPathComponent(revision)
                if rename(tmp, dest) == 0 { break }
                let e = errno
                if e == EEXIST || e == ENOTEMPTY { next = try after(next, revision); continue }
                throw HubError.io(path: dest, reason: "rename failed: \(String(cString: strerror(e)))")
            }
            AtomicFile.syncDirectory(of: (revisionsDir as NSString).appendingPathComponent(revision))
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw HubError.wrap(error)
        }

        let entry = LogEntry(revision: revision, message: message, time: Date().ISO8601Format(), files: entries)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try enc.encode(entry)
        line.append(0x0A)
        try append(line, to: (repoDir as NSString).appendingPathComponent("log.jsonl"))
        do { try AtomicFile.write(Data((revision + "\n").utf8), to: (repoDir as NSString).appendingPathComponent("main")) } catch {
            throw HubError.wrap(error)
        }
        let path = (revisionsDir as NSString).appendingPathComponent(revision)
        return CommitResult(commitOid: revision, commitURL: URL(fileURLWithPath: path).absoluteString,
                            uploaded: files.map(\.relative))
    }

    // MARK: File helpers

    private func mkdir(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw HubError.io(path: path, reason: "cannot create directory: \(error.localizedDescription)")
        }
    }

    /// Copies a file in 1 MiB chunks, hashing as it goes; fsyncs the copy. Returns (size, sha256).
    private func copy(_ from: String, to: String) throws -> (Int64, String) {
        let fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw HubError.io(path: to, reason: "open failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var hasher = SHA256()
        let size = try Hashing.readChunks(from) { chunk in
            hasher.update(chunk)
            try AtomicFile.writeAll(fd, chunk, path: to)
        }
        if fsync(fd) != 0 { throw HubError.io(path: to, reason: "fsync failed: \(String(cString: strerror(errno)))") }
        return (size, hasher.finalizeHex())
    }

    /// fsyncs every directory of a tree (the files were fsynced when written).
    private func syncTree(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            let p = (dir as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue { try syncTree(p) }
        }
    }

    private func append(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if fd < 0 { throw HubError.io(path: path, reason: "open failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        do { try data.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) } } catch { throw HubError.wrap(error) }
        if fsync(fd) != 0 { throw HubError.io(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))") }
    }
}
