import Foundation
import Testing
import PrecisHub
import PrecisWire
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

extension RealProcesses {
/// The coordinator's live page on a real running cluster: served beside `/metrics`, its
/// `status.json` is the run's, and headless Chromium (Debian's `chromium`, which `make test`
/// installs) draws its curves and its member table.
@Suite struct LivePageClusterTests {
    /// The Chromium binary: `$CHROMIUM`, else `chromium` / `chromium-browser` on the PATH.
    static func chromium() -> String? {
        if let c = ProcessInfo.processInfo.environment["CHROMIUM"], !c.isEmpty { return c }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            for name in ["chromium", "chromium-browser"] where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        }
        return nil
    }

    /// The `data-*` attributes of `<body>` in a DOM dump.
    static func bodyAttributes(_ dom: String) -> [String: String] {
        guard let open = dom.range(of: "<body"), let close = dom[open.upperBound...].firstIndex(of: ">") else { return [:] }
        var out: [String: String] = [:]
        let tag = String(dom[open.upperBound..<close])
        let re = try! NSRegularExpression(pattern: #"data-([a-z-]+)="([^"]*)""#)
        for m in re.matches(in: tag, range: NSRange(tag.startIndex..., in: tag)) {
            out[String(tag[Range(m.range(at: 1), in: tag)!])] = String(tag[Range(m.range(at: 2), in: tag)!])
        }
        return out
    }

    @Test func theLivePageDrawsTheRunningCluster() throws {
        let dir = TestData.tempDir("live")
        let model = try TestCluster.tiny(in: dir)
        // w1 is stopped (SIGSTOP) while the page is read, so the run stands still mid-way however fast
        // it is; heartbeats may not time out meanwhile.
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 4, steps: 60, servers: 1, workers: 2,
                                         extraCluster: "heartbeat_timeout: 600\nmetrics_port: 0")
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        let metricsURL = try #require(MetricsClusterTests.metricsURL(c, "coordinator"), "\(c.allLogs())")
        let base = String(metricsURL.dropLast("metrics".count))
        #expect(c.waitForStep(5), "\(c.allLogs())")
        c.signal("w1", SIGSTOP)
        defer { c.signal("w1", SIGCONT) }

        let page = try HTTP.request(base)
        #expect(page.status == 200 && page.contentType == "text/html; charset=utf-8")
        #expect(page.text.contains("<canvas") && !page.text.contains("http://") && !page.text.contains("https://"),
                "the page must be self-contained")
        // status.json is the coordinator's (published twice a second): wait until it shows the step the
        // stopped run stands at. The log is read once per answer: a step both workers had reported
        // before w1 stopped may still close meanwhile.
        var status: StatusReport?
        var logged = -1
        let deadline = Date().addingTimeInterval(30)
        repeat {
            let answer = try HTTP.request(base + "status.json")
            #expect(answer.status == 200 && answer.contentType == "application/json")
            status = try JSONDecoder().decode(StatusReport.self, from: answer.body)
            logged = c.coordinatorStep()
            if status?.step == logged && logged >= 5 { break }
            Thread.sleep(forTimeInterval: 0.2)
        } while Date() < deadline
        let s = try #require(status)
        #expect(s.step == logged && s.maxSteps == 60, "status.json at step \(s.step), the log at \(logged)")
        #expect(s.servers.count == 1 && s.workers.count == 2)
        #expect((s.history?.count ?? 0) >= 5, "the curve has \(s.history?.count ?? 0) points")
        #expect(s.loss.map { $0.isFinite && $0 > 0 } == true && (s.learningRate ?? 0) > 0)

        guard let chromium = Self.chromium() else {
            Issue.record("no chromium to draw the page (make test installs Debian's chromium; or set CHROMIUM)")
            return
        }
        let png = dir + "/live-page.png", dom = dir + "/live-page.html"
        let shot = Process()
        shot.executableURL = URL(fileURLWithPath: "/bin/bash")
        shot.arguments = [TestData.repo.appendingPathComponent("tools/live/screenshot.sh").path, base, png, dom]
        var env = ProcessInfo.processInfo.environment
        env["CHROMIUM"] = chromium
        shot.environment = env
        let err = Pipe()
        shot.standardError = err
        shot.standardOutput = FileHandle.nullDevice
        try shot.run()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shot.waitUntilExit()
        #expect(shot.terminationStatus == 0, "screenshot.sh: \(errText)")
        let pngSize = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(pngSize > 10_000, "screenshot of \(pngSize) bytes")
        let attributes = Self.bodyAttributes((try? String(contentsOfFile: dom, encoding: .utf8)) ?? "")
        #expect(Int(attributes["polls"] ?? "") ?? 0 >= 1, "\(attributes)")
        #expect(attributes["curves-drawn"] == "3", "loss, learning rate and throughput: \(attributes)")
        #expect(attributes["members"] == "3", "one server and two workers: \(attributes)")
        // `PRECIS_LIVE_PAGE_PNG=docs/live-page.png swift test --filter LivePage` refreshes the README's picture.
        if let keep = ProcessInfo.processInfo.environment["PRECIS_LIVE_PAGE_PNG"], !keep.isEmpty {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: png, toPath: keep)
        }

        c.signal("w1", SIGCONT)
        #expect(c.wait("coordinator") == 0, "\(c.allLogs())")
        for n in ["ps0", "w0", "w1"] { #expect(c.wait(n, timeout: 20) == 0, "\(n): \(c.allLogs())") }
    }
}
}
