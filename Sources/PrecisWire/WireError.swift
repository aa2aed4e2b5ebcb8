import CZMQ
#if canImport(Glibc)
import Glibc
#endif

/// Errors on the wire. Decode errors name what was wrong so the receiver can log the reason with the
/// peer and drop the message; nothing here crashes a process.
public enum WireError: Error, CustomStringConvertible, Equatable {
    case zmq(operation: String, errno: Int32, message: String)
    case truncated(expected: Int, got: Int)
    case badMagic(UInt32)
    case wrongVersion(got: UInt16, expected: UInt16)
    case unknownCodec(UInt8)
    case unknownType(UInt8)
    case checksumMismatch(expected: UInt32, got: UInt32)
    case lengthMismatch(field: String, expected: Int, got: Int)
    case lz4(String)
    case timeout(operation: String, milliseconds: Int)
    case badControl(type: String, reason: String)
    case pushFailed(String)

    public var description: String {
        switch self {
        case let .zmq(op, e, m): return "zmq \(op) failed (errno \(e)): \(m)"
        case let .truncated(e, g): return "truncated message: need \(e) bytes, got \(g)"
        case let .badMagic(m): return "bad magic 0x\(hex(m)) (not a Precis message)"
        case let .wrongVersion(g, e): return "protocol version \(g), this process speaks \(e)"
        case let .unknownCodec(c): return "unknown codec \(c)"
        case let .unknownType(t): return "unknown message type \(t)"
        case let .checksumMismatch(e, g): return "checksum mismatch: header says 0x\(hex(e)), payload has 0x\(hex(g))"
        case let .lengthMismatch(f, e, g): return "\(f): expected \(e) bytes, got \(g)"
        case let .lz4(m): return "LZ4: \(m)"
        case let .pushFailed(m): return "push failed: \(m)"
        case let .timeout(op, ms): return "\(op): no answer within \(ms) ms"
        case let .badControl(t, r): return "bad \(t) message: \(r)"
        }
    }

    func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    static func lastZMQ(_ op: String) -> WireError {
        let e = zmq_errno()
        return .zmq(operation: op, errno: e, message: String(cString: zmq_strerror(e)))
    }
}
