import Foundation
import PrecisTrain
import PrecisWire
import Testing
import PrecisLauncher

/// `LocalCluster` with stand-in role executables: a coordinator script that writes its endpoint
/// file and prints lines, members that run until they are stopped.
@Suite struct LocalClusterTests {
    static func cluster(_ dir: String, coordinator body: String) throws -> LocalCluster {
        let bin = dir + "/bin"
        try Scratch.script(bin + "/precis-coordinator", body)
        try Scratch.fakeRole(at: bin + "/precis-ps", order: dir + "/order")
        try Scratch.fakeRole(at: bin + "/precis-worker", order: dir + "/order")
        var cfg = TrainingConfig()
        cfg.cluster.servers = 1
        cfg.cluster.workers = 2
        cfg.cluster.threadsPerWorker = 3
        var c = LocalCluster(config: cfg, configPath: dir + "/train.yaml", outputDir: dir + "/out", maxSteps: 5, binDir: bin)
        // The stand-ins run their SIGTERM trap after their `sleep 0.05` returns: 3 s leaves room for a
        // loaded machine before SIGKILL would take them (and their line in the order file).
        c.memberExitTimeout = 3
        return c
    }

    /// Two lines, its endpoint file, a progress line once both workers run, and exit 0.
    static let coordinatorScript = """
        ep=; prev=
        for a in "$@"; do if [ "$prev" = --endpoint-file ]; then ep=$a; fi; prev=$a; done
        echo "coordinator: loading"
        echo "coordinator: $*"
        echo tcp://127.0.0.1:5999 > "$ep"
        logs=$(dirname "$ep")
        while ! grep -q started "$logs/w1.log" 2>/dev/null; do sleep 0.02; done
        echo '@progress {"step":1,"total":5,"epoch":0.1,"loss":9.5,"lr":0.001,"examples_per_second":12,"elapsed":0.5,"eta":2,"workers":2}'
        echo "coordinator: done"

        """

    @Test func runsTheCoordinatorAttachedAndItsMembersLoggingToFiles() throws {
        let dir = Scratch.directory("local")
        let cluster = try Self.cluster(dir, coordinator: Self.coordinatorScript)
        var lines: [String] = []
        let status = try cluster.run { lines.append($0) }
        #expect(status == .exited(0))
        let logs = dir + "/out/logs"
        #expect(lines == [
            "coordinator: loading",
            "coordinator: --config \(dir)/train.yaml --bind tcp://127.0.0.1:* --endpoint-file \(logs)/coordinator.endpoint "
                + "--output-dir \(dir)/out --max-steps 5 --progress-lines",
            "cluster on this host: coordinator tcp://127.0.0.1:5999, 1 server(s), 2 worker(s) × 3 thread(s); logs in \(logs)",
            #"@progress {"step":1,"total":5,"epoch":0.1,"loss":9.5,"lr":0.001,"examples_per_second":12,"elapsed":0.5,"eta":2,"workers":2}"#,
            "coordinator: done",
        ], "what it printed before listening comes first: \(lines)")
        #expect(lines.compactMap { ReportLine.progress(from: $0) }.map(\.step) == [1])
        #expect(Scratch.text(logs + "/ps0.log") == "started --coordinator tcp://127.0.0.1:5999 --name ps0 --threads 1\n")
        #expect(Scratch.text(logs + "/w0.log") == "started --coordinator tcp://127.0.0.1:5999 --name w0 --threads 3\n")
        // The members did not exit with the coordinator, so they were stopped: workers, then the server.
        let order = Scratch.text(dir + "/order").split(separator: "\n").map(String.init)
        #expect(order.count == 3 && Set(order.prefix(2)) == ["w0", "w1"] && order[2] == "ps0", "\(order)")
    }

    @Test func aCoordinatorThatEndsBeforeListeningEndsTheRunWithItsStatus() throws {
        let dir = Scratch.directory("early")
        let cluster = try Self.cluster(dir, coordinator: "echo 'coordinator: error: no such config' >&2\nexit 5\n")
        var lines: [String] = []
        #expect(try cluster.run { lines.append($0) } == .exited(5))
        #expect(lines == ["coordinator: error: no such config"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/logs/w0.log"), "no member was started")
    }

    @Test func aCoordinatorThatNeverListensTimesOutAndIsStopped() throws {
        let dir = Scratch.directory("silent")
        var cluster = try Self.cluster(dir, coordinator: "trap 'echo stopped > \(dir)/co-stopped; exit 0' TERM\nwhile :; do sleep 0.05; done\n")
        cluster.listenTimeout = 0.5
        #expect(throws: LaunchError.localCoordinatorNotListening(seconds: 0)) { _ = try cluster.run { _ in } }
        #expect(Scratch.eventually { Scratch.text(dir + "/co-stopped") == "stopped\n" })
    }
}
