import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// Downloads what a model folder needs from a Hugging Face Hub into huggingface_hub's cache, as
/// `snapshot_download` does:
///
/// 1. `GET {endpoint}/api/models/{repo}/revision/{revision}` → the commit `sha` and the `siblings`
///    file list; `refs/{revision}` is written with the commit.
/// 2. For each needed file (HubFilePlan) not yet in `snapshots/{commit}/`:
///    `HEAD {endpoint}/{repo}/resolve/{commit}/{path}` (following same-host redirects only) gives
///    `X-Repo-Commit`, the ETag (`X-Linked-Etag` for LFS files: their sha256) and the size
///    (`X-Linked-Size`, else `Content-Length`); an LFS file answers with a redirect to its storage.
/// 3. Unless `blobs/{etag}` exists, `GET` the final location into `blobs/{etag}.incomplete`,
///    following redirects (the token goes only to the hub's own origin), resuming with `Range` from
///    what an earlier attempt left; then the size and the content against the ETag (sha256 for an
///    LFS file, the git blob id for a regular one), rename to `blobs/{etag}`, and a relative
///    symlink from the snapshot.
///
/// The API and HEAD requests must end within 5 × `settings.timeout`; every request fails when it
/// averages under 1 KiB/s over `settings.timeout` seconds.
///
/// With `offline` set nothing is requested: the cache answers or the error says what is missing.
public struct HubDownloader: Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// `snapshots/{commit}`: the model folder.
        public let folder: String
        public let commit: String
        /// Paths inside the folder that the purpose needs.
        public let files: [String]
        /// The subset that was fetched now (the rest came from the cache).
        public let downloaded: [String]
    }

    /// Progress of one file: bytes done (including any resumed part) and the total.
    public typealias Progress = @Sendable (_ file: String, _ done: Int64, _ total: Int64) -> Void

    public let settings: HubSettings
    public let cache: HubCache
    let transfer: HTTPTransfer
    let progress: Progress?
    let log: @Sendable (String) -> Void

    public static let maxRedirects = 10
    /// Attempts at one file's body when the connection breaks (each resumes where the last stopped).
    public static let maxAttempts = 5
    /// API answers (JSON) larger than this are refused.
    public static let maxAPIBytes = 32 << 20
    /// Sharded-weight index files larger than this are refused.
    public static let maxIndexBytes: Int64 = 64 << 20
    /// How long one API or HEAD exchange (redirects included) may take, in multiples of `settings.timeout`.
    public static let apiDurationFactor: Double = 5

    var apiDuration: TimeInterval { settings.timeout * Self.apiDurationFactor }

    public init(settings: HubSettings, progress: Progress? = nil, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.settings = settings
        self.cache = HubCache(root: settings.cacheDir)
        self.transfer = HTTPTransfer(timeout: settings.timeout)
        self.progress = progress
        self.log = log
    }

    // MARK: Snapshots

    /// The folder holding what `purpose` needs of `ref`, downloading what the cache lacks.
    public func snapshot(_ ref: HubReference, purpose: HubFilePlan.Purpose) throws -> Snapshot {
        if settings.offline { return try cachedSnapshot(ref, purpose: purpose) }
        let info: (commit: String, siblings: Set<String>)
        do {
            info = try revisionInfo(ref)
        } catch let e as HubError where e.isRetryable {
            // No answer from the hub: a complete snapshot in the cache still serves (as huggingface_hub does).
            if let s = try? cachedSnapshot(ref, purpose: purpose) {
                log("warning: \(e); using the cached \(ref) at \(s.commit)")
                return s
            }
            throw e
        }
        try cache.writeRef(ref.repo, revision: ref.revision, commit: info.commit)
        var (files, index) = try HubFilePlan.files(in: info.siblings, purpose: purpose, repo: "\(ref.repo)", revision: ref.revision)
        var downloaded: [String] = []
        for f in files where try ensure(ref.repo, commit: info.commit, path: f) { downloaded.append(f) }
        if let index {
            let path = cache.snapshotDir(ref.repo, commit: info.commit) + "/" + index
            let data = try readSmall(path, limit: Self.maxIndexBytes)
            let shards = try HubFilePlan.shards(indexData: data, indexFile: index, siblings: info.siblings,
                                                repo: "\(ref.repo)", revision: ref.revision)
            for f in shards where try ensure(ref.repo, commit: info.commit, path: f) { downloaded.append(f) }
            files += shards
        }
        return Snapshot(folder: cache.snapshotDir(ref.repo, commit: info.commit), commit: info.commit, files: files, downloaded: downloaded)
    }

    /// The cache's snapshot for `ref`, or an error naming what is missing.
    public func cachedSnapshot(_ ref: HubReference, purpose: HubFilePlan.Purpose) throws -> Snapshot {
        func miss(_ reason: String) -> HubDownloadError {
            .offlineMiss(repo: "\(ref.repo)", revision: ref.revision, cache: settings.cacheDir, reason: reason)
        }
        guard let commit = cache.commit(for: ref.repo, revision: ref.revision) else {
            throw miss("no \(HubCache.folderName(ref.repo))/refs/\(ref.revision)")
        }
        let dir = cache.snapshotDir(ref.repo, commit: commit)
        guard FileManager.default.fileExists(atPath: dir) else { throw miss("no snapshot \(commit)") }
        let present = Set(Self.listFiles(dir))
        let planned: (files: [String], index: String?)
        do {
            planned = try HubFilePlan.files(in: present, purpose: purpose, repo: "\(ref.repo)", revision: ref.revision)
        } catch let e as HubDownloadError {
            throw miss("the snapshot \(commit) is incomplete (\(e))")
        }
        var files = planned.files
        if let index = planned.index {
            let data = try readSmall(dir + "/" + index, limit: Self.maxIndexBytes)
            do {
                files += try HubFilePlan.shards(indexData: data, indexFile: index, siblings: present, repo: "\(ref.repo)", revision: ref.revision)
            } catch let e as HubDownloadError {
                throw miss("the snapshot \(commit) is incomplete (\(e))")
            }
        }
        return Snapshot(folder: dir, commit: commit, files: files, downloaded: [])
    }

    /// Regular files (through symlinks) under `dir`, as relative paths.
    static func listFiles(_ dir: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            var st = stat()
            if stat(dir + "/" + rel, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { out.append(rel) }
        }
        return out
    }

    // MARK: The revision

    /// The commit `ref.revision` points to and the files it holds.
    public func revisionInfo(_ ref: HubReference) throws -> (commit: String, siblings: Set<String>) {
        let url = try endpointURL("api/models/\(ref.repo)/revision/\(Self.escape(ref.revision))")
        let sink = MemorySink(limit: Self.maxAPIBytes, what: "the revision answer from \(Redact.url(url))")
        let (head, final) = try follow("GET", url, extraHeaders: ["Accept": "application/json"], crossOrigin: .follow, ref: ref,
                                       file: nil, maxDuration: apiDuration, onHead: { h in h.status == 200 ? .more : .skip },
                                       sink: sink)
        if let e = sink.failure { throw e }
        try checkStatus(head, url: final, ref: ref, file: nil)
        guard let obj = (try? JSONSerialization.jsonObject(with: sink.data)) as? [String: Any] else {
            throw HubDownloadError.badAnswer(url: Redact.url(final), reason: "not a JSON object")
        }
        guard let sha = obj["sha"] as? String, HubReference.isCommitHash(sha) else {
            throw HubDownloadError.badAnswer(url: Redact.url(final), reason: "'sha' is missing or not a 40-hex commit id")
        }
        // A pinned commit must be answered with itself: another commit's files are not that revision.
        if ref.isCommit && sha != ref.revision {
            throw HubDownloadError.badAnswer(url: Redact.url(final), reason: "'sha' \(sha) is not the commit \(ref.revision) asked for")
        }
        guard let list = obj["siblings"] as? [Any] else {
            throw HubDownloadError.badAnswer(url: Redact.url(final), reason: "'siblings' is missing or not a list")
        }
        var siblings = Set<String>()
        for item in list {
            guard let o = item as? [String: Any], let name = o["rfilename"] as? String else {
                throw HubDownloadError.badAnswer(url: Redact.url(final), reason: "a 'siblings' entry without a string 'rfilename'")
            }
            if HubFilePlan.isSafeRelativePath(name) { siblings.insert(name) }
        }
        return (sha, siblings)
    }

    // MARK: One file

    /// What the hub says about one file.
    struct FileMetadata: Equatable {
        var etag: String
        var size: Int64
        var location: URL
        var lfs: Bool
    }

    /// Makes snapshots/{commit}/{path} present; returns whether bytes were downloaded.
    func ensure(_ repo: RepoID, commit: String, path: String) throws -> Bool {
        if cache.snapshotFile(repo, commit: commit, path: path) != nil { return false }
        let ref = try HubReference(repo: repo, revision: commit)
        let meta = try metadata(ref, path: path)
        let blob = cache.blobPath(repo, etag: meta.etag)
        try cache.makeDirectory((blob as NSString).deletingLastPathComponent)
        let fetched = try cache.withBlobLock(repo, etag: meta.etag) { () throws -> Bool in
            if Self.fileSize(blob) == meta.size { return false }  // another revision (or process) has it
            try download(meta, to: blob, file: "\(repo)/\(path)")
            return true
        }
        try cache.link(repo, commit: commit, path: path, etag: meta.etag)
        return fetched
    }

    /// HEAD of the resolve URL: ETag, size and where the bytes are.
    func metadata(_ ref: HubReference, path: String) throws -> FileMetadata {
        let escapedPath = path.split(separator: "/").map { Self.escape(String($0)) }.joined(separator: "/")
        let url = try endpointURL("\(ref.repo)/resolve/\(ref.revision)/\(escapedPath)")
        let (head, final) = try follow("HEAD", url, extraHeaders: [:], crossOrigin: .stop, ref: ref, file: path,
                                       maxDuration: apiDuration, onHead: { _ in .more }, sink: nil)
        if !head.isRedirect { try checkStatus(head, url: final, ref: ref, file: path) }
        let where_ = Redact.url(final)
        if let c = head.header("X-Repo-Commit"), c != ref.revision {
            throw HubDownloadError.badAnswer(url: where_, reason: "X-Repo-Commit \(c) is not the commit \(ref.revision) asked for")
        }
        let linked = head.header("X-Linked-Etag")
        guard let rawEtag = linked ?? head.header("ETag") else {
            throw HubDownloadError.badAnswer(url: where_, reason: "no ETag for \(path)")
        }
        let etag = Self.unquote(rawEtag)
        guard Self.isSafeEtag(etag) else {
            throw HubDownloadError.badAnswer(url: where_, reason: "the ETag of \(path) is not a usable blob name")
        }
        guard let sizeText = head.header("X-Linked-Size") ?? head.header("Content-Length"), let size = Int64(sizeText), size >= 0 else {
            throw HubDownloadError.badAnswer(url: where_, reason: "no valid X-Linked-Size or Content-Length for \(path)")
        }
        if size > settings.maxFileBytes { throw HubDownloadError.tooLarge(file: "\(ref.repo)/\(path)", bytes: size, limit: settings.maxFileBytes) }
        var location = final
        if head.isRedirect {
            guard let l = head.header("Location"), let u = URL(string: l, relativeTo: final)?.absoluteURL else {
                throw HubDownloadError.badAnswer(url: where_, reason: "a redirect without a valid Location for \(path)")
            }
            location = u
        }
        return FileMetadata(etag: etag, size: size, location: location, lfs: linked != nil)
    }

    /// GETs the bytes into `blob`.incomplete (resuming), checks them and renames to `blob`.
    func download(_ meta: FileMetadata, to blob: String, file: String) throws {
        let partial = blob + ".incomplete"
        if Self.fileSize(partial) ?? 0 > meta.size { unlink(partial) }
        if let free = HubCache.freeBytes(at: (blob as NSString).deletingLastPathComponent) {
            let needed = meta.size - (Self.fileSize(partial) ?? 0)
            if needed > free { throw HubDownloadError.noSpace(path: blob, needed: needed, available: free) }
        }
        // Not through a symlink (its target would be appended to, or emptied), not waiting on a FIFO:
        // a regular file or an error naming it.
        let fd = open(partial, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            let reason = e == ELOOP ? "it is a symbolic link, not a regular file" : e == ENXIO ? "it is not a regular file"
                : "cannot open: \(String(cString: strerror(e)))"
            throw HubDownloadError.cache(path: partial, reason: reason + "; remove it and try again")
        }
        var closed = false
        defer { if !closed { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw HubDownloadError.cache(path: partial, reason: "it is not a regular file; remove it and try again")
        }
        var attempt = 0
        while true {
            let have = Self.fileSize(fd: fd)
            if have == meta.size { break }
            attempt += 1
            let sink = FileSink(fd: fd, path: partial, already: have, total: meta.size, file: file, progress: progress)
            do {
                try fetchBody(meta, have: have, sink: sink, file: file)
                if let e = sink.failure { throw e }
            } catch let e as HubError where e.isRetryable && attempt < Self.maxAttempts {
                let now = Self.fileSize(fd: fd)
                log("\(file): \(e); resuming at byte \(now) (attempt \(attempt + 1) of \(Self.maxAttempts))")
                // A broken connection that delivered bytes is retried at once; a refusal (5xx, 429)
                // or a connection that delivered nothing waits a little longer each time.
                if now == have { Thread.sleep(forTimeInterval: min(8, 0.5 * Double(1 << (attempt - 1)))) }
                continue
            }
            let now = Self.fileSize(fd: fd)
            if now != meta.size { throw HubDownloadError.sizeMismatch(file: file, expected: meta.size, received: now) }
        }
        fsync(fd)
        close(fd)
        closed = true
        // The ETag names the content: an LFS file's is its sha256 (64 hex), a regular file's its git
        // blob id (40 hex, the SHA-1 of "blob <size>\0" + the bytes). Another ETag is not checked.
        let isHex = meta.etag.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        let algorithm: ((String) throws -> String)? = !isHex ? nil
            : meta.etag.utf8.count == 64 ? { try Hashing.sha256Hex(fileAt: $0) }
            : meta.etag.utf8.count == 40 && !meta.lfs ? { try Hashing.gitBlobSHA1(fileAt: $0) } : nil
        if let algorithm {
            let actual: String
            do { actual = try algorithm(partial) } catch {
                throw HubDownloadError.cache(path: partial, reason: "cannot read back: \(error)")
            }
            if actual != meta.etag {
                unlink(partial)
                throw HubDownloadError.checksumMismatch(file: file, expected: meta.etag, actual: actual)
            }
        }
        guard rename(partial, blob) == 0 else {
            throw HubDownloadError.cache(path: blob, reason: "rename failed: \(String(cString: strerror(errno)))")
        }
        AtomicFile.syncDirectory(of: blob)
    }

    /// One GET of the remaining bytes (following redirects), appended through `sink`.
    func fetchBody(_ meta: FileMetadata, have: Int64, sink: FileSink, file: String) throws {
        var headers = ["Accept-Encoding": "identity"]
        if have > 0 { headers["Range"] = "bytes=\(have)-" }
        let limit = settings.maxFileBytes
        let (head, final) = try follow("GET", meta.location, extraHeaders: headers, crossOrigin: .follow, ref: nil, file: file,
                                       onHead: { h in sink.begin(h, limit: limit) }, sink: sink)
        if let e = sink.failure { throw e }
        if head.status == 416 {
            if have == meta.size { return }
            // The partial file does not match what the server has: start it over (retried).
            if have > 0 && ftruncate(sink.fd, 0) == 0 {
                throw HubError.network(method: "GET", url: Redact.url(final), reason: "the server cannot resume at byte \(have) (HTTP 416); starting \(file) over")
            }
        }
        if !(200..<300).contains(head.status) {
            throw HubError.http(status: head.status, method: "GET", url: Redact.url(final), message: "downloading \(file)")
        }
    }

    // MARK: HTTP with redirects

    enum CrossOrigin { case follow, stop }

    /// Sends the request and follows redirects (at most `maxRedirects`): relative or same-origin
    /// ones always, with the token; others only with `.follow`, and without the token. Returns the
    /// last answer's head and URL.
    /// `maxDuration` bounds the whole chain (nil for file bodies, which have only the slowness limit).
    func follow(_ method: String, _ start: URL, extraHeaders: [String: String], crossOrigin: CrossOrigin,
                ref: HubReference?, file: String?, maxDuration: TimeInterval? = nil,
                onHead: @escaping @Sendable (HTTPTransfer.Head) -> HTTPTransfer.Verdict,
                sink: (any BodySink)?) throws -> (HTTPTransfer.Head, URL) {
        var url = start
        let deadline = maxDuration.map { Date(timeIntervalSinceNow: $0) }
        for _ in 0...Self.maxRedirects {
            var headers = extraHeaders
            headers["User-Agent"] = "precis-hub/1"
            if headers["Accept-Encoding"] == nil { headers["Accept-Encoding"] = "identity" }
            if let token = settings.token, Self.sameOrigin(url, settings.endpoint) { headers["Authorization"] = "Bearer \(token.value)" }
            // What is left of the chain's time (at least a millisecond: libcurl then reports the timeout).
            let left = deadline.map { max(0.001, $0.timeIntervalSinceNow) }
            let head = try transfer.run(method, url, headers: headers, maxDuration: left, onHead: { h in h.isRedirect ? .skip : onHead(h) },
                                        onBody: { d in sink?.append(d) ?? .more })
            guard head.isRedirect else { return (head, url) }
            guard let l = head.header("Location"), let next = URL(string: l, relativeTo: url)?.absoluteURL,
                  let scheme = next.scheme?.lowercased(), ["http", "https"].contains(scheme) else {
                throw HubDownloadError.badAnswer(url: Redact.url(url), reason: "a redirect (HTTP \(head.status)) without a valid http(s) Location")
            }
            if !Self.sameOrigin(next, url) && crossOrigin == .stop { return (head, url) }
            url = next
        }
        throw HubDownloadError.tooManyRedirects(url: Redact.url(start), limit: Self.maxRedirects)
    }

    /// Non-2xx → typed errors (the Hub's `X-Error-Code` tells a missing repo from a gated one).
    func checkStatus(_ h: HTTPTransfer.Head, url: URL, ref: HubReference, file: String?) throws {
        if (200..<300).contains(h.status) { return }
        let code = h.header("X-Error-Code") ?? ""
        let repo = "\(ref.repo)"
        if code == "RepositoryNotFound" || code == "RevisionNotFound" || (h.status == 404 && file == nil) {
            throw HubDownloadError.notFound(repo: repo, revision: ref.revision, localPath: "\(ref)")
        }
        if code == "EntryNotFound" || h.status == 404 {
            throw HubDownloadError.fileMissing(repo: repo, file: file ?? "?", url: Redact.url(url))
        }
        if code == "GatedRepo" || h.status == 401 || h.status == 403 {
            throw HubDownloadError.gated(repo: repo, status: h.status, tokenSent: settings.token != nil)
        }
        throw HubError.http(status: h.status, method: file == nil ? "GET" : "HEAD", url: Redact.url(url),
                            message: h.header("X-Error-Message").map { Redact.text($0, secret: settings.token?.value) } ?? "")
    }

    // MARK: Helpers

    func endpointURL(_ path: String) throws -> URL {
        guard let u = URL(string: settings.endpoint.absoluteString + "/" + path) else {
            throw HubDownloadError.invalidReference(path, reason: "cannot form a URL under \(Redact.url(settings.endpoint))")
        }
        return u
    }

    /// Percent-encodes everything but unreserved characters (a revision `refs/pr/1` becomes one segment).
    static func escape(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    static func sameOrigin(_ a: URL, _ b: URL) -> Bool {
        func port(_ u: URL) -> Int { u.port ?? (u.scheme?.lowercased() == "https" ? 443 : 80) }
        return a.scheme?.lowercased() == b.scheme?.lowercased() && a.host?.lowercased() == b.host?.lowercased() && port(a) == port(b)
    }

    /// `"abc"` and `W/"abc"` → `abc`.
    static func unquote(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("W/") { t.removeFirst(2) }
        if t.count >= 2 && t.hasPrefix("\"") && t.hasSuffix("\"") { t = String(t.dropFirst().dropLast()) }
        return t
    }

    /// A file name that cannot leave blobs/: letters, digits, `-`, `_`, `.`, not starting with `.`.
    static func isSafeEtag(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 128 && !s.hasPrefix(".") && !s.hasSuffix(".incomplete")
            && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    /// The size of the open file (0 if fstat fails, which it does not on an open descriptor).
    static func fileSize(fd: Int32) -> Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }

    func readSmall(_ path: String, limit: Int64) throws -> Data {
        guard let size = Self.fileSize(path) else { throw HubDownloadError.cache(path: path, reason: "missing") }
        if size > limit { throw HubDownloadError.tooLarge(file: path, bytes: size, limit: limit) }
        do { return try SmallFile.read(path, limit: Int(limit)) } catch {
            throw HubDownloadError.cache(path: path, reason: error.description)
        }
    }
}

/// Where a response body goes.
protocol BodySink: Sendable {
    func append(_ data: Data) -> HTTPTransfer.Verdict
}

/// A bounded in-memory body (API answers). `@unchecked Sendable`: URLSession's queue appends while
/// the caller waits; every field is guarded by `lock`.
final class MemorySink: BodySink, @unchecked Sendable {
    private let lock = NSLock()
    private var buffer = Data()
    private var error: HubDownloadError?
    let limit: Int
    let what: String

    init(limit: Int, what: String) { self.limit = limit; self.what = what }

    var data: Data { lock.withLock { buffer } }
    var failure: HubDownloadError? { lock.withLock { error } }

    func append(_ d: Data) -> HTTPTransfer.Verdict {
        lock.withLock {
            if buffer.count + d.count > limit {
                error = .tooLarge(file: what, bytes: Int64(buffer.count + d.count), limit: Int64(limit))
                return .stop(error!)
            }
            buffer.append(d)
            return .more
        }
    }
}

/// Appends a file's bytes to the `.incomplete` file, refusing more than the announced size.
/// `@unchecked Sendable`: URLSession's queue calls it while the caller waits; fields under `lock`.
final class FileSink: BodySink, @unchecked Sendable {
    private let lock = NSLock()
    let fd: Int32
    let path: String
    let total: Int64
    let file: String
    let progress: HubDownloader.Progress?
    private var written: Int64
    private var error: HubDownloadError?
    /// Whether the server honoured the Range (206) or sent everything again (200).
    private var started = false
    private var lastReport = 0.0

    init(fd: Int32, path: String, already: Int64, total: Int64, file: String, progress: HubDownloader.Progress?) {
        self.fd = fd; self.path = path; self.written = already; self.total = total; self.file = file; self.progress = progress
    }

    var failure: HubDownloadError? { lock.withLock { error } }

    /// Checks the head of the GET: a 200 starts over, a 206 must continue where the file stops.
    func begin(_ h: HTTPTransfer.Head, limit: Int64) -> HTTPTransfer.Verdict {
        lock.withLock {
            func fail(_ e: HubDownloadError) -> HTTPTransfer.Verdict { error = e; return .stop(e) }
            switch h.status {
            case 200:
                if written > 0 {
                    // The server ignored the Range: start the file again.
                    if ftruncate(fd, 0) != 0 { return fail(.cache(path: path, reason: "truncate failed")) }
                    written = 0
                }
            case 206:
                let range = h.header("Content-Range") ?? ""
                // bytes START-END/TOTAL
                let start = range.split(separator: " ").last?.split(separator: "-").first.flatMap { Int64($0) }
                guard start == written else {
                    return fail(.badAnswer(url: file, reason: "Content-Range '\(range)' does not continue at byte \(written)"))
                }
            default:
                return .skip  // the caller reports the status
            }
            if let lt = h.header("Content-Length") {
                guard let n = Int64(lt), n >= 0 else { return fail(.badAnswer(url: file, reason: "Content-Length '\(lt)' is not a number")) }
                let (end, o) = written.addingReportingOverflow(n)
                if o || end > limit { return fail(.tooLarge(file: file, bytes: o ? .max : end, limit: limit)) }
                if end != total { return fail(.sizeMismatch(file: file, expected: total, received: end)) }
            }
            started = true
            return .more
        }
    }

    func append(_ d: Data) -> HTTPTransfer.Verdict {
        let (verdict, report): (HTTPTransfer.Verdict, Int64?) = lock.withLock {
            guard started, error == nil else { return (.stop(error ?? .badAnswer(url: file, reason: "body before head")), nil) }
            if written + Int64(d.count) > total {
                error = .sizeMismatch(file: file, expected: total, received: written + Int64(d.count))
                return (.stop(error!), nil)
            }
            do {
                try d.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
            } catch {
                self.error = .cache(path: path, reason: "\(error)")
                return (.stop(self.error!), nil)
            }
            written += Int64(d.count)
            let now = Date().timeIntervalSince1970
            if now - lastReport >= 0.1 || written == total { lastReport = now; return (.more, written) }
            return (.more, nil)
        }
        if let r = report { progress?(file, r, total) }
        return verdict
    }
}
