import Foundation
import Testing
import PrecisHub
import PrecisObservability
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

struct ScrapeFailed: Error, CustomStringConvertible {
    var description: String
}

extension RealProcesses {
/// Every role's Prometheus `/metrics` over real HTTP while a real cluster trains, read with
/// `PrometheusText` and checked against what the roles log; a metrics port already in use is a clear
/// error and exit status 1, for a member and for the coordinator.
@Suite struct MetricsClusterTests {
    /// The URL a role logged (`NAME: metrics on http://HOST:PORT/metrics`).
    static func metricsURL(_ c: TestCluster, _ name: String) -> String? {
        guard c.waitForLog(name, "\(name): metrics on http://", timeout: 120) else { return nil }
        guard let line = c.log(name).split(separator: "\n").first(where: { $0.contains("\(name): metrics on http://") }),
              let r = line.range(of: "metrics on ") else { return nil }
        return line[r.upperBound...].split(separator: " ").first.map(String.init)
    }

    static func scrape(_ url: String) throws -> PrometheusText {
        let answer = try HTTP.request(url)
        guard answer.status == 200 else { throw ScrapeFailed(description: "\(url) answered \(answer.status)") }
        guard answer.contentType == "text/plain; version=0.0.4; charset=utf-8" else {
            throw ScrapeFailed(description: "\(url): content type \(answer.contentType ?? "none")")
        }
        return try PrometheusText.parse(answer.text)
    }

    /// Waits (scraping) until `ok` holds for the scrape of `url`; returns the last scrape.
    static func scrape(_ url: String, until ok: (PrometheusText) -> Bool, timeout: Double = 60) throws -> PrometheusText {
        let deadline = Date().addingTimeInterval(timeout)
        var last = try scrape(url)
        while !ok(last) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            last = try scrape(url)
        }
        return last
    }

    @Test func everyRoleServesItsMetricsWhileTraining() throws {
        let dir = TestData.tempDir("metrics")
        let model = try TestCluster.tiny(in: dir)
        // The worker is stopped (SIGSTOP) while the coordinator and the server are scraped, so the run
        // stands still at a step however fast it is; its heartbeats may not time out meanwhile.
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 40, servers: 1, workers: 1,
                                         extraCluster: "heartbeat_timeout: 600\nmetrics_port: 0")
        let c = TestCluster(dir: dir, config: cfg)
        try c.startCoordinator()
        try c.start("precis-ps", "ps0", ["--coordinator", c.endpoint, "--name", "ps0", "--metrics-port", "0"])
        try c.start("precis-worker", "w0", ["--coordinator", c.endpoint, "--name", "w0", "--threads", "1", "--metrics-port", "0"])
        let coordinatorURL = try #require(Self.metricsURL(c, "coordinator"), "\(c.allLogs())")
        let serverURL = try #require(Self.metricsURL(c, "ps0"), "\(c.allLogs())")
        let workerURL = try #require(Self.metricsURL(c, "w0"), "\(c.allLogs())")
        #expect(coordinatorURL.hasPrefix("http://127.0.0.1:") && coordinatorURL.hasSuffix("/metrics"))
        #expect(Set([coordinatorURL, serverURL, workerURL]).count == 3)

        #expect(c.waitForStep(3), "\(c.allLogs())")
        c.signal("w0", SIGSTOP)
        // The run stands still within a step: the coordinator's step gauge then equals the step of its
        // latest log line (the gauge is set just before the line is written). A step the worker reported
        // before it stopped still closes once the server's norm is in, so wait until every reported
        // contribution is a closed step too, and keep the log's step read with that scrape.
        var step = -1
        let co = try Self.scrape(coordinatorURL, until: {
            step = c.coordinatorStep()
            return $0.value("precis_step").map(Int.init) == step && $0.value("precis_contributions_total").map(Int.init) == step
        })
        #expect(step >= 3 && step < 40)
        #expect(co.value("precis_step") == Double(step), "\(c.log("coordinator").suffix(2000))")
        #expect(co.value("precis_total_steps") == 40)
        #expect(co.value("precis_steps_completed_total") == Double(step))
        #expect(co.value("precis_members", ["role": "server", "state": "alive"]) == 1)
        #expect(co.value("precis_members", ["role": "worker", "state": "alive"]) == 1)
        #expect(co.value("precis_members", ["role": "worker", "state": "lost"]) == 0)
        #expect(co.value("precis_run_phase", ["phase": "training"]) == 1)
        #expect(co.value("precis_run_phase", ["phase": "waiting"]) == 0)
        let loss = try #require(co.value("precis_loss"))
        #expect(loss.isFinite && loss > 0 && loss < 20)
        #expect((co.value("precis_learning_rate") ?? 0) > 0)
        #expect((co.value("precis_grad_norm") ?? 0) > 0)
        #expect((co.value("precis_examples_per_second") ?? 0) > 0)
        #expect(co.value("precis_epoch").map { $0 > 0 } == true)
        // One worker: one contribution per step (the open step's, if already reported, counts too).
        let contributions = try #require(co.value("precis_contributions_total"))
        #expect(contributions >= Double(step) && contributions <= Double(step + 1))
        #expect((co.value("precis_gradient_wire_bytes_total") ?? 0) > 0)
        #expect((co.value("precis_parameter_wire_bytes_total") ?? 0) > 0)
        #expect((co.value("precis_gradient_raw_bytes_total") ?? 0) >= (co.value("precis_gradient_wire_bytes_total") ?? 0) * 0.5)
        // The step line's loss is the gauge's (4 decimals in the log).
        let line = try #require(c.log("coordinator").split(separator: "\n").last { $0.contains("coordinator: step \(step)/40 ") })
        let logged = try #require(line.components(separatedBy: " loss ").last?.split(separator: " ").first.flatMap { Double($0) })
        #expect(abs(logged - loss) < 1e-4, "\(line)")

        // The server has applied the steps the coordinator closed (sync), and the open one if the
        // worker was stopped between its last push and its report.
        let ps = try Self.scrape(serverURL, until: { ($0.value("precis_server_version") ?? 0) >= Double(step) })
        let l = ["member": "ps0"]
        let version = try #require(ps.value("precis_server_version", l))
        #expect(version == Double(step) || version == Double(step + 1), "server at \(version), coordinator at \(step)")
        #expect(ps.value("precis_server_updates_total", l) == version)
        let partitions = try #require(ps.value("precis_server_partitions", l))
        #expect(partitions >= 1)
        // Every partition of every applied step came in as a push (and the open step's may have).
        let pushes = try #require(ps.value("precis_server_pushes_total", l))
        #expect(pushes >= partitions * version && pushes <= partitions * Double(step + 1))
        #expect((ps.value("precis_server_received_bytes_total", l) ?? 0) > 0)
        #expect((ps.value("precis_server_sent_bytes_total", l) ?? 0) > 0)
        #expect((ps.value("precis_server_parameter_replies_total", l) ?? 0) >= partitions * version)
        #expect((ps.value("precis_server_decode_seconds_total", l) ?? 0) > 0)
        #expect((ps.value("precis_server_optimizer_seconds_total", l) ?? 0) > 0)

        // A member whose metrics port is taken stops at once with an error naming it and the port.
        let port = try #require(URL(string: coordinatorURL)?.port)
        try c.start("precis-worker", "w9", ["--coordinator", c.endpoint, "--name", "w9", "--metrics-port", String(port)])
        #expect(c.wait("w9", timeout: 120) == 1)
        #expect(c.log("w9").contains("w9: error: cannot serve the metrics of w9 on 127.0.0.1:\(port): "), "\(c.log("w9"))")
        // So does a coordinator.
        try c.start("precis-coordinator", "coordinator2", ["--config", cfg, "--bind", "tcp://127.0.0.1:*", "--metrics-port", String(port),
                                                           "--output-dir", dir + "/out2"])
        #expect(c.wait("coordinator2", timeout: 120) == 1)
        #expect(c.log("coordinator2").contains("coordinator: error: cannot serve the metrics of coordinator on 127.0.0.1:\(port): "),
                "\(c.log("coordinator2"))")
        #expect(try Self.scrape(coordinatorURL).value("precis_members", ["role": "worker", "state": "alive"]) == 1)

        c.signal("w0", SIGCONT)
        let w = try Self.scrape(workerURL, until: { ($0.value("precis_worker_contributions_total") ?? 0) >= contributions })
        let wl = ["member": "w0"]
        #expect((w.value("precis_worker_contributions_total", wl) ?? 0) >= contributions)
        #expect((w.value("precis_worker_compute_seconds_total", wl) ?? 0) > 0)
        #expect((w.value("precis_worker_wait_seconds_total", wl) ?? 0) > 0)
        #expect((w.value("precis_worker_step_compute_seconds", wl) ?? 0) > 0)
        #expect((w.value("precis_worker_pushed_bytes_total", wl) ?? 0) > 0)
        #expect((w.value("precis_worker_pulled_bytes_total", wl) ?? 0) > 0)
        #expect((w.value("precis_worker_tokens_total", wl) ?? 0) > 0)
        #expect((w.value("precis_worker_tokens_per_second", wl) ?? 0) > 0)
        // 4 examples a contribution (the worker runs on: a scrape may fall between the two counters' updates).
        let done = try #require(w.value("precis_worker_contributions_total", wl))
        let examples = try #require(w.value("precis_worker_examples_total", wl))
        #expect(examples >= (done - 1) * 4 && examples <= done * 4, "\(examples) examples in \(done) contributions")

        // The listeners do not keep the run from ending.
        #expect(c.wait("coordinator", timeout: 300) == 0, "\(c.allLogs())")
        #expect(c.wait("ps0", timeout: 60) == 0, "\(c.allLogs())")
        #expect(c.wait("w0", timeout: 60) == 0, "\(c.allLogs())")
        c.stopAll()
    }

    /// `precis train` with `cluster.metrics_port: 0`: the coordinator and every member it starts serve
    /// metrics on free ports and log their URLs.
    @Test func precisTrainStartsEveryMembersListener() throws {
        let dir = TestData.tempDir("metrics-train")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 4, servers: 1, workers: 2, extraCluster: "metrics_port: 0")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestCluster.binDir + "/precis")
        p.arguments = ["train", "--config", cfg]
        let out = Pipe()
        p.standardOutput = out; p.standardError = FileHandle.nullDevice
        try p.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(stdout)")
        #expect(stdout.contains("coordinator: metrics on http://127.0.0.1:"), "\(stdout)")
        var ports: Set<String> = []
        for name in ["ps0", "w0", "w1"] {
            let log = (try? String(contentsOfFile: "\(dir)/out/logs/\(name).log", encoding: .utf8)) ?? ""
            let url = log.components(separatedBy: "\(name): metrics on ").dropFirst().first?.split(separator: "\n").first.map(String.init)
            #expect(url?.hasPrefix("http://127.0.0.1:") == true && url?.hasSuffix("/metrics") == true, "\(name): \(log)")
            if let url { ports.insert(url) }
        }
        #expect(ports.count == 3)
    }
}
}
