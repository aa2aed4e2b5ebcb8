import Foundation
import Testing
import PrecisTrain
import PrecisWire
import PrecisTestSupport

/// `precis cluster up|status|scale|down` (what `make cluster-up`, `make scale` and `make
/// cluster-down` run) on this machine: real detached processes, pid files, logs, the coordinator's
/// status query.
extension RealProcesses {
@Suite struct ClusterCommandTests {
    /// Runs `precis ARGS` to the end; returns its exit status and output.
    static func precis(_ args: [String], in dir: String) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestCluster.binDir + "/precis")
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The coordinator's view: (state, live workers), from `ClusterStatus.query` with the operator key.
    static func view(_ endpoint: String, keys: ClusterKeys?) -> (state: String, workers: Int)? {
        guard let text = try? ClusterStatus.query(endpoint: endpoint, timeoutMs: 2000, keys: keys),
              let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        let workers = (obj["workers"] as? [[String: Any]] ?? []).filter { $0["alive"] as? Bool == true }.count
        return (obj["state"] as? String ?? "", workers)
    }

    /// DIR/cluster.yaml for `precis cluster …`: one local host with `servers` and `workers` (one thread
    /// each) training `config`, the run directory DIR/run, the coordinator on a free port.
    static func writeClusterFile(dir: String, config: String, servers: Int, workers: Int) throws -> String {
        let path = dir + "/cluster.yaml"
        try """
        config: \(config)
        run_dir: \(dir)/run
        bin_dir: \(TestCluster.binDir)
        coordinator: {host: 127.0.0.1, port: "*"}
        hosts:
          - address: 127.0.0.1
            servers: \(servers)
            workers: \(workers)
            threads_per_worker: 1
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func waitFor(_ what: String, timeout: Double = 60, _ ok: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ok() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Issue.record("timed out waiting for \(what)")
        return false
    }

    @Test func upScaleStatusAndDown() throws {
        let dir = TestData.tempDir("clustercmd")
        let model = try TestCluster.tiny(in: dir)
        // Long enough to outlast the scaling below; `down` ends it.
        // metrics_port 0: every role's Prometheus listener on a free port (members get --metrics-port from `up`).
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 100_000, servers: 1, workers: 2,
                                         extraCluster: "metrics_port: 0")
        let clusterFile = try Self.writeClusterFile(dir: dir, config: cfg, servers: 1, workers: 2)
        defer { _ = try? Self.precis(["cluster", "down", "--cluster", clusterFile, "--timeout", "5"], in: dir) }

        let up = try Self.precis(["cluster", "up", "--cluster", clusterFile], in: dir)
        #expect(up.status == 0, "\(up.output)")
        let endpoint = (try? String(contentsOfFile: dir + "/run/coordinator.endpoint", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"), "\(up.output)")
        // `cluster up` made the cluster's keys: the status needs the operator's.
        #expect(up.output.contains("wrote the cluster's keys to \(dir)/run/keys"), "\(up.output)")
        let keys = try ClusterKeys.load(dir: dir + "/run/keys", role: .operator)
        #expect(throws: WireError.self) { try ClusterStatus.query(endpoint: endpoint, timeoutMs: 1000) }
        #expect(Self.waitFor("training with 2 workers") { Self.view(endpoint, keys: keys).map { $0.state == "training" && $0.workers == 2 } ?? false })
        for name in ["coordinator", "ps0", "w0", "w1"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/run/\(name).log"), "\(name).log")
            #expect(Self.waitFor("\(name)'s metrics listener") { Self.runLog(dir, name).contains("\(name): metrics on http://127.0.0.1:") },
                    "\(Self.runLog(dir, name).suffix(1500))")
        }

        let status = try Self.precis(["cluster", "status", "--cluster", clusterFile], in: dir)
        #expect(status.status == 0 && status.output.contains("w1") && status.output.contains("alive"), "\(status.output)")

        let grow = try Self.precis(["cluster", "scale", "--cluster", clusterFile, "--workers", "3"], in: dir)
        #expect(grow.status == 0, "\(grow.output)")
        #expect(Self.waitFor("a third worker") { Self.view(endpoint, keys: keys)?.workers == 3 })
        #expect(Self.waitFor("w2's metrics listener") { Self.runLog(dir, "w2").contains("w2: metrics on http://127.0.0.1:") },
                "\(Self.runLog(dir, "w2").suffix(1500))")

        let shrink = try Self.precis(["cluster", "scale", "--cluster", clusterFile, "--workers", "1", "--timeout", "60"], in: dir)
        #expect(shrink.status == 0, "\(shrink.output)")
        #expect(Self.waitFor("one worker left") { Self.view(endpoint, keys: keys)?.workers == 1 })
        // The leavers left gracefully (SIGTERM → leave), and training goes on with the one left.
        let coordinatorLog = (try? String(contentsOfFile: dir + "/run/coordinator.log", encoding: .utf8)) ?? ""
        #expect(coordinatorLog.contains("left"), "\(coordinatorLog.suffix(2000))")
        let stepBefore = (try? ClusterStatus.query(endpoint: endpoint, keys: keys)).flatMap { Self.step($0) } ?? -1
        #expect(Self.waitFor("steps with one worker") { ((try? ClusterStatus.query(endpoint: endpoint, keys: keys)).flatMap { Self.step($0) } ?? -1) > stepBefore + 3 })

        let down = try Self.precis(["cluster", "down", "--cluster", clusterFile, "--timeout", "30"], in: dir)
        #expect(down.status == 0, "\(down.output)")
        #expect(Self.view(endpoint, keys: keys) == nil, "the coordinator still answers after down")
        let after = try Self.precis(["cluster", "status", "--cluster", clusterFile], in: dir)
        #expect(after.output.contains("0 of 3 process(es) alive (0 worker(s))"), "\(after.output)")
    }

    /// `cluster up --log-format json`: every role it starts, and a worker `scale` adds later, logs one
    /// JSON object per line (the format is kept in RUN_DIR/cluster.json for `scale`).
    @Test func upAndScaleKeepTheLogFormat() throws {
        let dir = TestData.tempDir("clusterjson")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 100_000, servers: 1, workers: 1)
        let clusterFile = try Self.writeClusterFile(dir: dir, config: cfg, servers: 1, workers: 1)
        defer { _ = try? Self.precis(["cluster", "down", "--cluster", clusterFile, "--timeout", "5"], in: dir) }

        let bad = try Self.precis(["cluster", "up", "--cluster", clusterFile, "--log-format", "xml"], in: dir)
        #expect(bad.status != 0 && bad.output.contains("--log-format must be one of text, json"), "\(bad.output)")

        let up = try Self.precis(["cluster", "up", "--cluster", clusterFile, "--log-format", "json"], in: dir)
        #expect(up.status == 0, "\(up.output)")
        let endpoint = (try? String(contentsOfFile: dir + "/run/coordinator.endpoint", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let keys = try ClusterKeys.load(dir: dir + "/run/keys", role: .operator)
        #expect(Self.waitFor("training with 1 worker") { Self.view(endpoint, keys: keys).map { $0.state == "training" && $0.workers == 1 } ?? false })
        let grow = try Self.precis(["cluster", "scale", "--cluster", clusterFile, "--workers", "2"], in: dir)
        #expect(grow.status == 0, "\(grow.output)")
        #expect(Self.waitFor("a second worker") { Self.view(endpoint, keys: keys)?.workers == 2 })
        let down = try Self.precis(["cluster", "down", "--cluster", clusterFile, "--timeout", "30"], in: dir)
        #expect(down.status == 0, "\(down.output)")

        for (name, role) in [("coordinator", "coordinator"), ("ps0", "server"), ("w0", "worker"), ("w1", "worker")] {
            let lines = Self.runLog(dir, name).split(separator: "\n").map(String.init)
            #expect(!lines.isEmpty, "\(name).log is empty")
            for line in lines {
                let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(o?["role"] as? String == role && o?["msg"] is String && o?["ts"] is String, "\(name).log: \(line)")
            }
        }
    }

    static func runLog(_ dir: String, _ name: String) -> String {
        (try? String(contentsOfFile: dir + "/run/\(name).log", encoding: .utf8)) ?? ""
    }

    static func step(_ statusJSON: String) -> Int? {
        (try? JSONSerialization.jsonObject(with: Data(statusJSON.utf8)) as? [String: Any])?["step"] as? Int
    }
}
}
