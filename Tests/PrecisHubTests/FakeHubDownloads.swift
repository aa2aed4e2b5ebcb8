import Foundation
import PrecisCore

/// The Hub's download side on two real HTTP servers: the hub (`/api/models/{repo}/revision/{rev}`
/// and `/{repo}/resolve/{rev}/{path}`, answering as huggingface.co does: ETag / X-Repo-Commit on
/// regular files, a 302 to storage with X-Linked-Etag / X-Linked-Size on LFS files) and a "CDN" on
/// another port (another origin) serving LFS objects by sha256, with Range. Knobs make it hostile.
final class FakeDownloadHub: @unchecked Sendable {
    typealias Request = TestHTTPServer.Request
    typealias Response = TestHTTPServer.Response

    struct Repo {
        /// Branch or tag → commit.
        var refs: [String: String] = [:]
        /// Commit → path → content.
        var commits: [String: [String: Data]] = [:]
        /// Files need the token (the revision info stays public, as on the Hub).
        var gated = false
    }

    let token: String?
    private let lock = NSLock()
    private var hub: TestHTTPServer!
    private var cdn: TestHTTPServer!
    private var repos: [String: Repo] = [:]
    private var log: [(server: String, request: Request)] = []

    // Hostile knobs.
    /// The first GET of this LFS object is cut after this many bytes.
    var dropFirstAfter: [String: Int] = [:]
    /// The CDN ignores Range and answers 200 with everything.
    var ignoreRange = false
    /// Paths (of the resolve URL) that redirect to themselves forever.
    var loopPaths: Set<String> = []
    /// The revision API answers this body instead.
    var revisionBody: Data?
    /// LFS objects served with one byte flipped (the sha256 no longer matches).
    var corrupt: Set<String> = []
    /// X-Linked-Size announced for these paths instead of the real one.
    var announcedSize: [String: Int] = [:]
    /// Relative (rather than absolute) Location for LFS redirects, through a same-origin hop first.
    var relativeHop = false
    /// The ETag (X-Linked-Etag for LFS files) announced for these paths instead of the real one.
    var etagOverride: [String: String] = [:]
    /// Regular (non-LFS) files served with one byte flipped, under their real ETag and size.
    var corruptRegular: Set<String> = []
    /// The revision API sends its answer this many bytes at a time, this often.
    var revisionDrip: (bytes: Int, every: TimeInterval)?

    var hubURL: String { hub.baseURL }
    var cdnURL: String { cdn.baseURL }

    init(token: String?) throws {
        self.token = token
        // Weak, as in FakeHub: a request arriving after this hub went away is answered 503.
        hub = try TestHTTPServer { [weak self] in self?.handleHub($0) ?? .text("this hub has stopped", status: 503) }
        cdn = try TestHTTPServer { [weak self] in self?.handleCDN($0) ?? .text("this CDN has stopped", status: 503) }
    }

    deinit { hub?.stop(); cdn?.stop() }

    func stop() { hub.stop(); cdn.stop() }

    func with<T>(_ body: (FakeDownloadHub) -> T) -> T { lock.withLock { body(self) } }

    /// Adds a commit of `files` to `repo` and points `branch` at it; returns the commit id.
    @discardableResult
    func publish(_ repo: String, branch: String = "main", files: [String: Data], gated: Bool = false) -> String {
        lock.withLock {
            var r = repos[repo] ?? Repo()
            let seed = files.keys.sorted().map { "\($0):\(Hashing.sha256Hex(files[$0]!))" }.joined(separator: ",") + "\(r.commits.count)\(repo)"
            let commit = String(Hashing.sha1Hex(Data(seed.utf8)))
            r.commits[commit] = files
            r.refs[branch] = commit
            r.gated = gated
            repos[repo] = r
            return commit
        }
    }

    var requests: [(server: String, request: Request)] { lock.withLock { log } }
    /// File requests (resolve on the hub, objects on the CDN).
    var fileRequests: [Request] { requests.filter { $0.request.path.contains("/resolve/") || $0.server == "cdn" }.map(\.request) }
    var cdnRequests: [Request] { requests.filter { $0.server == "cdn" }.map(\.request) }
    var apiRequests: [Request] { requests.filter { $0.request.path.hasPrefix("/api/") }.map(\.request) }
    func clearLog() { lock.withLock { log.removeAll() } }

    static func isLFS(_ path: String, _ data: Data) -> Bool {
        path.hasSuffix(".safetensors") || path.hasSuffix(".bin") || data.count >= 10_000
    }

    private func authorized(_ r: Request) -> Bool { token == nil || r.header("Authorization") == "Bearer \(token!)" }

    private func handleHub(_ r: Request) -> Response {
        lock.lock()
        defer { lock.unlock() }
        log.append(("hub", r))
        var p = r.path.removingPercentEncoding ?? r.path
        if p.hasPrefix("/hop/") { p.removeFirst(4) }
        if p.hasPrefix("/api/models/"), let i = p.range(of: "/revision/") {
            let repo = String(p[p.index(p.startIndex, offsetBy: 12)..<i.lowerBound]), rev = String(p[i.upperBound...])
            if let body = revisionBody {
                return Response(status: 200, headers: ["Content-Type": "application/json"], body: body, drip: revisionDrip)
            }
            guard let rp = repos[repo] else {
                return Response(status: 401, headers: ["X-Error-Code": "RepositoryNotFound"], body: Data("Repository not found".utf8))
            }
            guard let commit = rp.refs[rev] ?? (rp.commits[rev] != nil ? rev : nil) else {
                return Response(status: 404, headers: ["X-Error-Code": "RevisionNotFound"], body: Data("Invalid rev id".utf8))
            }
            let files = rp.commits[commit]!
            return .json(["id": repo, "sha": commit, "gated": rp.gated ? "manual" : false,
                          "siblings": files.keys.sorted().map { ["rfilename": $0] }])
        }
        if loopPaths.contains(where: { r.path.hasSuffix($0) }) {
            return Response(status: 302, headers: ["Location": r.path])
        }
        // /{owner}/{name}/resolve/{rev}/{path...}
        let parts = p.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 6, parts[3] == "resolve" else { return .text("no route for \(r.method) \(r.path)", status: 404) }
        let repo = parts[1] + "/" + parts[2], rev = parts[4], path = parts[5...].joined(separator: "/")
        guard let rp = repos[repo] else { return Response(status: 401, headers: ["X-Error-Code": "RepositoryNotFound"]) }
        if rp.gated && !authorized(r) {
            return Response(status: 401, headers: ["X-Error-Code": "GatedRepo"], body: Data("Access to model \(repo) is restricted".utf8))
        }
        guard let commit = rp.refs[rev] ?? (rp.commits[rev] != nil ? rev : nil) else {
            return Response(status: 404, headers: ["X-Error-Code": "RevisionNotFound"])
        }
        guard let data = rp.commits[commit]![path] else { return Response(status: 404, headers: ["X-Error-Code": "EntryNotFound"]) }
        if Self.isLFS(path, data) {
            let oid = Hashing.sha256Hex(data)
            let size = announcedSize[path] ?? data.count
            var location = "\(cdn.baseURL)/objects/\(oid)?X-Amz-Signature=secret"
            if relativeHop && !r.path.hasPrefix("/hop/") { location = "/hop" + r.path }
            return Response(status: 302, headers: ["Location": location, "X-Repo-Commit": commit, "X-Linked-Etag": etagOverride[path] ?? "\"\(oid)\"",
                                                   "X-Linked-Size": String(size), "ETag": "\"\(Hashing.gitBlobSHA1(data: Data(oid.utf8)))\""],
                            body: Data("Found. Redirecting to \(location)".utf8))
        }
        var served = data
        if corruptRegular.contains(path) { served[served.startIndex] ^= 0xFF }
        return Response(status: 200, headers: ["ETag": etagOverride[path] ?? "\"\(Hashing.gitBlobSHA1(data: data))\"", "X-Repo-Commit": commit,
                                               "Content-Length": String(data.count)], body: served)
    }

    private func handleCDN(_ r: Request) -> Response {
        lock.lock()
        defer { lock.unlock() }
        log.append(("cdn", r))
        let parts = r.path.split(separator: "/").map(String.init)
        guard parts.count == 2, parts[0] == "objects" else { return .text("bad object path", status: 400) }
        let oid = parts[1]
        var found: Data?
        for rp in repos.values { for files in rp.commits.values { for d in files.values where Hashing.sha256Hex(d) == oid { found = d } } }
        guard var data = found else { return .text("no such object", status: 404) }
        if corrupt.contains(oid) { data[data.startIndex] ^= 0xFF }
        var response = Response(status: 200, headers: ["ETag": "\"\(oid)\"", "Content-Type": "application/octet-stream"], body: data)
        if let range = r.header("Range"), !ignoreRange, range.hasPrefix("bytes="),
           let start = Int(range.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)[0]) {
            if start >= data.count { return Response(status: 416, headers: ["Content-Range": "bytes */\(data.count)"]) }
            response = Response(status: 206, headers: ["Content-Range": "bytes \(start)-\(data.count - 1)/\(data.count)"],
                                body: Data(data[(data.startIndex + start)...]))
        }
        if let n = dropFirstAfter[oid] {
            dropFirstAfter[oid] = nil
            response.dropAfter = n
        }
        return response
    }
}
