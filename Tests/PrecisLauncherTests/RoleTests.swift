import Testing
import PrecisLauncher

@Suite struct RoleTests {
    @Test func eachRoleHasItsExecutableAndItsNameInTheStateFile() {
        #expect(Role.coordinator.executable == "precis-coordinator")
        #expect(Role.server.executable == "precis-ps")
        #expect(Role.worker.executable == "precis-worker")
        #expect(Role.allCases.map(\.rawValue) == ["coordinator", "ps", "worker"])
        #expect(Role(processName: "coordinator") == .coordinator)
        #expect(Role(processName: "ps12") == .server)
        #expect(Role(processName: "w3") == .worker)
    }

    @Test func stopGroupsPutWorkersFirstThenServersThenTheCoordinator() {
        let names = ["coordinator", "ps0", "w0", "ps1", "w1", "w2"]
        let groups = Role.stopGroups(names) { Role(processName: $0) }
        #expect(groups == [["w0", "w1", "w2"], ["ps0", "ps1"], ["coordinator"]])
        #expect(Role.stopGroups(["coordinator", "w5"]) { Role(processName: $0) } == [["w5"], ["coordinator"]])
        #expect(Role.stopGroups([String]()) { Role(processName: $0) }.isEmpty)
    }

    @Test func coordinatorArguments() {
        let plain = RoleCommand.coordinator(config: "configs/t.yaml", bind: "tcp://127.0.0.1:*", endpointFile: "run/coordinator.endpoint")
        #expect(plain.role == .coordinator)
        #expect(plain.arguments == ["--config", "configs/t.yaml", "--bind", "tcp://127.0.0.1:*", "--endpoint-file", "run/coordinator.endpoint"])
        let all = RoleCommand.coordinator(config: "c.yaml", bind: "tcp://10.0.0.1:5555", endpointFile: "e", outputDir: "out dir",
                                          maxSteps: 40, progressLines: true)
        #expect(all.arguments == ["--config", "c.yaml", "--bind", "tcp://10.0.0.1:5555", "--endpoint-file", "e",
                                  "--output-dir", "out dir", "--max-steps", "40", "--progress-lines"])
        #expect(all.argv(binDir: "/opt/precis/bin") == ["/opt/precis/bin/precis-coordinator"] + all.arguments)
    }

    @Test func serverAndWorkerArguments() {
        let ps = RoleCommand.server(coordinator: "tcp://10.0.0.1:5555", name: "ps1", host: "10.0.0.2")
        #expect(ps.role == .server)
        #expect(ps.arguments == ["--coordinator", "tcp://10.0.0.1:5555", "--host", "10.0.0.2", "--name", "ps1"])
        #expect(ps.argv(binDir: ".build/release").first == ".build/release/precis-ps")
        let w = RoleCommand.worker(coordinator: "tcp://127.0.0.1:4000", name: "w2", threads: 3)
        #expect(w.role == .worker)
        #expect(w.arguments == ["--coordinator", "tcp://127.0.0.1:4000", "--name", "w2", "--threads", "3"])
        let full = RoleCommand.worker(coordinator: "tcp://h:1", name: "w0", host: "h2", threads: 1)
        #expect(full.arguments == ["--coordinator", "tcp://h:1", "--host", "h2", "--name", "w0", "--threads", "1"])
    }

    /// cluster.metrics_port: the coordinator at the port, member i (servers, then workers) at port + 1 + i.
    @Test func memberMetricsPorts() {
        #expect(RoleCommand.memberMetricsPort(base: nil, index: 0) == nil)
        #expect(RoleCommand.memberMetricsPort(base: 0, index: 5) == 0)
        #expect(RoleCommand.memberMetricsPort(base: 9100, index: 0) == 9101)
        #expect(RoleCommand.memberMetricsPort(base: 9100, index: 3) == 9104)
        #expect(RoleCommand.memberMetricsPort(base: 65_535, index: 0) == nil)
        let w = RoleCommand.worker(coordinator: "tcp://h:1", name: "w0", threads: 1, metricsPort: 9102)
        #expect(w.arguments == ["--coordinator", "tcp://h:1", "--name", "w0", "--threads", "1", "--metrics-port", "9102"])
        let ps = RoleCommand.server(coordinator: "tcp://h:1", name: "ps0", metricsPort: 0)
        #expect(ps.arguments == ["--coordinator", "tcp://h:1", "--name", "ps0", "--metrics-port", "0"])
    }
}
