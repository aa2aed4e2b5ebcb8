import Foundation
import PrecisCore
import PrecisWire
import Testing
import PrecisTestSupport

extension RealProcesses {
/// A worker that dies after its pushes reached the servers and before its `contributionDone` left:
/// the servers apply the step without it, and the step's loss and the run's examples still hold
/// its contribution, from the figures its pushes carried (the servers hand them on with their
/// norms). A real coordinator and server; the worker that dies is a peer speaking the protocol
/// from this test, so it can stop at exactly that point; a real worker finishes the run.
@Suite struct UnreportedContributionClusterTests {
    /// What the dying worker's pushes say of its contribution.
    let figures = ContributionFigures(lossSum: 123.25, tokens: 50, examples: 4)

    @Test func aContributionWhoseWorkerLeftBeforeReportingIsCountedFromItsPushes() throws {
        let dir = TestData.tempDir("unreported")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 3, servers: 1, workers: 1)
        let c = TestCluster(dir: dir, config: cfg)
        try c.startCoordinator()
        try c.startServer("ps0")

        let context = try ZMQContext()
        let identity = Array("doomed".utf8)
        let control = try ZMQSocket(context, .dealer)
        try control.set(ZMQSocket.routingID, bytes: identity)
        try control.connect(c.endpoint)
        try control.send(Control.frames(.register, RegisterMessage(role: .worker, name: "doomed", host: "127.0.0.1", pid: 1, threads: 1)))

        // Registered, then the view and the first step's task (heartbeats keep it alive meanwhile).
        var id: Int?, view: ViewMessage?, task: TaskMessage?
        let deadline = Date().addingTimeInterval(60)
        while task == nil && Date() < deadline {
            if let id { try control.send(Control.frames(.heartbeat, HeartbeatMessage(id: id))) }
            guard let frames = try? control.receive(timeoutMs: 200) else { continue }
            let m = try DataMessage(frames: frames)
            switch m.header.type {
            case .registered: id = try Control.decode(RegisteredMessage.self, m).id
            case .view: view = try Control.decode(ViewMessage.self, m)
            case .task: task = try Control.decode(TaskMessage.self, m)
            default: break
            }
        }
        let v = try #require(view, "no view came: \(c.allLogs())")
        let t = try #require(task, "no task came: \(c.allLogs())")
        #expect(t.step == 0 && t.contribution == 0 && t.micro.count == 1)

        // Its gradient (zeros: what the step applies does not matter here) to the server, every
        // partition carrying the figures; then a pull of the next version, answered once the
        // server has applied the step: the pushes are in, the report never leaves.
        let server = try #require(v.servers.first)
        let data = try ZMQSocket(context, .dealer)
        try data.set(ZMQSocket.routingID, bytes: identity)
        try data.connect(server.endpoint)
        for p in 0..<v.plan.count {
            let zeros = [Float](repeating: 0, count: v.plan.range(p).count)
            let push = try zeros.withUnsafeBufferPointer {
                try DataMessage.make(type: .pushGradient, codec: .fp32, epoch: v.epoch, step: 0, partition: UInt32(p), slot: UInt32(t.contribution),
                                     values: $0, using: ShardCodec(), figures: figures)
            }
            try data.send(push.frames)
        }
        try data.send(header: WireHeader(type: .pullParameters, codec: .fp32, epoch: v.epoch, step: 1, partition: UInt32.max, count: 0))
        var versions = Set<UInt64>()
        while versions.count < v.plan.count && Date() < deadline {
            if let id { try control.send(Control.frames(.heartbeat, HeartbeatMessage(id: id))) }
            guard let frames = try? data.receive(timeoutMs: 200) else { continue }
            let m = try DataMessage(frames: frames)
            if m.header.type == .parameters && m.header.step == 1 { versions.insert(UInt64(m.header.partition)) }
        }
        #expect(versions.count == v.plan.count, "the server applied step 0 with the pushed gradient: \(c.log("ps0"))")
        try control.send(Control.frames(.leave, LeaveMessage(id: try #require(id), reason: "killed before reporting")))
        control.close(); data.close()

        // Step 1 closes with the figures the pushes carried; a real worker finishes the run.
        #expect(c.waitForLog("coordinator", "step 1: contribution 0 counted from the figures its pushes carried"), "\(c.allLogs())")
        try c.startWorker("w0")
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/trainer_state.json"))) as? [String: Any]
        let logged = (state?["log_history"] as? [[String: Any]] ?? []).filter { $0["loss"] != nil }
        let first = try #require(logged.first { ($0["step"] as? Double) == 1 || ($0["step"] as? Int) == 1 }, "\(logged)")
        let loss = try #require(first["loss"] as? Double)
        #expect(abs(loss - figures.lossSum / Double(figures.tokens)) < 1e-9, "step 1's loss is the dying worker's: \(loss)")
        #expect(logged.count == 3, "\(logged)")
        c.stopAll()
    }
}
}
