import Foundation
import Testing
import PrecisWire
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SecurityTests {
    func tempDir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-keys-\(UUID().uuidString.prefix(8))").path
        return d
    }

    /// RFC 32's test vector, and round trips of random keys.
    @Test func z85MatchesTheSpecificationAndRoundTrips() throws {
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(Z85.encode(bytes) == "HelloWorld")
        #expect(try Z85.decode("HelloWorld") == bytes)
        let pair = try CurveKeyPair.generate()
        #expect(try Z85.decode(Z85.encode(pair.publicKey)) == pair.publicKey)
        #expect(throws: SecurityError.self) { try Z85.decode("Hello") .count == 4 ? try Z85.decode("Hell") : [] }
        #expect(throws: SecurityError.self) { try Z85.decode("Hello Worl") }   // space is not in the alphabet
    }

    @Test func certificatesRoundTripAndBadOnesAreRefused() throws {
        let pair = try CurveKeyPair.generate()
        let secret = try Certificate.parse(Certificate.text(pair, role: "worker", secret: true), file: "w.key_secret")
        #expect(secret == pair)
        let pub = try Certificate.parse(Certificate.text(pair, role: "worker", secret: false), file: "w.key")
        #expect(pub.publicKey == pair.publicKey && pub.secretKey == nil)
        // A secret key with another pair's public key.
        let other = try CurveKeyPair.generate()
        let mixed = "curve\n    public-key = \"\(other.publicText)\"\n    secret-key = \"\(Z85.encode(pair.secretKey!))\"\n"
        #expect { try Certificate.parse(mixed, file: "mixed") } throws: { "\($0)".contains("mixed") && "\($0)".contains("not the secret key's") }
        #expect { try Certificate.parse("curve\n    public-key = \"short\"\n", file: "short.key") } throws: { "\($0)".contains("short.key") }
        #expect { try Certificate.parse("metadata\n", file: "empty.key") } throws: { "\($0)".contains("no curve public-key") }
    }

    /// `generate` writes secrets 0600 and never overwrites; a secret file others can read is refused by name.
    @Test func generatedKeysLoadAndOpenSecretsAreRefused() throws {
        let dir = tempDir()
        try ClusterKeys.generate(into: dir)
        for r in KeyRole.allCases {
            let attrs = try FileManager.default.attributesOfItem(atPath: ClusterKeys.secretFile(dir, r))
            #expect((attrs[.posixPermissions] as? Int) == 0o600)
        }
        let c = try ClusterKeys.load(dir: dir, role: .coordinator)
        let w = try ClusterKeys.load(dir: dir, role: .worker)
        #expect(c.role(of: w.own.publicKey) == .worker)
        #expect(c.coordinatorKey == c.own.publicKey && w.coordinatorKey == c.own.publicKey)
        #expect(c.role(of: try CurveKeyPair.generate().publicKey) == nil)
        #expect { try ClusterKeys.generate(into: dir) } throws: { "\($0)".contains("already exists") }

        let file = ClusterKeys.secretFile(dir, .server)
        chmod(file, 0o644)
        #expect { try ClusterKeys.load(dir: dir, role: .server) } throws: {
            "\($0)".contains(file) && "\($0)".contains("readable by others") && "\($0)".contains("644")
        }
        chmod(file, 0o600)
        _ = try ClusterKeys.load(dir: dir, role: .server)
        #expect { try ClusterKeys.load(dir: dir + "/nowhere", role: .server) } throws: { "\($0)".contains("does not exist") }
    }

    /// A key file that is not a regular file (a FIFO would block the read) or is larger than a key
    /// file can be (a hostile one would fill memory first) is refused, naming it, before it is read.
    @Test func keyFilesThatAreNotSmallRegularFilesAreRefused() throws {
        let dir = tempDir()
        try ClusterKeys.generate(into: dir)
        let authorized = dir + "/authorized_keys"
        try FileManager.default.removeItem(atPath: authorized)
        #expect(mkfifo(authorized, 0o600) == 0)
        #expect { try ClusterKeys.load(dir: dir, role: .coordinator) } throws: {
            "\($0)".contains(authorized) && "\($0)".contains("not a regular file")
        }
        try FileManager.default.removeItem(atPath: authorized)
        try Data(repeating: UInt8(ascii: "a"), count: (1 << 20) + 1).write(to: URL(fileURLWithPath: authorized))
        #expect { try ClusterKeys.load(dir: dir, role: .coordinator) } throws: {
            "\($0)".contains(authorized) && "\($0)".contains("larger than the 1048576 bytes")
        }
        // Workers do not read authorized_keys: their own certificate still loads.
        _ = try ClusterKeys.load(dir: dir, role: .worker)
    }

    @Test func authorizedKeysLinesAreChecked() throws {
        let k = try CurveKeyPair.generate().publicText
        #expect(try ClusterKeys.parseAuthorized("# c\n#\n\(k) worker # w0\n\n", file: "a")[k] == .worker)
        #expect { try ClusterKeys.parseAuthorized("\(k) admin\n", file: "a") } throws: { "\($0)".contains("line 1: unknown role") }
        #expect { try ClusterKeys.parseAuthorized("\(k)\n", file: "a") } throws: { "\($0)".contains("expected `KEY ROLE`") }
        #expect { try ClusterKeys.parseAuthorized("abc worker\n", file: "a") } throws: { "\($0)".contains("Z85 public key") }
    }

    @Test func bindingOffLoopbackNeedsKeysOrInsecure() throws {
        #expect(BindPolicy.isLocal("tcp://127.0.0.1:*") && BindPolicy.isLocal("tcp://localhost:5555") && BindPolicy.isLocal("tcp://[::1]:5"))
        #expect(!BindPolicy.isLocal("tcp://0.0.0.0:5555") && !BindPolicy.isLocal("tcp://*:5555") && !BindPolicy.isLocal("tcp://10.0.0.2:1"))
        #expect { try BindPolicy.check("tcp://0.0.0.0:5555", keys: nil, insecure: false) } throws: { "\($0)".contains("--insecure") }
        try BindPolicy.check("tcp://0.0.0.0:5555", keys: nil, insecure: true)
        try BindPolicy.check("tcp://127.0.0.1:*", keys: nil, insecure: false)
    }

    /// Real sockets: a CURVE ROUTER guarded by the ZAP handler gets messages from an authorized key
    /// (tagged with its role) and nothing from an unknown key or a client without CURVE.
    @Test func onlyAuthorizedKeysReachTheApplication() throws {
        let dir = tempDir()
        try ClusterKeys.generate(into: dir)
        let serverKeys = try ClusterKeys.load(dir: dir, role: .server)
        let ctx = try ZMQContext()
        let zap = try ZAPHandler(context: ctx, keys: serverKeys, name: "test")
        defer { zap.stop() }
        let router = try ZMQSocket(ctx, .router)
        try router.secureAsServer(serverKeys)
        let endpoint = try router.bind("tcp://127.0.0.1:*")

        let clientCtx = try ZMQContext()
        let plain = try ZMQSocket(clientCtx, .dealer)
        try plain.connect(endpoint)
        try plain.send([Array("plain".utf8)])
        let strangerDir = tempDir()
        try ClusterKeys.generate(into: strangerDir)
        let stranger = try ZMQSocket(clientCtx, .dealer)
        try stranger.secureAsClient(ClusterKeys.load(dir: strangerDir, role: .worker), serverKey: serverKeys.serverKey)   // unknown own key
        try stranger.connect(endpoint)
        try stranger.send([Array("stranger".utf8)])
        #expect(throws: WireError.self) { try router.receive(timeoutMs: 1500) }

        let worker = try ZMQSocket(clientCtx, .dealer)
        try ClusterKeys.load(dir: dir, role: .worker).secureToServer(worker)
        try worker.connect(endpoint)
        try worker.send([Array("member".utf8)])
        let got = try router.receive(timeoutMs: 5000)
        #expect(got.last == Array("member".utf8))
        #expect(router.lastPeerRole == .worker, "admitted \(zap.admitted) refused \(zap.refused)")
        #expect(throws: WireError.self) { try router.receive(timeoutMs: 300) }
        #expect(zap.refused >= 1 && zap.admitted == 1)
    }

    /// What a CURVE ROUTER queues before its owner exits reaches the peer: once the ZAP handler is
    /// stopped (its thread held a socket, so the context could never be terminated and `exit` cut
    /// off the coordinator's last `shutdown` messages), closing the socket and terminating the
    /// context returns after they went out.
    @Test func theLastMessagesOfAKeyedSocketGoOutBeforeItsContextEnds() throws {
        let dir = tempDir()
        try ClusterKeys.generate(into: dir)
        let serverKeys = try ClusterKeys.load(dir: dir, role: .server)
        let ctx = try ZMQContext()
        let zap = try ZAPHandler(context: ctx, keys: serverKeys, name: "test")
        let router = try ZMQSocket(ctx, .router)
        try router.secureAsServer(serverKeys)
        let endpoint = try router.bind("tcp://127.0.0.1:*")

        let clientCtx = try ZMQContext()
        let worker = try ZMQSocket(clientCtx, .dealer)
        try ClusterKeys.load(dir: dir, role: .worker).secureToServer(worker)
        try worker.connect(endpoint)
        try worker.send([Array("hello".utf8)])
        let hello = try router.receive(timeoutMs: 5000)
        let identity = hello[0]
        let count = 64
        let payload = [UInt8](repeating: 7, count: 256 << 10)
        for i in 0..<count { try router.send([identity, [UInt8(i)], payload]) }
        try router.set(ZMQSocket.linger, 5000)
        router.close()
        zap.stop()
        #expect(ctx.terminate(waitingAtMost: 10), "the context did not end: a socket is still open")
        for i in 0..<count {
            let m = try worker.receive(timeoutMs: 5000)
            #expect(m.count == 2 && m[0] == [UInt8(i)] && m[1].count == payload.count)
        }
    }
}
