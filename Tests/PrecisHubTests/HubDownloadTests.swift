import Foundation
import Testing
import PrecisCore
import PrecisHub
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

private let token = "hf_downloadTOKEN1234567890"

private func bytes(_ n: Int, seed: UInt64) -> Data {
    var x = seed &* 0x9E3779B97F4A7C15 | 1
    var out = [UInt8](repeating: 0, count: n)
    for i in 0..<n { x ^= x << 13; x ^= x >> 7; x ^= x << 17; out[i] = UInt8(truncatingIfNeeded: x) }
    return Data(out)
}

/// A repository as the Hub holds a BART checkpoint: both weight formats, TF weights and a README
/// that a model folder does not need.
private func modelRepo(seed: UInt64 = 1) -> [String: Data] {
    [
        "config.json": Data("{\"model_type\": \"bart\"}\n".utf8),
        "generation_config.json": Data("{\"num_beams\": 2}\n".utf8),
        "model.safetensors": bytes(60_000, seed: seed),
        "pytorch_model.bin": bytes(61_000, seed: seed + 1),
        "tf_model.h5": bytes(12_000, seed: seed + 2),
        "README.md": Data("# tiny\n".utf8),
        "tokenizer.json": Data("{\"version\": \"1.0\"}\n".utf8),
        "vocab.json": Data("{\"a\": 0}\n".utf8),
        "merges.txt": Data("#version: 0.2\n".utf8),
    ]
}

private func settings(_ hub: FakeDownloadHub, cache: String, token: String? = nil, offline: Bool = false,
                      maxFileBytes: Int64 = HubSettings.defaultMaxFileBytes) -> HubSettings {
    HubSettings(endpoint: URL(string: hub.hubURL)!, token: token.map(HubToken.init), offline: offline, cacheDir: cache,
                maxFileBytes: maxFileBytes)
}

private func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buf, buf.count - 1)
    return n < 0 ? nil : String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func expectError(_ body: () throws -> Void, _ check: (HubDownloadError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
    } catch let e as HubDownloadError {
        #expect(check(e), "\(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct HubReferenceTests {
    @Test func parsesRepositoryAndRevision() throws {
        let a = try HubReference(parsing: "facebook/bart-base")
        #expect(a.repo.description == "facebook/bart-base" && a.revision == "main")
        let b = try HubReference(parsing: "google-t5/t5-small@refs/pr/1")
        #expect(b.revision == "refs/pr/1")
        let c = try HubReference(parsing: "org/m@0123456789abcdef0123456789abcdef01234567")
        #expect(c.isCommit)
        for bad in ["org/m@", "org/m@../x", "org/m@a b", "org/m@/x", "a/b/c", "org/", "x"] {
            #expect(throws: HubDownloadError.self) { try HubReference(parsing: bad) }
        }
    }

    @Test func tellsReferencesFromPathsAndPresets() {
        for yes in ["facebook/bart-base", "org/model@v1.0", "google-t5/t5-small"] { #expect(HubReference.looksLikeReference(yes), "\(yes)") }
        for no in ["bart-small", "./org/name", "/abs/path", "~/m", "configs/bart.json", "runs/a/b", "org/model.safetensors", "a b/c"] {
            #expect(!HubReference.looksLikeReference(no), "\(no)")
        }
    }

    @Test func snapshotFoldersNameTheirRepository() {
        let sha = "0123456789abcdef0123456789abcdef01234567"
        #expect(HubCache.repoID(ofSnapshotFolder: "/c/hub/models--facebook--bart-base/snapshots/\(sha)") == "facebook/bart-base")
        #expect(HubCache.repoID(ofSnapshotFolder: "/c/hub/models--facebook--bart-base/snapshots/\(sha)/") == "facebook/bart-base")
        for no in ["/c/hub/models--a--b/snapshots/main", "/runs/model", "/c/hub/datasets--a--b/snapshots/\(sha)", "/c/models--a--b--c/snapshots/\(sha)"] {
            #expect(HubCache.repoID(ofSnapshotFolder: no) == nil, "\(no)")
        }
    }

    @Test func settingsComeFromTheEnvironment() throws {
        let s = try HubSettings(environment: ["HF_HOME": "/tmp/hfh", "HF_ENDPOINT": "http://127.0.0.1:9/", "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_x"])
        #expect(s.cacheDir == "/tmp/hfh/hub" && s.offline && s.token?.value == "hf_x")
        #expect(s.endpoint.absoluteString == "http://127.0.0.1:9")
        #expect(!s.description.contains("hf_x"))
        let t = try HubSettings(environment: ["HF_HOME": "/tmp/hfh", "HF_HUB_CACHE": "/tmp/other", "HF_HUB_OFFLINE": "0", "HF_TOKEN_PATH": "/nonexistent"])
        #expect(t.cacheDir == "/tmp/other" && !t.offline && t.token == nil && t.endpoint.absoluteString == "https://huggingface.co")
        for bad in [["HF_ENDPOINT": "ftp://x"], ["HF_ENDPOINT": "huggingface.co"], ["HF_HUB_MAX_FILE_BYTES": "-3"]] {
            #expect(throws: HubDownloadError.self) { try HubSettings(environment: bad) }
        }
        // The token file is read when it is a small regular file, and only then (a FIFO would block
        // the read for ever, a link to /dev/zero fill memory).
        let dir = TestData.tempDir("hub"), tokenFile = dir + "/token"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("hf_file\n".utf8).write(to: URL(fileURLWithPath: tokenFile))
        #expect(try HubSettings(environment: ["HF_HOME": dir]).token?.value == "hf_file")
        try FileManager.default.removeItem(atPath: tokenFile)
        #expect(mkfifo(tokenFile, 0o600) == 0)
        #expect(try HubSettings(environment: ["HF_HOME": dir]).token == nil)
        try FileManager.default.removeItem(atPath: tokenFile)
        try FileManager.default.createSymbolicLink(atPath: tokenFile, withDestinationPath: "/dev/zero")
        #expect(try HubSettings(environment: ["HF_HOME": dir]).token == nil)
    }
}

@Suite struct HubDownloadTests {
    @Test func downloadsWhatAModelFolderNeedsIntoTheSharedCacheLayout() throws {
        let hub = try FakeDownloadHub(token: token)
        defer { hub.stop() }
        let files = modelRepo()
        let commit = hub.publish("org/tiny", files: files)
        let cache = TestData.tempDir("layout")
        let d = HubDownloader(settings: settings(hub, cache: cache, token: token))
        let s = try d.snapshot(try HubReference(parsing: "org/tiny"), purpose: .model)

        let repoDir = cache + "/models--org--tiny"
        #expect(s.commit == commit && s.folder == repoDir + "/snapshots/" + commit)
        #expect(Set(s.files) == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt"])
        #expect(Set(s.downloaded) == Set(s.files))
        for f in s.files {
            #expect(FileManager.default.contents(atPath: s.folder + "/" + f) == files[f], "\(f)")
            // Relative symlinks into blobs/, named by sha256 (LFS) or the git blob id.
            let etag = FakeDownloadHub.isLFS(f, files[f]!) ? Hashing.sha256Hex(files[f]!) : Hashing.gitBlobSHA1(data: files[f]!)
            #expect(readLink(s.folder + "/" + f) == "../../blobs/" + etag, "\(f)")
        }
        #expect(try String(contentsOfFile: repoDir + "/refs/main", encoding: .utf8) == commit)
        #expect(!FileManager.default.fileExists(atPath: s.folder + "/pytorch_model.bin"))
        let blobs = try FileManager.default.contentsOfDirectory(atPath: repoDir + "/blobs")
        #expect(blobs.count == 6 && !blobs.contains { $0.hasSuffix(".incomplete") })
        // Only the needed files were asked for; the token went to the hub, never to the storage host.
        let asked = Set(hub.fileRequests.filter { $0.path.contains("/resolve/") }.map { String($0.path.split(separator: "/").last!) })
        #expect(asked == Set(s.files))
        #expect(hub.cdnRequests.count == 1 && hub.cdnRequests.allSatisfy { $0.header("Authorization") == nil })
        #expect(hub.requests.filter { $0.server == "hub" }.allSatisfy { $0.request.header("Authorization") == "Bearer \(token)" })
    }

    @Test func aSecondDownloadMakesNoFileRequestsAndOfflineModeUsesTheCacheOnly() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        let commit = hub.publish("org/tiny", files: modelRepo())
        let cache = TestData.tempDir("reuse")
        let ref = try HubReference(parsing: "org/tiny")
        _ = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model)
        hub.clearLog()
        let again = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model)
        #expect(again.downloaded.isEmpty && again.commit == commit)
        #expect(hub.fileRequests.isEmpty && hub.apiRequests.count == 1)

        hub.clearLog()
        let offline = try HubDownloader(settings: settings(hub, cache: cache, offline: true)).snapshot(ref, purpose: .model)
        #expect(offline.commit == commit && offline.folder == again.folder && Set(offline.files) == Set(again.files))
        #expect(hub.requests.isEmpty)
        // Offline without the repository in the cache: a clear error, no request.
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("empty"), offline: true)).snapshot(ref, purpose: .model) }) {
            if case .offlineMiss = $0 { return "\($0)".contains("HF_HUB_OFFLINE") && "\($0)".contains("refs/main") }
            return false
        }
        // Offline with a snapshot missing its weights.
        unlink(again.folder + "/model.safetensors")
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: cache, offline: true)).snapshot(ref, purpose: .model) }) {
            if case .offlineMiss = $0 { return "\($0)".contains("incomplete") }
            return false
        }
        #expect(hub.requests.isEmpty)
        // The hub is gone: a complete cached snapshot still serves.
        _ = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model)
        hub.stop()
        let fallback = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model)
        #expect(fallback.commit == commit)
    }

    @Test func revisionsResolveThroughRefsAndShareBlobs() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        var files = modelRepo()
        let old = hub.publish("org/tiny", branch: "v1", files: files)
        files["config.json"] = Data("{\"model_type\": \"bart\", \"d_model\": 8}\n".utf8)
        let new = hub.publish("org/tiny", branch: "main", files: files)
        let cache = TestData.tempDir("refs")
        let d = HubDownloader(settings: settings(hub, cache: cache))
        let v1 = try d.snapshot(try HubReference(parsing: "org/tiny@v1"), purpose: .model)
        #expect(v1.commit == old)
        #expect(try String(contentsOfFile: cache + "/models--org--tiny/refs/v1", encoding: .utf8) == old)
        hub.clearLog()
        let byCommit = try d.snapshot(try HubReference(parsing: "org/tiny@\(new)"), purpose: .model)
        #expect(byCommit.commit == new && byCommit.folder.hasSuffix("/snapshots/" + new))
        // The weights did not change between the commits: the blob is shared, not fetched again.
        #expect(hub.cdnRequests.isEmpty)
        #expect(byCommit.downloaded == ["config.json"])  // the only file whose bytes changed
        #expect(FileManager.default.contents(atPath: byCommit.folder + "/config.json") == files["config.json"])
        #expect(!FileManager.default.fileExists(atPath: cache + "/models--org--tiny/refs/" + new))
        expectError({ _ = try d.snapshot(try HubReference(parsing: "org/tiny@nope"), purpose: .model) }) {
            if case .notFound = $0 { return true }
            return false
        }
        expectError({ _ = try d.snapshot(try HubReference(parsing: "org/absent"), purpose: .model) }) {
            if case .notFound = $0 { return "\($0)".contains("HF_TOKEN") }
            return false
        }
    }

    @Test func aGatedRepositoryNeedsTheToken() throws {
        let hub = try FakeDownloadHub(token: token)
        defer { hub.stop() }
        hub.publish("org/gated", files: modelRepo(), gated: true)
        let ref = try HubReference(parsing: "org/gated")
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("gated"))).snapshot(ref, purpose: .model) }) {
            guard case let .gated(repo, status, sent) = $0 else { return false }
            return repo == "org/gated" && status == 401 && !sent && "\($0)".contains("set HF_TOKEN")
        }
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("gated"), token: "hf_wrongwrongwrong")).snapshot(ref, purpose: .model) }) {
            guard case let .gated(_, _, sent) = $0 else { return false }
            return sent && !"\($0)".contains("hf_wrong")
        }
        let s = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("gated"), token: token)).snapshot(ref, purpose: .model)
        #expect(s.files.contains("model.safetensors"))
    }

    @Test func anInterruptedTransferResumesWithRange() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        let files = modelRepo()
        hub.publish("org/tiny", files: files)
        let oid = Hashing.sha256Hex(files["model.safetensors"]!)
        hub.with { $0.dropFirstAfter[oid] = 20_000 }
        let cache = TestData.tempDir("resume")
        let events = Lines()
        let d = HubDownloader(settings: settings(hub, cache: cache), progress: { f, done, total in events.add("\(f) \(done)/\(total)") },
                              log: { events.add($0) })
        let s = try d.snapshot(try HubReference(parsing: "org/tiny"), purpose: .model)
        #expect(FileManager.default.contents(atPath: s.folder + "/model.safetensors") == files["model.safetensors"])
        let gets = hub.cdnRequests
        #expect(gets.count == 2)
        #expect(gets.first?.header("Range") == nil && gets.last?.header("Range") == "bytes=20000-")
        #expect(events.all.contains { $0.contains("resuming at byte 20000") })
        #expect(events.all.contains("org/tiny/model.safetensors 60000/60000"))

        // A partial file left by an earlier process is resumed too (one request, from where it stops).
        let cache2 = TestData.tempDir("resume2")
        try FileManager.default.createDirectory(atPath: cache2 + "/models--org--tiny/blobs", withIntermediateDirectories: true)
        try files["model.safetensors"]!.prefix(33_333).write(to: URL(fileURLWithPath: cache2 + "/models--org--tiny/blobs/\(oid).incomplete"))
        hub.clearLog()
        let s2 = try HubDownloader(settings: settings(hub, cache: cache2)).snapshot(try HubReference(parsing: "org/tiny"), purpose: .model)
        #expect(FileManager.default.contents(atPath: s2.folder + "/model.safetensors") == files["model.safetensors"])
        #expect(hub.cdnRequests.map { $0.header("Range") } == ["bytes=33333-"])

        // A server that ignores Range sends everything again: the file starts over.
        let cache3 = TestData.tempDir("resume3")
        try FileManager.default.createDirectory(atPath: cache3 + "/models--org--tiny/blobs", withIntermediateDirectories: true)
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: cache3 + "/models--org--tiny/blobs/\(oid).incomplete"))
        hub.with { $0.ignoreRange = true }
        let s3 = try HubDownloader(settings: settings(hub, cache: cache3)).snapshot(try HubReference(parsing: "org/tiny"), purpose: .model)
        #expect(FileManager.default.contents(atPath: s3.folder + "/model.safetensors") == files["model.safetensors"])
    }

    @Test func followsRelativeRedirectsAndShardedWeights() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        hub.with { $0.relativeHop = true }
        var files = modelRepo()
        files["model.safetensors"] = nil
        files["pytorch_model.bin"] = nil
        let shard1 = bytes(30_000, seed: 9), shard2 = bytes(20_000, seed: 10)
        files["model-00001-of-00002.safetensors"] = shard1
        files["model-00002-of-00002.safetensors"] = shard2
        files["model.safetensors.index.json"] = Data("""
            {"metadata": {"total_size": 50000}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}
            """.utf8)
        hub.publish("org/sharded", files: files)
        let s = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("shards"))).snapshot(try HubReference(parsing: "org/sharded"), purpose: .model)
        #expect(Set(s.files).isSuperset(of: ["model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]))
        #expect(FileManager.default.contents(atPath: s.folder + "/model-00002-of-00002.safetensors") == shard2)
        #expect(hub.requests.contains { $0.request.path.hasPrefix("/hop/") })

        // Only pytorch_model.bin: that is what is fetched.
        var bin = modelRepo()
        bin["model.safetensors"] = nil
        hub.publish("org/binonly", files: bin)
        let b = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("bin"))).snapshot(try HubReference(parsing: "org/binonly"), purpose: .model)
        #expect(b.files.contains("pytorch_model.bin") && !b.files.contains("model.safetensors"))

        // A tokenizer alone.
        let t = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("tok"))).snapshot(try HubReference(parsing: "org/binonly"), purpose: .tokenizer)
        #expect(Set(t.files) == ["tokenizer.json", "vocab.json", "merges.txt"])
    }

    @Test func hostileAnswersGiveClearErrors() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        let files = modelRepo()
        hub.publish("org/tiny", files: files)
        let ref = try HubReference(parsing: "org/tiny")
        func attempt(_ cache: String = TestData.tempDir("hostile"), maxFileBytes: Int64 = HubSettings.defaultMaxFileBytes) throws {
            _ = try HubDownloader(settings: settings(hub, cache: cache, maxFileBytes: maxFileBytes)).snapshot(ref, purpose: .model)
        }
        // The bytes do not hash to the announced sha256: nothing is kept.
        let oid = Hashing.sha256Hex(files["model.safetensors"]!)
        hub.with { $0.corrupt = [oid] }
        let cache = TestData.tempDir("corrupt")
        expectError({ try attempt(cache) }) {
            if case .checksumMismatch = $0 { return "\($0)".contains("model.safetensors") }
            return false
        }
        let blobs = try FileManager.default.contentsOfDirectory(atPath: cache + "/models--org--tiny/blobs")
        #expect(!blobs.contains(oid) && !blobs.contains(oid + ".incomplete"))
        hub.with { $0.corrupt = [] }
        // An ETag that would name a file outside blobs/.
        hub.with { $0.etagOverride = ["config.json": "\"../../../../evil\""] }
        expectError({ try attempt() }) { if case .badAnswer = $0 { return "\($0)".contains("not a usable blob name") }; return false }
        hub.with { $0.etagOverride = [:] }
        // Endless redirects.
        hub.with { $0.loopPaths = ["/config.json"] }
        expectError({ try attempt() }) { if case .tooManyRedirects = $0 { return true }; return false }
        hub.with { $0.loopPaths = [] }
        // An announced size the transfer does not match.
        hub.with { $0.announcedSize["model.safetensors"] = 70_000 }
        expectError({ try attempt() }) { if case .sizeMismatch = $0 { return true }; return false }
        // A partial file the server cannot continue (HTTP 416): started over, not stuck on it.
        let stale = TestData.tempDir("stale")
        try FileManager.default.createDirectory(atPath: stale + "/models--org--tiny/blobs", withIntermediateDirectories: true)
        try files["model.safetensors"]!.write(to: URL(fileURLWithPath: stale + "/models--org--tiny/blobs/\(oid).incomplete"))
        hub.clearLog()
        expectError({ try attempt(stale) }) { if case .sizeMismatch = $0 { return true }; return false }
        #expect(hub.cdnRequests.map { $0.header("Range") } == ["bytes=60000-", nil], "\(hub.cdnRequests.map { $0.header("Range") })")
        // Bigger than the limit: refused before any byte.
        hub.with { $0.announcedSize = [:] }
        hub.clearLog()
        expectError({ try attempt(maxFileBytes: 50_000) }) { if case .tooLarge = $0 { return "\($0)".contains("HF_HUB_MAX_FILE_BYTES") }; return false }
        #expect(hub.cdnRequests.isEmpty)
        // Bad JSON, and JSON without what the answer must hold.
        for body in ["{not json", "[1, 2]", "{\"sha\": \"xyz\", \"siblings\": []}",
                     "{\"sha\": \"0123456789abcdef0123456789abcdef01234567\", \"siblings\": [{\"name\": 1}]}"] {
            hub.with { $0.revisionBody = Data(body.utf8) }
            expectError({ try attempt() }) { if case .badAnswer = $0 { return true }; return false }
        }
        // An answer bigger than any listing: refused at the bound, not held in memory.
        hub.with { $0.revisionBody = Data(repeating: 0x20, count: HubDownloader.maxAPIBytes + 1) }
        expectError({ try attempt() }) { if case .tooLarge = $0 { return true }; return false }
        // A listing without a model.
        hub.with { $0.revisionBody = Data("{\"sha\": \"0123456789abcdef0123456789abcdef01234567\", \"siblings\": [{\"rfilename\": \"README.md\"}]}".utf8) }
        expectError({ try attempt() }) { if case .unusableRepo = $0 { return "\($0)".contains("config.json") }; return false }
        hub.with { $0.revisionBody = nil }
        // An index naming a file outside the repository.
        var bad = modelRepo()
        bad["model.safetensors"] = nil
        bad["pytorch_model.bin"] = nil
        bad["model.safetensors.index.json"] = Data("{\"weight_map\": {\"a\": \"../../../etc/passwd\"}}".utf8)
        hub.publish("org/evil", files: bad)
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: TestData.tempDir("evil"))).snapshot(try HubReference(parsing: "org/evil"), purpose: .model) }) {
            if case .unusableRepo = $0 { return "\($0)".contains("not a plain relative path") }
            return false
        }
        // Nothing listens: a network error naming the URL.
        hub.stop()
        #expect(throws: HubError.self) { try attempt() }
    }

    /// A regular file's ETag is its git blob id: bytes that do not hash to it are not kept.
    @Test func regularFilesAreCheckedAgainstTheirGitBlobID() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        let files = modelRepo()
        hub.publish("org/tiny", files: files)
        hub.with { $0.corruptRegular = ["config.json"] }
        let cache = TestData.tempDir("blobid")
        let ref = try HubReference(parsing: "org/tiny")
        let blobID = Hashing.gitBlobSHA1(data: files["config.json"]!)
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model) }) {
            guard case let .checksumMismatch(file, expected, _) = $0 else { return false }
            return file == "org/tiny/config.json" && expected == blobID && "\($0)".contains("git blob id")
        }
        let blobs = try FileManager.default.contentsOfDirectory(atPath: cache + "/models--org--tiny/blobs")
        #expect(!blobs.contains { $0.hasPrefix(blobID) }, "\(blobs)")
        hub.with { $0.corruptRegular = [] }
        let s = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model)
        #expect(FileManager.default.contents(atPath: s.folder + "/config.json") == files["config.json"])
    }

    /// A pinned commit answered with another commit is refused: that commit's files are not the
    /// revision asked for, and no ref is written for it.
    @Test func aPinnedCommitMustBeAnsweredWithItself() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        var files = modelRepo()
        let old = hub.publish("org/tiny", branch: "v1", files: files)
        files["config.json"] = Data("{\"model_type\": \"bart\", \"d_model\": 8}\n".utf8)
        let new = hub.publish("org/tiny", files: files)
        let siblings = files.keys.sorted().map { "{\"rfilename\": \"\($0)\"}" }.joined(separator: ", ")
        hub.with { $0.revisionBody = Data("{\"sha\": \"\(new)\", \"siblings\": [\(siblings)]}".utf8) }
        let cache = TestData.tempDir("pinned")
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(try HubReference(parsing: "org/tiny@\(old)"), purpose: .model) }) {
            if case .badAnswer = $0 { return "\($0)".contains("'sha' \(new) is not the commit \(old) asked for") }
            return false
        }
        #expect(hub.fileRequests.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: cache + "/models--org--tiny/refs/" + old))
        // Answered with itself, it is served.
        hub.with { $0.revisionBody = nil }
        #expect(try HubDownloader(settings: settings(hub, cache: cache)).snapshot(try HubReference(parsing: "org/tiny@\(old)"), purpose: .model).commit == old)
    }

    /// blobs/<etag>.incomplete is written only as a regular file: a symlink there does not send
    /// the download into its target (nor empty it), a FIFO does not hang it.
    @Test func aPartialFileThatIsNotARegularFileIsRefused() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        let files = modelRepo()
        hub.publish("org/tiny", files: files)
        let ref = try HubReference(parsing: "org/tiny")
        let cache = TestData.tempDir("notregular")
        let blobs = cache + "/models--org--tiny/blobs"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let partial = blobs + "/" + Hashing.sha256Hex(files["model.safetensors"]!) + ".incomplete"
        let victim = TestData.tempDir("victim") + "/precious"
        let precious = Data("do not touch\n".utf8)
        try precious.write(to: URL(fileURLWithPath: victim))
        #expect(symlink(victim, partial) == 0)
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model) }) {
            if case let .cache(path, reason) = $0 { return path == partial && reason.contains("symbolic link") }
            return false
        }
        #expect(FileManager.default.contents(atPath: victim) == precious)
        unlink(partial)
        #expect(mkfifo(partial, 0o644) == 0)
        expectError({ _ = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model) }) {
            if case let .cache(path, reason) = $0 { return path == partial && reason.contains("not a regular file") }
            return false
        }
        unlink(partial)
        let s = try HubDownloader(settings: settings(hub, cache: cache)).snapshot(ref, purpose: .model)
        #expect(FileManager.default.contents(atPath: s.folder + "/model.safetensors") == files["model.safetensors"])
    }

    /// An API answer must come within 5 × the timeout, however steadily it drips (80 KiB/s here,
    /// far above the 1 KiB/s floor, for a 4 MiB answer).
    @Test func aDrippingAPIAnswerIsCutOff() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        hub.publish("org/tiny", files: modelRepo())
        let json = "{\"sha\": \"0123456789abcdef0123456789abcdef01234567\", \"siblings\": []}"
        hub.with {
            $0.revisionBody = Data(json.utf8) + Data(repeating: 0x20, count: 4 << 20)
            $0.revisionDrip = (8192, 0.1)
        }
        var s = settings(hub, cache: TestData.tempDir("drip"))
        s.timeout = 2
        let start = Date()
        #expect {
            _ = try HubDownloader(settings: s).snapshot(try HubReference(parsing: "org/tiny"), purpose: .model)
        } throws: { e in
            guard case let HubError.network(method, url, reason) = e else { return false }
            return method == "GET" && url.hasSuffix("/api/models/org/tiny/revision/main") && reason.contains("timed out")
        }
        #expect(Date().timeIntervalSince(start) < 30, "cut off after \(Date().timeIntervalSince(start)) s")
    }

    @Test func modelSourceResolvesOnlyHubReferences() throws {
        let hub = try FakeDownloadHub(token: nil)
        defer { hub.stop() }
        hub.publish("org/tiny", files: modelRepo())
        let cache = TestData.tempDir("source")
        let env = ["HF_ENDPOINT": hub.hubURL, "HF_HUB_CACHE": cache, "HF_TOKEN_PATH": "/nonexistent"]
        let local = TestData.tempDir("local")
        #expect(try ModelSource.modelFolder(local, environment: env, log: { _ in }) == local)
        #expect(try ModelSource.modelFolder("bart-small", environment: env, log: { _ in }) == "bart-small")
        #expect(hub.requests.isEmpty)
        let logged = Lines()
        let folder = try ModelSource.modelFolder("org/tiny", environment: env, log: { logged.add($0) })
        #expect(folder.hasPrefix(cache + "/models--org--tiny/snapshots/"))
        #expect(logged.all.contains { $0.contains("org/tiny → ") })
        let tok = try ModelSource.tokenizerFile("org/tiny", environment: env.merging(["HF_HUB_OFFLINE": "1"]) { $1 }, log: { _ in })
        #expect(tok == folder + "/tokenizer.json")
        // A reference the Hub cannot be reached for: the error says it is not a local folder either.
        hub.stop()
        do {
            _ = try ModelSource.modelFolder("org/other", environment: env, log: { _ in })
            Issue.record("expected an error")
        } catch let e as HubDownloadError {
            guard case .unreachable = e else { Issue.record("\(e)"); return }
            #expect("\(e)".contains("no local folder 'org/other'") && "\(e)".contains("HF_HUB_OFFLINE"), "\(e)")
        }
    }
}
