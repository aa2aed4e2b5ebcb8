import Foundation
import Testing
import PrecisTrain
import PrecisWire

/// Reads an event file back: TFRecord frames with both checksums checked, and the few protobuf
/// fields of `Event` and `Summary.Value` the writer uses (others are skipped by wire type).
struct EventFileReader {
    struct Event: Equatable {
        var wallTime = 0.0
        var step = 0
        var fileVersion: String?
        var scalars: [String: Float] = [:]
    }

    enum Failure: Error { case truncated, badLengthCRC, badDataCRC, badProtobuf }

    static func records(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var out: [[UInt8]] = [], i = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        while i < bytes.count {
            guard i + 12 <= bytes.count else { throw Failure.truncated }
            let lengthBytes = Array(bytes[i..<i + 8])
            let n = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthBytes[$1]) << (8 * UInt64($1)) })
            guard TFRecord.masked(CRC32C.checksum(lengthBytes)) == u32(i + 8) else { throw Failure.badLengthCRC }
            guard n <= bytes.count - i - 16 else { throw Failure.truncated }
            let data = Array(bytes[i + 12..<i + 12 + n])
            guard TFRecord.masked(CRC32C.checksum(data)) == u32(i + 12 + n) else { throw Failure.badDataCRC }
            out.append(data)
            i += 16 + n
        }
        return out
    }

    /// (field, wire type, varint value or fixed bits, length-delimited bytes).
    static func fields(_ b: [UInt8]) throws -> [(Int, Int, UInt64, [UInt8])] {
        var out: [(Int, Int, UInt64, [UInt8])] = [], i = 0
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < b.count, shift < 64 else { throw Failure.badProtobuf }
                let x = b[i]; i += 1
                v |= UInt64(x & 0x7F) << shift; shift += 7
                if x < 0x80 { return v }
            }
        }
        func fixed(_ n: Int) throws -> UInt64 {
            guard i + n <= b.count else { throw Failure.badProtobuf }
            defer { i += n }
            return (0..<n).reduce(UInt64(0)) { $0 | UInt64(b[i + $1]) << (8 * UInt64($1)) }
        }
        while i < b.count {
            let key = try varint()
            let field = Int(key >> 3), type = Int(key & 7)
            switch type {
            case 0: out.append((field, type, try varint(), []))
            case 1: out.append((field, type, try fixed(8), []))
            case 5: out.append((field, type, try fixed(4), []))
            case 2:
                let n = Int(try varint())
                guard n <= b.count - i else { throw Failure.badProtobuf }
                out.append((field, type, 0, Array(b[i..<i + n]))); i += n
            default: throw Failure.badProtobuf
            }
        }
        return out
    }

    static func event(_ data: [UInt8]) throws -> Event {
        var e = Event()
        for (field, _, v, bytes) in try fields(data) {
            switch field {
            case 1: e.wallTime = Double(bitPattern: v)
            case 2: e.step = Int(Int64(bitPattern: v))
            case 3: e.fileVersion = String(decoding: bytes, as: UTF8.self)
            case 5:
                for (f, _, _, value) in try fields(bytes) where f == 1 {
                    var tag = "", x: Float = .nan
                    for (vf, _, vv, vb) in try fields(value) {
                        if vf == 1 { tag = String(decoding: vb, as: UTF8.self) }
                        if vf == 2 { x = Float(bitPattern: UInt32(vv)) }
                    }
                    e.scalars[tag] = x
                }
            default: break
            }
        }
        return e
    }

    static func read(_ path: String) throws -> [Event] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return try records(bytes).map(event)
    }
}

@Suite struct TensorBoardTests {
    @Test func maskedCRCMatchesTheTFRecordDefinition() {
        // CRC-32C("123456789") is the standard check value 0xE3069283; masked as TFRecord does.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(TFRecord.masked(0xE306_9283) == 0xC78A_B0E5)
    }

    @Test func theFileVersionRecordIsByteForByteTheKnownOne() {
        // Computed independently (Python: struct + a bitwise CRC-32C): Event{wall_time: 1.5, file_version: "brain.Event:2"}.
        let expected = "1800000000000000a37f4b2209000000000000f83f1a0d627261696e2e4576656e743a322a28646c"
        let got = TFRecord.frame(TensorBoardEvent.fileVersion(wallTime: 1.5)).map { String(format: "%02x", $0) }.joined()
        #expect(got == expected)
    }

    @Test func aWrittenFileReadsBackEveryScalar() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try TensorBoardWriter(directory: dir + "/runs/x", now: Date(timeIntervalSince1970: 1_700_000_000))
        #expect((w.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents.1700000000."))
        try w.add([("train/loss", 3.25), ("train/learning_rate", 5e-5)], step: 10, wallTime: 1_700_000_010)
        try w.add(TensorBoardTags.scalars(from: ["step": 20, "eval_loss": 2.5, "eval_rouge1": 41.5, "loss": 3.0,
                                                  "gradient_compression_ratio": 1.25]), step: 20, wallTime: 1_700_000_020)
        try w.add([("train/loss", 2.0)], step: 12_345_678_901, wallTime: 1_700_000_030)
        let events = try EventFileReader.read(w.path)
        #expect(events.count == 4)
        #expect(events[0].fileVersion == "brain.Event:2" && events[0].wallTime == 1_700_000_000)
        #expect(events[1] == .init(wallTime: 1_700_000_010, step: 10, scalars: ["train/loss": 3.25, "train/learning_rate": Float(5e-5)]))
        #expect(events[2].step == 20 && events[2].scalars == ["eval/loss": 2.5, "eval/rouge1": 41.5, "train/loss": 3.0,
                                                               "cluster/gradient_compression_ratio": 1.25])
        #expect(events[3].step == 12_345_678_901)
    }

    @Test func aDamagedRecordIsRefused() throws {
        var bytes = TFRecord.frame(TensorBoardEvent.scalars([("train/loss", 1)], step: 1, wallTime: 1))
        bytes[14] ^= 1
        #expect(throws: EventFileReader.Failure.badDataCRC) { try EventFileReader.records(bytes) }
        bytes[14] ^= 1; bytes[0] ^= 1
        #expect(throws: EventFileReader.Failure.badLengthCRC) { try EventFileReader.records(bytes) }
    }

    @Test func defaultLoggingDirIsTrainersRunsDateHost() {
        let d = TensorBoardWriter.defaultLoggingDir(outputDir: "out", now: Date(timeIntervalSince1970: 0))
        #expect(d.hasPrefix("out/runs/") && d.range(of: #"^out/runs/[A-Z][a-z]{2}\d\d_\d\d-\d\d-\d\d_.+$"#, options: .regularExpression) != nil, "\(d)")
    }
}
