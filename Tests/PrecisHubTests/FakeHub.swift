import Foundation
import PrecisCore

/// A Hugging Face Hub stand-in on a real HTTP server: repo creation, preupload, the LFS batch API
/// (basic and multipart transfers, with their storage endpoints), and NDJSON commits. It records
/// every request and keeps the committed files, so a second push can be told what it already has.
final class FakeHub: @unchecked Sendable {
    typealias Request = TestHTTPServer.Request
    typealias Response = TestHTTPServer.Response

    struct StoredFile { var oid: String; var lfs: Bool; var size: Int }

    /// Files at least this big, and `*.safetensors` / `*.bin`, are LFS.
    static let lfsThreshold = 64 * 1024
    /// LFS objects bigger than this go multipart, in parts of `chunkSize`.
    static let multipartThreshold = 256 * 1024
    static let chunkSize = 100_000

    let token: String?
    private let lock = NSLock()
    private var server: TestHTTPServer!
    private(set) var requests: [Request] = []
    private(set) var repos: Set<String> = []
    private(set) var files: [String: StoredFile] = [:]
    private(set) var lfsObjects: [String: Data] = [:]
    private var parts: [String: [Int: Data]] = [:]
    private var commitCount = 0
    /// Statuses to answer, in order, before serving requests whose path contains the key.
    private var failures: [String: [Int]] = [:]
    /// A status to answer for every request to a path containing the key (with the request's
    /// Authorization header echoed in the body, as a careless server might).
    private var permanent: [String: Int] = [:]

    // Hostile knobs (set through `with`).
    /// The multipart action's `chunk_size` (the parts are still cut by `chunkSize`).
    var chunkSizeText: String?
    /// The header key naming part n (default: n in decimal).
    var partKey: ((Int) -> String)?
    /// Paths the preupload answers "regular" for, whatever their size.
    var forceRegular: Set<String> = []

    var baseURL: String { server.baseURL }

    init(token: String?) throws {
        self.token = token
        // Weak: a connection the server accepted just before this hub went away (a client's late
        // retry, or another test's client that the kernel gave this server's port) is answered 503
        // instead of reaching a freed hub.
        server = try TestHTTPServer { [weak self] in self?.handle($0) ?? .text("this hub has stopped", status: 503) }
    }

    deinit { server?.stop() }

    func stop() { server.stop() }

    func failNext(_ pathPart: String, with statuses: [Int]) { lock.withLock { failures[pathPart, default: []] += statuses } }
    func failAlways(_ pathPart: String, with status: Int) { lock.withLock { permanent[pathPart] = status } }
    func with(_ body: (FakeHub) -> Void) { lock.withLock { body(self) } }

    var recorded: [Request] { lock.withLock { requests } }
    var storedFiles: [String: StoredFile] { lock.withLock { files } }
    var storedObjects: [String: Data] { lock.withLock { lfsObjects } }

    /// Requests to the hub API and git endpoints (the ones that must carry the token).
    var hubRequests: [Request] { recorded.filter { $0.path.hasPrefix("/api/") || $0.path.contains(".git/") } }
    /// Requests to LFS storage (the ones that must not).
    var storageRequests: [Request] { recorded.filter { $0.path.hasPrefix("/storage/") } }

    private func handle(_ r: Request) -> Response {
        lock.lock()
        defer { lock.unlock() }
        requests.append(r)
        for (part, statuses) in failures where r.path.contains(part) && !statuses.isEmpty {
            failures[part]!.removeFirst()
            return .json(["error": "injected failure"], status: statuses[0])
        }
        for (part, status) in permanent where r.path.contains(part) {
            return .json(["error": "refused; you sent: \(r.header("Authorization") ?? "nothing")"], status: status)
        }
        if r.path.hasPrefix("/storage/") { return storage(r) }
        if let token, r.header("Authorization") != "Bearer \(token)" {
            return .json(["error": "Invalid credentials in Authorization header"], status: 401)
        }
        let p = r.path
        if r.method == "POST" && p == "/api/repos/create" { return createRepo(r) }
        if r.method == "POST", p.hasPrefix("/api/models/"), let i = p.range(of: "/preupload/") {
            return preupload(r, repo: String(p[p.index(p.startIndex, offsetBy: 12)..<i.lowerBound]))
        }
        if r.method == "POST", p.hasPrefix("/api/models/"), let i = p.range(of: "/commit/") {
            return commit(r, repo: String(p[p.index(p.startIndex, offsetBy: 12)..<i.lowerBound]))
        }
        if r.method == "POST" && p.hasSuffix(".git/info/lfs/objects/batch") { return batch(r) }
        return .json(["error": "no route for \(r.method) \(p)"], status: 404)
    }

    private func json(_ r: Request) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: r.body)) as? [String: Any] ?? [:]
    }

    private func createRepo(_ r: Request) -> Response {
        let body = json(r)
        let name = [body["organization"] as? String, body["name"] as? String].compactMap { $0 }.joined(separator: "/")
        if repos.contains(name) { return .json(["error": "You already created this model repo"], status: 409) }
        repos.insert(name)
        return .json(["url": "\(baseURL)/\(name)"])
    }

    private func preupload(_ r: Request, repo: String) -> Response {
        guard repos.contains(repo) else { return .json(["error": "Repository not found"], status: 404) }
        let list = json(r)["files"] as? [[String: Any]] ?? []
        var out: [[String: Any]] = []
        for f in list {
            let path = f["path"] as! String
            let size = f["size"] as! Int
            let lfs = !forceRegular.contains(path) && (path.hasSuffix(".safetensors") || path.hasSuffix(".bin") || size >= Self.lfsThreshold)
            var entry: [String: Any] = ["path": path, "uploadMode": lfs ? "lfs" : "regular", "shouldIgnore": false]
            if let stored = files[path] { entry["oid"] = stored.oid }
            out.append(entry)
        }
        return .json(["files": out])
    }

    private func batch(_ r: Request) -> Response {
        let objects = json(r)["objects"] as? [[String: Any]] ?? []
        var out: [[String: Any]] = []
        var multipart = false
        for o in objects {
            let oid = o["oid"] as! String, size = o["size"] as! Int
            var entry: [String: Any] = ["oid": oid, "size": size]
            if lfsObjects[oid] == nil {
                if size > Self.multipartThreshold {
                    multipart = true
                    var header: [String: String] = ["chunk_size": chunkSizeText ?? String(Self.chunkSize)]
                    for n in 1...((size + Self.chunkSize - 1) / Self.chunkSize) {
                        header[partKey?(n) ?? String(n)] = "\(baseURL)/storage/part/\(oid)/\(n)?X-Amz-Signature=secret\(n)"
                    }
                    entry["actions"] = ["upload": ["href": "\(baseURL)/storage/complete/\(oid)?uploadId=u1", "header": header]]
                } else {
                    entry["actions"] = ["upload": ["href": "\(baseURL)/storage/put/\(oid)?X-Amz-Signature=secret",
                                                   "header": ["x-amz-meta-test": "basic"]]]
                }
            }
            out.append(entry)
        }
        return .json(["transfer": multipart ? "multipart" : "basic", "objects": out])
    }

    private func storage(_ r: Request) -> Response {
        let comps = r.path.split(separator: "/").map(String.init)  // storage, kind, oid, [n]
        guard comps.count >= 3 else { return .text("bad storage path", status: 400) }
        let oid = comps[2]
        switch (r.method, comps[1]) {
        case ("PUT", "put"):
            guard Hashing.sha256Hex(r.body) == oid else { return .text("sha256 mismatch", status: 400) }
            lfsObjects[oid] = r.body
            return Response(status: 200)
        case ("PUT", "part"):
            let n = Int(comps[3])!
            parts[oid, default: [:]][n] = r.body
            return Response(status: 200, headers: ["ETag": "\"etag-\(n)-\(Hashing.sha1Hex(r.body).prefix(8))\""])
        case ("POST", "complete"):
            let body = json(r)
            let list = body["parts"] as? [[String: Any]] ?? []
            var data = Data()
            for (i, p) in list.enumerated() {
                let n = p["partNumber"] as! Int
                guard n == i + 1, let chunk = parts[oid]?[n],
                      p["etag"] as? String == "\"etag-\(n)-\(Hashing.sha1Hex(chunk).prefix(8))\"" else {
                    return .text("bad part list", status: 400)
                }
                data.append(chunk)
            }
            guard body["oid"] as? String == oid, Hashing.sha256Hex(data) == oid else { return .text("sha256 mismatch", status: 400) }
            lfsObjects[oid] = data
            return .json(["ok": true])
        default:
            return .text("bad storage request", status: 400)
        }
    }

    /// The NDJSON lines of a commit request.
    static func lines(_ r: Request) -> [[String: Any]] {
        r.body.split(separator: 0x0A).map { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] ?? [:] }
    }

    private func commit(_ r: Request, repo: String) -> Response {
        let lines = Self.lines(r)
        guard lines.first?["key"] as? String == "header" else { return .json(["error": "header first"], status: 400) }
        for line in lines.dropFirst() {
            let v = line["value"] as? [String: Any] ?? [:]
            let path = v["path"] as? String ?? ""
            switch line["key"] as? String {
            case "file":
                guard let content = Data(base64Encoded: v["content"] as? String ?? "") else {
                    return .json(["error": "bad base64"], status: 400)
                }
                files[path] = StoredFile(oid: Hashing.gitBlobSHA1(data: content), lfs: false, size: content.count)
            case "lfsFile":
                let oid = v["oid"] as? String ?? "", size = v["size"] as? Int ?? -1
                guard let object = lfsObjects[oid], object.count == size else {
                    return .json(["error": "LFS object \(oid) not uploaded"], status: 422)
                }
                files[path] = StoredFile(oid: oid, lfs: true, size: size)
            case "deletedFile":
                files[path] = nil
            default:
                return .json(["error": "unknown key"], status: 400)
            }
        }
        commitCount += 1
        let oid = String(format: "%040x", commitCount)
        return .json(["commitOid": oid, "commitUrl": "\(baseURL)/\(repo)/commit/\(oid)"])
    }
}
