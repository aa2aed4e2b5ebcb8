import Foundation
import PrecisCore

/// The Hugging Face Hub's HTTP upload protocol (as huggingface.js `commit.ts` speaks it):
/// preupload → hashing → LFS batch and transfers → one NDJSON commit.
///
/// The token is sent only in the `Authorization` header of requests to the hub itself, never to
/// LFS storage URLs, and never appears in errors or descriptions.
public struct HubClient: Sendable, CustomStringConvertible {
    public enum RepoType: String, Sendable {
        case model, dataset, space

        /// `/api/models/…`, `/api/datasets/…`, `/api/spaces/…`
        var apiSegment: String { rawValue + "s" }
        /// The prefix of the git URL (`{hub}/{repo}.git`, `{hub}/datasets/{repo}.git`, …).
        var gitPrefix: String { self == .model ? "" : rawValue + "s/" }
    }

    public let endpoint: URL
    public let repoType: RepoType
    let token: HubToken?
    let http: HTTP

    /// Files go in preupload and LFS batch requests in groups of this many.
    public static let batchSize = 100
    /// A "regular" file goes base64-encoded inside the commit request, read whole into memory: one
    /// bigger than this is refused (the Hub itself sends anything over 10 MB through LFS).
    public static let maxRegularFileBytes: Int64 = 64 << 20
    /// The regular files of one commit together (their base64 is held in memory at once).
    public static let maxRegularCommitBytes: Int64 = 256 << 20
    /// A multipart upload reads one part into memory: a `chunk_size` above this is refused.
    public static let maxChunkBytes: Int64 = 512 << 20

    public init(endpoint: URL, token: HubToken?, repoType: RepoType = .model, requestTimeout: TimeInterval = 120) {
        self.endpoint = endpoint
        self.token = token
        self.repoType = repoType
        self.http = HTTP(timeout: requestTimeout)
        self.apiDuration = requestTimeout * 5
    }

    /// The longest one small JSON exchange with the hub (repo creation, preupload, LFS batch) may
    /// take: 5 × `requestTimeout`. Transfers and the commit (whose body carries the regular files)
    /// have only the slowness limit (1 KiB/s averaged over `requestTimeout`).
    let apiDuration: TimeInterval

    public var description: String {
        "HubClient(\(Redact.url(endpoint)), token: \(token == nil ? "none" : "set"))"
    }

    // MARK: Repositories

    /// Creates the repository; an existing one (HTTP 409) is fine. Returns whether it was created.
    @discardableResult
    public func createRepo(_ id: String, private isPrivate: Bool = false) throws -> Bool {
        let repo = try RepoID(id)
        var body: [String: Any] = ["name": repo.name, "type": repoType.rawValue, "private": isPrivate]
        if let owner = repo.owner { body["organization"] = owner }
        let url = endpoint.appendingPathComponent("api/repos/create")
        let r = try hubRequest("POST", url, json: body, repo: repo, maxDuration: apiDuration)
        if r.status == 409 { return false }
        try check(r, "POST", url, repo: repo)
        return true
    }

    // MARK: Upload

    /// Pushes every file of `folder` (recursively; `last-checkpoint/model.safetensors` keeps its
    /// relative path) as one commit on `revision`, and deletes `deleting` (paths in the repo).
    /// Files the hub already has with the same content are not sent; when nothing changed, no
    /// commit is made (`commitOid` is nil).
    public func upload(folder: String, repo id: String, revision: String = "main", message: String,
                       description: String = "", deleting: [String] = []) throws -> CommitResult {
        let repo = try RepoID(id)
        let files = try FolderListing.files(in: folder)
        let plans = try preupload(files, repo: repo, revision: revision)
        let preuploadURL = Redact.url(apiURL(repo, "preupload", revision))

        // Hash each file the way its upload mode names it, and drop what the hub already has.
        var regular: [(FolderListing.Entry, String)] = []
        var lfs: [(FolderListing.Entry, String)] = []
        var unchanged: [String] = []
        var regularBytes: Int64 = 0
        for f in files {
            let plan = plans[f.relative]!
            if plan.shouldIgnore { continue }
            // Regular files are read whole and base64-encoded in memory: the server's choice is
            // bounded before anything is read.
            if !plan.lfs && f.size > Self.maxRegularFileBytes {
                throw HubError.badResponse(url: preuploadURL, reason: "the hub asks for \(f.relative) (\(f.size) bytes) as a regular file, "
                                           + "sent in memory inside the commit; more than \(Self.maxRegularFileBytes >> 20) MiB is refused")
            }
            let oid = try plan.lfs ? Hashing.sha256Hex(fileAt: f.absolute) : Hashing.gitBlobSHA1(fileAt: f.absolute)
            if let remote = plan.oid, remote == oid { unchanged.append(f.relative); continue }
            if plan.lfs { lfs.append((f, oid)) } else {
                regular.append((f, oid))
                regularBytes += f.size  // each at most maxRegularFileBytes: no overflow
                if regularBytes > Self.maxRegularCommitBytes {
                    throw HubError.badResponse(url: preuploadURL, reason: "the hub asks for more than \(Self.maxRegularCommitBytes >> 20) MiB "
                                               + "of regular files (sent in memory inside the commit), \(f.relative) included; refused")
                }
            }
        }
        if regular.isEmpty && lfs.isEmpty && deleting.isEmpty {
            return CommitResult(commitOid: nil, commitURL: nil, uploaded: [], unchanged: unchanged)
        }

        let transferred = try uploadLFS(lfs, repo: repo, revision: revision)

        // The NDJSON commit: header first, then regular files (base64), LFS pointers, deletions.
        var lines: [[String: Any]] = [["key": "header", "value": ["summary": message, "description": description]]]
        for (f, _) in regular {
            let data: Data
            // At most the size it was listed (and hashed) with: a file replaced or grown since is refused.
            do { data = try SmallFile.read(f.absolute, limit: Int(f.size)) } catch .tooLarge {
                throw HubError.io(path: f.absolute, reason: "changed while being pushed: larger than the \(f.size) bytes it was listed with")
            } catch {
                throw HubError.io(path: f.absolute, reason: error.description)
            }
            lines.append(["key": "file", "value": ["path": f.relative, "content": data.base64EncodedString(), "encoding": "base64"]])
        }
        for (f, oid) in lfs {
            lines.append(["key": "lfsFile", "value": ["path": f.relative, "algo": "sha256", "size": f.size, "oid": oid]])
        }
        for path in deleting { lines.append(["key": "deletedFile", "value": ["path": path]]) }
        var body = Data()
        for line in lines { body.append(JSON.encode(line)); body.append(0x0A) }

        let url = apiURL(repo, "commit", revision)
        let r = try hubRequest("POST", url, body: body, contentType: "application/x-ndjson", repo: repo)
        try check(r, "POST", url, repo: repo)
        guard let answer = JSON.object(r.body), let commitOid = answer["commitOid"] as? String else {
            throw HubError.badResponse(url: Redact.url(url), reason: "no commitOid in the commit answer")
        }
        return CommitResult(commitOid: commitOid, commitURL: answer["commitUrl"] as? String,
                            uploaded: (regular + lfs).map(\.0.relative).sorted(), unchanged: unchanged,
                            lfsTransferred: transferred, deleted: deleting)
    }

    struct UploadPlan {
        var lfs: Bool
        var oid: String?
        var shouldIgnore: Bool
    }

    /// Step 1: sizes and 512-byte samples → per file `uploadMode` and the oid the hub has, if any.
    func preupload(_ files: [FolderListing.Entry], repo: RepoID, revision: String) throws -> [String: UploadPlan] {
        let url = apiURL(repo, "preupload", revision)
        var plans: [String: UploadPlan] = [:]
        for start in stride(from: 0, to: files.count, by: Self.batchSize) {
            let batch = files[start..<min(start + Self.batchSize, files.count)]
            var entries: [[String: Any]] = []
            for f in batch {
                entries.append(["path": f.relative, "size": f.size, "sample": try sample(f.absolute).base64EncodedString()])
            }
            let r = try hubRequest("POST", url, json: ["files": entries], repo: repo, maxDuration: apiDuration)
            try check(r, "POST", url, repo: repo)
            guard let answer = JSON.object(r.body), let list = answer["files"] as? [[String: Any]] else {
                throw HubError.badResponse(url: Redact.url(url), reason: "no 'files' list in the preupload answer")
            }
            for item in list {
                guard let path = item["path"] as? String, let mode = item["uploadMode"] as? String,
                      mode == "lfs" || mode == "regular" else {
                    throw HubError.badResponse(url: Redact.url(url), reason: "a preupload entry without path or a known uploadMode")
                }
                plans[path] = UploadPlan(lfs: mode == "lfs", oid: item["oid"] as? String,
                                         shouldIgnore: item["shouldIgnore"] as? Bool ?? false)
            }
            for f in batch where plans[f.relative] == nil {
                throw HubError.badResponse(url: Redact.url(url), reason: "the preupload answer does not mention \(f.relative)")
            }
        }
        return plans
    }

    /// The first 512 bytes of a file.
    func sample(_ path: String) throws -> Data {
        guard let h = FileHandle(forReadingAtPath: path) else { throw HubError.io(path: path, reason: "cannot open") }
        defer { try? h.close() }
        do { return try h.read(upToCount: 512) ?? Data() } catch {
            throw HubError.io(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
    }

    /// Step 3: the LFS batch request and the transfers it asks for. Returns the paths whose bytes
    /// were sent (objects the storage already has are not; one path per distinct object).
    func uploadLFS(_ files: [(FolderListing.Entry, String)], repo: RepoID, revision: String) throws -> [String] {
        // Identical files (model.safetensors and last-checkpoint/model.safetensors) are one object.
        var seen = Set<String>()
        let files = files.filter { seen.insert($0.1).inserted }
        guard !files.isEmpty else { return [] }
        let url = endpoint.appendingPathComponent("\(repoType.gitPrefix)\(repo).git/info/lfs/objects/batch")
        var transferred: [String] = []
        for start in stride(from: 0, to: files.count, by: Self.batchSize) {
            let batch = Array(files[start..<min(start + Self.batchSize, files.count)])
            let request: [String: Any] = [
                "operation": "upload", "transfers": ["basic", "multipart"], "hash_algo": "sha_256",
                "ref": ["name": revision],
                "objects": batch.map { ["oid": $0.1, "size": $0.0.size] as [String: Any] },
            ]
            let r = try hubRequest("POST", url, body: JSON.encode(request), contentType: "application/vnd.git-lfs+json",
                                   accept: "application/vnd.git-lfs+json", repo: repo, maxDuration: apiDuration)
            try check(r, "POST", url, repo: repo)
            guard let answer = JSON.object(r.body), let objects = answer["objects"] as? [[String: Any]] else {
                throw HubError.badResponse(url: Redact.url(url), reason: "no 'objects' in the LFS batch answer")
            }
            var byOid: [String: FolderListing.Entry] = [:]
            for (f, oid) in batch { byOid[oid] = f }
            for obj in objects {
                guard let oid = obj["oid"] as? String, let file = byOid[oid] else {
                    throw HubError.badResponse(url: Redact.url(url), reason: "an LFS object that was not asked for")
                }
                if let err = obj["error"] as? [String: Any] {
                    let code = err["code"].map { "\($0)" } ?? "?"
                    throw HubError.lfsObject(path: file.relative, reason: Redact.text("\(code) \(err["message"] as? String ?? "")", secret: token?.value))
                }
                guard let actions = obj["actions"] as? [String: Any], let upload = actions["upload"] as? [String: Any] else {
                    continue  // the storage already has these bytes
                }
                guard let hrefText = upload["href"] as? String, let href = URL(string: hrefText) else {
                    throw HubError.badResponse(url: Redact.url(url), reason: "an upload action without href for \(file.relative)")
                }
                let header = (upload["header"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
                if let chunk = header["chunk_size"] {
                    try uploadMultipart(file, oid: oid, completion: href, header: header, chunkSize: chunk)
                } else {
                    try uploadBasic(file, to: href, header: header)
                }
                transferred.append(file.relative)
            }
        }
        return transferred.sorted()
    }

    /// One PUT of the whole file (streamed from disk), with the action's headers.
    func uploadBasic(_ file: FolderListing.Entry, to href: URL, header: [String: String]) throws {
        let r = try http.send("PUT", href, headers: header, body: .file(file.absolute))
        try check(r, "PUT", href, repo: nil)
    }

    /// Multipart: every `chunk_size` bytes to the URL of its part number, then the ETags to `href`.
    /// The header's keys that are digits name the parts: each must be a plain decimal number
    /// (no sign, no leading zero), and they must be exactly 1…⌈size / chunk_size⌉.
    func uploadMultipart(_ file: FolderListing.Entry, oid: String, completion: URL, header: [String: String],
                         chunkSize text: String) throws {
        let answerURL = Redact.url(completion)
        guard let chunkSize = Int64(text), chunkSize > 0 else {
            throw HubError.badResponse(url: answerURL, reason: "chunk_size '\(text.prefix(40))' is not a positive integer")
        }
        guard chunkSize <= Self.maxChunkBytes else {
            throw HubError.badResponse(url: answerURL, reason: "chunk_size \(chunkSize) for \(file.relative) is over the \(Self.maxChunkBytes >> 20) MiB "
                                       + "one part may hold in memory")
        }
        var partURLs: [Int64: String] = [:]
        for (key, value) in header where !key.isEmpty && key.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            guard key.utf8.first != 0x30, let n = Int64(key) else {
                throw HubError.badResponse(url: answerURL, reason: "part number '\(key.prefix(40))' for \(file.relative) is not a plain positive decimal")
            }
            partURLs[n] = value
        }
        // ⌈size / chunkSize⌉ without overflow (size + chunkSize - 1 can pass Int64.max).
        let expected = file.size / chunkSize + (file.size % chunkSize == 0 ? 0 : 1)
        let parts = partURLs.keys.sorted()
        // Distinct positive numbers: as many as expected, the largest `expected` ⇔ exactly 1…expected.
        guard Int64(parts.count) == expected, parts.last ?? 0 == expected else {
            throw HubError.badResponse(url: answerURL,
                                       reason: "\(parts.count) part URLs for \(file.relative), which needs \(expected) of \(chunkSize) bytes")
        }
        guard let handle = FileHandle(forReadingAtPath: file.absolute) else {
            throw HubError.io(path: file.absolute, reason: "cannot open")
        }
        defer { try? handle.close() }
        var etags: [[String: Any]] = []
        for n in parts {
            guard let text = partURLs[n], let partURL = URL(string: text) else {
                throw HubError.badResponse(url: answerURL, reason: "part \(n) has no valid URL")
            }
            let chunk: Data
            do {
                // n ≤ expected, so (n - 1) × chunkSize < size: no overflow.
                try handle.seek(toOffset: UInt64((n - 1) * chunkSize))
                chunk = try handle.read(upToCount: Int(chunkSize)) ?? Data()
            } catch {
                throw HubError.io(path: file.absolute, reason: "cannot read part \(n): \(error.localizedDescription)")
            }
            let r = try http.send("PUT", partURL, body: .data(chunk))
            try check(r, "PUT", partURL, repo: nil)
            guard let etag = r.header("ETag") else {
                throw HubError.badResponse(url: Redact.url(partURL), reason: "no ETag for part \(n) of \(file.relative)")
            }
            etags.append(["partNumber": n, "etag": etag])
        }
        let body = JSON.encode(["oid": oid, "parts": etags] as [String: Any])
        let r = try http.send("POST", completion, headers: ["Content-Type": "application/vnd.git-lfs+json",
                                                            "Accept": "application/vnd.git-lfs+json"], body: .data(body))
        try check(r, "POST", completion, repo: nil)
    }

    // MARK: Helpers

    func apiURL(_ repo: RepoID, _ action: String, _ revision: String) -> URL {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let rev = revision.addingPercentEncoding(withAllowedCharacters: allowed) ?? revision
        // The revision is already percent-encoded: build the string, not path components.
        return URL(string: endpoint.absoluteString + "/api/\(repoType.apiSegment)/\(repo)/\(action)/\(rev)")!
    }

    /// A request to the hub itself: the only kind that carries the token.
    /// `maxDuration`: the whole exchange's limit (small JSON requests); nil: only the stall limit.
    func hubRequest(_ method: String, _ url: URL, json: [String: Any], repo: RepoID?, maxDuration: TimeInterval? = nil) throws -> HTTP.Response {
        try hubRequest(method, url, body: JSON.encode(json), contentType: "application/json", repo: repo, maxDuration: maxDuration)
    }

    func hubRequest(_ method: String, _ url: URL, body: Data, contentType: String, accept: String = "application/json",
                    repo: RepoID?, maxDuration: TimeInterval? = nil) throws -> HTTP.Response {
        var headers = ["Content-Type": contentType, "Accept": accept, "User-Agent": "precis-hub/1"]
        if let token { headers["Authorization"] = "Bearer \(token.value)" }
        return try http.send(method, url, headers: headers, body: .data(body), maxDuration: maxDuration)
    }

    /// Turns a non-2xx answer into a typed error (token redacted from the server's text).
    func check(_ r: HTTP.Response, _ method: String, _ url: URL, repo: RepoID?) throws {
        if r.ok { return }
        switch r.status {
        case 401: throw HubError.authenticationFailed(hub: Redact.url(endpoint))
        case 403: throw HubError.accessDenied(hub: Redact.url(endpoint), repo: repo?.description ?? Redact.url(url))
        default:
            var message = String(decoding: r.body.prefix(2000), as: UTF8.self)
            if let obj = JSON.object(r.body), let e = obj["error"] as? String { message = e }
            message = Redact.text(message, secret: token?.value).trimmingCharacters(in: .whitespacesAndNewlines)
            if message.count > 300 { message = String(message.prefix(300)) + "…" }
            throw HubError.http(status: r.status, method: method, url: Redact.url(url), message: message)
        }
    }
}
