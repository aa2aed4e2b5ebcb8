import CZMQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A CurveZMQ key pair (Curve25519, 32-byte keys), written as Z85 text (40 characters) in
/// certificate files. `secretKey` is nil for a public certificate.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: [UInt8]
    public let secretKey: [UInt8]?

    public init(publicKey: [UInt8], secretKey: [UInt8]?) throws {
        guard publicKey.count == 32 else { throw SecurityError.badKey(what: "public key", reason: "\(publicKey.count) bytes, a CURVE key has 32") }
        if let s = secretKey {
            guard s.count == 32 else { throw SecurityError.badKey(what: "secret key", reason: "\(s.count) bytes, a CURVE key has 32") }
            guard try Self.publicKey(of: s) == publicKey else {
                throw SecurityError.badKey(what: "key pair", reason: "the public key is not the secret key's")
            }
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair (libsodium's random source, through libzmq).
    public static func generate() throws -> CurveKeyPair {
        guard zmq_has("curve") != 0 else { throw SecurityError.curveUnavailable }
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw SecurityError.curveUnavailable }
        return try CurveKeyPair(publicKey: Z85.decode(Z85.text(pub)), secretKey: Z85.decode(Z85.text(sec)))
    }

    /// The public key that belongs to a secret key.
    static func publicKey(of secret: [UInt8]) throws -> [UInt8] {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = Array(Z85.encode(secret).utf8CString)
        guard zmq_curve_public(&pub, &sec) == 0 else { throw SecurityError.curveUnavailable }
        return try Z85.decode(Z85.text(pub))
    }

    public var publicText: String { Z85.encode(publicKey) }
}

/// ZeroMQ's Z85 text encoding of binary keys (RFC 32): 4 bytes become 5 printable characters.
public enum Z85 {
    public static func encode(_ bytes: [UInt8]) -> String {
        precondition(bytes.count % 4 == 0, "Z85 encodes whole 4-byte groups")
        var out = [CChar](repeating: 0, count: bytes.count / 4 * 5 + 1)
        _ = bytes.withUnsafeBufferPointer { zmq_z85_encode(&out, $0.baseAddress, bytes.count) }
        return text(out)
    }

    /// The text libzmq wrote into `buffer`: its characters up to the terminating NUL.
    static func text(_ buffer: [CChar]) -> String {
        let end = buffer.firstIndex(of: 0) ?? buffer.endIndex
        return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The bytes of a Z85 text; an error for a length that is not a multiple of 5 or a character
    /// outside the Z85 alphabet.
    public static func decode(_ text: String) throws -> [UInt8] {
        let chars = Array(text.utf8)
        guard !chars.isEmpty, chars.count % 5 == 0 else {
            throw SecurityError.badKey(what: "Z85 text", reason: "\(chars.count) characters, not a multiple of 5")
        }
        guard chars.allSatisfy({ alphabet.contains($0) }) else {
            throw SecurityError.badKey(what: "Z85 text", reason: "a character outside the Z85 alphabet")
        }
        var out = [UInt8](repeating: 0, count: chars.count / 5 * 4)
        let ok = text.withCString { s in out.withUnsafeMutableBufferPointer { zmq_z85_decode($0.baseAddress, s) != nil } }
        guard ok else { throw SecurityError.badKey(what: "Z85 text", reason: "not valid Z85") }
        return out
    }

    static let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
}

/// Why keys or certificates could not be used.
public enum SecurityError: Error, CustomStringConvertible, Equatable {
    case curveUnavailable
    case badKey(what: String, reason: String)
    case badCertificate(file: String, reason: String)
    case missingFile(String)
    case secretFileTooOpen(file: String, mode: String)
    case exists(String)
    case insecureBind(endpoint: String)
    case unreadable(file: String, reason: String)

    public var description: String {
        switch self {
        case .curveUnavailable: return "this libzmq has no CURVE security (it was built without libsodium)"
        case let .badKey(what, reason): return "bad \(what): \(reason)"
        case let .badCertificate(file, reason): return "\(file): not a usable certificate: \(reason)"
        case let .missingFile(f): return "\(f) does not exist (create the cluster's keys with `precis keys generate --out DIR`)"
        case let .secretFileTooOpen(f, mode):
            return "\(f) holds a secret key but is readable by others (mode \(mode)): run `chmod 600 \(f)`"
        case let .exists(f): return "\(f) already exists: keys are never overwritten (generate new keys into another folder to rotate them)"
        case let .insecureBind(e):
            return "refusing to listen on \(e) without keys: peers on the network could join the cluster, read and overwrite its parameters. "
                + "Give --keys DIR (made by `precis keys generate`), bind to 127.0.0.1, or pass --insecure to accept the risk"
        case let .unreadable(f, reason): return "\(f): \(reason)"
        }
    }
}
