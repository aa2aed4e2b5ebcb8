import Foundation
import Testing
import PrecisCore
import PrecisTrain
import PrecisWire
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

extension RealProcesses {
/// A cluster with keys (CurveZMQ + ZAP), against peers that have no key or an unknown one.
@Suite struct SecurityClusterTests {
    /// Sends `frames` from a fresh DEALER (plain, or CURVE with `keys` towards `serverKey`) and
    /// reports whether anything came back within `waitMs`.
    static func probe(_ endpoint: String, _ frames: [[UInt8]], keys: ClusterKeys? = nil, serverKey: [UInt8]? = nil,
                      waitMs: Int = 1000) throws -> Bool {
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .dealer)
        try s.set(ZMQSocket.routingID, bytes: Array("intruder".utf8))
        if let keys, let serverKey { try s.secureAsClient(keys, serverKey: serverKey) }
        try s.connect(endpoint)
        try s.send(frames)
        return (try? s.receive(timeoutMs: waitMs)) != nil
    }

    /// Peers without a key, or with a key not in authorized_keys, never reach the coordinator or
    /// a server: nothing answers them, nothing they send is logged as received, and the run's final
    /// parameters are bitwise those of an undisturbed run (a keyless one: keys change nothing else).
    /// The operator key gets the status over CURVE.
    @Test func keyedClusterNeverHearsPeersWithoutAnAuthorizedKey() throws {
        let dir = TestData.tempDir("curve")
        let model = try TestCluster.tiny(in: dir)
        // The worker is stopped (SIGSTOP) while the probes run, so the run is still training when every
        // probe is done however fast it is; its heartbeats may not time out meanwhile.
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 50, servers: 1, workers: 1,
                                         extraCluster: "heartbeat_timeout: 600")
        let keysDir = dir + "/keys"
        try ClusterKeys.generate(into: keysDir)
        let strangerDir = dir + "/stranger-keys"
        try ClusterKeys.generate(into: strangerDir)
        let stranger = try ClusterKeys.load(dir: strangerDir, role: .worker)
        let operatorKeys = try ClusterKeys.load(dir: keysDir, role: .operator)

        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 1, keys: keysDir)
        #expect(c.waitForStep(2), "\(c.allLogs())")
        c.signal("w0", SIGSTOP)
        #expect(c.log("coordinator").contains("(CURVE, keys from \(keysDir))"))

        // Without keys the status request goes unanswered; with the operator's key it is answered.
        #expect(throws: WireError.self) { try ClusterStatus.query(endpoint: c.endpoint, timeoutMs: 1500) }
        let status = try ClusterStatus.query(endpoint: c.endpoint, timeoutMs: 5000, keys: operatorKeys)
        let json = try JSONSerialization.jsonObject(with: Data(status.utf8)) as! [String: Any]
        let dataEndpoint = (json["servers"] as! [[String: Any]])[0]["endpoint"] as! String

        let register = Control.frames(.register, RegisterMessage(role: .worker, name: "probe", host: "127.0.0.1", pid: 1, threads: 1))
        let garbage = [Array("GARBAGE-HEADER-THAT-IS-NOT-PRECIS-AT-ALL!!".utf8), [1, 2, 3]]
        let pullAll = DataMessage(header: WireHeader(type: .pullParameters, codec: .fp32, epoch: 1, step: 0, partition: UInt32.max, count: 0),
                                  payload: []).frames
        let values = [Float](repeating: 1e3, count: 1000)
        let initFrames = try values.withUnsafeBufferPointer {
            try DataMessage.make(type: .initParameters, codec: .fp32, epoch: 1, step: 0, partition: 0, values: $0, using: ShardCodec())
        }.frames
        for frames in [register, garbage] {
            #expect(try !Self.probe(c.endpoint, frames), "a keyless peer got an answer from the coordinator")
            #expect(try !Self.probe(c.endpoint, frames, keys: stranger, serverKey: operatorKeys.coordinatorKey),
                    "an unknown key got an answer from the coordinator")
        }
        for frames in [pullAll, initFrames, garbage] {
            #expect(try !Self.probe(dataEndpoint, frames), "a keyless peer got an answer from the server")
            #expect(try !Self.probe(dataEndpoint, frames, keys: stranger, serverKey: operatorKeys.serverKey),
                    "an unknown key got an answer from the server")
        }
        // Keys that are authorized still only do their role's job.
        let workerKeys = try ClusterKeys.load(dir: keysDir, role: .worker)
        #expect(try !Self.probe(dataEndpoint, initFrames, keys: workerKeys, serverKey: workerKeys.serverKey))
        #expect(c.waitForLog("ps0", "dropped a initParameters (step 0, partition 0, slot 0, epoch 1) from intruder: only the coordinator's data connection may send it"),
                "\(c.log("ps0"))")
        #expect(try !Self.probe(c.endpoint, register, keys: operatorKeys, serverKey: operatorKeys.coordinatorKey))
        #expect(c.waitForLog("coordinator", "dropped a register from intruder: registering as worker with the operator key"), "\(c.log("coordinator"))")
        let evaluate = Control.frames(.evaluateRequest, EvaluateRequest(checkpoint: dir, dataFile: dir, maxSamples: nil))
        #expect(try !Self.probe(c.endpoint, evaluate, keys: workerKeys, serverKey: workerKeys.coordinatorKey))
        #expect(c.waitForLog("coordinator", "dropped a evaluateRequest from intruder: the worker key may not send it"), "\(c.log("coordinator"))")
        #expect(c.processes["coordinator"]?.isRunning == true, "the run ended before every probe was sent")
        c.signal("w0", SIGCONT)
        // The handshake refusals are logged (by key); nothing they sent is.
        #expect(c.waitForLog("coordinator", "is not in authorized_keys", timeout: 30), "\(c.log("coordinator"))")
        #expect(c.waitForLog("ps0", "is not in authorized_keys", timeout: 30), "\(c.log("ps0"))")
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        for n in ["ps0", "w0"] { #expect(c.wait(n, timeout: 20) == 0, "\(n): \(c.allLogs())") }
        let coordinatorLog = c.log("coordinator"), serverLog = c.log("ps0")
        #expect(coordinatorLog.contains("step 50/50"))
        for text in ["probe", "bad magic", "intruder: bad", "joined (pid 1 "] {
            #expect(!coordinatorLog.contains(text) && !serverLog.contains(text), "\(text) in the logs:\n\(c.allLogs())")
        }
        try expectBitwiseEqualToUndisturbedRun(dir: dir, config: cfg, servers: 1, workers: 1, tag: "keyed")
    }

    /// A raw peer that reaches the ports of a keyless (loopback) cluster can do nothing: the server
    /// takes initial values and moments requests only from the coordinator's data connection, pulls
    /// and pushes only from announced workers; the coordinator logs and drops malformed or
    /// unexpected control messages instead of ending the run. The parameters are bitwise those of
    /// an undisturbed run.
    @Test func aHostilePeerCanNeitherReadNorWriteParametersNorStopTheRun() throws {
        let dir = TestData.tempDir("hostile")
        let model = try TestCluster.tiny(in: dir)
        // The worker is stopped while the probes run (see above): the run is still training throughout.
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 30, servers: 1, workers: 1,
                                         extraCluster: "heartbeat_timeout: 600")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 1)
        #expect(c.waitForStep(2), "\(c.allLogs())")
        c.signal("w0", SIGSTOP)
        let status = try JSONSerialization.jsonObject(with: Data(try ClusterStatus.query(endpoint: c.endpoint).utf8)) as! [String: Any]
        let dataEndpoint = (status["servers"] as! [[String: Any]])[0]["endpoint"] as! String
        let epoch = status["epoch"] as! Int

        let ctx = try ZMQContext()
        let toServer = try ZMQSocket(ctx, .dealer)
        try toServer.set(ZMQSocket.routingID, bytes: Array("intruder".utf8))
        try toServer.connect(dataEndpoint)
        let values = [Float](repeating: 1e3, count: 1000)
        func data(_ type: MessageType, slot: UInt32 = 0, step: UInt64 = 0) throws -> [[UInt8]] {
            try values.withUnsafeBufferPointer {
                try DataMessage.make(type: type, codec: .fp32, epoch: UInt32(epoch), step: step, partition: 0, slot: slot, values: $0, using: ShardCodec(),
                                     figures: type == .pushGradient ? ContributionFigures(lossSum: 1, tokens: 1, examples: 1) : nil)
            }.frames
        }
        let pull = DataMessage(header: WireHeader(type: .pullParameters, codec: .fp32, epoch: UInt32(epoch), step: 0, partition: UInt32.max, count: 0),
                               payload: []).frames
        let moments = DataMessage(header: WireHeader(type: .pullMoments, codec: .fp32, epoch: UInt32(epoch), step: 0, partition: 0, count: 0),
                                  payload: []).frames
        for frames in [pull, moments, try data(.initParameters), try data(.initMomentM), try data(.pushGradient, slot: 100, step: 3)] {
            try toServer.send(frames)
        }
        #expect(throws: WireError.self) { try toServer.receive(timeoutMs: 1500) }
        for line in ["dropped a pullParameters (step 0, partition 4294967295, slot 0, epoch \(epoch)) from intruder: not a member the coordinator announced (yet)",
                     "dropped a pullMoments (step 0, partition 0, slot 0, epoch \(epoch)) from intruder: only the coordinator's data connection may send it",
                     "dropped a initParameters (step 0, partition 0, slot 0, epoch \(epoch)) from intruder: only the coordinator's data connection may send it",
                     "dropped a initMomentM (step 0, partition 0, slot 0, epoch \(epoch)) from intruder: only the coordinator's data connection may send it",
                     "dropped a pushGradient (step 3, partition 0, slot 100, epoch \(epoch)) from intruder: not a worker the coordinator announced"] {
            #expect(c.waitForLog("ps0", line, timeout: 20), "\(line)\n\(c.log("ps0"))")
        }

        let toCoordinator = try ZMQSocket(ctx, .dealer)
        try toCoordinator.set(ZMQSocket.routingID, bytes: Array("intruder".utf8))
        try toCoordinator.connect(c.endpoint)
        try toCoordinator.send(Control.frames(.register, json: Array("{}".utf8)))
        try toCoordinator.send(Control.frames(.evaluateRequest, json: Array("{\"checkpoint\": 5}".utf8)))
        try toCoordinator.send(Control.frames(.normReport, NormMessage(step: 3, server: 0, sumOfSquares: 1e30)))
        try toCoordinator.send(Control.frames(.applied, Empty()))
        #expect(c.waitForLog("coordinator", "dropped a malformed register from intruder: bad register message"), "\(c.log("coordinator"))")
        #expect(c.waitForLog("coordinator", "dropped a malformed evaluateRequest from intruder"), "\(c.log("coordinator"))")
        #expect(c.waitForLog("coordinator", "dropped a normReport from intruder: not a server of this cluster"), "\(c.log("coordinator"))")
        #expect(c.processes["coordinator"]?.isRunning == true, "the run ended before every probe was sent")
        c.signal("w0", SIGCONT)

        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 30/30"))
        try expectBitwiseEqualToUndisturbedRun(dir: dir, config: cfg, servers: 1, workers: 1, tag: "disturbed")
    }

    /// Resident memory of a process, in bytes (VmRSS).
    static func residentBytes(_ pid: Int32) -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// Speaks ZMTP 3.0 by hand over a TCP connection to `endpoint` (tcp://127.0.0.1:port) as a
    /// DEALER with the NULL mechanism, then sends a message of two frames: `header`, and a frame
    /// that announces `announced` bytes, whose body it writes until the peer ends the connection.
    /// Returns how many bytes of that body went out (all of them if the peer took the frame);
    /// throws when the connection or the handshake fails, or a write stalls for 30 s.
    static func sendOversizedFrame(to endpoint: String, header: [UInt8], announced: Int) throws -> Int {
        guard let port = endpoint.split(separator: ":").last.flatMap({ UInt16($0) }) else { throw HarnessError("endpoint \(endpoint)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard withLoopbackAddress(port: port, { connect(fd, $0, $1) }) == 0 else { throw HarnessError("connect to \(endpoint): errno \(errno)") }
        /// Writes all of `bytes`; false once the peer has ended the connection.
        func write(_ bytes: [UInt8]) throws -> Bool {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EPIPE || errno == ECONNRESET) { return false }
                guard n > 0 else { throw HarnessError("send to \(endpoint): errno \(errno)") }
                done += n
            }
            return true
        }
        /// Reads exactly `count` bytes of the peer's handshake.
        func read(_ count: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count), got = 0
            while got < count {
                let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw HarnessError("handshake with \(endpoint): read \(n), errno \(errno)") }
                got += n
            }
            return out
        }
        // Greeting: signature, version 3.0, mechanism NULL, as-server 0, filler (RFC 23, 64 bytes).
        let greeting = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0] + Array("NULL".utf8)
            + [UInt8](repeating: 0, count: 16 + 1 + 31)
        guard try write(greeting) else { throw HarnessError("\(endpoint) closed before the greeting") }
        let theirs = try read(64)
        guard theirs[0] == 0xFF, theirs[9] == 0x7F, theirs[10] == 3 else { throw HarnessError("\(endpoint): not a ZMTP 3 greeting") }
        // READY (a short command frame) with the property Socket-Type = DEALER.
        let property = [UInt8(11)] + Array("Socket-Type".utf8) + [0, 0, 0, 6] + Array("DEALER".utf8)
        let ready = [UInt8(5)] + Array("READY".utf8) + property
        guard try write([0x04, UInt8(ready.count)] + ready) else { throw HarnessError("\(endpoint) closed before READY") }
        let command = try read(2)
        guard command[0] == 0x04 else { throw HarnessError("\(endpoint): \(command[0]) where a short READY command was due") }
        let body = try read(Int(command[1]))
        guard body.count > 6, Array(body[1..<6]) == Array("READY".utf8) else { throw HarnessError("\(endpoint): \(body.prefix(8))") }
        // The message: the header as a short frame with MORE, then a long frame announcing its size.
        guard header.count <= 255, try write([0x01, UInt8(header.count)] + header) else { throw HarnessError("\(endpoint) closed at the header") }
        var size = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { size[i] = UInt8(truncatingIfNeeded: UInt64(announced) >> (8 * (7 - i))) }
        guard try write([0x02] + size) else { return 0 }
        let chunk = [UInt8](repeating: 0x50, count: 1 << 20)
        var sent = 0
        while sent < announced {
            let piece = min(chunk.count, announced - sent)
            guard try write(piece == chunk.count ? chunk : Array(chunk.prefix(piece))) else { return sent }
            sent += piece
        }
        return sent
    }

    /// A frame over a socket's ZMQ_MAXMSGSIZE (16 MiB for the coordinator's control socket, the
    /// largest partition's encoding for a server's data socket) ends the sender's connection
    /// before it is allocated: the roles' memory does not grow by the frame, and the run goes on.
    @Test func oversizedFramesAreRefusedBeforeTheyCostMemory() throws {
        let dir = TestData.tempDir("maxmsg")
        let model = try TestCluster.tiny(in: dir)
        // The worker is stopped while the probes run (see above): the run is still training throughout.
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 30, servers: 1, workers: 1,
                                         extraCluster: "heartbeat_timeout: 600")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 1)
        #expect(c.waitForStep(2), "\(c.allLogs())")
        c.signal("w0", SIGSTOP)
        #expect(c.waitForLog("ps0", "data messages up to"), "\(c.log("ps0"))")
        let status = try JSONSerialization.jsonObject(with: Data(try ClusterStatus.query(endpoint: c.endpoint).utf8)) as! [String: Any]
        let dataEndpoint = (status["servers"] as! [[String: Any]])[0]["endpoint"] as! String
        let coordinatorPid = c.processes["coordinator"]!.processIdentifier, serverPid = c.processes["ps0"]!.processIdentifier
        let before = (Self.residentBytes(coordinatorPid), Self.residentBytes(serverPid))

        // Each role ends the connection at the frame's size, long before its 96 MiB have gone out
        // (the kernel's buffers on both ends take a few MiB at most).
        for endpoint in [c.endpoint, dataEndpoint] {
            let sent = try Self.sendOversizedFrame(to: endpoint, header: [UInt8](repeating: 0x50, count: WireHeader.size), announced: 96 << 20)
            #expect(sent < 64 << 20, "\(endpoint) took \(sent) bytes of the oversized frame")
        }
        Thread.sleep(forTimeInterval: 1)
        let after = (Self.residentBytes(coordinatorPid), Self.residentBytes(serverPid))
        #expect(after.0 - before.0 < 32 << 20, "the coordinator grew by \(after.0 - before.0) bytes")
        #expect(after.1 - before.1 < 32 << 20, "the server grew by \(after.1 - before.1) bytes")
        // Neither the oversized frame nor the header before it reached the application.
        #expect(!c.log("coordinator").contains("dropped") && !c.log("ps0").contains("dropped"), "\(c.allLogs())")
        #expect(try ClusterStatus.query(endpoint: c.endpoint, timeoutMs: 5000).contains("training"))
        c.signal("w0", SIGCONT)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 30/30"))
    }

    /// A role asked to listen off loopback without keys refuses to start, naming the fix; with
    /// --insecure it starts. A secret file others may read is refused by name.
    @Test func rolesRefuseToListenOnTheNetworkWithoutKeys() throws {
        let dir = TestData.tempDir("nokeys")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 4, servers: 1, workers: 1)
        let c = TestCluster(dir: dir, config: cfg)
        c.setEndpoint("tcp://127.0.0.1:1")
        try c.start("precis-coordinator", "open-coordinator", ["--config", cfg, "--bind", "tcp://0.0.0.0:*"])
        try c.start("precis-ps", "open-ps", ["--coordinator", "tcp://127.0.0.1:1", "--host", "0.0.0.0"])
        #expect(c.wait("open-coordinator", timeout: 60) == 1)
        #expect(c.wait("open-ps", timeout: 60) == 1)
        for n in ["open-coordinator", "open-ps"] {
            #expect(c.log(n).contains("refusing to listen on tcp://0.0.0.0:* without keys") && c.log(n).contains("--insecure"), "\(c.log(n))")
        }
        try c.start("precis-ps", "insecure-ps", ["--coordinator", "tcp://127.0.0.1:1", "--host", "0.0.0.0", "--insecure"])
        #expect(c.waitForLog("insecure-ps", "serving parameters on tcp://0.0.0.0:"), "\(c.log("insecure-ps"))")
        c.signal("insecure-ps", SIGTERM)

        let keysDir = dir + "/keys"
        try ClusterKeys.generate(into: keysDir)
        chmod(ClusterKeys.secretFile(keysDir, .server), 0o640)
        try c.start("precis-ps", "open-secret", ["--coordinator", "tcp://127.0.0.1:1", "--keys", keysDir])
        #expect(c.wait("open-secret", timeout: 60) == 1)
        #expect(c.log("open-secret").contains("\(ClusterKeys.secretFile(keysDir, .server)) holds a secret key but is readable by others (mode 640)"),
                "\(c.log("open-secret"))")
    }
}
}
