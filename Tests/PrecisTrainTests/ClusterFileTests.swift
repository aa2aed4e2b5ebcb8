import Foundation
import Testing
import PrecisTrain
import PrecisTestSupport


@Suite struct ClusterFileTests {
    @Test func shippedClusterFilesParse() throws {
        let local = try ClusterFile.load(TestData.repo.appendingPathComponent("cluster/local.yaml").path)
        #expect(local.config == "configs/train-samsum.yaml" && local.runDir == "run" && local.binDir == ".build/release")
        #expect(local.coordinatorHost == "127.0.0.1" && local.coordinatorPort == 5555)
        #expect(local.coordinatorBind == "tcp://127.0.0.1:5555")
        #expect(local.hosts == [ClusterFile.Host(address: "127.0.0.1", servers: 1, workers: 2, threadsPerWorker: 1)])
        #expect(local.coordinatorHostEntry?.isRemote == false)

        let example = try ClusterFile.load(TestData.repo.appendingPathComponent("cluster/hosts.example.yaml").path)
        #expect(example.hosts.count == 3 && example.hosts.allSatisfy { $0.isRemote })
        #expect(example.totalServers >= 1 && example.totalWorkers >= 3)
        #expect(example.coordinatorHostEntry != nil)
    }

    @Test func validFileWithEveryKey() throws {
        let text = """
        config: configs/x.yaml
        run_dir: /tmp/r
        bin_dir: bin
        coordinator: {host: 10.0.0.1, port: "*"}
        hosts:
          - address: 10.0.0.1
            ssh: me@a
            workdir: /srv/precis
            servers: 2
            workers: 1
            threads_per_worker: 4
          - address: 10.0.0.2
            ssh: me@b
            workers: 3
        """
        let c = try ClusterFile.parse(text, file: "c.yaml")
        #expect(c.config == "configs/x.yaml" && c.runDir == "/tmp/r" && c.binDir == "bin")
        #expect(c.coordinatorPort == nil && c.coordinatorBind == "tcp://10.0.0.1:*")
        #expect(c.hosts[0] == ClusterFile.Host(address: "10.0.0.1", ssh: "me@a", workdir: "/srv/precis", servers: 2, workers: 1,
                                               threadsPerWorker: 4))
        #expect(c.hosts[1] == ClusterFile.Host(address: "10.0.0.2", ssh: "me@b", servers: 0, workers: 3, threadsPerWorker: 1))
        #expect(c.totalServers == 2 && c.totalWorkers == 4)
        #expect(c.coordinatorHostEntry?.ssh == "me@a")
    }

    @Test func defaults() throws {
        let c = try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n", file: "c.yaml")
        #expect(c.config == nil && c.runDir == "run" && c.binDir == ".build/release")
        #expect(c.coordinatorHost == "127.0.0.1" && c.coordinatorPort == 5555)
        #expect(c.hosts[0].ssh == nil && c.hosts[0].workdir == nil && c.hosts[0].threadsPerWorker == 1)
    }

    @Test func unknownKeysAreErrors() {
        let base = "hosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n"
        #expect(throws: ConfigError.unknownKey(file: "c.yaml", key: "runs_dir")) {
            try ClusterFile.parse("runs_dir: run\n" + base, file: "c.yaml")
        }
        #expect(throws: ConfigError.unknownKey(file: "c.yaml", key: "hosts[0].worker")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 1, worker: 1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.unknownKey(file: "c.yaml", key: "coordinator.bind")) {
            try ClusterFile.parse("coordinator: {host: 127.0.0.1, bind: x}\n" + base, file: "c.yaml")
        }
    }

    @Test func wrongTypesNameTheKey() {
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "hosts[0].workers", expected: "an integer")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 1, workers: two}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "hosts", expected: "a list of hosts")) {
            try ClusterFile.parse("hosts: {address: 127.0.0.1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "coordinator.port", expected: "a port number or \"*\"")) {
            try ClusterFile.parse("coordinator: {port: any}\nhosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "config", expected: "a string")) {
            try ClusterFile.parse("config: [a, b]\nhosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "hosts[1]", expected: "a mapping")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n  - 10.0.0.2\n", file: "c.yaml")
        }
    }

    @Test func missingOrEmptyHosts() {
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts", reason: "missing: list at least one host (address, servers, workers)")) {
            try ClusterFile.parse("config: configs/x.yaml\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts", reason: "empty: list at least one host")) {
            try ClusterFile.parse("hosts: []\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts[0].address", reason: "missing: the address the roles on this host bind")) {
            try ClusterFile.parse("hosts:\n  - {servers: 1, workers: 1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts", reason: "no host runs a worker (workers: N)")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.unreadable(file: "/nonexistent/c.yaml", reason: "no such file")) {
            try ClusterFile.load("/nonexistent/c.yaml")
        }
    }

    @Test func impossibleValues() {
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "coordinator.port", reason: "70000 is not a TCP port (1–65535, or \"*\")")) {
            try ClusterFile.parse("coordinator: {port: 70000}\nhosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts[0].threads_per_worker", reason: "0 is not between 1 and 4096")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1, threads_per_worker: 0}\n", file: "c.yaml")
        }
        // Counts are bounded, so their sums (and the metrics ports derived from them) cannot overflow.
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts[0].servers", reason: "9223372036854775807 is not between 0 and 4096")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 9223372036854775807, workers: 1}\n  - {address: 127.0.0.1, servers: 1}\n",
                                  file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts[0].workers", reason: "-1 is not between 0 and 4096")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: 1, workers: -1}\n", file: "c.yaml")
        }
        // Folders a command line names: not empty, no leading '-' (`cd -P` would leave for $HOME).
        for (yaml, key, value, why) in [("run_dir: \"\"\n", "run_dir", "", "empty"), ("bin_dir: -x\n", "bin_dir", "-x", "starts with '-'")] {
            #expect(throws: ConfigError.invalid(file: "c.yaml", key: key, reason: "'\(value)' \(why)\(why == "empty" ? "" : " (it would be read as an option)")")) {
                try ClusterFile.parse(yaml + "hosts:\n  - {address: 127.0.0.1, servers: 1, workers: 1}\n", file: "c.yaml")
            }
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts[1].workdir", reason: "'-P' starts with '-' (it would be read as an option)")) {
            try ClusterFile.parse("hosts:\n  - {address: 10.0.0.1, servers: 1}\n  - {address: 10.0.0.2, ssh: b, workdir: -P, workers: 1}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.invalid(file: "c.yaml", key: "hosts[0].workdir",
                                            reason: "only for hosts reached over ssh (roles on this machine run in the current directory)")) {
            try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, workdir: /x, servers: 1, workers: 1}\n", file: "c.yaml")
        }
        // A loopback coordinator cannot be reached from other hosts.
        do {
            _ = try ClusterFile.parse("coordinator: {host: 127.0.0.1}\nhosts:\n  - {address: 127.0.0.1, servers: 1}\n  - {address: 10.0.0.2, ssh: b, workers: 1}\n",
                                      file: "c.yaml")
            Issue.record("expected an error")
        } catch let ConfigError.invalid(file, key, reason) {
            #expect(file == "c.yaml" && key == "coordinator.host" && reason.contains("loopback") && reason.contains("hosts[1]"))
        } catch { Issue.record("unexpected \(error)") }
        #expect(throws: ConfigError.unreadable(file: "c.yaml", reason: "empty; a cluster file needs at least `hosts:`")) {
            try ClusterFile.parse("", file: "c.yaml")
        }
    }

    /// An ssh destination or an address that would not stay one word of a command line is refused:
    /// `-oProxyCommand=…` as a destination is an option to ssh that runs a command on this machine.
    @Test func destinationsAndAddressesMustBePlainWords() throws {
        let cases: [(String, String, String)] = [
            ("{address: 10.0.0.2, ssh: \"-oProxyCommand=touch /tmp/x\", workers: 1}", "hosts[1].ssh", "starts with '-'"),
            ("{address: 10.0.0.2, ssh: \"-F/tmp/evil\", workers: 1}", "hosts[1].ssh", "starts with '-'"),
            ("{address: 10.0.0.2, ssh: \"user@b x\", workers: 1}", "hosts[1].ssh", "blanks or control characters"),
            ("{address: 10.0.0.2, ssh: \"b\\nc\", workers: 1}", "hosts[1].ssh", "blanks or control characters"),
            ("{address: \"--insecure\", ssh: b, workers: 1}", "hosts[1].address", "starts with '-'"),
        ]
        for (host, key, reason) in cases {
            let yaml = "hosts:\n  - {address: 10.0.0.1, servers: 1}\n  - \(host)\n"
            do {
                _ = try ClusterFile.parse(yaml, file: "c.yaml")
                Issue.record("accepted: \(host)")
            } catch let ConfigError.invalid(file, k, r) {
                #expect(file == "c.yaml" && k == key && r.contains(reason), "\(k): \(r)")
            }
        }
        _ = try ClusterFile.parse("hosts:\n  - {address: 10.0.0.1, servers: 1}\n  - {address: 10.0.0.2, ssh: deploy@b-2.example, workers: 1}\n",
                                  file: "c.yaml")
    }

    @Test func errorMessagesNameFileAndKey() {
        do {
            _ = try ClusterFile.parse("hosts:\n  - {address: 127.0.0.1, servers: x, workers: 1}\n", file: "cluster/local.yaml")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "cluster/local.yaml: key 'hosts[0].servers' must be an integer")
        }
    }

    /// The cluster file is read with the training config's YAML checks: a key that is a list (which
    /// made Yams trap), a key given twice and an alias bomb are errors naming the file.
    @Test func hostileYAMLIsAnErrorNotATrap() {
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + (1...6).map { i in
            "a\(i): &a\(i) [" + Array(repeating: "*a\(i == 1 ? "" : String(i - 1))", count: 10).joined(separator: ", ") + "]\n"
        }.joined()
        for yaml in ["? [a, b]\n: 1\nhosts: []\n", "hosts: []\nhosts: []\n", bomb] {
            #expect(throws: ConfigError.self, "\(yaml)") { try ClusterFile.parse(yaml, file: "c.yaml") }
        }
    }

    @Test func plannedMembersFromTrainingConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-clusterfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("t.yaml").path
        try "training: {max_steps: 3}\ncluster: {servers: 2, workers: 3}\n".write(toFile: p, atomically: true, encoding: .utf8)
        let planned = ClusterFile.plannedMembers(trainingConfig: p)
        #expect(planned.servers == 2 && planned.workers == 3)
        let none = ClusterFile.plannedMembers(trainingConfig: dir.appendingPathComponent("missing.yaml").path)
        #expect(none.servers == nil && none.workers == nil)
    }
}
