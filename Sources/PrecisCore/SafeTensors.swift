import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors reading or writing safetensors files; each names the file and, where it applies, the tensor.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case truncated(path: String, detail: String)
    case badHeader(path: String, detail: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case unsupportedDType(path: String, tensor: String, dtype: String, wanted: String)
    case missingTensor(path: String, tensor: String)
    case shapeMismatch(path: String, tensor: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .cannotOpen(p, r): return "\(p): cannot open: \(r)"
        case let .truncated(p, d): return "\(p): truncated safetensors file: \(d)"
        case let .badHeader(p, d): return "\(p): bad safetensors header: \(d)"
        case let .unknownDType(p, t, d): return "\(p): tensor '\(t)' has unknown dtype '\(d)'"
        case let .unsupportedDType(p, t, d, w): return "\(p): tensor '\(t)' has dtype \(d), expected \(w)"
        case let .missingTensor(p, t): return "\(p): no tensor named '\(t)'"
        case let .shapeMismatch(p, t, e, f): return "\(p): tensor '\(t)' has shape \(f), expected \(e)"
        }
    }
}

public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data.
public final class SafeTensorsFile {
    public struct Tensor: Sendable, Equatable {
        public var dtype: DType
        public var shape: [Int]
        /// Byte range within the data section.
        public var begin: Int
        public var end: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let tensors: [String: Tensor]
    /// Names in the order their data is stored.
    public let names: [String]
    public let metadata: [String: String]
    private let map: UnsafeMutableRawPointer?
    private let mapLength: Int
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        // Non-blocking: a FIFO in the file's place is refused below instead of blocking the open.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw SafeTensorsError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw SafeTensorsError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard st.st_mode & S_IFMT == S_IFREG else { throw SafeTensorsError.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw SafeTensorsError.truncated(path: path, detail: "\(size) bytes, need at least 8 for the header length")
        }
        let ptr = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let ptr, ptr != MAP_FAILED else {
            throw SafeTensorsError.cannotOpen(path: path, reason: "mmap: \(String(cString: strerror(errno)))")
        }
        map = ptr
        mapLength = size
        var ok = false
        defer { if !ok { munmap(ptr, size) } }

        // Compared as UInt64 first: a length of 2⁶³ or more does not fit an Int.
        let claimed = UInt64(littleEndian: ptr.loadUnaligned(as: UInt64.self))
        guard claimed <= UInt64(size - 8) else {
            throw SafeTensorsError.truncated(path: path, detail: "header claims \(claimed) bytes but the file has \(size - 8) after the length")
        }
        let headerLen = Int(claimed)
        guard headerLen <= 100_000_000 else {
            throw SafeTensorsError.badHeader(path: path, detail: "header length \(headerLen) is implausibly large")
        }
        let headerData = Data(bytes: ptr + 8, count: headerLen)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw SafeTensorsError.badHeader(path: path, detail: "not valid JSON (\(error.localizedDescription))")
        }
        guard let dict = json as? [String: Any] else {
            throw SafeTensorsError.badHeader(path: path, detail: "the header is not a JSON object")
        }
        dataStart = 8 + headerLen
        let dataSize = size - dataStart
        var tensors: [String: Tensor] = [:]
        var meta: [String: String] = [:]
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw SafeTensorsError.badHeader(path: path, detail: "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw SafeTensorsError.badHeader(path: path, detail: "__metadata__['\(k)'] is not a string")
                    }
                    meta[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw SafeTensorsError.badHeader(path: path, detail: "entry '\(name)' is not an object")
            }
            guard let dt = info["dtype"] as? String else {
                throw SafeTensorsError.badHeader(path: path, detail: "tensor '\(name)' has no dtype")
            }
            guard let dtype = DType(rawValue: dt) else {
                throw SafeTensorsError.unknownDType(path: path, tensor: name, dtype: dt)
            }
            guard let shapeAny = info["shape"] as? [Any], let shape = Self.ints(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw SafeTensorsError.badHeader(path: path, detail: "tensor '\(name)' has no valid shape")
            }
            guard let offAny = info["data_offsets"] as? [Any], let off = Self.ints(offAny), off.count == 2,
                  off[0] >= 0, off[1] >= off[0] else {
                throw SafeTensorsError.badHeader(path: path, detail: "tensor '\(name)' has no valid data_offsets")
            }
            let t = Tensor(dtype: dtype, shape: shape, begin: off[0], end: off[1])
            // Checked products (this module is built -Ounchecked, where `*` would wrap silently).
            guard let bytes = Self.byteCount(shape, dtype.size) else {
                throw SafeTensorsError.badHeader(path: path, detail: "tensor '\(name)': shape \(shape) of \(dt) is larger than any file")
            }
            guard t.end - t.begin == bytes else {
                throw SafeTensorsError.badHeader(path: path, detail: "tensor '\(name)': data_offsets span \(t.end - t.begin) bytes but shape \(shape) of \(dt) needs \(bytes)")
            }
            guard t.end <= dataSize else {
                throw SafeTensorsError.truncated(path: path, detail: "tensor '\(name)' ends at byte \(t.end) of the data section, which has only \(dataSize) bytes")
            }
            tensors[name] = t
        }
        let names = tensors.keys.sorted { (tensors[$0]!.begin, tensors[$0]!.end, $0) < (tensors[$1]!.begin, tensors[$1]!.end, $1) }
        // As the safetensors format requires: the tensors tile the data section in order, with no
        // gap and no overlap (two tensors sharing bytes would read each other's values).
        var next = 0
        for name in names {
            let t = tensors[name]!
            guard t.begin == next else {
                throw SafeTensorsError.badHeader(path: path, detail: t.begin < next
                    ? "tensor '\(name)' (data_offsets [\(t.begin), \(t.end)]) overlaps the tensor before it, which ends at \(next)"
                    : "tensor '\(name)' starts at \(t.begin), leaving bytes \(next)..<\(t.begin) of the data section unused")
            }
            next = t.end
        }
        guard next == dataSize else {
            throw SafeTensorsError.badHeader(path: path, detail: "the tensors end at byte \(next) of a \(dataSize)-byte data section")
        }
        self.tensors = tensors
        self.names = names
        self.metadata = meta
        ok = true
    }

    deinit {
        if let map { munmap(map, mapLength) }
    }

    /// The bytes of a tensor of `shape` with `size`-byte elements, or nil when that overflows.
    static func byteCount(_ shape: [Int], _ size: Int) -> Int? {
        var n = size
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = p
        }
        return n
    }

    private static func ints(_ a: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in a {
            guard let n = v as? Int else { return nil }
            out.append(n)
        }
        return out
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else { throw SafeTensorsError.missingTensor(path: path, tensor: name) }
        return t
    }

    /// Raw bytes of a tensor (valid while this object lives).
    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let t = try tensor(name)
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(map!) + dataStart + t.begin, count: t.end - t.begin)
    }

    /// Copies a float tensor (F32, F16, BF16 or F64) into `dst` as fp32, checking its shape if given.
    public func readFloats(_ name: String, into dst: UnsafeMutablePointer<Float>, expectShape: [Int]? = nil) throws {
        let t = try tensor(name)
        if let s = expectShape, !Self.sameShape(s, t.shape) {
            throw SafeTensorsError.shapeMismatch(path: path, tensor: name, expected: s, found: t.shape)
        }
        let raw = try bytes(name)
        let n = t.count
        switch t.dtype {
        case .f32:
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<n { dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
        case .bf16:
            for i in 0..<n { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .f64:
            for i in 0..<n { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        default:
            throw SafeTensorsError.unsupportedDType(path: path, tensor: name, dtype: t.dtype.rawValue, wanted: "F32, F16, BF16 or F64")
        }
    }

    public func floats(_ name: String, expectShape: [Int]? = nil) throws -> [Float] {
        let t = try tensor(name)
        var out = [Float](repeating: 0, count: t.count)
        try out.withUnsafeMutableBufferPointer { try readFloats(name, into: $0.baseAddress!, expectShape: expectShape) }
        return out
    }

    /// An integer tensor (I64, I32, I16, I8, U8) as Int64.
    public func int64s(_ name: String) throws -> [Int64] {
        let t = try tensor(name)
        let raw = try bytes(name)
        let n = t.count
        switch t.dtype {
        case .i64: return (0..<n).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        case .i32: return (0..<n).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        case .i16: return (0..<n).map { Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
        case .i8: return (0..<n).map { Int64(raw.load(fromByteOffset: $0, as: Int8.self)) }
        case .u8, .bool: return (0..<n).map { Int64(raw.load(fromByteOffset: $0, as: UInt8.self)) }
        default:
            throw SafeTensorsError.unsupportedDType(path: path, tensor: name, dtype: t.dtype.rawValue, wanted: "an integer type (I64 or I32)")
        }
    }

    /// Shapes match when equal after dropping leading/trailing size-1 dims only if counts agree exactly.
    static func sameShape(_ a: [Int], _ b: [Int]) -> Bool { a == b }
}

/// Builds a safetensors file in memory and writes it atomically.
public struct SafeTensorsWriter: Sendable {
    private var entries: [(name: String, dtype: DType, shape: [Int], data: Data)] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, floats: UnsafeBufferPointer<Float>, shape: [Int]) {
        precondition(shape.reduce(1, *) == floats.count, "\(name): shape \(shape) does not hold \(floats.count) values")
        var d = Data(count: floats.count * 4)
        d.withUnsafeMutableBytes { raw in
            for (i, v) in floats.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        entries.append((name, .f32, shape, d))
    }

    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        floats.withUnsafeBufferPointer { add(name, floats: $0, shape: shape) }
    }

    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) {
        precondition(shape.reduce(1, *) == int64s.count, "\(name): shape \(shape) does not hold \(int64s.count) values")
        var d = Data(count: int64s.count * 8)
        d.withUnsafeMutableBytes { raw in
            for (i, v) in int64s.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: 8 * i, as: Int64.self) }
        }
        entries.append((name, .i64, shape, d))
    }

    /// The whole file's bytes.
    public func serialize() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for e in entries {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.data.count]] as [String: Any]
            offset += e.data.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for e in entries { out.append(e.data) }
        return out
    }

    /// Writes atomically (temporary file, fsync, rename).
    public func write(to path: String) throws {
        try AtomicFile.write(try serialize(), to: path)
    }
}
