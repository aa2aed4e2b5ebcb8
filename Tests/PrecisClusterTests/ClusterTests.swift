import Foundation
import Testing
import PrecisCore
import PrecisTrain
import PrecisWire
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Real coordinator, parameter-server and worker processes over real ZeroMQ sockets on loopback.
/// Every cluster run is serialized (the suites below nest in this one): each already uses every core.
@Suite(.serialized) enum RealProcesses {}

extension RealProcesses {
@Suite struct ClusterTests {
    /// The issue's proof of correctness: in sync mode 2 workers × batch 4 give the same parameters
    /// after 20 steps as one process training batch 8 on the same examples in the same order, and
    /// two cluster runs give the same bits (contributions are summed in a fixed order) — the first
    /// with the pull overlapped with forward (`overlap_pull`, the default), the second without.
    @Test func syncTwoWorkersMatchOneProcessWithTheWholeBatch() throws {
        let dir = TestData.tempDir("sync")
        let model = try TestCluster.tiny(in: dir)
        var results: [[String: [Float]]] = []
        for run in 0..<2 {
            let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 20, servers: 2, workers: 2,
                                             extraCluster: run == 0 ? "" : "overlap_pull: false")
            let c = try TestCluster.up(dir: dir, config: cfg, servers: 2, workers: 2)
            let status = c.wait("coordinator")
            #expect(status == 0, "\(c.allLogs())")
            #expect(c.log("coordinator").contains("step 20/20"))
            for n in ["ps0", "ps1", "w0", "w1"] { #expect(c.wait(n, timeout: 20) == 0, "\(n) exit: \(c.allLogs())") }
            let out = dir + "/out-\(run)"
            try FileManager.default.moveItem(atPath: dir + "/out", toPath: out)
            results.append(try loadParameters(out))
            let overlapped = c.log("w0").contains("overlapped pulls:") || c.log("w1").contains("overlapped pulls:")
            if run == 0 {
                // Several partitions per server, so the sums and the norm really are spread.
                #expect(c.log("coordinator").contains("partitions of about"))
                #expect(overlapped, "no forward started before its parameters were in: \(c.allLogs())")
            } else {
                #expect(!overlapped, "overlap_pull: false overlapped: \(c.allLogs())")
            }
        }
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 20, servers: 2, workers: 2)
        let reference = try referenceRun(config: cfg, batch: 8, outputDir: dir + "/reference")
        let d = compareParameters(results[0], reference)
        #expect(d.global < 1e-6, "relative difference \(d.global)")
        #expect(d.worst < 1e-6, "\(d.worstName): relative difference \(d.worst)")
        // AdamW turns their ~1e-10 rounding-noise gradients into steps of up to lr·g/eps: bounded, not matched.
        #expect(d.keyBias < 1e-5, "key biases differ by \(d.keyBias)")
        let initial = try TestCluster.initialParameters(model: model)
        #expect(compareParameters(reference, initial).global > 1e-3, "training moved the parameters")
        for (name, v) in results[0] { #expect(v.map(\.bitPattern) == results[1][name]!.map(\.bitPattern), "\(name) differs between the run with the pull overlapped and the run without") }
    }

    /// The denoising objective on a cluster: each worker noises its own examples, seeded by (seed,
    /// step, example), so 2 workers × batch 4 see exactly the noisy batch one process of batch 8 sees
    /// and end with its parameters.
    @Test func denoisingWorkersNoiseAsOneProcessDoes() throws {
        let dir = TestData.tempDir("denoise")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 6, servers: 1, workers: 2,
                                         extraTraining: "objective: denoising\ndenoising_columns: [dialogue, summary]")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        for n in ["ps0", "w0", "w1"] { #expect(c.wait(n, timeout: 20) == 0, "\(n) exit: \(c.allLogs())") }
        let got = try loadParameters(dir + "/out")
        let reference = try referenceRun(config: cfg, batch: 8, outputDir: dir + "/reference")
        let d = compareParameters(got, reference)
        #expect(d.global < 1e-6, "relative difference \(d.global)")
        #expect(d.worst < 1e-6, "\(d.worstName): relative difference \(d.worst)")
        #expect(compareParameters(reference, try TestCluster.initialParameters(model: model)).global > 1e-3, "training moved the parameters")
    }

    /// Workers with 2 threads run each micro-batch in two lanes (half the rows each, see
    /// `LaneRunner`); in sync mode (the servers clip) they push gradient partitions while
    /// backward runs, as the lanes finish each range. The result is one process's on the whole batch.
    @Test func twoThreadWorkersPushDuringBackwardAndMatchOneProcess() throws {
        let dir = TestData.tempDir("lanes")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 8, servers: 2, workers: 2, maxGradNorm: 0)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 2, workers: 2, workerThreads: 2)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        for n in ["ps0", "ps1", "w0", "w1"] { #expect(c.wait(n, timeout: 20) == 0, "\(n) exit: \(c.allLogs())") }
        #expect(c.log("w0").contains("went out during backward") || c.log("w1").contains("went out during backward"),
                "\(c.allLogs())")
        // Their forwards started before the pull was in: two lanes waited at the gate (`ParameterGate`).
        #expect(c.log("w0").contains("overlapped pulls:") || c.log("w1").contains("overlapped pulls:"), "\(c.allLogs())")
        let got = try loadParameters(dir + "/out")
        let reference = try referenceRun(config: cfg, batch: 8, outputDir: dir + "/reference")
        let d = compareParameters(got, reference)
        #expect(d.global < 1e-6, "relative difference \(d.global)")
        #expect(d.worst < 1e-6, "\(d.worstName): relative difference \(d.worst)")
    }

    /// A worker killed with SIGKILL in the middle of a run: the coordinator notices within the
    /// heartbeat timeout, hands its contribution to the survivor, and the run ends with the same
    /// parameters as an undisturbed run (nothing lost, nothing counted twice). A worker that joins
    /// later takes part in the next steps; one stopped with SIGTERM leaves cleanly.
    @Test func workersComeAndGoWithoutLosingOrRepeatingExamples() throws {
        let dir = TestData.tempDir("elastic")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 60, servers: 1, workers: 2,
                                         extraTraining: "max_train_samples: 160")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.waitForStep(8), "\(c.allLogs())")
        c.signal("w1", SIGKILL)
        #expect(c.waitForLog("coordinator", "worker w1 (pid"), "\(c.allLogs())")
        #expect(c.waitForLog("coordinator", "lost: no heartbeat", timeout: 20), "\(c.allLogs())")
        let afterLoss = c.coordinatorStep()
        #expect(c.waitForStep(afterLoss + 3), "training goes on with one worker: \(c.allLogs())")
        try c.startWorker("w2")
        #expect(c.waitForLog("coordinator", "worker w2 joined"), "\(c.allLogs())")
        #expect(c.waitForLog("w2", "registered as w2"), "\(c.allLogs())")
        let joinedAt = c.coordinatorStep()
        #expect(c.waitForStep(joinedAt + 4), "\(c.allLogs())")
        c.signal("w0", SIGTERM)
        #expect(c.wait("w0", timeout: 30) == 0, "w0 leaves cleanly: \(c.log("w0"))")
        #expect(c.log("w0").contains("leaving (signal 15)"))
        #expect(c.waitForLog("coordinator", "worker w0 (pid"), "\(c.allLogs())")
        #expect(c.wait("coordinator", timeout: 120) == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 60/60"))
        #expect(c.log("w2").contains("shutting down: training finished"))
        let got = try loadParameters(dir + "/out")
        let reference = try referenceRun(config: cfg, batch: 8, outputDir: dir + "/reference")
        let d = compareParameters(got, reference)
        // 60 steps, some summed as 2 × 4 and some as one worker's 4 + 4: rounding differs, nothing else.
        // (One example lost or counted twice in a single step moves parameters by ~1e-2.)
        #expect(d.global < 1e-6, "relative difference \(d.global)")
        #expect(d.worst < 1e-5, "\(d.worstName): relative difference \(d.worst)")
    }

    /// ssp and async train too: in ssp no worker gets more than `staleness` contributions ahead
    /// of the slowest, and the loss comes down in both.
    @Test(arguments: ["ssp", "async"])
    func staleAndAsynchronousModesTrain(_ mode: String) throws {
        let dir = TestData.tempDir(mode)
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 40, servers: 2, workers: 2, consistency: mode,
                                         extraCluster: "staleness: 1\ncodec: bf16\npull_codec: bf16")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 2, workers: 2)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        // Workers pull bfloat16 parameters, but the saved model is the servers' fp32 master copy
        // (the coordinator's final pull asks for raw fp32), not values rounded to bfloat16.
        let saved = try loadParameters(dir + "/out").values.flatMap { $0 }
        #expect(saved.contains { $0.bitPattern & 0xFFFF != 0 }, "the saved model holds only bfloat16 values")
        // Wire bytes and compression ratios are in trainer_state.json's log_history beside the loss.
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/trainer_state.json"))) as? [String: Any]
        let logged = (state?["log_history"] as? [[String: Any]] ?? []).filter { $0["loss"] != nil }
        #expect(!logged.isEmpty)
        for e in logged {
            let g = e["gradient_compression_ratio"] as? Double ?? 0, p = e["parameter_compression_ratio"] as? Double ?? 0
            #expect(g > 1.5 && p > 1.5 && (e["gradient_wire_mb_per_step"] as? Double ?? 0) > 0, "bf16 both ways: \(e)")
        }
        let log = c.log("coordinator")
        #expect(log.contains("step 40/40"), "\(log)")
        let losses = log.split(separator: "\n").compactMap { line -> Double? in
            guard let r = line.range(of: " loss ") else { return nil }
            return Double(line[r.upperBound...].prefix { !$0.isWhitespace })
        }
        #expect(losses.count >= 40)
        let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
        #expect(last < first - 0.2, "loss \(first) → \(last)")
        #expect(log.contains("gradients") && log.contains("MB/step on the wire"))
        if mode == "ssp" {
            guard let r = log.range(of: "largest clock gap ") else { Issue.record("no clock gap reported: \(log)"); return }
            let gap = Int(log[r.upperBound...].prefix { $0.isNumber }) ?? 99
            #expect(gap <= 1, "ssp staleness 1 exceeded: gap \(gap)")
        }
    }

    /// Bad input on the wire: another protocol version is refused at registration with a message
    /// naming both versions; garbage and corrupted shards are dropped with a logged reason naming
    /// the peer; the run carries on and finishes. The status query answers while it runs.
    @Test func badMessagesAreDroppedAndOtherVersionsRefused() throws {
        let dir = TestData.tempDir("bad")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 30, servers: 1, workers: 1)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 1)
        #expect(c.waitForStep(3), "\(c.allLogs())")

        let ctx = try ZMQContext()
        let intruder = try ZMQSocket(ctx, .dealer)
        try intruder.set(ZMQSocket.routingID, bytes: Array("intruder".utf8))
        try intruder.connect(c.endpoint)
        var frames = Control.frames(.register, RegisterMessage(role: .worker, name: "old", host: "127.0.0.1", pid: 1, threads: 1))
        frames[0][4] = 9 // protocol version 9
        try intruder.send(frames)
        let reply = try intruder.receive(timeoutMs: 5000)
        let refused = try Control.decode(RefusedMessage.self, try DataMessage(frames: reply))
        #expect(refused.reason.contains("protocol version 9") && refused.reason.contains("version \(WireHeader.version)"))
        #expect(c.waitForLog("coordinator", "refused intruder: it speaks protocol version 9, this coordinator speaks \(WireHeader.version)"))
        try intruder.send([Array("GARBAGE-HEADER-THAT-IS-NOT-PRECIS-AT-ALL!!".utf8), [1, 2, 3]])
        #expect(c.waitForLog("coordinator", "dropped a message from intruder: bad magic"))

        // A corrupted gradient shard sent straight to the server.
        let status = try ClusterStatus.query(endpoint: c.endpoint)
        let json = try JSONSerialization.jsonObject(with: Data(status.utf8)) as! [String: Any]
        #expect(json["state"] as? String == "training")
        let servers = json["servers"] as! [[String: Any]]
        let dataEndpoint = servers[0]["endpoint"] as! String
        let toServer = try ZMQSocket(ctx, .dealer)
        try toServer.set(ZMQSocket.routingID, bytes: Array("intruder".utf8))
        try toServer.connect(dataEndpoint)
        let values = [Float](repeating: 1, count: 1000)
        var push = try values.withUnsafeBufferPointer {
            try DataMessage.make(type: .pushGradient, codec: .fp32, epoch: 1, step: 0, partition: 0, values: $0, using: ShardCodec(), figures: ContributionFigures(lossSum: 1, tokens: 1, examples: 1))
        }.frames
        push[1][0] ^= 0xFF
        try toServer.send(push)
        #expect(c.waitForLog("ps0", "dropped a message from intruder: checksum mismatch"), "\(c.log("ps0"))")
        // A well-formed shard from a peer the coordinator never announced is refused too (the
        // header rules, epochs included, are DataHeaderRulesTests').
        let stale = try values.withUnsafeBufferPointer {
            try DataMessage.make(type: .pushGradient, codec: .fp32, epoch: 0, step: 0, partition: 0, values: $0, using: ShardCodec(), figures: ContributionFigures(lossSum: 1, tokens: 1, examples: 1))
        }.frames
        try toServer.send(stale)
        #expect(c.waitForLog("ps0", "from intruder: not a worker the coordinator announced"), "\(c.log("ps0"))")

        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 30/30"))
    }

    /// `precis train` runs the whole cluster as processes on this host, in one command.
    /// A member that registers gets the run's config without the hub token (a real coordinator,
    /// a real ZeroMQ peer registering as a worker).
    @Test func membersNeverReceiveTheHubToken() throws {
        let dir = TestData.tempDir("redact")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 4, servers: 1, workers: 1, extraTraining: """
            push_to_hub: true
            hub_model_id: team/tiny
            hub_url: file://\(dir)/hub
            hub_token: hf_SECRET_VALUE
            """)
        let c = TestCluster(dir: dir, config: cfg)
        try c.startCoordinator()
        let context = try ZMQContext()
        let peer = try ZMQSocket(context, .dealer)
        try peer.connect(c.endpoint)
        try peer.send(Control.frames(.register, RegisterMessage(role: .worker, name: "probe", host: "127.0.0.1", pid: 1, threads: 1)))
        let reply = try DataMessage(frames: try peer.receive(timeoutMs: 30_000))
        #expect(reply.header.type == .registered)
        let registered = try Control.decode(RegisteredMessage.self, reply)
        #expect(!registered.config.contains("hf_SECRET_VALUE") && !registered.config.contains("hub_token"), "\(registered.config)")
        #expect(registered.config.contains("hub_model_id"))
        #expect(try TrainingConfig.parse(registered.config, file: "registered").training.hubToken == nil)
    }

    /// SIGTERM to `precis train` ends the run and every process it started (coordinator, servers,
    /// workers), instead of leaving the cluster running without it.
    @Test func precisTrainStopsEverythingItStartedOnSIGTERM() throws {
        let dir = TestData.tempDir("sigterm")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 100_000, servers: 1, workers: 2)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestCluster.binDir + "/precis")
        p.arguments = ["train", "--config", cfg]
        let outFile = dir + "/train.out"
        #expect(FileManager.default.createFile(atPath: outFile, contents: nil))
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outFile))
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        func output() -> String { (try? String(contentsOfFile: outFile, encoding: .utf8)) ?? "" }
        // Training has started: the coordinator logged a step (or the run's start).
        let deadline = Date().addingTimeInterval(60)
        while !output().contains("training: ") && Date() < deadline && p.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        #expect(output().contains("training: "), "\(output())")
        let children = Self.children(of: p.processIdentifier)
        #expect(children.count == 4, "coordinator, 1 server, 2 workers: \(children)")
        kill(p.processIdentifier, SIGTERM)
        let until = Date().addingTimeInterval(60)
        while p.isRunning && Date() < until { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!p.isRunning, "precis train did not exit after SIGTERM")
        #expect(output().contains("signal 15: stopping the cluster"), "\(output())")
        for c in children { #expect(kill(c, 0) != 0, "process \(c) outlived precis train") }
    }

    /// The pids whose parent is `pid` (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            // After "pid (comm)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid
        }
    }

    @Test func precisTrainRunsALocalCluster() throws {
        let dir = TestData.tempDir("train")
        let model = try TestCluster.tiny(in: dir, dropout: 0.1)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 8, servers: 2, workers: 2)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestCluster.binDir + "/precis")
        p.arguments = ["train", "--config", cfg]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(stdout)\n\(stderr)")
        #expect(stdout.contains("2 server(s), 2 worker(s)"))
        #expect(stdout.contains("saved \(dir)/out after 8 steps"))
        #expect(stderr.contains("8/8 100%") && stderr.contains("ETA"))
        for f in ["model.safetensors", "config.json", "tokenizer.json", "trainer_state.json", "logs/ps0.log", "logs/w1.log"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/out/\(f)"), "\(f)")
        }
    }
}

}

extension TestCluster {
    static func tiny(in dir: String, dropout: Double = 0) throws -> String { try tinyModel(in: dir, dropout: dropout) }

    /// The parameters a run starts from (the model initialised from its config with the run's seed).
    static func initialParameters(model: String) throws -> [String: [Float]] {
        let m = try LocalTrainer.loadModel(model, seed: 11)
        var out: [String: [Float]] = [:]
        for e in m.table.entries { out[e.name] = Array(UnsafeBufferPointer(start: m.params.pointer + e.offset, count: e.count)) }
        return out
    }
}
