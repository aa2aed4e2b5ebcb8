import CZMQ
#if canImport(Glibc)
import Glibc
#endif

extension ZMQSocket {
    static let curveServer: Int32 = 47, curvePublicKey: Int32 = 48, curveSecretKey: Int32 = 49, curveServerKey: Int32 = 50
    static let zapDomain: Int32 = 55

    /// Makes this socket (before it binds) a CURVE server with `keys`' own key pair: peers must
    /// complete the CURVE handshake and pass the process's `ZAPHandler`.
    public func secureAsServer(_ keys: ClusterKeys) throws {
        try set(Self.curveServer, 1)
        try set(Self.curveSecretKey, bytes: keys.own.secretKey!)
        try set(Self.zapDomain, bytes: Array(ZAPHandler.domain.utf8))
    }

    /// Makes this socket (before it connects) a CURVE client with `keys`' own key pair, talking to
    /// a server holding `serverKey`'s secret (the coordinator's or the servers' key).
    public func secureAsClient(_ keys: ClusterKeys, serverKey: [UInt8]) throws {
        try set(Self.curveServerKey, bytes: serverKey)
        try set(Self.curvePublicKey, bytes: keys.own.publicKey)
        try set(Self.curveSecretKey, bytes: keys.own.secretKey!)
    }
}

extension ClusterKeys {
    /// A client socket to the coordinator.
    public func secureToCoordinator(_ s: ZMQSocket) throws { try s.secureAsClient(self, serverKey: coordinatorKey) }
    /// A client socket to a parameter server.
    public func secureToServer(_ s: ZMQSocket) throws { try s.secureAsClient(self, serverKey: serverKey) }
}

/// The public key (Z85) of the peer a message came from, as the ZAP handler named it (nil without CURVE).
func peerKey(of msg: UnsafePointer<zmq_msg_t>) -> String? {
    guard let p = zmq_msg_gets(UnsafeMutablePointer(mutating: msg), ZAPHandler.keyProperty) else { return nil }
    let s = String(cString: p)
    return s.utf8.count == 40 ? s : nil
}

/// The role of the peer a message came from, as the ZAP handler named it (nil without CURVE).
func peerRole(of msg: UnsafePointer<zmq_msg_t>) -> KeyRole? {
    guard let p = zmq_msg_gets(UnsafeMutablePointer(mutating: msg), "User-Id") else { return nil }
    for r in KeyRole.allCases where strcmp(p, r.rawValue) == 0 { return r }
    return nil
}
