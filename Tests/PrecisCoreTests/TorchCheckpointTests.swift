import Foundation
import Testing
import PrecisCore

/// Builds `torch.save`-shaped archives by hand (stored zip entries, pickle opcodes) so hostile
/// variants can be made one field at a time.
struct TorchArchiveBuilder {
    var entries: [(name: String, data: [UInt8])] = []
    var method: UInt16 = 0
    /// Write zip64 records (as torch does past 4 GiB): saturated 32-bit fields, zip64 extra fields,
    /// a zip64 end record and its locator.
    var zip64 = false

    mutating func add(_ name: String, _ data: [UInt8]) { entries.append((name, data)) }

    static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
    static func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
    static func le64(_ v: Int) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * $0)) & 0xff) } }

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for (name, data) in entries {
            let offset = out.count
            let n = Array(name.utf8)
            out += [0x50, 0x4b, 0x03, 0x04] + Self.le16(20) + Self.le16(0) + Self.le16(Int(method)) + [0, 0, 0, 0]
                + Self.le32(0) + Self.le32(data.count) + Self.le32(data.count) + Self.le16(n.count) + Self.le16(0) + n + data
            let sat = 0xFFFF_FFFF
            let extra = zip64 ? Self.le16(1) + Self.le16(24) + Self.le64(data.count) + Self.le64(data.count) + Self.le64(offset) : []
            central += [0x50, 0x4b, 0x01, 0x02] + Self.le16(45) + Self.le16(45) + Self.le16(0) + Self.le16(Int(method))
                + [0, 0, 0, 0] + Self.le32(0) + Self.le32(zip64 ? sat : data.count) + Self.le32(zip64 ? sat : data.count)
                + Self.le16(n.count) + Self.le16(extra.count) + Self.le16(0) + Self.le16(0) + Self.le16(0) + Self.le32(0)
                + Self.le32(zip64 ? sat : offset) + n + extra
        }
        let cdOffset = out.count
        out += central
        if zip64 {
            let z = out.count
            out += [0x50, 0x4b, 0x06, 0x06] + Self.le64(44) + Self.le16(45) + Self.le16(45) + Self.le32(0) + Self.le32(0)
                + Self.le64(entries.count) + Self.le64(entries.count) + Self.le64(central.count) + Self.le64(cdOffset)
            out += [0x50, 0x4b, 0x06, 0x07] + Self.le32(0) + Self.le64(z) + Self.le32(1)
            out += [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0] + Self.le16(0xFFFF) + Self.le16(0xFFFF)
                + Self.le32(0xFFFF_FFFF) + Self.le32(0xFFFF_FFFF) + Self.le16(0)
            return out
        }
        out += [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0] + Self.le16(entries.count) + Self.le16(entries.count)
            + Self.le32(central.count) + Self.le32(cdOffset) + Self.le16(0)
        return out
    }
}

/// Pickle opcodes as `torch.save` (protocol 2) writes them.
struct PickleWriter {
    var b: [UInt8] = [0x80, 2]
    mutating func op(_ x: UInt8) { b.append(x) }
    mutating func str(_ s: String) { b.append(0x58); b += TorchArchiveBuilder.le32(s.utf8.count); b += Array(s.utf8) }
    /// BININT, or LONG1 (8 bytes) outside Int32, as pickle does.
    mutating func int(_ i: Int) {
        if let _ = Int32(exactly: i) { b.append(0x4a); b += TorchArchiveBuilder.le32(i) } else { long(Int64(i)) }
    }
    mutating func long(_ i: Int64) { b += [0x8a, 8]; b += (0..<8).map { UInt8((UInt64(bitPattern: i) >> (8 * UInt64($0))) & 0xff) } }
    mutating func global(_ m: String, _ n: String) { b.append(0x63); b += Array("\(m)\n\(n)\n".utf8) }
    mutating func mark() { op(0x28) }
    mutating func tuple() { op(0x74) }
    mutating func emptyOrderedDict() { global("collections", "OrderedDict"); op(0x29); op(0x52) }
    mutating func ints(_ xs: [Int]) { mark(); for x in xs { int(x) }; tuple() }
    /// `_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())`
    mutating func tensor(key: String, type: String = "FloatStorage", numel: Int, offset: Int, size: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        mark()
        mark(); str("storage"); global("torch", type); str(key); str("cpu"); int(numel); tuple(); op(0x51)
        int(offset); ints(size); ints(stride); op(0x89); emptyOrderedDict()
        tuple()
        op(0x52)
    }
    /// OrderedDict() then MARK, (name, tensor)…, SETITEMS, STOP.
    static func stateDict(_ body: (inout PickleWriter) -> Void) -> [UInt8] {
        var p = PickleWriter()
        p.emptyOrderedDict()
        p.mark()
        body(&p)
        p.op(0x75)
        p.op(0x2e)
        return p.b
    }
}

@Suite struct TorchCheckpointTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/formats")

    static func floats(_ xs: [Float]) -> [UInt8] { xs.flatMap { TorchArchiveBuilder.le32(Int($0.bitPattern)) } }

    /// Two tensors sharing one 6-float storage: `a` is a 2×3 column-major view, `b` a 1-D view at offset 1.
    static func sharedStorageArchive(pickle: [UInt8]? = nil, storage: [UInt8]? = nil, extra: [(String, [UInt8])] = [],
                                     zip64: Bool = false) -> [UInt8] {
        var z = TorchArchiveBuilder()
        z.zip64 = zip64
        z.add("ck/data.pkl", pickle ?? PickleWriter.stateDict { p in
            p.str("a"); p.tensor(key: "0", numel: 6, offset: 0, size: [2, 3], stride: [1, 2])
            p.str("b"); p.tensor(key: "0", numel: 6, offset: 1, size: [5], stride: [1])
        })
        z.add("ck/byteorder", Array("little".utf8))
        z.add("ck/data/0", storage ?? floats([0, 1, 2, 3, 4, 5]))
        z.add("ck/version", Array("3\n".utf8))
        for (n, d) in extra { z.add(n, d) }
        return z.bytes()
    }

    static func open(_ bytes: [UInt8], name: String = "x.bin") throws -> TorchCheckpointFile {
        try bytes.withUnsafeBytes { try TorchCheckpointFile(bytes: $0, path: name) }
    }

    /// The error `body` throws, as a TorchCheckpointError.
    static func refusal(_ body: () throws -> Void) -> TorchCheckpointError? {
        do { try body() } catch let e as TorchCheckpointError { return e } catch { Issue.record("unexpected error \(error)") }
        return nil
    }

    @Test func readsStridedViewsOfASharedStorage() throws {
        let f = try Self.open(Self.sharedStorageArchive())
        #expect(f.names == ["a", "b"])
        #expect(f.shape(of: "a") == [2, 3])
        #expect(try f.floats("a") == [0, 2, 4, 1, 3, 5])
        #expect(try f.floats("b") == [1, 2, 3, 4, 5])
    }

    @Test func readsZip64Archives() throws {
        let bytes = Self.sharedStorageArchive(zip64: true)
        let f = try Self.open(bytes)
        #expect(try f.floats("a") == [0, 2, 4, 1, 3, 5])
        // A zip64 end record that is not where its locator says is refused.
        var moved = bytes
        let locator = moved.count - 22 - 20
        moved.replaceSubrange((locator + 8)..<(locator + 16), with: TorchArchiveBuilder.le64(3))
        #expect(Self.refusal { _ = try Self.open(moved) }?.description.contains("zip64 end record missing") == true)
        // Zip64 values past the end of the file are refused.
        var far = bytes
        let cd = try #require(far.indices.first { far[$0] == 0x50 && far[$0 + 1] == 0x4b && far[$0 + 2] == 0x01 && far[$0 + 3] == 0x02 })
        let extra = cd + 46 + "ck/data.pkl".utf8.count + 4
        far.replaceSubrange((extra + 16)..<(extra + 24), with: TorchArchiveBuilder.le64(1 << 50))
        #expect(Self.refusal { _ = try Self.open(far) }?.description.contains("beyond the end") == true)
    }

    @Test func sizeOneDimensionsMayCarryAnyStride() throws {
        let f = try Self.open(Self.sharedStorageArchive(pickle: PickleWriter.stateDict { p in
            p.str("w"); p.tensor(key: "0", numel: 6, offset: 1, size: [2, 1, 2], stride: [3, Int(Int64.max), 1])
        }))
        #expect(try f.floats("w") == [1, 2, 4, 5])
    }

    @Test func readsHalfAndBFloat16Storages() throws {
        let halves: [Float16] = [1.5, -2, 65504, 0.000061035156]
        let half = halves.flatMap { TorchArchiveBuilder.le16(Int($0.bitPattern)) }
        let bf: [UInt8] = [0x80, 0x3f, 0x00, 0xc0] // 1.0, -2.0
        var z = TorchArchiveBuilder()
        z.add("m/data.pkl", PickleWriter.stateDict { p in
            p.str("h"); p.tensor(key: "0", type: "HalfStorage", numel: 4, offset: 0, size: [4], stride: [1])
            p.str("bf"); p.tensor(key: "1", type: "BFloat16Storage", numel: 2, offset: 0, size: [2], stride: [1])
        })
        z.add("m/data/0", half)
        z.add("m/data/1", bf)
        let f = try Self.open(z.bytes())
        #expect(try f.floats("h") == halves.map { Float($0) })
        #expect(try f.floats("bf") == [1, -2])
    }

    @Test func refusesTheTorchSavedOsSystemGlobal() throws {
        let path = Self.fixtures.appendingPathComponent("evil-global.bin").path
        let e = Self.refusal { _ = try TorchCheckpointFile(path: path) }
        guard case let .refusedGlobal(p, _, module, name)? = e else { Issue.record("expected refusedGlobal, got \(String(describing: e))"); return }
        #expect(p == path)
        #expect(module == "posix" && name == "system")
        #expect(e!.description.contains("'posix.system' is not allowed"))
    }

    @Test func refusesCallablesOutsideTheAllowList() throws {
        // GLOBAL builtins.eval, then REDUCE: refused at the GLOBAL, before any REDUCE.
        var p = PickleWriter()
        p.global("builtins", "eval"); p.mark(); p.str("1+1"); p.tuple(); p.op(0x52); p.op(0x2e)
        let e1 = Self.refusal { _ = try Self.open(Self.sharedStorageArchive(pickle: p.b)) }
        #expect(e1 == .refusedGlobal(path: "x.bin", offset: 2, module: "builtins", name: "eval"))
        // An allowed global in a role it does not have: a storage class called directly.
        var q = PickleWriter()
        q.global("torch", "FloatStorage"); q.op(0x29); q.op(0x52); q.op(0x2e)
        let e2 = Self.refusal { _ = try Self.open(Self.sharedStorageArchive(pickle: q.b)) }
        #expect(e2?.description.contains("REDUCE of the storage type F32 is not allowed") == true)
        // OrderedDict called with arguments (it would build from an iterable).
        var r = PickleWriter()
        r.global("collections", "OrderedDict"); r.mark(); r.str("x"); r.tuple(); r.op(0x52); r.op(0x2e)
        let e3 = Self.refusal { _ = try Self.open(Self.sharedStorageArchive(pickle: r.b)) }
        #expect(e3?.description.contains("OrderedDict called with 1 arguments") == true)
        // Opcodes outside the state-dict subset: INST, NEWOBJ, an undefined byte.
        for (op, name) in [(UInt8(0x69), "INST"), (0x81, "NEWOBJ"), (0xff, "unknown")] {
            let e = Self.refusal { _ = try Self.open(Self.sharedStorageArchive(pickle: [0x80, 2, op, 0x2e])) }
            #expect(e == .refusedOpcode(path: "x.bin", offset: 2, opcode: op, name: name))
        }
    }

    @Test func refusesHugeAndOutOfRangeViews() throws {
        func archive(numel: Int, offset: Int, size: [Int], stride: [Int]) -> [UInt8] {
            Self.sharedStorageArchive(pickle: PickleWriter.stateDict { p in
                p.str("w"); p.tensor(key: "0", numel: numel, offset: offset, size: size, stride: stride)
            })
        }
        let cases: [(bytes: [UInt8], message: String)] = [
            (archive(numel: 6, offset: 0, size: [1 << 30, 1 << 30, 1 << 30], stride: [1, 1, 1]), "overflows"),
            (archive(numel: 6, offset: 0, size: [7], stride: [1]), "reaches element 6 of a 6-element storage"),
            (archive(numel: 6, offset: 2, size: [2, 3], stride: [3, 1]), "reaches element 7"),
            (archive(numel: 6, offset: 0, size: [2], stride: [-1]), "negative size or stride"),
            (archive(numel: 6, offset: -1, size: [2], stride: [1]), "negative storage offset"),
            (archive(numel: 1 << 40, offset: 0, size: [2], stride: [1]), "claims 1099511627776 elements of F32 but its entry has 24 bytes"),
            (archive(numel: 7, offset: 0, size: [2], stride: [1]), "claims 7 elements"),
        ]
        for c in cases {
            let e = Self.refusal { _ = try Self.open(c.bytes) }
            #expect(e?.description.contains(c.message) == true, "\(String(describing: e)) should say \(c.message)")
        }
        // LONG1 sizes past Int64 are refused too.
        var p = PickleWriter()
        p.op(0x8a); p.op(9); p.b += [UInt8](repeating: 0xff, count: 9); p.op(0x2e)
        let e = Self.refusal { _ = try Self.open(Self.sharedStorageArchive(pickle: p.b)) }
        #expect(e?.description.contains("LONG1 of 9 bytes") == true)
    }

    @Test func refusesBrokenZipContainers() throws {
        let good = Self.sharedStorageArchive()
        // Truncated anywhere: never a crash, always a clear refusal.
        for cut in stride(from: 0, to: good.count, by: 7) {
            let e = Self.refusal { _ = try Self.open(Array(good[..<cut])) }
            #expect(e != nil)
        }
        let bin = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent("bart-bin/pytorch_model.bin")))
        let e = Self.refusal { _ = try Self.open(Array(bin[..<(bin.count / 2)]), name: "half.bin") }
        #expect(e?.description.contains("no end-of-central-directory record") == true)

        // Compressed entries.
        var z = TorchArchiveBuilder()
        z.method = 8
        z.add("ck/data.pkl", [0x80, 2, 0x2e])
        #expect(Self.refusal { _ = try Self.open(z.bytes()) }?.description.contains("is compressed (method 8)") == true)

        // Two entries whose data overlap: the second one's central record points inside the first's data,
        // where a copy of its local header was planted.
        var planted = TorchArchiveBuilder()
        let inner: [UInt8] = [0x50, 0x4b, 0x03, 0x04] + TorchArchiveBuilder.le16(20) + [0, 0, 0, 0, 0, 0, 0, 0]
            + TorchArchiveBuilder.le32(0) + TorchArchiveBuilder.le32(4) + TorchArchiveBuilder.le32(4)
            + TorchArchiveBuilder.le16(6) + TorchArchiveBuilder.le16(0) + Array("ck/b/0".utf8) + [1, 2, 3, 4]
        planted.add("ck/a/0", inner)
        planted.add("ck/b/0", [1, 2, 3, 4])
        var bytes = planted.bytes()
        // Re-point entry 2's local-header offset (central record field at +42) to inside entry 1's data.
        let cdStart = bytes.count - 22 - (46 + 6) * 2
        let second = cdStart + 46 + 6
        let innerOffset = 30 + 6
        bytes.replaceSubrange((second + 42)..<(second + 46), with: TorchArchiveBuilder.le32(innerOffset))
        #expect(Self.refusal { _ = try Self.open(bytes) }?.description.contains("overlap") == true)

        // Not a zip at all, and the pre-1.6 bare pickle format.
        #expect(Self.refusal { _ = try Self.open(Array("hello".utf8)) }?.description.contains("no zip signature") == true)
        #expect(Self.refusal { _ = try Self.open([0x80, 2, 0x8a, 0x0a]) }?.description.contains("legacy torch.save format") == true)

        // A storage the pickle names but the archive lacks; a big-endian archive.
        var missing = TorchArchiveBuilder()
        missing.add("ck/data.pkl", PickleWriter.stateDict { p in p.str("w"); p.tensor(key: "9", numel: 1, offset: 0, size: [1], stride: [1]) })
        #expect(Self.refusal { _ = try Self.open(missing.bytes()) }?.description.contains("storage '9' has no entry 'ck/data/9'") == true)
        var big = TorchArchiveBuilder()
        big.add("ck/data.pkl", [0x80, 2, 0x7d, 0x2e])
        big.add("ck/byteorder", Array("big".utf8))
        #expect(Self.refusal { _ = try Self.open(big.bytes()) }?.description.contains("only little-endian") == true)
    }

    @Test func deepNestingAndHostileBytesNeverCrash() throws {
        // 300 000 nested 1-tuples, then lists inside lists: freed without recursion, refused as "not a state dict".
        var p: [UInt8] = [0x80, 2, 0x29] + [UInt8](repeating: 0x85, count: 300_000) + [0x2e]
        var e = Self.refusal { _ = try Self.open(Self.sharedStorageArchive(pickle: p)) }
        #expect(e?.description.contains("data.pkl holds a tuple") == true)
        // A 100 000-deep chain of lists (each appended to the one before, kept reachable through the memo).
        p = [0x80, 2, 0x5d]
        for k in 1...100_000 { p += [0x5d, 0x72] + TorchArchiveBuilder.le32(k) + [0x61, 0x6a] + TorchArchiveBuilder.le32(k) }
        p += [0x2e]
        e = Self.refusal { _ = try Self.open(Self.sharedStorageArchive(pickle: p)) }
        #expect(e?.description.contains("values left on the stack") == true)
        // Seeded byte flips of a valid archive: each either loads or is refused, never crashes.
        let good = Self.sharedStorageArchive()
        var rng = SplitMix(seed: 7)
        for _ in 0..<3000 {
            var b = good
            for _ in 0..<(1 + Int(rng.next() % 4)) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            if let f = try? Self.open(b) { for n in f.names { _ = try? f.floats(n) } }
        }
    }

    @Test func readsProtocol4WithAParameterAndFloat64() throws {
        let f = try TorchCheckpointFile(path: Self.fixtures.appendingPathComponent("protocol4.bin").path)
        #expect(f.names == ["a", "p", "d"])
        #expect(f.shape(of: "a") == [3, 2])
        #expect(try f.floats("a") == [0, 3, 1, 4, 2, 5])
        #expect(try f.floats("p") == [1.5, -2])
        #expect(try f.floats("d") == [Float(0.1 as Double), 3])
    }

    @Test func readsTheTorchSavedFixtureWithTiedStorages() throws {
        let f = try TorchCheckpointFile(path: Self.fixtures.appendingPathComponent("bart-bin/pytorch_model.bin").path)
        #expect(f.names.contains("lm_head.weight") && f.names.contains("model.shared.weight"))
        #expect(try f.floats("lm_head.weight") == f.floats("model.shared.weight"))
        #expect(f.tensors["lm_head.weight"]?.storage == f.tensors["model.shared.weight"]?.storage)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
