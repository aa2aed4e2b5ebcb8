import Foundation

/// Errors reading a PyTorch checkpoint (`pytorch_model.bin`): its zip container, its pickle, or a
/// tensor it describes. Each names the file; pickle errors also name the byte offset in `data.pkl`.
public enum TorchCheckpointError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case notZip(path: String, detail: String)
    case badZip(path: String, detail: String)
    case badArchive(path: String, detail: String)
    case badPickle(path: String, offset: Int, detail: String)
    case refusedOpcode(path: String, offset: Int, opcode: UInt8, name: String)
    case refusedGlobal(path: String, offset: Int, module: String, name: String)
    case badTensor(path: String, tensor: String, detail: String)

    public var description: String {
        switch self {
        case let .cannotOpen(p, r): return "\(p): cannot open: \(r)"
        case let .notZip(p, d): return "\(p): not a PyTorch zip checkpoint: \(d)"
        case let .badZip(p, d): return "\(p): bad zip archive: \(d)"
        case let .badArchive(p, d): return "\(p): bad PyTorch archive: \(d)"
        case let .badPickle(p, o, d): return "\(p): data.pkl byte \(o): \(d)"
        case let .refusedOpcode(p, o, op, n):
            return "\(p): data.pkl byte \(o): pickle opcode \(n) (0x\(String(op, radix: 16))) is not allowed in a state dict; refusing to load (nothing was executed)"
        case let .refusedGlobal(p, o, m, n):
            return "\(p): data.pkl byte \(o): pickle global '\(m).\(n)' is not allowed in a state dict; refusing to load (nothing was executed)"
        case let .badTensor(p, t, d): return "\(p): tensor '\(t)': \(d)"
        }
    }
}

/// The entries of a zip archive whose members are *stored* (not compressed), as `torch.save` writes
/// them: the central directory (zip64 when the archive needs it) is read, every local header is
/// checked against it, and each entry's data is a byte range of the archive. Every offset and size
/// is checked arithmetic, every entry lies before the central directory, and no two entries overlap.
/// Reads a caller-owned buffer (a mapped file); holds no pointer into it.
public struct StoredZipArchive: Sendable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        /// Byte range of the entry's data within the archive.
        public var dataOffset: Int
        public var size: Int
    }

    public let entries: [String: Entry]
    /// Names in central-directory order.
    public let names: [String]

    static let maxEntries = 1 << 20

    public init(_ buf: UnsafeRawBufferPointer, path: String) throws(TorchCheckpointError) {
        let size = buf.count
        func bad(_ d: String) -> TorchCheckpointError { .badZip(path: path, detail: d) }
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: buf.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        /// `o + n <= size`, with `o, n >= 0`, without overflow.
        func fits(_ o: Int, _ n: Int) -> Bool { o >= 0 && n >= 0 && o <= size && n <= size - o }
        func int(_ v: UInt64, _ what: String) throws(TorchCheckpointError) -> Int {
            guard v <= UInt64(size) else { throw bad("\(what) \(v) is beyond the end of the \(size)-byte file") }
            return Int(v)
        }

        guard size >= 4, u32(0) == 0x0403_4b50 || u32(0) == 0x0605_4b50 else {
            if size >= 2, buf[0] == 0x80 {
                throw .notZip(path: path, detail: "it starts like a bare pickle: the legacy torch.save format (before PyTorch 1.6) is not supported; re-save it with a current PyTorch or as safetensors")
            }
            throw .notZip(path: path, detail: "no zip signature at the start of the file")
        }
        // End of central directory: 22 bytes plus a comment of up to 65535, at the very end.
        guard size >= 22 else { throw bad("\(size) bytes is too short for an end-of-central-directory record") }
        var eocd = -1
        var p = size - 22
        let lowest = max(0, size - 22 - 65535)
        while p >= lowest {
            if u32(p) == 0x0605_4b50, u16(p + 20) == size - 22 - p { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw bad("no end-of-central-directory record (truncated file?)") }
        guard u16(eocd + 4) == 0, u16(eocd + 6) == 0 else { throw bad("multi-disk archives are not supported") }
        var count = u16(eocd + 10)
        var cdSize = u32(eocd + 12)
        var cdOffset = u32(eocd + 16)
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // Zip64: a locator just before the end record points at the zip64 end record.
            let loc = eocd - 20
            guard loc >= 0, u32(loc) == 0x0706_4b50 else { throw bad("zip64 fields without a zip64 locator") }
            let z = try int(u64(loc + 8), "zip64 end record offset")
            guard fits(z, 56), z <= loc - 56, u32(z) == 0x0606_4b50 else { throw bad("zip64 end record missing or out of place") }
            count = try int(u64(z + 32), "zip64 entry count")
            cdSize = try int(u64(z + 40), "zip64 central directory size")
            cdOffset = try int(u64(z + 48), "zip64 central directory offset")
            guard cdOffset <= z, cdSize <= z - cdOffset else { throw bad("central directory overlaps the zip64 end record") }
        } else {
            guard cdOffset <= eocd, cdSize <= eocd - cdOffset else {
                throw bad("central directory (offset \(cdOffset), \(cdSize) bytes) does not end before the end record at \(eocd)")
            }
        }
        guard count <= Self.maxEntries, count <= cdSize / 46 + 1 else { throw bad("\(count) entries cannot fit a \(cdSize)-byte central directory") }

        var entries: [String: Entry] = [:]
        var names: [String] = []
        var spans: [(start: Int, end: Int, name: String)] = []
        var q = cdOffset
        let cdEnd = cdOffset + cdSize
        for i in 0..<count {
            guard q <= cdEnd - 46, u32(q) == 0x0201_4b50 else { throw bad("central directory entry \(i) is missing or truncated") }
            let flags = u16(q + 8), method = u16(q + 10)
            var compressed = u32(q + 20), uncompressed = u32(q + 24)
            let nameLen = u16(q + 28), extraLen = u16(q + 30), commentLen = u16(q + 32)
            var local = u32(q + 42)
            let varLen = nameLen + extraLen + commentLen
            guard varLen <= cdEnd - q - 46 else { throw bad("central directory entry \(i) runs past the directory") }
            guard let name = String(validatingUTF8Bytes: UnsafeRawBufferPointer(rebasing: buf[(q + 46)..<(q + 46 + nameLen)])) else {
                throw bad("entry \(i) has a name that is not UTF-8")
            }
            // Zip64 extended information: 8-byte values for the fields saturated at 0xFFFFFFFF, in order.
            var e = q + 46 + nameLen
            let extraEnd = e + extraLen
            while e <= extraEnd - 4 {
                let id = u16(e), len = u16(e + 2)
                guard len <= extraEnd - e - 4 else { throw bad("entry '\(name)': extra field runs past its entry") }
                if id == 0x0001 {
                    var f = e + 4
                    let fEnd = f + len
                    for field in 0..<3 {
                        let saturated = field == 0 ? uncompressed == 0xFFFF_FFFF : field == 1 ? compressed == 0xFFFF_FFFF : local == 0xFFFF_FFFF
                        guard saturated else { continue }
                        guard f <= fEnd - 8 else { throw bad("entry '\(name)': zip64 extra field too short") }
                        let v = try int(u64(f), "entry '\(name)' zip64 value")
                        if field == 0 { uncompressed = v } else if field == 1 { compressed = v } else { local = v }
                        f += 8
                    }
                }
                e += 4 + len
            }
            guard flags & 1 == 0 else { throw bad("entry '\(name)' is encrypted") }
            guard method == 0 else {
                throw bad("entry '\(name)' is compressed (method \(method)); PyTorch checkpoints store their entries uncompressed")
            }
            guard compressed == uncompressed else { throw bad("entry '\(name)': stored sizes differ (\(compressed) vs \(uncompressed))") }
            guard entries[name] == nil else { throw bad("entry '\(name)' appears twice") }
            // The local header: its own name and extra field come before the data.
            guard fits(local, 30), u32(local) == 0x0403_4b50 else { throw bad("entry '\(name)': no local header at offset \(local)") }
            let lName = u16(local + 26), lExtra = u16(local + 28)
            let dataOffset = local + 30 + lName + lExtra
            guard lName == nameLen, fits(local + 30, lName),
                  memcmp(buf.baseAddress! + local + 30, buf.baseAddress! + q + 46, nameLen) == 0 else {
                throw bad("entry '\(name)': local header names a different file")
            }
            guard fits(dataOffset, compressed), dataOffset + compressed <= cdOffset else {
                throw bad("entry '\(name)': \(compressed) bytes at offset \(dataOffset) run past the start of the central directory (\(cdOffset))")
            }
            entries[name] = Entry(name: name, dataOffset: dataOffset, size: compressed)
            names.append(name)
            spans.append((local, dataOffset + compressed, name))
            q += 46 + varLen
        }
        spans.sort { $0.start < $1.start }
        for k in spans.indices.dropFirst() where spans[k].start < spans[k - 1].end {
            throw bad("entries '\(spans[k - 1].name)' and '\(spans[k].name)' overlap")
        }
        self.entries = entries
        self.names = names
    }
}

extension String {
    /// The bytes as a String when they are valid UTF-8, else nil.
    init?(validatingUTF8Bytes bytes: UnsafeRawBufferPointer) {
        var it = bytes.makeIterator()
        var out = ""
        var dec = UTF8()
        loop: while true {
            switch dec.decode(&it) {
            case .scalarValue(let s): out.unicodeScalars.append(s)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = out
    }
}
