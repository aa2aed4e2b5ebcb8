import Foundation
import PrecisCore
import PrecisHub
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The hub's HTTP client (`HTTP` / `HTTPTransfer`, libcurl's easy interface) against a real local
/// server: bodies up and down, redirects, and many requests at once from several threads while some
/// are refused and some time out, the mix that crashed a process using URLSession.
@Suite struct HTTPClientTests {
    /// Answers `/echo` with what it was sent (method, length, SHA-256 of the body), `/slow` after 4
    /// seconds, `/moved` with a 307 to `/echo`.
    static func server() throws -> TestHTTPServer {
        try TestHTTPServer { r in
            switch r.path {
            case "/echo":
                return .json(["method": r.method, "length": r.body.count, "sha256": Hashing.sha256Hex(r.body),
                              "expect": r.header("Expect") ?? ""])
            case "/slow":
                Thread.sleep(forTimeInterval: 4)
                return .text("late", status: 200)
            case "/huge":
                return TestHTTPServer.Response(status: 200, body: Data(count: HTTP.maxAnswerBytes + 1))
            case "/headers":
                // 280 headers of 1,000 bytes: past the client's 256 KiB of headers.
                var h: [String: String] = [:]
                for i in 0..<280 { h["X-Filler-\(i)"] = String(repeating: "v", count: 1000) }
                return TestHTTPServer.Response(status: 200, headers: h)
            case "/moved":
                return TestHTTPServer.Response(status: 307, headers: ["Location": "/echo"])
            case "/drip-slow":
                // 500 bytes/s: 40 s for the whole answer, each piece well within any stall limit.
                return TestHTTPServer.Response(status: 200, body: Data(count: 20_000), drip: (100, 0.2))
            case "/drip-fast":
                // 16 KiB/s, fast enough for any slowness limit, but 64 s for the whole answer.
                return TestHTTPServer.Response(status: 200, body: Data(count: 1 << 20), drip: (4096, 0.25))
            default:
                return .text("no such page", status: 404)
            }
        }
    }

    @Test func sendsBodiesFromMemoryAndFilesAndFollowsRedirectsWithThem() throws {
        let server = try Self.server()
        defer { server.stop() }
        let http = HTTP(timeout: 10)
        let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("precis-http-\(UUID().uuidString).bin").path
        try payload.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }

        for (method, body) in [("PUT", HTTP.Body.data(payload)), ("POST", .data(payload)), ("PUT", .file(file))] {
            let r = try http.send(method, URL(string: server.baseURL + "/echo")!, body: body)
            let answer = try #require(JSON.object(r.body))
            #expect(r.status == 200 && answer["method"] as? String == method, "\(r.status) \(answer)")
            #expect(answer["length"] as? Int == payload.count && answer["sha256"] as? String == Hashing.sha256Hex(payload))
            #expect(answer["expect"] as? String == "", "curl's Expect: 100-continue is off")
        }
        // A 307 keeps the method and the body (the file is read again from its start).
        let moved = try http.send("PUT", URL(string: server.baseURL + "/moved")!, body: .file(file))
        let answer = try #require(JSON.object(moved.body))
        #expect(moved.status == 200 && answer["method"] as? String == "PUT" && answer["length"] as? Int == payload.count)
        // A missing file is an error naming it, before anything is sent.
        #expect {
            try http.send("PUT", URL(string: server.baseURL + "/echo")!, body: .file(file + ".missing"))
        } throws: { "\($0)".contains(file + ".missing") }
        // An answer larger than the client keeps in memory is an error, not an allocation.
        #expect {
            try http.send("GET", URL(string: server.baseURL + "/huge")!)
        } throws: { "\($0)".contains("larger than 64 MiB") }
        #expect {
            try http.send("GET", URL(string: server.baseURL + "/headers")!)
        } throws: { "\($0)".contains("headers are larger than 256 KiB") && "\($0)".contains("/headers") }
        // HTTPTransfer does not follow: the 307's head comes back as it is.
        let head = try HTTPTransfer(timeout: 10).run("GET", URL(string: server.baseURL + "/moved")!, headers: [:],
                                                     onHead: { _ in .skip }, onBody: { _ in .more })
        #expect(head.status == 307 && head.header("Location") == "/echo")
    }

    /// A server that keeps a request alive with a byte now and then is cut off by the 1 KiB/s
    /// floor (over `timeout` seconds); one that sends fast enough but for ever, by `maxDuration`.
    @Test func drippingAnswersAreCutOff() throws {
        let server = try Self.server()
        defer { server.stop() }
        var start = Date()
        #expect {
            try HTTP(timeout: 2).send("GET", URL(string: server.baseURL + "/drip-slow")!)
        } throws: { e in
            guard case let HubError.network(_, url, reason) = e else { return false }
            return url.hasSuffix("/drip-slow") && reason.contains("slow")
        }
        #expect(Date().timeIntervalSince(start) < 20, "cut off after \(Date().timeIntervalSince(start)) s")
        start = Date()
        #expect {
            try HTTP(timeout: 2).send("GET", URL(string: server.baseURL + "/drip-fast")!, maxDuration: 3)
        } throws: { e in
            guard case let HubError.network(_, url, reason) = e else { return false }
            return url.hasSuffix("/drip-fast") && reason.contains("timed out")
        }
        #expect(Date().timeIntervalSince(start) < 20, "cut off after \(Date().timeIntervalSince(start)) s")
    }

    @Test func manyRequestsAtOnceWithRefusalsAndTimeoutsEachEndWithTheirOwnOutcome() throws {
        let server = try Self.server()
        defer { server.stop() }
        let closedPort = try RefusedPort()
        defer { closedPort.close() }
        let refused = "http://127.0.0.1:\(closedPort.port)/echo"
        let threads = 6, rounds = 12
        let outcomes = NSLock()
        nonisolated(unsafe) var problems: [String] = []
        nonisolated(unsafe) var counts = (answered: 0, refused: 0, timedOut: 0)
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            Thread {
                defer { done.leave() }
                for i in 0..<rounds {
                    let kind = (t + i) % 4
                    do {
                        switch kind {
                        case 0, 1:
                            let body = Data(repeating: UInt8(t), count: 1000 * (i + 1))
                            let r = try HTTP(timeout: 10).send("POST", URL(string: server.baseURL + "/echo")!, body: .data(body))
                            let n = JSON.object(r.body)?["length"] as? Int
                            outcomes.withLock {
                                if r.status == 200 && n == body.count { counts.answered += 1 } else { problems.append("echo: \(r.status) \(r.text)") }
                            }
                        case 2:
                            _ = try HTTP(timeout: 10).send("GET", URL(string: refused)!)
                            outcomes.withLock { problems.append("a refused port answered") }
                        default:
                            if i % 3 != 0 {
                                // A quick GET of a missing page: the 404 is an answer, not an error.
                                let r = try HTTP(timeout: 10).send("GET", URL(string: server.baseURL + "/none")!)
                                outcomes.withLock { if r.status == 404 { counts.answered += 1 } else { problems.append("404 page: \(r.status)") } }
                            } else {
                                _ = try HTTP(timeout: 1).send("GET", URL(string: server.baseURL + "/slow")!)
                                outcomes.withLock { problems.append("a stalled answer did not time out") }
                            }
                        }
                    } catch let HubError.network(method, url, reason) {
                        outcomes.withLock {
                            if kind == 2 && url == refused && method == "GET" { counts.refused += 1 }
                            else if kind == 3 && url.hasSuffix("/slow") { counts.timedOut += 1 }
                            else { problems.append("\(method) \(url): \(reason)") }
                        }
                    } catch {
                        outcomes.withLock { problems.append("\(error)") }
                    }
                }
            }.start()
        }
        #expect(done.wait(timeout: .now() + 120) == .success, "requests still running after 2 minutes")
        outcomes.withLock {
            #expect(problems.isEmpty, "\(problems)")
            #expect(counts.answered + counts.refused + counts.timedOut == threads * rounds, "\(counts)")
            #expect(counts.refused == threads * rounds / 4 && counts.timedOut > 0, "\(counts)")
        }
    }
}
