import Foundation
import PrecisTrain
import Testing
import PrecisLauncher
import PrecisWire

/// `up`, `status`, `scale` and `down` over a cluster file with two hosts, this machine and one
/// "over ssh" (a stand-in for ssh that runs the script here), and stand-in role executables.
@Suite struct ClusterOperationsTests {
    @Test func upStatusScaleAndDownAcrossTwoHosts() throws {
        let dir = Scratch.directory("ops")
        let remote = dir + "/node2-checkout"
        try FileManager.default.createDirectory(atPath: remote, withIntermediateDirectories: true)
        for role in Role.allCases { try Scratch.fakeRole(at: dir + "/bin/" + role.executable, order: dir + "/order") }
        try "cluster:\n  servers: 1\n  workers: 2\n".write(toFile: dir + "/train.yaml", atomically: true, encoding: .utf8)
        let spec = try ClusterFile.parse("""
            config: \(dir)/train.yaml
            run_dir: \(dir)/run
            bin_dir: \(dir)/bin
            coordinator: {host: 10.77.0.1, port: "*"}
            hosts:
              - {address: 10.77.0.1, servers: 1, workers: 1}
              - {address: 10.77.0.2, ssh: node2, workdir: \(remote), workers: 1, threads_per_worker: 2}
            """, file: dir + "/cluster.yaml")
        var said: [String] = []
        let ops = ClusterOperations(spec: spec, clusterPath: dir + "/cluster.yaml", here: dir,
                                    shell: try RemoteShellTests.fakeSSH(dir), say: { said.append($0) })
        defer { try? ops.down(timeout: 1) }

        try ops.up(config: nil, outputDir: "out", maxSteps: 3, startTimeout: 30)
        let state = try #require(try ClusterState.load(dir + "/run/cluster.json"))
        #expect(state.endpoint == "tcp://10.77.0.1:7000", "the wildcard bind is replaced by the coordinator's address")
        #expect(state.processes.map(\.name) == ["coordinator", "ps0", "w0", "w1"])
        #expect(state.processes.map(\.ssh) == [nil, nil, nil, "node2"])
        #expect(state.processes[3].workdir == remote && state.processes[3].threads == 2)
        // The keys first: made here, copied to node2 with only the worker's secret (on stdin, not in the script).
        #expect(said.first == "wrote the cluster's keys to \(dir)/run/keys (9 files; secrets mode 0600)")
        #expect(said.contains("keys copied to node2:\(dir)/run/keys (secrets: worker)"), "\(said)")
        let scripts = Scratch.text(dir + "/ssh-scripts")
        #expect(scripts.contains("cat > \(dir)/run/keys/worker.key_secret && chmod 600 \(dir)/run/keys/worker.key_secret"))
        #expect(!scripts.contains("server.key_secret") && !scripts.contains("coordinator.key_secret") && !scripts.contains("operator.key_secret"))
        let secret = try #require(try ClusterKeys.load(dir: dir + "/run/keys", role: .worker).own.secretKey)
        #expect(!scripts.contains(Z85.encode(secret)), "a secret key appeared in an ssh command line")
        #expect(said.contains("started coordinator on 10.77.0.1 (pid \(state.processes[0].pid)), log \(dir)/run/coordinator.log"))
        #expect(said.contains("coordinator listening at tcp://10.77.0.1:7000"))
        #expect(said.contains("started w1 on 10.77.0.2 (pid \(state.processes[3].pid)), log node2:\(dir)/run/w1.log"))
        #expect(said.last == "cluster up: 1 coordinator, 1 server(s), 2 worker(s); state in \(dir)/run/cluster.json; "
                + "`precis cluster status --cluster \(dir)/cluster.yaml` shows progress")
        #expect(Scratch.eventually { Scratch.text(dir + "/run/coordinator.log").hasPrefix("started") })
        #expect(Scratch.text(dir + "/run/coordinator.log").hasPrefix("started --config \(dir)/train.yaml --bind tcp://10.77.0.1:* "
                + "--endpoint-file \(dir)/run/coordinator.endpoint --keys \(dir)/run/keys --output-dir out --max-steps 3\n"))
        #expect(Scratch.eventually { Scratch.text(dir + "/run/w1.log").hasPrefix("started") })
        #expect(Scratch.text(dir + "/run/w1.log").hasPrefix("started --coordinator tcp://10.77.0.1:7000 --host 10.77.0.2 --name w1 --threads 2 --keys \(dir)/run/keys\n"))
        #expect(Scratch.text(dir + "/ssh-scripts").contains("cd \(remote) || exit 3; test -x \(dir)/bin/precis-coordinator"),
                "up checks the remote host first")

        #expect(throws: LaunchError.self) { try ops.up(config: nil, outputDir: nil, maxSteps: nil, startTimeout: 5) }

        let view = try ops.status(queryTimeoutMs: 200)
        #expect(view.processes.map(\.liveness) == [.alive, .alive, .alive, .alive])
        #expect(view.aliveCount == 4 && view.liveWorkers == 2)
        guard case .unreachable(let endpoint, _) = view.coordinator else {
            Issue.record("a stand-in coordinator cannot answer the status query: \(view.coordinator)")
            return
        }
        #expect(endpoint == "tcp://10.77.0.1:7000")

        said = []
        try ops.scale(to: 3, timeout: 30)
        let grown = try #require(try ClusterState.load(dir + "/run/cluster.json"))
        #expect(grown.processes.map(\.name) == ["coordinator", "ps0", "w0", "w1", "w2"])
        #expect(grown.processes[4].host == "10.77.0.1", "a tie goes to the first host")
        #expect(said.last == "3 worker(s) now")

        said = []
        try ops.scale(to: 1, timeout: 30)
        #expect(said.first == "SIGTERM → w2 (pid \(grown.processes[4].pid)), w1 (pid \(grown.processes[3].pid))", "the newest leave first")
        #expect(said.contains("left: w2, w1"))
        #expect(try ClusterState.load(dir + "/run/cluster.json")?.processes.map(\.name) == ["coordinator", "ps0", "w0"])

        said = []
        try ops.down(timeout: 30)
        #expect(said == ["SIGTERM → w0 (pid \(grown.processes[2].pid))", "SIGTERM → ps0 (pid \(grown.processes[1].pid))",
                         "SIGTERM → coordinator (pid \(grown.processes[0].pid))", "cluster down"])
        let order = Scratch.text(dir + "/order").split(separator: "\n").map(String.init)
        #expect(Set(order.prefix(2)) == ["w1", "w2"] && Array(order.dropFirst(2)) == ["w0", "ps0", "coordinator"], "\(order)")
        for name in ["coordinator", "ps0", "w0", "w1", "w2"] {
            #expect(!FileManager.default.fileExists(atPath: dir + "/run/\(name).pid"), "\(name).pid removed")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/coordinator.endpoint"))
        let after = try ops.status(queryTimeoutMs: 200)
        #expect(after.aliveCount == 0 && after.processes.count == 3)
        guard case .notRunning(let log, _) = after.coordinator else {
            Issue.record("\(after.coordinator)")
            return
        }
        #expect(log == dir + "/run/coordinator.log")
    }

    @Test func withoutAStateFileStatusAndScaleSayThereIsNoCluster() throws {
        let dir = Scratch.directory("nocluster")
        let spec = try ClusterFile.parse("run_dir: \(dir)/run\nhosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n", file: "c.yaml")
        var said: [String] = []
        let ops = ClusterOperations(spec: spec, clusterPath: "c.yaml", here: dir, say: { said.append($0) })
        #expect(throws: LaunchError.noCluster(stateFile: dir + "/run/cluster.json")) { _ = try ops.status(queryTimeoutMs: 100) }
        #expect(throws: LaunchError.noCluster(stateFile: dir + "/run/cluster.json")) { try ops.scale(to: 2, timeout: 1) }
        #expect(throws: LaunchError.noTrainingConfig(clusterFile: "c.yaml")) {
            try ops.up(config: nil, outputDir: nil, maxSteps: nil, startTimeout: 1)
        }
        try ops.down(timeout: 1)
        #expect(said == ["nothing to stop: no \(dir)/run/cluster.json and no pid files in \(dir)/run"])
    }
}
