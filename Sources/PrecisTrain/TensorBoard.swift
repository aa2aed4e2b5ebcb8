import Foundation
import PrecisCore
import PrecisWire

/// TensorBoard's event files, written by hand: each record is TFRecord-framed (little-endian
/// uint64 length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data) and holds
/// one protobuf `Event` — the first `file_version: "brain.Event:2"`, then one per logged step with
/// `summary { value { tag, simple_value } }` for each scalar. That is all of the format the scalars
/// dashboard reads (tensorflow/core/util/event.proto, summary.proto; record_writer.cc).
public enum TFRecord {
    /// The checksum TFRecord stores: CRC-32C rotated right by 15 bits plus a constant.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// `data` framed as one record.
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        out += length
        appendLE(masked(CRC32C.checksum(length)), to: &out)
        out += data
        appendLE(masked(CRC32C.checksum(data)), to: &out)
        return out
    }

    static func appendLE(_ v: UInt32, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }
}

/// The few protobuf messages an event file holds, encoded by hand (field numbers from event.proto
/// and summary.proto).
public enum TensorBoardEvent {
    /// `Event { wall_time = 1; step = 2; file_version = 3 }`.
    public static func fileVersion(wallTime: Double) -> [UInt8] {
        var e = [UInt8]()
        double(1, wallTime, into: &e)
        bytes(3, Array("brain.Event:2".utf8), into: &e)
        return e
    }

    /// `Event { wall_time = 1; step = 2; summary = 5 { repeated value = 1 { tag = 1; simple_value = 2 } } }`.
    public static func scalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Double) -> [UInt8] {
        var summary = [UInt8]()
        for (tag, value) in values {
            var v = [UInt8]()
            bytes(1, Array(tag.utf8), into: &v)
            key(2, wireType: 5, into: &v)
            withUnsafeBytes(of: Float(value).bitPattern.littleEndian) { v += $0 }
            bytes(1, v, into: &summary)
        }
        var e = [UInt8]()
        double(1, wallTime, into: &e)
        key(2, wireType: 0, into: &e)
        varint(UInt64(bitPattern: Int64(step)), into: &e)
        bytes(5, summary, into: &e)
        return e
    }

    static func key(_ field: UInt64, wireType: UInt64, into out: inout [UInt8]) { varint(field << 3 | wireType, into: &out) }

    static func varint(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    static func double(_ field: UInt64, _ v: Double, into out: inout [UInt8]) {
        key(field, wireType: 1, into: &out)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
    }

    static func bytes(_ field: UInt64, _ b: [UInt8], into out: inout [UInt8]) {
        key(field, wireType: 2, into: &out)
        varint(UInt64(b.count), into: &out)
        out += b
    }
}

/// Trainer's TensorBoard tags for a log_history entry (`rewrite_logs` in transformers'
/// integrations): `eval_x` → `eval/x`, `test_x` → `test/x`, anything else → `train/x`; `step` is the
/// event's step, not a scalar. Precis's wire figures are the cluster's, under `cluster/`.
public enum TensorBoardTags {
    public static let clusterKeys: Set<String> = ["gradient_wire_mb_per_step", "gradient_compression_ratio",
                                                  "parameter_wire_mb_per_step", "parameter_compression_ratio"]

    public static func scalars(from entry: [String: Double]) -> [(tag: String, value: Double)] {
        entry.keys.sorted().compactMap { k in
            guard k != "step", let v = entry[k] else { return nil }
            if k.hasPrefix("eval_") { return ("eval/" + k.dropFirst(5), v) }
            if k.hasPrefix("test_") { return ("test/" + k.dropFirst(5), v) }
            if clusterKeys.contains(k) { return ("cluster/" + k, v) }
            return ("train/" + k, v)
        }
    }
}

public enum TensorBoardError: Error, CustomStringConvertible {
    case io(path: String, reason: String)
    public var description: String {
        switch self { case let .io(p, r): return "\(p): cannot write the TensorBoard event file: \(r)" }
    }
}

/// One event file in a logging directory (`events.out.tfevents.<unix time>.<host>`), appended to
/// and flushed to the disk at every call, so TensorBoard sees each logged step as it happens.
public final class TensorBoardWriter {
    public let path: String
    private let fd: Int32

    /// Creates `directory` (and its parents) and the event file in it, with its `file_version` record.
    public init(directory: String, now: Date = Date()) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw TensorBoardError.io(path: directory, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        let seconds = now.timeIntervalSince1970
        path = (directory as NSString).appendingPathComponent("events.out.tfevents.\(Int(seconds)).\(Self.hostName())")
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd < 0 { throw TensorBoardError.io(path: path, reason: String(cString: strerror(errno))) }
        try write(TensorBoardEvent.fileVersion(wallTime: seconds))
    }

    deinit { close(fd) }

    /// Scalars for `step`, as one event.
    public func add(_ scalars: [(tag: String, value: Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        guard !scalars.isEmpty else { return }
        try write(TensorBoardEvent.scalars(scalars, step: step, wallTime: wallTime))
    }

    private func write(_ event: [UInt8]) throws {
        let record = TFRecord.frame(event)
        do {
            try record.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) }
        } catch {
            throw TensorBoardError.io(path: path, reason: "\(error)")
        }
        _ = fsync(fd)
    }

    /// This machine's name, as the file name carries it (only letters, digits, `-` and `.` kept).
    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let kept = name.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
        return kept.isEmpty ? "localhost" : kept
    }

    /// Trainer's default logging_dir: `output_dir/runs/<Mon DD_HH-MM-SS>_<host>`.
    public static func defaultLoggingDir(outputDir: String, now: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "MMMdd_HH-mm-ss"
        return (outputDir as NSString).appendingPathComponent("runs/\(f.string(from: now))_\(hostName())")
    }
}
