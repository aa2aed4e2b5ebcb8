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
/// `pull_codec: bf16-delta` in real clusters: the workers' copies end within the stated bound
/// (`PullDelta.errorBound`) of the servers' fp32 master, the loss follows the fp32 run's, and a
/// worker that joins mid-run gets the servers' shadow in full and then deltas.
@Suite struct PullDeltaClusterTests {
    /// What a worker wrote with `--dump-parameters`.
    struct Dump {
        var parameters: [Float], lastDelta: [Float], versions: [Int64]
        init(_ path: String) throws {
            let f = try SafeTensorsFile(path: path)
            parameters = try f.floats("parameters"); lastDelta = try f.floats("last_delta"); versions = try f.int64s("versions")
        }
    }

    func losses(_ log: String) -> [Double] {
        log.split(separator: "\n").compactMap { line -> Double? in
            guard line.contains("coordinator: step "), let r = line.range(of: " loss ") else { return nil }
            return Double(line[r.upperBound...].prefix { !$0.isWhitespace })
        }
    }

    func parameterCompression(_ dir: String) throws -> [Double] {
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/trainer_state.json"))) as? [String: Any]
        return (state?["log_history"] as? [[String: Any]] ?? []).compactMap { $0["parameter_compression_ratio"] as? Double }
    }

    /// Checks a worker's copy against the saved master value by value; returns the worst error / bound.
    func checkBound(_ dump: Dump, master: [String: [Float]], model: String, name: String, finalVersion: Int) throws -> Double {
        #expect(dump.versions.allSatisfy { $0 == Int64(finalVersion) }, "\(name) holds versions \(dump.versions)")
        let table = try LocalTrainer.loadModel(model, seed: 11).table
        var worst = 0.0, checked = 0, violations = 0
        for e in table.entries {
            guard let m = master[e.name] else { Issue.record("\(e.name) missing from the saved model"); continue }
            for i in 0..<e.count {
                let copy = dump.parameters[e.offset + i]
                let err = abs(Double(m[i]) - Double(copy))
                let bound = PullDelta.errorBound(decodedDelta: dump.lastDelta[e.offset + i], copy: copy)
                if err > bound {
                    violations += 1
                    if violations <= 5 { Issue.record("\(name) \(e.name)[\(i)]: master \(m[i]), copy \(copy), error \(err) > bound \(bound)") }
                }
                worst = max(worst, err / bound)
                checked += 1
            }
        }
        #expect(violations == 0 && checked == dump.parameters.count, "\(name): \(violations) of \(checked) values outside the bound")
        return worst
    }

    /// Sync, 2 servers × 2 workers, 20 steps, once with fp32 pulls and once with bf16-delta: the
    /// delta run's workers end with copies within the bound of the saved fp32 master (and equal to
    /// each other bit for bit: both are the servers' shadow), parameters travel ~2× smaller, and the
    /// loss trajectory and final parameters stay within a tight tolerance of the fp32 run's.
    @Test func syncDeltaPullsKeepCopiesWithinTheBoundAndTrackFP32() throws {
        let dir = TestData.tempDir("pulldelta")
        let model = try TestCluster.tiny(in: dir)
        var losses: [String: [Double]] = [:], saved: [String: [String: [Float]]] = [:]
        for pull in ["fp32", "bf16-delta"] {
            let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 20, servers: 2, workers: 2,
                                             extraCluster: "pull_codec: \(pull)")
            let c = TestCluster(dir: dir, config: cfg)
            for w in ["w0", "w1"] { c.workerArguments[w] = ["--dump-parameters", dir + "/\(w)-\(pull).safetensors"] }
            try c.startCoordinator()
            for s in ["ps0", "ps1"] { try c.startServer(s) }
            for w in ["w0", "w1"] { try c.startWorker(w) }
            #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
            for n in ["ps0", "ps1", "w0", "w1"] { #expect(c.wait(n, timeout: 30) == 0, "\(n) exit: \(c.allLogs())") }
            #expect(c.log("coordinator").contains("step 20/20"), "\(c.allLogs())")
            let out = dir + "/out-\(pull)"
            try FileManager.default.moveItem(atPath: dir + "/out", toPath: out)
            saved[pull] = try loadParameters(out)
            losses[pull] = self.losses(c.log("coordinator"))
            let ratios = try parameterCompression(out)
            #expect(!ratios.isEmpty)
            if pull == "bf16-delta" {
                // bf16 deltas after the first full reply: about 2 bytes a value instead of 3.5.
                #expect(ratios.last! > 1.6, "parameter compression \(ratios)")
                let d0 = try Dump(dir + "/w0-\(pull).safetensors"), d1 = try Dump(dir + "/w1-\(pull).safetensors")
                let same = d0.parameters.map(\.bitPattern) == d1.parameters.map(\.bitPattern)
                #expect(same, "both workers hold the servers' shadow")
                #expect(d0.lastDelta.contains { $0 != 0 }, "the last replies were deltas")
                let worst = try checkBound(d0, master: saved[pull]!, model: model, name: "w0", finalVersion: 20)
                _ = try checkBound(d1, master: saved[pull]!, model: model, name: "w1", finalVersion: 20)
                #expect(worst > 0.01, "the copies are not the master itself: the check bites (worst error / bound \(worst))")
                print("PullDeltaClusterTests: worst |master − copy| / bound \(worst); parameter compression \(ratios.last!)")
                for w in ["w0", "w1"] {
                    #expect(c.log(w).contains("bf16-delta pulls: "), "\(c.log(w))")
                    #expect(!c.log(w).contains("dropped a bf16-delta"), "\(c.log(w))")
                }
            } else {
                #expect(ratios.last! < 1.4, "fp32 parameter compression \(ratios)")
            }
        }
        let a = losses["fp32"]!, b = losses["bf16-delta"]!
        #expect(a.count >= 20 && a.count == b.count, "\(a) vs \(b)")
        let worstLoss = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worstLoss < 2e-3, "loss trajectories differ by up to \(worstLoss): \(a) vs \(b)")
        let d = compareParameters(saved["bf16-delta"]!, saved["fp32"]!)
        print("PullDeltaClusterTests: loss trajectories differ by up to \(worstLoss); final parameters by \(d.global) (relative L2)")
        #expect(d.global < 1e-3, "final parameters: relative difference \(d.global)")
    }

    /// ssp/async: partitions of one server are at different versions, so a worker names no base and
    /// gets the shadow in full (deltas only where all of a server's partitions moved together); the
    /// run trains and finishes, and no delta is ever added to the wrong copy.
    @Test(arguments: ["ssp", "async"])
    func staleModesFallBackToFullRepliesAndTrain(_ mode: String) throws {
        let dir = TestData.tempDir("pulldelta-\(mode)")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 30, servers: 2, workers: 2, consistency: mode,
                                         extraCluster: "staleness: 1\npull_codec: bf16-delta")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 2, workers: 2)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 30/30"), "\(c.allLogs())")
        for n in ["ps0", "ps1", "w0", "w1"] { #expect(c.wait(n, timeout: 30) == 0, "\(n) exit: \(c.allLogs())") }
        let l = losses(c.log("coordinator"))
        #expect(l.count >= 30 && l.allSatisfy { $0.isFinite })
        let first = l.prefix(5).reduce(0, +) / 5, last = l.suffix(5).reduce(0, +) / 5
        #expect(last < first - 0.1, "loss \(first) → \(last)")
        for w in ["w0", "w1"] {
            #expect(c.log(w).contains("bf16-delta pulls: "), "\(c.log(w))")
            #expect(!c.log(w).contains("dropped a bf16-delta"), "\(c.log(w))")
        }
    }

    /// A worker killed mid-run and a new one started in its place: the newcomer has no copy, so its
    /// first pull gets the servers' shadow in full (fp32), then deltas; the run finishes and every
    /// worker left ends within the bound of the master.
    @Test func aRestartedWorkerResynchronisesInFullAndTheRunFinishes() throws {
        let dir = TestData.tempDir("pulldelta-restart")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 40, servers: 1, workers: 2,
                                         extraTraining: "max_train_samples: 160", extraCluster: "pull_codec: bf16-delta")
        let c = TestCluster(dir: dir, config: cfg)
        for w in ["w0", "w2"] { c.workerArguments[w] = ["--dump-parameters", dir + "/\(w).safetensors"] }
        try c.startCoordinator()
        try c.startServer("ps0")
        for w in ["w0", "w1"] { try c.startWorker(w) }
        #expect(c.waitForStep(6), "\(c.allLogs())")
        c.signal("w1", SIGKILL)
        #expect(c.waitForLog("coordinator", "lost: no heartbeat", timeout: 30), "\(c.allLogs())")
        try c.startWorker("w2")
        #expect(c.waitForLog("coordinator", "worker w2 joined"), "\(c.allLogs())")
        #expect(c.wait("coordinator", timeout: 180) == 0, "\(c.allLogs())")
        #expect(c.log("coordinator").contains("step 40/40"), "\(c.allLogs())")
        for n in ["ps0", "w0", "w2"] { #expect(c.wait(n, timeout: 30) == 0, "\(n) exit: \(c.allLogs())") }
        let master = try loadParameters(dir + "/out")
        for w in ["w0", "w2"] {
            let log = c.log(w)
            guard let r = log.range(of: "bf16-delta pulls: ") else { Issue.record("\(w): no reply counts: \(log)"); continue }
            let fields = log[r.upperBound...].split(separator: " ")
            let deltas = Int(fields[0]) ?? -1, full = Int(fields[3]) ?? -1
            #expect(full >= 1, "\(w) got its first copy in full: \(log)")
            #expect(deltas > full, "\(w) then took deltas: \(log)")
            _ = try checkBound(try Dump(dir + "/\(w).safetensors"), master: master, model: model, name: w, finalVersion: 40)
        }
        let finite = losses(c.log("coordinator")).allSatisfy { $0.isFinite }
        #expect(finite)
    }
}
}
