import Foundation
import PrecisHub
import PrecisObservability
import Testing

/// The listener over real HTTP on loopback: `/metrics` in the text format, the extra-route hook,
/// 404/405, and a port already in use refused with an error naming the role and the port.
@Suite struct MetricsServerTests {
    @Test func servesMetricsAndExtraRoutes() throws {
        let metrics = WorkerMetrics(name: "w0")
        metrics.contributionDone(computeSeconds: 2, waitSeconds: 1, encodeSeconds: 0, pushedBytes: 10, pulledBytes: 20, tokens: 30, examples: 1)
        let routes = HTTPRoutes()
        #expect(routes.set("/status.json") { HTTPPage(contentType: "application/json", text: "{\"step\":3}") })
        #expect(!routes.set("/metrics") { HTTPPage(contentType: "text/plain", text: "hijacked") })
        let server = try MetricsServer.start(MetricsEndpoint(port: 0), metrics: metrics, routes: routes, role: "w0")
        defer { server.stop() }
        #expect(server.port > 0)
        #expect(server.url == "http://127.0.0.1:\(server.port)/metrics")

        let m = try HTTP.request(server.url)
        #expect(m.status == 200)
        #expect(m.contentType == MetricsServer.metricsContentType)
        let p = try PrometheusText.parse(m.text)
        #expect(p.value("precis_worker_compute_seconds_total", ["member": "w0"]) == 2)
        // Scrapes see updates made since (the same registry, read live).
        metrics.contributionDone(computeSeconds: 3, waitSeconds: 0, encodeSeconds: 0, pushedBytes: 0, pulledBytes: 0, tokens: 0, examples: 0)
        #expect(try PrometheusText.parse(HTTP.request(server.url).text).value("precis_worker_compute_seconds_total") == 5)

        let base = "http://127.0.0.1:\(server.port)"
        let status = try HTTP.request(base + "/status.json")
        #expect(status.status == 200 && status.contentType == "application/json" && status.text == "{\"step\":3}")
        // A route added after the start is served too.
        routes.set("/") { HTTPPage(contentType: "text/html; charset=utf-8", text: "<h1>run</h1>") }
        let page = try HTTP.request(base + "/")
        #expect(page.status == 200 && page.contentType == "text/html; charset=utf-8" && page.text == "<h1>run</h1>")
        #expect(try HTTP.request(base + "/nothing").status == 404)
        #expect(try HTTP.request(server.url, method: "POST").status == 405)
        let head = try HTTP.request(server.url, method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty)
    }

    @Test func aPortInUseIsAClearError() throws {
        let first = try MetricsServer.start(MetricsEndpoint(port: 0), metrics: ServerMetrics(name: "ps0"), role: "ps0")
        defer { first.stop() }
        do {
            let second = try MetricsServer.start(MetricsEndpoint(port: first.port), metrics: ServerMetrics(name: "ps1"), role: "ps1")
            second.stop()
            Issue.record("a second listener started on port \(first.port)")
        } catch {
            guard case .cannotListen(let role, let bind, let port, _) = error else { Issue.record("\(error)"); return }
            #expect(role == "ps1" && bind == "127.0.0.1" && port == first.port)
            #expect(error.description.hasPrefix("cannot serve the metrics of ps1 on 127.0.0.1:\(first.port): "))
            #expect(error.description.lowercased().contains("in use"), "\(error)")
        }
        // The first one still answers.
        #expect(try HTTP.request(first.url).status == 200)
    }

    @Test func anInvalidPortIsRefused() {
        #expect(throws: MetricsServerError.invalidPort(role: "coordinator", port: 70_000)) {
            try MetricsServer.start(MetricsEndpoint(port: 70_000), metrics: CoordinatorMetrics(), role: "coordinator")
        }
    }

    @Test func stopClosesThePort() throws {
        let server = try MetricsServer.start(MetricsEndpoint(port: 0), metrics: CoordinatorMetrics(), role: "coordinator")
        let port = server.port
        server.stop()
        // The port is free again: a new listener takes it.
        let again = try MetricsServer.start(MetricsEndpoint(port: port), metrics: CoordinatorMetrics(), role: "coordinator")
        again.stop()
        #expect(again.port == port)
    }
}
