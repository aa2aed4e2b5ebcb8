import Foundation
import Testing
import PrecisData
import PrecisModels
import PrecisTestSupport

func writeTemp(_ name: String, _ content: String) throws -> String {
    try writeTemp(name, Data(content.utf8))
}

func writeTemp(_ name: String, _ data: Data) throws -> String {
    let p = (TestData.tempDir("data") as NSString).appendingPathComponent(name)
    try data.write(to: URL(fileURLWithPath: p))
    return p
}

/// A real, simple TextEncoder: UTF-8 bytes shifted past BART's 4 special ids, wrapped in <s> … </s>.
struct ByteEncoder: TextEncoder {
    var fingerprint: String { "bytes-v1" }
    func encode(_ text: String, maxLength: Int?) throws -> [Int32] {
        var body = text.utf8.map { Int32($0) + 4 }
        if let m = maxLength { body = Array(body.prefix(max(0, m - 2))) }
        return [0] + body + [2]
    }
}

@Suite struct LoaderTests {
    @Test func samsumSplitsLoadWithTheKnownCounts() throws {
        #expect(try DatasetLoader.load(try TestData.samsum("validation")).records.count == 818)
        #expect(try DatasetLoader.load(try TestData.samsum("test")).records.count == 819)
    }

    /// SAMSum's own empty train dialogue (id 13828807, line 6055) is the first real bad record.
    @Test func samsumEmptyDialogueIsReportedOrSkipped() throws {
        let path = try TestData.samsum("train")
        #expect(throws: DataError.emptyField(file: path, line: 6055, field: "dialogue")) { try DatasetLoader.load(path) }
        let ds = try DatasetLoader.load(path, options: DatasetOptions(skipBadRecords: true))
        #expect(ds.records.count == 14731 && ds.skipped.count == 1)
        #expect(ds.summary.contains("14731 records, 1 skipped") && ds.summary.contains(":6055:"))
        #expect(!ds.records.contains { $0.id == "13828807" })
        // \r\n inside dialogues becomes \n.
        #expect(ds.records.allSatisfy { !$0.source.contains("\r") })
        #expect(ds.records[0].source == "Amanda: I baked  cookies. Do you want some?\nJerry: Sure!\nAmanda: I'll bring you tomorrow :-)")
    }

    @Test func badRecordsNameFileLineAndField() throws {
        let text = """
        {"dialogue": "a", "summary": "b"}
        {"dialogue": "a", "summary": 3}
        {not json
        {"summary": "x"}
        ["array"]
        {"dialogue": "  ", "summary": "y"}

        {"dialogue": "c", "summary": "d"}
        """
        let p = try writeTemp("bad.jsonl", text)
        #expect(throws: DataError.notAString(file: p, line: 2, field: "summary")) { try DatasetLoader.load(p) }
        let ds = try DatasetLoader.load(p, options: DatasetOptions(skipBadRecords: true))
        #expect(ds.records.map(\.source) == ["a", "c"])
        #expect(ds.skipped.map(\.line) == [2, 3, 4, 5, 6])
        guard case .invalidJSON(_, 3, _) = ds.skipped[1] else { Issue.record("\(ds.skipped[1])"); return }
        #expect(ds.skipped[2] == .missingField(file: p, line: 4, field: "dialogue"))
        #expect(ds.skipped[4] == .emptyField(file: p, line: 6, field: "dialogue"))
    }

    @Test func invalidUTF8IsAnErrorWithItsLine() throws {
        var d = Data(#"{"dialogue": "ok", "summary": "fine"}"#.utf8); d.append(0x0A)
        d.append(contentsOf: Array(#"{"dialogue": "bad "#.utf8) + [0xFF, 0xFE] + Array(#"", "summary": "x"}"#.utf8)); d.append(0x0A)
        let p = try writeTemp("u.jsonl", d)
        #expect(throws: DataError.invalidUTF8(file: p, line: 2)) { try DatasetLoader.load(p) }
    }

    @Test func columnMappingJSONArrayAndCSV() throws {
        let json = try writeTemp("d.json", #"[{"text": "t1", "highlights": "h1"}, {"text": "t2\r\nmore", "highlights": "h2"}]"#)
        let opts = DatasetOptions(textColumn: "text", summaryColumn: "highlights")
        #expect(try DatasetLoader.load(json, options: opts).records.map(\.source) == ["t1", "t2\nmore"])
        let csv = try writeTemp("d.csv", "id,text,highlights\r\n1,\"Hello, \"\"world\"\"\nsecond line\",short\r\n2,plain,\"x\"\n")
        let recs = try DatasetLoader.load(csv, options: opts).records
        #expect(recs.map(\.source) == ["Hello, \"world\"\nsecond line", "plain"])
        #expect(recs.map(\.target) == ["short", "x"])
        #expect(recs.map(\.id) == ["1", "2"])
        let ragged = try writeTemp("r.csv", "text,highlights\na,b,c\n")
        #expect(throws: DataError.badCSV(file: ragged, line: 2, reason: "row 1 has 3 fields, the header has 2")) {
            try DatasetLoader.load(ragged, options: opts)
        }
        let open = try writeTemp("o.csv", "text,highlights\n\"never closed,b\n")
        #expect(throws: DataError.self) { try DatasetLoader.load(open, options: opts) }
        #expect(throws: DataError.unknownFormat(file: "x.parquet")) { try DatasetLoader.load("x.parquet") }
        #expect(throws: DataError.cannotRead(file: "/nonexistent.jsonl", reason: "no such file")) { try DatasetLoader.load("/nonexistent.jsonl") }
        // Not a regular file: said so (it used to say "permission denied").
        let fifo = (NSTemporaryDirectory() as NSString).appendingPathComponent("precis-fifo-\(getpid()).jsonl")
        unlink(fifo)
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        #expect(throws: DataError.cannotRead(file: fifo, reason: "not a regular file")) { try DatasetLoader.load(fifo) }
    }
}

@Suite struct PipelineTests {
    @Test func tokenizedCacheIsReusedAndKeyedBySettings() throws {
        let path = try TestData.samsum("validation")
        let recs = try DatasetLoader.load(path).records
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-cache-\(UUID().uuidString)").path
        let fp = try FNV.file(path)
        let opts = TokenizationOptions(maxSourceLength: 64, maxTargetLength: 16, sourcePrefix: "summarize: ")
        let (a, cachedA) = try TokenizedDataset.build(records: recs, dataFingerprint: fp, encoder: ByteEncoder(), options: opts, cacheDir: dir)
        let (b, cachedB) = try TokenizedDataset.build(records: recs, dataFingerprint: fp, encoder: ByteEncoder(), options: opts, cacheDir: dir)
        #expect(!cachedA && cachedB)
        #expect(a.count == 818 && b.count == 818)
        for i in [0, 5, 817] {
            #expect(Array(a.source(i)) == Array(b.source(i)))
            #expect(Array(b.source(i)) == (try ByteEncoder().encode("summarize: " + recs[i].source, maxLength: 64)))
            #expect(Array(b.target(i)) == (try ByteEncoder().encode(recs[i].target, maxLength: 16)))
        }
        #expect(a.sourceLengths.max() == 64)
        // Other settings → another cache file.
        let (_, cachedC) = try TokenizedDataset.build(records: recs, dataFingerprint: fp, encoder: ByteEncoder(),
                                                      options: TokenizationOptions(maxSourceLength: 32), cacheDir: dir)
        #expect(!cachedC)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 2)
        // A corrupted cache is refused with the file named.
        let file = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()[0]
        let full = dir + "/" + file
        try Data("PRCSTOK1 garbage".utf8).write(to: URL(fileURLWithPath: full))
        #expect(throws: DataError.self) { try TokenizedDataset(mapping: full) }
    }

    @Test func collatorPadsToMultiplesOfEight() throws {
        let ds = try TokenizedDataset(key: "k", sources: [[0, 5, 2], [0, 5, 6, 7, 8, 9, 10, 11, 12, 2]], targets: [[0, 9, 2], [0, 2]])
        let b = try Collator(padId: 1).batch([0, 1], from: ds)
        #expect(b.sourceLength == 16 && b.targetLength == 8 && b.batchSize == 2)
        #expect(Array(b.inputIds[0..<4]) == [0, 5, 2, 1])
        #expect(Array(b.attentionMask[0..<4]) == [1, 1, 1, 0])
        #expect(b.attentionMask[16..<32].reduce(0, +) == 10)
        #expect(Array(b.labels[0..<4]) == [0, 9, 2, -100])
        #expect(Array(b.labels[8..<11]) == [0, 2, -100])
    }

    @Test func samplersAreDeterministicPermutations() {
        let a = Sampler.shuffled(count: 1000, seed: 42, epoch: 0)
        #expect(a == Sampler.shuffled(count: 1000, seed: 42, epoch: 0))
        #expect(a != Sampler.shuffled(count: 1000, seed: 42, epoch: 1))
        #expect(a.sorted() == Array(0..<1000))
        var rng = PrecisCoreRNG(seed: 3)
        let lengths = (0..<1000).map { _ in rng.next(100) }
        let g = Sampler.lengthGrouped(lengths: lengths, batchSize: 8, seed: 42, epoch: 0)
        #expect(g.sorted() == Array(0..<1000))
        #expect(lengths[g[0]] == lengths.max())
        // Within each megabatch (mult = min(1000 / 32, 50) = 31 → 248 examples) lengths fall, after the front swap.
        let mega = 31 * 8
        for start in stride(from: mega, to: 1000, by: mega) {
            let chunk = g[start..<min(1000, start + mega)].map { lengths[$0] }
            #expect(chunk == chunk.sorted(by: >) || chunk.dropFirst() == chunk.dropFirst().sorted(by: >)[...])
        }
        let batches = Sampler.batches(Array(0..<10), batchSize: 4)
        #expect(batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        #expect(Sampler.batches(Array(0..<10), batchSize: 4, dropLast: true).count == 2)
    }
}

/// A tiny local RNG for test data (keeps the test independent of PrecisCore's generator).
struct PrecisCoreRNG {
    var s: UInt64
    init(seed: UInt64) { s = seed }
    mutating func next(_ bound: Int) -> Int {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Int((s >> 33) % UInt64(bound))
    }
}

/// A tokenized cache file whose header or offsets do not describe its bytes is refused before any
/// example is read (this module runs -Ounchecked: a count of 2⁶¹ + 1 once wrapped the size check
/// around to the file's length, and decreasing offsets made examples point outside the mapping).
@Suite struct TokenizedCacheFileTests {
    @Test func aCacheWhoseHeaderOrOffsetsLieIsRefused() throws {
        let dir = TestData.tempDir("cache")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recs = [SummarizationRecord(source: "abc", target: "de"), SummarizationRecord(source: "fghij", target: "k")]
        let opts = TokenizationOptions(maxSourceLength: 16, maxTargetLength: 8, sourcePrefix: "")
        _ = try TokenizedDataset.build(records: recs, dataFingerprint: "t", encoder: ByteEncoder(), options: opts, cacheDir: dir)
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".bin") })
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        let ds = try TokenizedDataset(mapping: dir + "/" + name)
        #expect(ds.count == 2 && Array(ds.source(1)).count == ds.sourceLength(1))
        let keyEnd = 40 + ((Int(good[32]) + 7) & ~7)
        func variant(_ edit: (inout Data) -> Void) -> String {
            var d = good
            edit(&d)
            let path = dir + "/bad.bin"
            try? d.write(to: URL(fileURLWithPath: path))
            do { _ = try TokenizedDataset(mapping: path); return "accepted" } catch let DataError.badCache(file, reason) {
                #expect(file == path)
                return reason
            } catch { return "\(error)" }
        }
        func put(_ d: inout Data, _ v: UInt64, at o: Int) { withUnsafeBytes(of: v.littleEndian) { d.replaceSubrange(o..<o + 8, with: $0) } }
        #expect(variant { put(&$0, (1 << 61) + 1, at: 8) }.contains("does not fit"))
        #expect(variant { put(&$0, UInt64.max, at: 16) }.contains("does not fit"))
        #expect(variant { put(&$0, 3, at: 8) }.contains("does not match its header"))
        // The middle source offset past the last: the first example would run past the ids' end.
        #expect(variant { put(&$0, 1000, at: keyEnd + 8) } == "source offsets decrease at example 1")
        #expect(variant { put(&$0, 1, at: keyEnd) } == "source offsets do not match the id counts")
        #expect(variant { $0.removeLast() }.contains("does not match its header"))
    }
}
