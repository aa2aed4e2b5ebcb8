/// The fixed 40-byte header in front of every data message (all fields little-endian):
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | magic `"PRCS"` (0x50 0x52 0x43 0x53) |
/// | 4 | 2 | protocol version (`WireHeader.version`) |
/// | 6 | 1 | message type (`MessageType`) |
/// | 7 | 1 | codec (`Codec`) |
/// | 8 | 4 | cluster epoch (changes on every membership change) |
/// | 12 | 8 | training step |
/// | 20 | 4 | partition index |
/// | 24 | 4 | slot: the contribution index of a gradient push (0 otherwise) |
/// | 28 | 4 | raw length: values in the shard (fp32 count; 0 for control messages) |
/// | 32 | 4 | payload length in bytes (after the header) |
/// | 36 | 4 | CRC-32C of the payload |
public struct WireHeader: Sendable, Equatable {
    public static let magic: UInt32 = 0x5343_5250 // "PRCS" read little-endian
    public static let version: UInt16 = 4
    public static let size = 40

    public var type: MessageType
    public var codec: Codec
    public var epoch: UInt32
    public var step: UInt64
    public var partition: UInt32
    public var slot: UInt32
    public var count: UInt32
    public var payloadLength: UInt32
    public var checksum: UInt32

    public init(type: MessageType, codec: Codec, epoch: UInt32, step: UInt64, partition: UInt32, slot: UInt32 = 0, count: UInt32,
                payloadLength: UInt32 = 0, checksum: UInt32 = 0) {
        self.type = type; self.codec = codec; self.epoch = epoch; self.step = step; self.partition = partition
        self.slot = slot; self.count = count; self.payloadLength = payloadLength; self.checksum = checksum
    }

    public func bytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { write(into: $0) }
        return out
    }

    /// The 40 bytes in a buffer on the stack, for `body` (sending a header allocates nothing).
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: Self.size, alignment: 8) { p in
            write(into: p)
            return try body(UnsafeRawBufferPointer(p))
        }
    }

    func write(into p: UnsafeMutableRawBufferPointer) {
        p.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: Self.version.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: type.rawValue, toByteOffset: 6, as: UInt8.self)
        p.storeBytes(of: codec.rawValue, toByteOffset: 7, as: UInt8.self)
        p.storeBytes(of: epoch.littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: step.littleEndian, toByteOffset: 12, as: UInt64.self)
        p.storeBytes(of: partition.littleEndian, toByteOffset: 20, as: UInt32.self)
        p.storeBytes(of: slot.littleEndian, toByteOffset: 24, as: UInt32.self)
        p.storeBytes(of: count.littleEndian, toByteOffset: 28, as: UInt32.self)
        p.storeBytes(of: payloadLength.littleEndian, toByteOffset: 32, as: UInt32.self)
        p.storeBytes(of: checksum.littleEndian, toByteOffset: 36, as: UInt32.self)
    }

    /// Parses and validates a header, then checks that `payload` is the one it describes (length,
    /// CRC-32C): what every receiver does with a data message's two frames.
    public init(parsing b: UnsafeRawBufferPointer, verifying payload: UnsafeRawBufferPointer) throws {
        try self.init(parsing: b)
        guard payload.count == Int(payloadLength) else {
            throw WireError.lengthMismatch(field: "payload", expected: Int(payloadLength), got: payload.count)
        }
        let crc = CRC32C.checksum(payload)
        guard crc == checksum else { throw WireError.checksumMismatch(expected: checksum, got: crc) }
    }

    /// Parses and validates a header (length, magic, version, type, codec).
    public init(parsing b: UnsafeRawBufferPointer) throws {
        guard b.count >= Self.size else { throw WireError.truncated(expected: Self.size, got: b.count) }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        let magic = u32(0)
        guard magic == Self.magic else { throw WireError.badMagic(magic) }
        let v = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        guard v == Self.version else { throw WireError.wrongVersion(got: v, expected: Self.version) }
        // Exactly 40 bytes in this version (checked after the version, so that a peer of another
        // version, whose header may be longer, is told so).
        guard b.count == Self.size else { throw WireError.lengthMismatch(field: "header", expected: Self.size, got: b.count) }
        guard let t = MessageType(rawValue: b[6]) else { throw WireError.unknownType(b[6]) }
        guard let c = Codec(rawValue: b[7]) else { throw WireError.unknownCodec(b[7]) }
        self.init(type: t, codec: c, epoch: u32(8), step: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt64.self)),
                  partition: u32(20), slot: u32(24), count: u32(28), payloadLength: u32(32), checksum: u32(36))
    }
}

/// Message types. Data messages (1–15) carry a float shard; control messages (16 and up) carry a
/// small JSON object (see `Control.swift` and docs/protocol.md).
public enum MessageType: UInt8, Sendable, CaseIterable {
    /// Worker → server: a gradient shard for (step, partition, slot = contribution).
    case pushGradient = 1
    /// Worker or coordinator → server: send me your partitions at version ≥ step (partition
    /// 0xFFFFFFFF = all of them).
    case pullParameters = 2
    /// Server → puller: a parameter shard (step = the version it holds).
    case parameters = 3
    /// Coordinator → server: initial values of a partition.
    case initParameters = 4
    /// Coordinator → server: initial AdamW first moments of a partition (resuming).
    case initMomentM = 5
    /// Coordinator → server: initial AdamW second moments of a partition (resuming).
    case initMomentV = 6
    /// Coordinator → server: send me your partitions' AdamW moments (slot 0 = m, 1 = v).
    case pullMoments = 7
    /// Server → coordinator: a moments shard (slot 0 = m, 1 = v).
    case moments = 8

    case register = 16, registered = 17, refused = 18, heartbeat = 19, heartbeatAck = 20
    case assign = 21, view = 22, plan = 23, task = 24, contributionDone = 25
    case normReport = 26, apply = 27, applied = 28, leave = 29, shutdown = 30
    case statusRequest = 31, statusReply = 32, initDone = 33, snapshot = 34, snapshotDone = 35
    case evalTask = 36, evalResult = 37, evaluateRequest = 38, evaluateReply = 39
    /// Coordinator → server: the peers allowed on its data socket (`MembersMessage`).
    case members = 40

    public var isControl: Bool { rawValue >= 16 }
}

/// A data message: header + payload (the encoded shard; a gradient push's `ContributionFigures` after it).
public struct DataMessage: Sendable, Equatable {
    public var header: WireHeader
    public var payload: [UInt8]

    /// Encodes a shard into a message (payload length and checksum filled in). A `pushGradient`
    /// needs its contribution's `figures` (they end its payload); other types take none.
    public static func make(type: MessageType, codec: Codec, epoch: UInt32, step: UInt64, partition: UInt32, slot: UInt32 = 0,
                            values: UnsafeBufferPointer<Float>, using shardCodec: ShardCodec,
                            errorFeedback: UnsafeMutablePointer<Float>? = nil, figures: ContributionFigures? = nil) throws -> DataMessage {
        precondition((type == .pushGradient) == (figures != nil), "a pushGradient carries its contribution's figures, nothing else does")
        var payload = try shardCodec.encode(values, codec: codec, errorFeedback: errorFeedback)
        if let figures {
            payload.append(contentsOf: repeatElement(0, count: ContributionFigures.size))
            payload.withUnsafeMutableBytes { figures.write(into: $0.baseAddress! + ($0.count - ContributionFigures.size)) }
        }
        let h = WireHeader(type: type, codec: codec, epoch: epoch, step: step, partition: partition, slot: slot, count: UInt32(values.count),
                           payloadLength: UInt32(payload.count), checksum: CRC32C.checksum(payload))
        return DataMessage(header: h, payload: payload)
    }

    /// The two frames sent on the wire: header, payload.
    public var frames: [[UInt8]] { [header.bytes(), payload] }

    /// Parses and verifies the two frames (header, then payload length and checksum).
    public init(frames: [[UInt8]]) throws {
        guard frames.count == 2 else { throw WireError.lengthMismatch(field: "frames", expected: 2, got: frames.count) }
        let h = try frames[0].withUnsafeBytes { hb in try frames[1].withUnsafeBytes { try WireHeader(parsing: hb, verifying: $0) } }
        self.init(header: h, payload: frames[1])
    }

    public init(header: WireHeader, payload: [UInt8]) {
        self.header = header; self.payload = payload
    }

    /// Decodes the shard into `out` (header.count values), checking the length.
    public func decode(into out: UnsafeMutablePointer<Float>, capacity: Int, using shardCodec: ShardCodec) throws {
        guard Int(header.count) <= capacity else {
            throw WireError.lengthMismatch(field: "shard", expected: capacity, got: Int(header.count))
        }
        try payload.withUnsafeBytes { try shardCodec.decode(header.shard(of: $0), codec: header.codec, count: Int(header.count), into: out) }
    }

    /// A gradient push's contribution figures (the end of its payload).
    public func figures() throws -> ContributionFigures { try payload.withUnsafeBytes { try ContributionFigures(trailerOf: $0) } }
}
