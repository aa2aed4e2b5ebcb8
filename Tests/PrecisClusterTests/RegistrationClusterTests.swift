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
/// Members that come before their coordinator, or back before it noticed they were gone; a
/// server's pull that arrives before its initial values; temporaries a killed coordinator left;
/// and, with keys, a member's messages bound to the key it registered with. Real processes and
/// real sockets.
@Suite struct RegistrationClusterTests {
    /// The id of a process that has exited (reaped: nothing answers to it).
    static func deadPid() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    /// A server and a worker started before the coordinator (2–3 s before it): they keep trying to
    /// register, and the run completes once it comes. The coordinator also removes the temporaries
    /// a killed predecessor left in its output folder (and nothing else).
    @Test func membersStartedBeforeTheCoordinatorJoinItWhenItComes() throws {
        let dir = TestData.tempDir("early")
        let model = try TestCluster.tinyModel(in: dir)
        let port = try FixedPorts.take()
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 6, servers: 1, workers: 1,
                                         extraCluster: "coordinator: tcp://127.0.0.1:\(port)")
        // What a coordinator killed -9 mid-write leaves, beside what it must keep.
        let out = dir + "/out", cp = out + "/checkpoint-3"
        try FileManager.default.createDirectory(atPath: cp, withIntermediateDirectories: true)
        let dead = try Self.deadPid()
        try #require(kill(dead, 0) != 0 && errno == ESRCH, "pid \(dead) was reused at once")
        let stale = [out + "/trainer_state.json.tmp-\(dead)", cp + "/manifest.json.tmp-\(dead)"]
        let kept = [out + "/trainer_state.json.tmp-\(getpid())", out + "/notes.tmp-\(dead).txt", cp + "/trainer_state.json"]
        for p in stale + kept { try Data("{\"partial\":".utf8).write(to: URL(fileURLWithPath: p)) }

        let c = TestCluster(dir: dir, config: cfg)
        c.setEndpoint("tcp://127.0.0.1:\(port)")
        try c.startServer("ps0")
        try c.startWorker("w0")
        #expect(c.waitForLog("ps0", "registering with tcp://127.0.0.1:\(port)"), "\(c.log("ps0"))")
        #expect(c.waitForLog("w0", "registering with tcp://127.0.0.1:\(port)"), "\(c.log("w0"))")
        // The coordinator comes 2–3 s after its members (the delay is the scenario, not a race).
        Thread.sleep(forTimeInterval: 2.5)
        #expect(c.processes["ps0"]?.isRunning == true && c.processes["w0"]?.isRunning == true,
                "a member gave up before the coordinator came:\n\(c.allLogs())")
        try c.startCoordinator()
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        for n in ["ps0", "w0"] { #expect(c.wait(n, timeout: 30) == 0, "\(n): \(c.allLogs())") }
        #expect(c.log("coordinator").contains("step 6/6"))
        for p in stale {
            #expect(!FileManager.default.fileExists(atPath: p), "\(p) is still there")
            #expect(c.log("coordinator").contains("removed \(p)"), "\(c.log("coordinator"))")
        }
        for p in kept { #expect(FileManager.default.fileExists(atPath: p), "\(p) was removed") }
    }

    /// Nobody at the coordinator's address: a server and a worker give up after --connect-timeout
    /// with status 1 and a line saying what they waited for.
    @Test func membersGiveUpAfterTheConnectTimeout() throws {
        let dir = TestData.tempDir("noone")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try FixedPorts.take()
        let c = TestCluster(dir: dir, config: "")
        let ep = "tcp://127.0.0.1:\(port)"
        try c.start("precis-ps", "ps0", ["--coordinator", ep, "--name", "ps0", "--connect-timeout", "3"])
        try c.start("precis-worker", "w0", ["--coordinator", ep, "--name", "w0", "--connect-timeout", "3"])
        #expect(c.wait("ps0", timeout: 120) == 1, "\(c.log("ps0"))")
        #expect(c.wait("w0", timeout: 120) == 1, "\(c.log("w0"))")
        #expect(c.log("ps0").contains("no coordinator at \(ep) admitted this server within 3 s (--connect-timeout)"), "\(c.log("ps0"))")
        #expect(c.log("w0").contains("no coordinator at \(ep) admitted this worker within 3 s (--connect-timeout)"), "\(c.log("w0"))")
        let bad = try c.start("precis-ps", "bad", ["--coordinator", ep, "--connect-timeout=-1"])
        bad.waitUntilExit()
        #expect(bad.terminationStatus != 0 && c.log("bad").contains("--connect-timeout"), "\(c.log("bad"))")
    }

    /// A server killed -9 and started again at once, before the coordinator has noticed (its
    /// heartbeats stop for heartbeat_timeout): the coordinator refuses it for now, saying when to
    /// try again; it does, takes the dead one's place, and the run completes.
    @Test func aServerBackBeforeItsDeathIsNoticedRegistersOnceItIs() throws {
        let dir = TestData.tempDir("back")
        let model = try TestCluster.tinyModel(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 40, servers: 1, workers: 1,
                                         extraTraining: "save_steps: 2", extraCluster: "heartbeat_timeout: 10.0")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 1)
        #expect(c.waitForStep(3, timeout: 120), "\(c.allLogs())")
        c.signal("ps0", SIGKILL)
        _ = c.wait("ps0", timeout: 30)
        try c.startServer("ps0")
        #expect(c.waitForLog("ps0", "the coordinator refused this server for now: the cluster already has its 1 server(s); registering again in"),
                "\(c.allLogs())")
        // The dead one is lost after heartbeat_timeout, and the new one (refused until then) joins.
        #expect(c.waitForLog("coordinator", "lost: no heartbeat", timeout: 60), "\(c.allLogs())")
        let deadline = Date().addingTimeInterval(60)
        while c.log("coordinator").components(separatedBy: "server ps0 joined").count < 3 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(c.log("coordinator").components(separatedBy: "server ps0 joined").count == 3, "\(c.allLogs())")
        #expect(c.wait("coordinator", timeout: 300) == 0, "\(c.allLogs())")
        for n in ["ps0", "w0"] { #expect(c.wait(n, timeout: 30) == 0, "\(n): \(c.allLogs())") }
        #expect(c.log("coordinator").contains("step 40/40"))
    }

    /// A pull that reaches a server before the coordinator's initial values waits for them: it is
    /// never answered with the zeros the server holds before. The test is the coordinator (a real
    /// ROUTER and a real data connection) and a real `precis-ps`: a pull, then a moments request,
    /// on the same connection (so the server reads them in that order); the moments come back and
    /// the parameters do not, until the initial values arrive; then they are exactly those.
    @Test func aPullBeforeTheInitialParametersWaitsForThem() throws {
        let dir = TestData.tempDir("pullwait")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ctx = try ZMQContext()
        let control = try ZMQSocket(ctx, .router)
        let controlEndpoint = try control.bind("tcp://127.0.0.1:*")
        let c = TestCluster(dir: dir, config: "")
        try c.start("precis-ps", "ps0", ["--coordinator", controlEndpoint, "--name", "ps0"])

        // register → registered, assign (two partitions of 500 values), members.
        func receiveControl(_ type: MessageType, timeout: Double = 60) throws -> (peer: [UInt8], message: DataMessage)? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                guard let f = try? control.receive(timeoutMs: 200), f.count >= 2, let m = try? DataMessage(frames: Array(f.dropFirst())) else { continue }
                if m.header.type == type { return (f[0], m) }
            }
            return nil
        }
        let reg = try #require(try receiveControl(.register), "no register from the server:\n\(c.log("ps0"))")
        let r = try Control.decode(RegisterMessage.self, reg.message)
        let dataEndpoint = try #require(r.endpoint)
        try control.send(to: reg.peer, Control.frames(.registered, RegisteredMessage(
            id: 1000, name: "ps0", config: "", configFile: "", modelConfig: "", heartbeatInterval: 0.2, heartbeatTimeout: 600,
            dataDigest: "", outputDir: dir)))
        let plan = PartitionPlan(total: 1000, servers: 1, partitionFloats: 500)
        var assign = AssignMessage(server: 0, partitions: [0, 1], plan: plan, segments: [DecaySegment(lower: 0, upper: 1000, decay: true)],
                                   beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, schedule: "linear", learningRate: 1e-3,
                                   warmupSteps: 0, totalSteps: 10, consistency: .sync, pullCodec: .none, startStep: 0)
        assign.epoch = 1
        assign.maxContributions = 1
        try control.send(to: reg.peer, Control.frames(.assign, assign))
        let coordinatorId = Array("coordinator-data".utf8)
        try control.send(to: reg.peer, Control.frames(.members, MembersMessage(epoch: 1, coordinator: coordinatorId, workers: []), epoch: 1))

        let data = try ZMQSocket(ctx, .dealer)
        try data.set(ZMQSocket.routingID, bytes: coordinatorId)
        try data.connect(dataEndpoint)
        let pullMoments = DataMessage(header: WireHeader(type: .pullMoments, codec: .none, epoch: 1, step: 0, partition: 0, count: 0), payload: []).frames
        // The server takes data messages once it has handled `members` (on another socket): ask for
        // the moments until they come, which also shows it has.
        var answered = false
        for _ in 0..<24 where !answered {
            try data.send(pullMoments)
            answered = (try? data.receive(timeoutMs: 5000)).flatMap { try? DataMessage(frames: $0) }?.header.type == .moments
        }
        try #require(answered, "the server never answered a moments request:\n\(c.log("ps0"))")
        // The rest of that answer (2 moments × 2 partitions).
        for _ in 0..<3 { _ = try data.receive(timeoutMs: 30_000) }

        // The pull, then a moments request: the server reads them in this order.
        let pull = DataMessage(header: WireHeader(type: .pullParameters, codec: .none, epoch: 1, step: 0, partition: UInt32.max, count: 0), payload: []).frames
        try data.send(pull)
        try data.send(pullMoments)
        for i in 0..<4 {
            let m = try DataMessage(frames: try data.receive(timeoutMs: 30_000))
            #expect(m.header.type == .moments,
                    "message \(i) after the pull is a \(m.header.type) (partition \(m.header.partition)): the pull was answered before the initial values")
        }

        // The initial values: the waiting pull is answered with them, bit for bit.
        let values = (0..<1000).map { Float($0) * 0.25 - 17 }
        for p in 0..<2 {
            let frames = try values[(p * 500)..<(p * 500 + 500)].withUnsafeBufferPointer {
                try DataMessage.make(type: .initParameters, codec: .none, epoch: 1, step: 0, partition: UInt32(p), values: $0, using: ShardCodec())
            }.frames
            try data.send(frames)
        }
        var got: [Int: [Float]] = [:]
        while got.count < 2 {
            let m = try DataMessage(frames: try data.receive(timeoutMs: 30_000))
            try #require(m.header.type == .parameters, "expected the parameters, got a \(m.header.type)")
            let p = Int(m.header.partition)
            got[p] = m.payload.withUnsafeBytes { raw in (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        }
        for p in 0..<2 {
            #expect(got[p]?.map(\.bitPattern) == values[(p * 500)..<(p * 500 + 500)].map(\.bitPattern), "partition \(p) is not the initial values")
        }
        #expect(try receiveControl(.initDone, timeout: 30) != nil, "no initDone:\n\(c.log("ps0"))")
        try control.send(to: reg.peer, Control.frames(.shutdown, ShutdownMessage(reason: "test over", exitCode: 0)))
        #expect(c.wait("ps0", timeout: 30) == 0, "\(c.log("ps0"))")
    }

    /// With keys, a member is bound to the key it registered with: a process holding another valid
    /// worker key (authorized as a worker) cannot keep a silent worker alive with heartbeats in its
    /// name. The stopped worker is declared lost on time; let go, it registers again and the run
    /// completes. The holder of the right key (the worker itself) is heard as before.
    @Test func heartbeatsCountOnlyWithTheKeyTheMemberRegisteredWith() throws {
        let dir = TestData.tempDir("spoof")
        let model = try TestCluster.tinyModel(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 30, servers: 1, workers: 1,
                                         extraCluster: "heartbeat_timeout: 3.0")
        let keysDir = dir + "/keys", otherDir = dir + "/other-keys"
        try ClusterKeys.generate(into: keysDir)
        try ClusterKeys.generate(into: otherDir)
        // A second worker key pair, authorized as a worker: another worker host's key.
        let otherPublic = try String(contentsOfFile: ClusterKeys.publicFile(otherDir, .worker), encoding: .utf8)
        let otherKey = try #require(otherPublic.split(separator: "\n").compactMap { line -> String? in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("public-key") else { return nil }
            return t.split(separator: "\"").dropFirst().first.map(String.init)
        }.first)
        let authorized = ClusterKeys.authorizedFile(keysDir)
        try (try String(contentsOfFile: authorized, encoding: .utf8) + "\(otherKey) worker\n").write(toFile: authorized, atomically: true, encoding: .utf8)
        for r in [KeyRole.coordinator, .server] {
            try? FileManager.default.removeItem(atPath: ClusterKeys.publicFile(otherDir, r))
            try FileManager.default.copyItem(atPath: ClusterKeys.publicFile(keysDir, r), toPath: ClusterKeys.publicFile(otherDir, r))
        }
        let intruderKeys = try ClusterKeys.load(dir: otherDir, role: .worker)

        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 1, keys: keysDir)
        #expect(c.waitForStep(2, timeout: 120), "\(c.allLogs())")
        // w0's member id (ids are consecutive: a worker that registers learns its neighbours').
        let registered = try #require(c.log("w0").range(of: "registered as w0 (id "), "\(c.log("w0"))")
        let w0 = try #require(Int(c.log("w0")[registered.upperBound...].prefix { $0.isNumber }))

        // The intruder: a CURVE client with its own (authorized) worker key, heartbeating as w0.
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .dealer)
        try intruderKeys.secureToCoordinator(s)
        try s.connect(c.endpoint)
        c.signal("w0", SIGSTOP)
        let beat = Control.frames(.heartbeat, HeartbeatMessage(id: w0))
        // Heartbeats in w0's name, 5 a second, until the coordinator declares w0 lost (or 90 s pass).
        var acks = 0, lostWhileSpoofed = false
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            try s.send(beat)
            if let f = try? s.receive(timeoutMs: 200), (try? DataMessage(frames: f))?.header.type == .heartbeatAck { acks += 1 }
            if c.log("coordinator").contains("lost: no heartbeat") { lostWhileSpoofed = true; break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(lostWhileSpoofed, "w0 was kept alive by heartbeats sent with another key:\n\(c.log("coordinator"))")
        #expect(acks == 0, "the coordinator acknowledged \(acks) heartbeat(s) sent for w0 with another key")
        #expect(c.log("coordinator").contains("dropped a heartbeat for worker w0 (id \(w0)) from"), "\(c.log("coordinator"))")
        c.signal("w0", SIGCONT)
        #expect(c.wait("coordinator", timeout: 300) == 0, "\(c.allLogs())")
        for n in ["ps0", "w0"] { #expect(c.wait(n, timeout: 30) == 0, "\(n): \(c.allLogs())") }
        #expect(c.log("coordinator").contains("step 30/30"))
    }
}
}
