import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A PyTorch checkpoint (`pytorch_model.bin` as `torch.save(state_dict)` writes it since PyTorch 1.6):
/// a zip of stored entries `<root>/data.pkl` (the pickled state dict, read by ``TorchPickle``, never
/// executed), `<root>/data/<key>` (one raw storage each), `<root>/byteorder` ("little"; big-endian
/// archives are refused) and `<root>/version`. The file is memory-mapped; tensors are strided views
/// of storages (several tensors may share one, as tied weights do), each checked to lie within its
/// storage, and are read as fp32.
public final class TorchCheckpointFile: WeightFile {
    public let path: String
    public let names: [String]
    public let tensors: [String: TorchPickle.Tensor]
    /// Storage key → byte range in the file.
    private let storageRanges: [String: (offset: Int, size: Int)]
    private let map: UnsafeMutableRawPointer?
    private let mapLength: Int
    /// Set when the checkpoint was read from memory (tests, fuzzing) rather than mapped.
    private let owned: UnsafeMutableRawBufferPointer?

    /// Maps and validates the checkpoint at `path`.
    public init(path: String) throws {
        self.path = path
        // Non-blocking: a FIFO in the file's place is refused below instead of blocking the open.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw TorchCheckpointError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TorchCheckpointError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw TorchCheckpointError.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { throw TorchCheckpointError.notZip(path: path, detail: "the file is empty") }
        let ptr = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let ptr, ptr != MAP_FAILED else {
            throw TorchCheckpointError.cannotOpen(path: path, reason: "mmap: \(String(cString: strerror(errno)))")
        }
        var ok = false
        defer { if !ok { munmap(ptr, size) } }
        let parsed = try Self.parse(UnsafeRawBufferPointer(start: ptr, count: size), path: path)
        map = ptr
        mapLength = size
        owned = nil
        (names, tensors, storageRanges) = parsed
        ok = true
    }

    /// Reads a checkpoint held in memory (copied); `path` names it in errors.
    public init(bytes: UnsafeRawBufferPointer, path: String) throws {
        self.path = path
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        if bytes.count > 0 { copy.copyMemory(from: bytes) }
        var ok = false
        defer { if !ok { copy.deallocate() } }
        let parsed = try Self.parse(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(copy)[0..<bytes.count]), path: path)
        map = nil
        mapLength = 0
        owned = copy
        (names, tensors, storageRanges) = parsed
        ok = true
    }

    deinit {
        if let map { munmap(map, mapLength) }
        owned?.deallocate()
    }

    private var base: UnsafeRawPointer { UnsafeRawPointer(map ?? owned!.baseAddress!) }

    typealias Parsed = ([String], [String: TorchPickle.Tensor], [String: (offset: Int, size: Int)])

    private static func parse(_ buf: UnsafeRawBufferPointer, path: String) throws(TorchCheckpointError) -> Parsed {
        let zip = try StoredZipArchive(buf, path: path)
        // The archive's root folder is the one holding data.pkl (torch names it after the file).
        let pickles = zip.names.filter { $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }
        guard pickles.count == 1, let pkl = pickles.first, let entry = zip.entries[pkl] else {
            throw .badArchive(path: path, detail: pickles.isEmpty ? "no data.pkl entry" : "\(pickles.count) data.pkl entries")
        }
        let root = String(pkl.dropLast("data.pkl".count))
        if let bo = zip.entries[root + "byteorder"] {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: buf[bo.dataOffset..<(bo.dataOffset + bo.size)]), as: UTF8.self)
            guard text == "little" else {
                throw .badArchive(path: path, detail: "byteorder is '\(text.prefix(16))'; only little-endian checkpoints are supported")
            }
        }
        let pickle = try TorchPickle(UnsafeRawBufferPointer(rebasing: buf[entry.dataOffset..<(entry.dataOffset + entry.size)]), path: path)
        var ranges: [String: (offset: Int, size: Int)] = [:]
        for (key, st) in pickle.storages {
            guard let e = zip.entries[root + "data/" + key] else {
                throw .badArchive(path: path, detail: "storage '\(key)' has no entry '\(root)data/\(key)'")
            }
            let (bytes, overflow) = st.count.multipliedReportingOverflow(by: st.dtype.size)
            guard !overflow, bytes <= e.size else {
                throw .badArchive(path: path, detail: "storage '\(key)' claims \(st.count) elements of \(st.dtype.rawValue) but its entry has \(e.size) bytes")
            }
            ranges[key] = (e.dataOffset, bytes)
        }
        var tensors: [String: TorchPickle.Tensor] = [:]
        for (name, t) in pickle.tensors {
            guard let st = pickle.storages[t.storage] else { throw .badTensor(path: path, tensor: name, detail: "unknown storage '\(t.storage)'") }
            try validate(t, storageCount: st.count, name: name, path: path)
            tensors[name] = t
        }
        return (pickle.tensors.map(\.name), tensors, ranges)
    }

    /// The tensor's elements all lie within its storage: sizes and strides non-negative, and
    /// offset + Σ (size−1)·stride < storage count (checked arithmetic), unless it has no elements.
    static func validate(_ t: TorchPickle.Tensor, storageCount: Int, name: String, path: String) throws(TorchCheckpointError) {
        func bad(_ d: String) -> TorchCheckpointError { .badTensor(path: path, tensor: name, detail: d) }
        guard t.offset >= 0 else { throw bad("negative storage offset \(t.offset)") }
        guard t.shape.allSatisfy({ $0 >= 0 }), t.strides.allSatisfy({ $0 >= 0 }) else {
            throw bad("negative size or stride (size \(t.shape), stride \(t.strides))")
        }
        var count = 1
        for d in t.shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw bad("size \(t.shape) overflows") }
            count = p
        }
        if count == 0 { return }
        var last = t.offset
        for (d, s) in zip(t.shape, t.strides) {
            let (p, o1) = (d - 1).multipliedReportingOverflow(by: s)
            let (q, o2) = last.addingReportingOverflow(p)
            guard !o1, !o2 else { throw bad("size \(t.shape) with stride \(t.strides) overflows") }
            last = q
        }
        guard last < storageCount else {
            throw bad("size \(t.shape), stride \(t.strides) at offset \(t.offset) reaches element \(last) of a \(storageCount)-element storage")
        }
    }

    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }

    public func tensor(_ name: String) throws -> TorchPickle.Tensor {
        guard let t = tensors[name] else { throw TorchCheckpointError.badTensor(path: path, tensor: name, detail: "no such tensor") }
        return t
    }

    /// Copies a float tensor (Float, Half, BFloat16 or Double storage) into `dst` as fp32, in
    /// row-major order whatever its strides.
    public func readFloats(_ name: String, into dst: UnsafeMutablePointer<Float>, expectShape: [Int]? = nil) throws {
        let t = try tensor(name)
        if let s = expectShape, s != t.shape {
            throw TorchCheckpointError.badTensor(path: path, tensor: name, detail: "shape \(t.shape), expected \(s)")
        }
        guard t.dtype.isFloat, let range = storageRanges[t.storage] else {
            throw TorchCheckpointError.badTensor(path: path, tensor: name, detail: "dtype \(t.dtype.rawValue), expected F32, F16, BF16 or F64")
        }
        let raw = base + range.offset
        let dtype = t.dtype
        let count = t.shape.reduce(1, *) // validated: no overflow
        if count == 0 { return }
        // Row-major (contiguous) views: one run; otherwise walk the index odometer.
        var contiguous = true
        var expected = 1
        for (d, s) in zip(t.shape, t.strides).reversed() where d != 1 {
            if s != expected { contiguous = false; break }
            expected *= d
        }
        if contiguous {
            switch dtype {
            case .f32:
                for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * (t.offset + i), as: UInt32.self))) }
            default:
                for i in 0..<count { dst[i] = dtype.float(raw, t.offset + i)! }
            }
            return
        }
        let dims = t.shape.count
        var index = [Int](repeating: 0, count: dims)
        var at = t.offset
        // Wrapping steps: a size-1 dimension may carry any stride (validation ignores it), and the
        // step there is undone at once; every position actually read was validated in range.
        for i in 0..<count {
            dst[i] = dtype.float(raw, at)!
            var k = dims - 1
            while k >= 0 {
                index[k] += 1
                at = at &+ t.strides[k]
                if index[k] < t.shape[k] { break }
                at = at &- t.strides[k] &* t.shape[k]
                index[k] = 0
                k -= 1
            }
        }
    }

    public func floats(_ name: String) throws -> [Float] {
        let t = try tensor(name)
        let count = t.shape.reduce(1, *)
        if count == 0 { return [] }
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { try readFloats(name, into: $0.baseAddress!, expectShape: nil) }
        return out
    }
}
