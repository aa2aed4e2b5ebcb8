import Foundation
import Testing
import PrecisCore
import PrecisHub
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

private let token = "hf_testTOKEN1234567890abcdef"

private func randomData(_ n: Int, seed: UInt64) -> Data {
    var x = seed &* 0x9E3779B97F4A7C15 | 1
    var bytes = [UInt8](repeating: 0, count: n)
    for i in 0..<n {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        bytes[i] = UInt8(truncatingIfNeeded: x)
    }
    return Data(bytes)
}

private func write(_ data: Data, _ dir: String, _ rel: String) throws {
    let path = (dir as NSString).appendingPathComponent(rel)
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try data.write(to: URL(fileURLWithPath: path))
}

/// A model folder as Trainer pushes it with `hub_strategy: checkpoint`, plus temporaries that must
/// not be uploaded.
private func modelFolder() throws -> (dir: String, files: [String: Data]) {
    let dir = TestData.tempDir("folder")
    let weights = randomData(350_123, seed: 1)  // LFS, multipart (4 parts of 100 000)
    let files: [String: Data] = [
        "README.md": Data("# a model\n".utf8),
        "config.json": Data("{\"model_type\": \"bart\", \"d_model\": 256}\n".utf8),
        "model.safetensors": weights,
        "training_args.bin": randomData(5000, seed: 2),  // LFS, basic
        "tokenizer.json": randomData(70_000, seed: 3).base64EncodedData(),  // LFS by size
        "last-checkpoint/model.safetensors": weights,  // the same object as model.safetensors
        "last-checkpoint/trainer_state.json": Data("{\"global_step\": 500}\n".utf8),
    ]
    for (rel, data) in files { try write(data, dir, rel) }
    try write(Data("partial".utf8), dir, ".tmp-checkpoint-500-4242/model.safetensors")
    try write(Data("partial".utf8), dir, "config.json.tmp-4242")
    return (dir, files)
}

final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}

@Suite struct HubDestinationTests {
    @Test func parsesHubURLs() throws {
        #expect(try HubDestination(parsing: "https://huggingface.co/") == .http(URL(string: "https://huggingface.co")!))
        #expect(try HubDestination(parsing: "http://127.0.0.1:8080") == .http(URL(string: "http://127.0.0.1:8080")!))
        #expect(try HubDestination(parsing: "file:///srv/hub") == .directory("/srv/hub"))
        for bad in ["huggingface.co", "ftp://x/y", "file://relative/path", "", "https://user:pw@host"] {
            #expect(throws: HubError.self) { try HubDestination(parsing: bad) }
        }
    }

    @Test func checksRepositoryIDs() throws {
        #expect(try RepoID("precis/bart-small-samsum").owner == "precis")
        #expect(try RepoID("bart_small.v2").owner == nil)
        for bad in ["a/b/c", "../etc", "a/..", "-x", "x-", "a--b", "a b", "", "owner/"] {
            #expect(throws: HubError.self) { try RepoID(bad) }
        }
    }

    @Test func tokensComeFromConfigThenEnvironmentAndNeverPrint() throws {
        #expect(HubToken.resolve(configured: "hf_a", environment: ["HF_TOKEN": "hf_b"])?.value == "hf_a")
        #expect(HubToken.resolve(configured: "  ", environment: ["HF_TOKEN": "hf_b"])?.value == "hf_b")
        #expect(HubToken.resolve(configured: nil, environment: ["HUGGING_FACE_HUB_TOKEN": "hf_c"])?.value == "hf_c")
        #expect(HubToken.resolve(configured: nil, environment: [:]) == nil)
        let t = HubToken(token)
        let repo = try HubRepository(destination: .http(URL(string: "https://hub.example")!), repo: "o/m", token: t)
        for text in ["\(t)", String(reflecting: t), "\(repo)", String(reflecting: repo),
                     HubClient(endpoint: URL(string: "https://hub.example")!, token: t).description] {
            #expect(!text.contains(token), "\(text)")
        }
        var dumped = ""
        dump(repo, to: &dumped)
        #expect(!dumped.contains(token))
        #expect(Redact.text("Authorization: Bearer \(token) and hf_abcdefgh1234") == "Authorization: Bearer [REDACTED] and hf_[REDACTED]")
        #expect(Redact.url(URL(string: "https://s3.example/x?X-Amz-Signature=abc")!) == "https://s3.example/x")
    }
}

@Suite struct HubClientTests {
    @Test func uploadsAFolderWithRegularBasicAndMultipartFiles() throws {
        let hub = try FakeHub(token: token)
        defer { hub.stop() }
        let (dir, files) = try modelFolder()
        let client = HubClient(endpoint: URL(string: hub.baseURL)!, token: HubToken(token))
        #expect(try client.createRepo("precis/bart-samsum", private: true))
        #expect(try client.createRepo("precis/bart-samsum") == false)  // 409: exists, fine
        let result = try client.upload(folder: dir, repo: "precis/bart-samsum", message: "Training in progress, step 500")

        #expect(result.commitOid != nil)
        #expect(result.commitURL?.hasPrefix(hub.baseURL + "/precis/bart-samsum/commit/") == true)
        #expect(result.uploaded == files.keys.sorted())
        #expect(result.unchanged.isEmpty)
        #expect(result.lfsTransferred == ["last-checkpoint/model.safetensors", "tokenizer.json", "training_args.bin"])

        // Repo creation: name and organization split, private flag.
        let create = hub.recorded.first { $0.path == "/api/repos/create" }!
        let createBody = try JSONSerialization.jsonObject(with: create.body) as! [String: Any]
        #expect(createBody["name"] as? String == "bart-samsum" && createBody["organization"] as? String == "precis")
        #expect(createBody["type"] as? String == "model" && createBody["private"] as? Bool == true)

        // The token goes to the hub, never to storage.
        #expect(hub.hubRequests.count >= 5)
        #expect(hub.hubRequests.allSatisfy { $0.header("Authorization") == "Bearer \(token)" })
        #expect(!hub.storageRequests.isEmpty)
        #expect(hub.storageRequests.allSatisfy { $0.header("Authorization") == nil })

        // Preupload: every file (temporaries excluded) with its size and a 512-byte sample.
        let pre = hub.recorded.filter { $0.path == "/api/models/precis/bart-samsum/preupload/main" }
        #expect(pre.count == 1)
        let preFiles = (try JSONSerialization.jsonObject(with: pre[0].body) as! [String: Any])["files"] as! [[String: Any]]
        #expect(preFiles.map { $0["path"] as! String }.sorted() == files.keys.sorted())
        for f in preFiles {
            let data = files[f["path"] as! String]!
            #expect(f["size"] as? Int == data.count)
            #expect(Data(base64Encoded: f["sample"] as! String) == data.prefix(512))
        }

        // LFS batch: distinct objects, sha256 oids and sizes of the files.
        let batch = hub.recorded.filter { $0.path == "/precis/bart-samsum.git/info/lfs/objects/batch" }
        #expect(batch.count == 1)
        #expect(batch[0].header("Content-Type") == "application/vnd.git-lfs+json")
        #expect(batch[0].header("Accept") == "application/vnd.git-lfs+json")
        let batchBody = try JSONSerialization.jsonObject(with: batch[0].body) as! [String: Any]
        #expect(batchBody["operation"] as? String == "upload" && batchBody["hash_algo"] as? String == "sha_256")
        #expect(batchBody["transfers"] as? [String] == ["basic", "multipart"])
        #expect((batchBody["ref"] as? [String: Any])?["name"] as? String == "main")
        let objects = batchBody["objects"] as! [[String: Any]]
        let lfsFiles = ["model.safetensors", "tokenizer.json", "training_args.bin"]
        #expect(Set(objects.map { $0["oid"] as! String }) == Set(lfsFiles.map { Hashing.sha256Hex(files[$0]!) }))
        #expect(objects.count == 3)
        for o in objects {
            let name = lfsFiles.first { Hashing.sha256Hex(files[$0]!) == o["oid"] as! String }!
            #expect(o["size"] as? Int == files[name]!.count)
        }

        // Multipart: four parts of at most 100 000 bytes that reassemble to the weights; basic: one
        // PUT with the action's header.
        let weightsOid = Hashing.sha256Hex(files["model.safetensors"]!)
        let partPuts = hub.storageRequests.filter { $0.path.hasPrefix("/storage/part/\(weightsOid)/") }
            .sorted { Int($0.path.split(separator: "/").last!)! < Int($1.path.split(separator: "/").last!)! }
        #expect(partPuts.count == 4)
        #expect(partPuts.map(\.body.count) == [100_000, 100_000, 100_000, 50_123])
        #expect(partPuts.reduce(Data()) { $0 + $1.body } == files["model.safetensors"]!)
        #expect(hub.storedObjects[weightsOid] == files["model.safetensors"]!)
        let binOid = Hashing.sha256Hex(files["training_args.bin"]!)
        let put = hub.storageRequests.first { $0.path == "/storage/put/\(binOid)" }!
        #expect(put.method == "PUT" && put.body == files["training_args.bin"]! && put.header("x-amz-meta-test") == "basic")
        // Storage (S3) needs Content-Length, not chunked transfer encoding.
        #expect(put.header("Content-Length") == "5000" && put.header("Transfer-Encoding") == nil)
        #expect(partPuts.map { $0.header("Content-Length") } == ["100000", "100000", "100000", "50123"])

        // The commit: header first, base64 regular files, LFS pointers with oid and size.
        let commits = hub.recorded.filter { $0.path == "/api/models/precis/bart-samsum/commit/main" }
        #expect(commits.count == 1)
        #expect(commits[0].header("Content-Type") == "application/x-ndjson")
        let lines = FakeHub.lines(commits[0])
        #expect(lines.first?["key"] as? String == "header")
        #expect((lines.first?["value"] as? [String: Any])?["summary"] as? String == "Training in progress, step 500")
        var regular: [String: Data] = [:], pointers: [String: (String, Int)] = [:]
        for line in lines.dropFirst() {
            let v = line["value"] as! [String: Any]
            switch line["key"] as! String {
            case "file":
                #expect(v["encoding"] as? String == "base64")
                regular[v["path"] as! String] = Data(base64Encoded: v["content"] as! String)
            case "lfsFile":
                #expect(v["algo"] as? String == "sha256")
                pointers[v["path"] as! String] = (v["oid"] as! String, v["size"] as! Int)
            default: Issue.record("unexpected line \(line)")
            }
        }
        #expect(Set(regular.keys) == ["README.md", "config.json", "last-checkpoint/trainer_state.json"])
        for (path, data) in regular { #expect(data == files[path]) }
        #expect(Set(pointers.keys) == ["model.safetensors", "last-checkpoint/model.safetensors", "tokenizer.json", "training_args.bin"])
        for (path, p) in pointers { #expect(p.0 == Hashing.sha256Hex(files[path]!) && p.1 == files[path]!.count) }
    }

    @Test func unchangedFilesAreSkipped() throws {
        let hub = try FakeHub(token: token)
        defer { hub.stop() }
        let (dir, files) = try modelFolder()
        let client = HubClient(endpoint: URL(string: hub.baseURL)!, token: HubToken(token))
        try client.createRepo("m")
        _ = try client.upload(folder: dir, repo: "m", message: "first")
        let before = hub.recorded.count

        // Nothing changed: preupload reports every oid, no transfer and no commit follow.
        let same = try client.upload(folder: dir, repo: "m", message: "again")
        #expect(same.commitOid == nil && same.uploaded.isEmpty && same.unchanged == files.keys.sorted())
        #expect(hub.recorded.dropFirst(before).map(\.path) == ["/api/models/m/preupload/main"])

        // One regular file changed: the commit carries only it.
        try write(Data("{\"model_type\": \"bart\", \"d_model\": 512}\n".utf8), dir, "config.json")
        let one = try client.upload(folder: dir, repo: "m", message: "config")
        #expect(one.uploaded == ["config.json"] && one.unchanged.count == files.count - 1)
        let commit = hub.recorded.filter { $0.path == "/api/models/m/commit/main" }.last!
        let lines = FakeHub.lines(commit)
        #expect(lines.count == 2 && (lines[1]["value"] as! [String: Any])["path"] as? String == "config.json")
        #expect(!hub.recorded.dropFirst(before).contains { $0.path.contains("lfs") || $0.path.hasPrefix("/storage/") })
        #expect(hub.storedFiles["config.json"]?.oid == (try Hashing.gitBlobSHA1(fileAt: dir + "/config.json")))

        // A new LFS object whose bytes the storage already has: the batch answers without an action.
        try write(files["training_args.bin"]!, dir, "copy.bin")
        let copy = try client.upload(folder: dir, repo: "m", message: "copy")
        #expect(copy.uploaded == ["copy.bin"] && copy.lfsTransferred.isEmpty)
        #expect(hub.storedFiles["copy.bin"]?.lfs == true)
    }

    @Test func preuploadGoesInBatchesOfAHundred() throws {
        let hub = try FakeHub(token: nil)
        defer { hub.stop() }
        let dir = TestData.tempDir("many")
        for i in 0..<120 { try write(Data("file \(i)\n".utf8), dir, String(format: "shards/%03d.txt", i)) }
        let client = HubClient(endpoint: URL(string: hub.baseURL)!, token: nil)
        try client.createRepo("many")
        let r = try client.upload(folder: dir, repo: "many", message: "shards")
        #expect(r.uploaded.count == 120 && r.uploaded.first == "shards/000.txt")
        let sizes = hub.recorded.filter { $0.path.contains("/preupload/") }.map {
            ((try! JSONSerialization.jsonObject(with: $0.body) as! [String: Any])["files"] as! [Any]).count
        }
        #expect(sizes == [100, 20])
        #expect(hub.recorded.allSatisfy { $0.header("Authorization") == nil })
    }

    @Test func serverErrorTextsAreRedacted() throws {
        let hub = try FakeHub(token: token)
        defer { hub.stop() }
        hub.failAlways("/preupload/", with: 404)
        let (dir, _) = try modelFolder()
        let client = HubClient(endpoint: URL(string: hub.baseURL)!, token: HubToken(token))
        try client.createRepo("o/m")
        do {
            _ = try client.upload(folder: dir, repo: "o/m", message: "x")
            Issue.record("expected an error")
        } catch let e as HubError {
            guard case .http(404, "POST", _, _) = e else { Issue.record("\(e)"); return }
            #expect(!e.description.contains(token))
            #expect(e.description.contains("[REDACTED]") && e.description.contains("/api/models/o/m/preupload/main"))
            #expect(!e.isRetryable)
        }
    }

    /// Multipart answers that cannot be followed: part keys that are not plain numbers ("01"), a
    /// chunk_size whose arithmetic overflows or that would read a whole file into memory, part
    /// URLs that do not cover the file. Each is an error naming the storage URL and the file.
    @Test func multipartAnswersThatCannotBeFollowedAreErrors() throws {
        let hub = try FakeHub(token: nil)
        defer { hub.stop() }
        let (dir, files) = try modelFolder()
        let client = HubClient(endpoint: URL(string: hub.baseURL)!, token: nil)
        try client.createRepo("o/m")
        let cases: [(chunk: String?, key: ((Int) -> String)?, says: String)] = [
            (nil, { $0 < 10 ? "0\($0)" : "\($0)" }, "part number '0"),
            ("9223372036854775807", nil, "over the 512 MiB"),
            (String(HubClient.maxChunkBytes + 1), nil, "over the 512 MiB"),
            ("1", nil, "4 part URLs for"),  // 350 123 one-byte parts needed, 4 offered
            ("200000", nil, "4 part URLs for"),  // 2 needed
        ]
        for c in cases {
            hub.with { $0.chunkSizeText = c.chunk; $0.partKey = c.key }
            do {
                _ = try client.upload(folder: dir, repo: "o/m", message: "x")
                Issue.record("expected an error for \(c.says)")
            } catch let HubError.badResponse(url, reason) {
                #expect(url.contains("/storage/complete/") && reason.contains(c.says) && reason.contains("model.safetensors"), "\(url): \(reason)")
            }
        }
        #expect(!hub.storageRequests.contains { $0.path.hasPrefix("/storage/part/") })
        #expect(!hub.recorded.contains { $0.path.contains("/commit/") })
        hub.with { $0.chunkSizeText = nil; $0.partKey = nil }
        #expect(try client.upload(folder: dir, repo: "o/m", message: "x").uploaded == files.keys.sorted())
    }

    /// A "regular" file goes base64 inside the commit, in memory: the hub cannot ask for a big one
    /// (or many) that way. Refused before anything is read or sent.
    @Test func regularFilesTooBigForMemoryAreRefused() throws {
        let hub = try FakeHub(token: nil)
        defer { hub.stop() }
        let dir = TestData.tempDir("regular-cap")
        try write(Data("{}".utf8), dir, "config.json")
        func sparse(_ rel: String, _ size: Int64) {  // no disk used, zeros when read
            let fd = open(dir + "/" + rel, O_WRONLY | O_CREAT, 0o644)
            #expect(fd >= 0 && ftruncate(fd, off_t(size)) == 0)
            close(fd)
        }
        let client = HubClient(endpoint: URL(string: hub.baseURL)!, token: nil)
        try client.createRepo("o/m")
        sparse("big.txt", HubClient.maxRegularFileBytes + 1)
        hub.with { $0.forceRegular = ["big.txt"] }
        do {
            _ = try client.upload(folder: dir, repo: "o/m", message: "x")
            Issue.record("expected an error")
        } catch let HubError.badResponse(url, reason) {
            #expect(url.hasSuffix("/api/models/o/m/preupload/main") && reason.contains("big.txt") && reason.contains("64 MiB"), "\(reason)")
        }
        // Each under the cap, together over the commit's.
        unlink(dir + "/big.txt")
        let names = (0..<5).map { "part-\($0).txt" }
        for n in names { sparse(n, 60 << 20) }
        hub.with { $0.forceRegular = Set(names) }
        do {
            _ = try client.upload(folder: dir, repo: "o/m", message: "x")
            Issue.record("expected an error")
        } catch let HubError.badResponse(_, reason) {
            #expect(reason.contains("256 MiB"), "\(reason)")
        }
        #expect(!hub.recorded.contains { $0.path.contains("/commit/") })
    }
}

@Suite struct HubUploaderTests {
    func uploader(_ url: String, token: String?, policy: HubUploader.BusyPolicy = .queue, attempts: Int = 4,
                  log: Lines = Lines()) throws -> HubUploader {
        try HubUploader(hubURL: url, repo: "precis/bart-samsum", token: token, busyPolicy: policy,
                        retry: .init(attempts: attempts, baseDelay: 0.01, maxDelay: 0.05), environment: [:],
                        log: { log.add($0) })
    }

    @Test func retriesServerErrorsThenSucceeds() throws {
        let hub = try FakeHub(token: token)
        defer { hub.stop() }
        hub.failNext("/preupload/", with: [500, 503])
        let (dir, files) = try modelFolder()
        let log = Lines()
        let up = try uploader(hub.baseURL, token: token, log: log)
        #expect(up.submit(folder: dir, message: "step 500"))
        #expect(up.waitUntilIdle(timeout: 60))
        let results = up.results
        #expect(results.count == 1)
        #expect(results[0].succeeded && results[0].attempts == 3)
        #expect(results[0].commit?.uploaded == files.keys.sorted())
        #expect(log.all.filter { $0.contains("retrying") }.count == 2)
        #expect(hub.storedFiles.count == files.count)
        #expect(log.all.allSatisfy { !$0.contains(token) })
    }

    @Test func authenticationFailureIsFinalAndClear() throws {
        let hub = try FakeHub(token: token)
        defer { hub.stop() }
        let (dir, _) = try modelFolder()
        let log = Lines()
        let wrong = "hf_wrongTOKEN0000000000000"
        let up = try uploader(hub.baseURL, token: wrong, log: log)
        up.submit(folder: dir, message: "x")
        #expect(up.waitUntilIdle(timeout: 30))
        let r = up.results[0]
        #expect(r.attempts == 1)  // 401 is not retried
        #expect(r.error == .authenticationFailed(hub: hub.baseURL))
        let text = r.error!.description
        #expect(text == "authentication failed for hub \(hub.baseURL): check hub_token or HF_TOKEN")
        #expect((log.all + [text]).allSatisfy { !$0.contains(wrong) && !$0.contains(token) })
    }

    @Test func networkErrorsAreRetriedThenReported() throws {
        let closedPort = try RefusedPort()  // nothing listens there
        defer { closedPort.close() }
        let url = "http://127.0.0.1:\(closedPort.port)"
        let (dir, _) = try modelFolder()
        let up = try uploader(url, token: nil, attempts: 3)
        up.submit(folder: dir, message: "x")
        #expect(up.waitUntilIdle(timeout: 60))
        let r = up.results[0]
        #expect(r.attempts == 3)
        guard case .network? = r.error else { Issue.record("\(String(describing: r.error))"); return }
    }

    /// A pusher whose pushes wait until the test opens its gate, to watch the busy policy (a
    /// sleeping pusher raced the test thread on a loaded machine).
    struct GatedPusher: HubPusher {
        let gate = DispatchSemaphore(value: 0)
        func open() { gate.signal() }
        func push(folder: String, message: String) throws -> CommitResult {
            gate.wait()
            gate.signal()  // the gate stays open for the pushes after this one
            return CommitResult(commitOid: message, commitURL: nil, uploaded: [folder])
        }
    }

    @Test func everySaveSkipsWhileAPushRuns() throws {
        let seen = Lines()
        let pusher = GatedPusher()
        let up = HubUploader(pusher: pusher, busyPolicy: .skip,
                             onResult: { seen.add("\($0.message):\($0.succeeded ? "pushed" : "not pushed")") })
        #expect(up.submit(folder: "a", message: "1"))
        #expect(!up.submit(folder: "b", message: "2"))  // skipped: 1 is running
        #expect(up.isBusy)
        #expect(up.submit(folder: "c", message: "3", ifBusy: .queue))  // the final push waits its turn
        pusher.open()
        #expect(up.waitUntilIdle(timeout: 10))
        #expect(!up.isBusy)
        let results = up.results
        #expect(results.map(\.message) == ["2", "1", "3"])
        if case .skipped = results[0].outcome {} else { Issue.record("\(results[0].outcome)") }
        #expect(results[1].commit?.commitOid == "1" && results[2].commit?.commitOid == "3")
        #expect(seen.all == ["2:not pushed", "1:pushed", "3:pushed"])
        // Idle again: the next save is pushed.
        #expect(up.submit(folder: "d", message: "4"))
        #expect(up.waitUntilIdle(timeout: 10) && up.results.last?.commit?.commitOid == "4")
    }

    @Test func waitUntilIdleTimesOut() throws {
        let pusher = GatedPusher()
        let up = HubUploader(pusher: pusher)
        up.submit(folder: "a", message: "1")
        #expect(!up.waitUntilIdle(timeout: 0.05))
        pusher.open()
        #expect(up.waitUntilIdle(timeout: 10))
    }
}

@Suite struct DirectoryHubTests {
    @Test func keepsEveryRevisionAndPointsMainAtTheLatest() throws {
        let root = TestData.tempDir("dirhub")
        let (dir, files) = try modelFolder()
        let log = Lines()
        let up = try HubUploader(hubURL: "file://" + root, repo: "precis/bart-samsum", token: nil, environment: [:],
                                 log: { log.add($0) })
        up.submit(folder: dir, message: "step 500")
        #expect(up.waitUntilIdle(timeout: 30))
        try write(Data("changed\n".utf8), dir, "README.md")
        up.submit(folder: dir, message: "step 1000")
        #expect(up.waitUntilIdle(timeout: 30))
        #expect(up.results.map(\.succeeded) == [true, true])
        #expect(up.results.map { $0.commit?.commitOid } == ["0001", "0002"])

        let hub = DirectoryHub(root: root)
        let repo = "precis/bart-samsum"
        #expect(try hub.revisions(repo: repo) == ["0001", "0002"])
        #expect(try hub.latestRevision(repo: repo) == "0002")
        #expect(String(decoding: FileManager.default.contents(atPath: root + "/precis/bart-samsum/main")!, as: UTF8.self) == "0002\n")
        let first = try hub.revisionPath(repo: repo, revision: "0001")
        let second = try hub.revisionPath(repo: repo, revision: "0002")
        for (rel, data) in files {
            #expect(FileManager.default.contents(atPath: first + "/" + rel) == data)
            #expect(FileManager.default.contents(atPath: second + "/" + rel) == (rel == "README.md" ? Data("changed\n".utf8) : data))
        }
        // Temporaries of the source folder are not copied; no temporaries remain in the hub.
        #expect(!FileManager.default.fileExists(atPath: first + "/config.json.tmp-4242"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/precis/bart-samsum/revisions").sorted() == ["0001", "0002"])

        let entries = try hub.log(repo: repo)
        #expect(entries.map(\.revision) == ["0001", "0002"] && entries.map(\.message) == ["step 500", "step 1000"])
        for e in entries {
            #expect(e.files.map(\.path) == files.keys.sorted())
            for f in e.files {
                let path = try hub.revisionPath(repo: repo, revision: e.revision) + "/" + f.path
                #expect(try Hashing.sha256Hex(fileAt: path) == f.sha256)
                #expect(Int64(FileManager.default.contents(atPath: path)!.count) == f.size)
            }
        }
        #expect(throws: HubError.self) { try hub.push(folder: dir, repo: "../escape", message: "x") }
    }

    /// A link back up the folder (`loop -> ..`) is not walked again: each folder is entered once,
    /// so the push lists each file once (it used to walk `sub/loop/sub/loop/…` until the path could
    /// no longer be resolved, and the push failed). A linked file is pushed as its content.
    @Test func aLinkBackUpTheFolderIsEnteredOnce() throws {
        let root = TestData.tempDir("dirhub-loop")
        let dir = TestData.tempDir("loop-src")
        try write(Data("{}".utf8), dir, "config.json")
        try write(Data("x".utf8), dir, "sub/x.txt")
        #expect(symlink("..", dir + "/sub/loop") == 0)
        #expect(symlink("sub/x.txt", dir + "/linked.txt") == 0)
        let hub = DirectoryHub(root: root)
        _ = try hub.push(folder: dir, repo: "precis/loop", message: "m")
        let entry = try #require(try hub.log(repo: "precis/loop").first)
        #expect(entry.files.map(\.path) == ["config.json", "linked.txt", "sub/x.txt"])
    }

    /// Folders in revisions/ that are not ASCII numbers are not revisions, whatever Unicode calls
    /// them ("½", "١"); a number with no successor is an error naming its folder.
    @Test func oddRevisionFolderNamesAreIgnoredOrRefused() throws {
        let root = TestData.tempDir("dirhub-odd")
        let src = TestData.tempDir("odd-src")
        try write(Data("{}".utf8), src, "config.json")
        let hub = DirectoryHub(root: root)
        _ = try hub.push(folder: src, repo: "o/m", message: "first")
        let revisions = root + "/o/m/revisions"
        for name in ["½", "١", "٣٤", "12a", "99999999999999999999999"] {
            try FileManager.default.createDirectory(atPath: revisions + "/" + name, withIntermediateDirectories: false)
        }
        #expect(try hub.revisions(repo: "o/m") == ["0001"])
        #expect(try hub.push(folder: src, repo: "o/m", message: "second").commitOid == "0002")
        try FileManager.default.createDirectory(atPath: revisions + "/9223372036854775807", withIntermediateDirectories: false)
        #expect(try hub.revisions(repo: "o/m") == ["0001", "0002", "9223372036854775807"])
        do {
            _ = try hub.push(folder: src, repo: "o/m", message: "third")
            Issue.record("expected an error")
        } catch let HubError.io(path, reason) {
            #expect(path == revisions + "/9223372036854775807" && reason.contains("no revision number follows"), "\(path): \(reason)")
        }
        #expect(try !FileManager.default.contentsOfDirectory(atPath: revisions).contains { $0.hasPrefix(".tmp") })
        #expect(try hub.latestRevision(repo: "o/m") == "0002")
    }
}

@Suite struct ModelCardTests {
    /// A results section goes before "Model description", replaces one of the same heading (and
    /// nothing else), and is appended to a card without that section.
    @Test func aResultsSectionIsInsertedOnceAndReplaced() {
        let card = ModelCard.render(modelName: "m", license: "cc-by-nc-nd-4.0")
        let m = ModelCard.Metrics(rouge1: 40.1234, rouge2: 15, rougeL: 31, rougeLsum: 36, genLen: 22.5, loss: 3.1)
        let body = ModelCard.resultsSection(data: "data/samsum/test.jsonl", examples: 819, decoding: "beam search with num_beams 4", metrics: m)
        let once = ModelCard.withSection(card, heading: "Results on test.jsonl", body: body)
        #expect(once.components(separatedBy: "## Results on test.jsonl").count == 2)
        let at = once.range(of: "## Results on test.jsonl")!.lowerBound, desc = once.range(of: "## Model description")!.lowerBound
        #expect(at < desc)
        #expect(once.contains("| 3.1 | 40.1234 | 15.0 | 31.0 | 36.0 | 22.5 |") && once.contains("819 examples"), "\(once)")
        #expect(once.hasPrefix("---\n") && once.contains("license: cc-by-nc-nd-4.0"))
        let m2 = ModelCard.Metrics(rouge1: 41, rouge2: 16, rougeL: 32, rougeLsum: 37, genLen: 23, loss: 3)
        let twice = ModelCard.withSection(once, heading: "Results on test.jsonl",
                                          body: ModelCard.resultsSection(data: "t.jsonl", examples: 819, decoding: "greedy decoding", metrics: m2))
        #expect(twice.components(separatedBy: "## Results on test.jsonl").count == 2)
        #expect(!twice.contains("40.1234") && twice.contains("| 3.0 | 41.0 | 16.0 | 32.0 | 37.0 | 23.0 |"))
        #expect(twice.replacingOccurrences(of: "\n", with: "").count > 0 && twice.contains("## Model description") && twice.contains("## How to use"))
        // Everything outside the section is unchanged.
        let strip = { (s: String) in s.components(separatedBy: "\n").filter { !$0.contains("|") && !$0.contains("Evaluated with") }.joined(separator: "\n") }
        #expect(strip(once) == strip(twice))
        let bare = ModelCard.withSection("# m\n", heading: "Results on x", body: "b")
        #expect(bare == "# m\n\n## Results on x\n\nb\n\n")
    }

    static let card = ModelCard.render(
        modelName: "bart-small-samsum", repoID: "precis/bart-small-samsum", baseModel: "facebook/bart-base",
        license: "apache-2.0", metrics: .init(rouge1: 42.12346, rouge2: 18.9, rougeL: 34.5678, rougeLsum: 38.7, genLen: 18.27),
        hyperparameters: [("learning_rate", "0.0007"), ("train_batch_size", "16"), ("lr_scheduler_type", "linear"),
                          ("label_smoothing_factor", "0.1"), ("num_epochs", "6")],
        evalHistory: [["step": 10, "loss": 3.2, "epoch": 0.01],
                      ["step": 500, "epoch": 0.54, "eval_loss": 1.6021, "eval_rouge1": 40.1, "eval_rouge2": 17.2,
                       "eval_rougeL": 33.0, "eval_rougeLsum": 37.1, "eval_gen_len": 18.5, "eval_runtime": 60],
                      ["step": 1000, "epoch": 1.08, "eval_loss": 1.55, "eval_rouge1": 42.12346, "eval_rouge2": 18.9,
                       "eval_rougeL": 34.5678, "eval_rougeLsum": 38.7, "eval_gen_len": 18.27]])

    func frontMatter(_ card: String) -> [String] {
        let lines = card.components(separatedBy: "\n")
        #expect(lines.first == "---")
        let end = lines.dropFirst().firstIndex(of: "---")!
        return Array(lines[1..<end])
    }

    @Test func frontMatterHasTheHubKeys() {
        let fm = frontMatter(Self.card)
        for line in ["library_name: transformers", "license: apache-2.0", "base_model: facebook/bart-base",
                     "datasets:", "- samsum", "tags:", "- summarization", "- precis", "model-index:",
                     "- name: bart-small-samsum", "  results:", "  - task:", "      type: summarization",
                     "      name: Summarization", "    dataset:", "      name: samsum", "      type: samsum",
                     "      split: test", "    metrics:", "    - type: rouge1", "      value: 42.1235",
                     "      name: ROUGE-1", "    - type: rougeLsum", "      value: 38.7", "    - type: gen_len"] {
            #expect(fm.contains(line), "missing front matter line '\(line)'")
        }
        // Every line is a mapping entry or a list item (block YAML, two-space indents, no tabs).
        for line in fm {
            let body = line.drop { $0 == " " }
            #expect((line.count - body.count) % 2 == 0 && !line.contains("\t"))
            #expect(body.hasPrefix("- ") || body.contains(": ") || body.hasSuffix(":"), "\(line)")
        }
    }

    @Test func bodyHasTablesAndUsage() {
        let c = Self.card
        #expect(c.contains("# bart-small-samsum"))
        #expect(c.contains("fine-tuned version of [facebook/bart-base](https://huggingface.co/facebook/bart-base) on the samsum dataset"))
        #expect(c.contains("- ROUGE-1: 42.1235") && c.contains("- ROUGE-L: 34.5678"))
        #expect(c.contains("| Hyperparameter | Value |\n|---|---|\n| learning_rate | 0.0007 |\n| train_batch_size | 16 |"))
        #expect(c.contains("| Step | Epoch | Validation Loss | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-Lsum | Gen Len |"))
        #expect(c.contains("| 500 | 0.54 | 1.6021 | 40.1 | 17.2 | 33.0 | 37.1 | 18.5 |"))
        #expect(c.contains("| 1000 | 1.08 | 1.55 | 42.1235 | 18.9 | 34.5678 | 38.7 | 18.27 |"))
        #expect(!c.contains("runtime"))
        // transformers 5 has no "summarization" pipeline: tokenizer, model, generate.
        #expect(!c.contains("pipeline("))
        #expect(c.contains("model_id = \"precis/bart-small-samsum\"\ntokenizer = AutoTokenizer.from_pretrained(model_id)\n"))
        #expect(c.contains("inputs = tokenizer(dialogue, truncation=True, return_tensors=\"pt\")\nsummary_ids = model.generate(**inputs, max_new_tokens=64)\n"))
    }

    @Test func awkwardStringsAreQuoted() {
        let card = ModelCard.render(modelName: "my: model \"v2\"", baseModel: nil, license: "other",
                                    metrics: nil, hyperparameters: [("note", "a | b")])
        let fm = frontMatter(card)
        #expect(fm.contains("- name: \"my: model \\\"v2\\\"\""))
        #expect(fm.contains("  results: []"))
        #expect(!fm.contains { $0.hasPrefix("base_model") })
        #expect(card.contains("trained from scratch"))
        #expect(card.contains("| note | a \\| b |"))
        let yes = ModelCard.render(modelName: "yes", metrics: nil)
        #expect(frontMatter(yes).contains("- name: \"yes\""))
        let numeric = ModelCard.render(modelName: "2024", metrics: nil)
        #expect(frontMatter(numeric).contains("- name: \"2024\""))
    }

    /// trainer_state.json's log_history may hold any number as a step: the card is still written,
    /// with the step left out where it is not a finite number in Int's range.
    @Test func stepsThatAreNotIntegersLeaveTheirCellEmpty() {
        let bad: [Double] = [.nan, -.infinity, .infinity, -1e300, 1e300, 9.3e18]
        let card = ModelCard.render(modelName: "m", metrics: nil,
                                    evalHistory: bad.map { ["step": $0, "epoch": 1, "eval_loss": 1.5] }
                                        + [["step": 42, "epoch": 2, "eval_loss": 1.25]])
        #expect(card.contains("| 42 | 2.0 | 1.25 |"))
        #expect(card.components(separatedBy: "|  | 1.0 | 1.5 |").count - 1 == bad.count, "\(card)")
    }
}
