import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A blocking HTTP exchange over URLSession (call it from a background thread, never from an async
/// context). Transport failures become `HubError.network`; any status is returned as is. The
/// project's one HTTP client: the hub's uploads and downloads, and the tests that read the roles'
/// HTTP pages (`request`).
package struct HTTP: Sendable {
    package struct Response: Sendable {
        package let status: Int
        /// Header names lowercased.
        package let headers: [String: String]
        package let body: Data

        var ok: Bool { (200..<300).contains(status) }
        package func header(_ name: String) -> String? { headers[name.lowercased()] }
        /// The body as UTF-8 text.
        package var text: String { String(decoding: body, as: UTF8.self) }
        package var contentType: String? { header("Content-Type") }
    }

    enum Body: Sendable {
        case none
        case data(Data)
        /// Streamed from the file by URLSession.
        case file(String)
    }

    let session: URLSession

    /// One request to `url` with a fresh session (`timeout` seconds per request).
    package static func request(_ url: String, method: String = "GET", timeout: TimeInterval = 60) throws -> Response {
        guard let u = URL(string: url) else { throw HubError.network(method: method, url: url, reason: "not a URL") }
        return try HTTP(timeout: timeout).send(method, u)
    }

    init(timeout: TimeInterval) {
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = 7 * 24 * 3600
        config.httpShouldSetCookies = false
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: config)
    }

    private final class Outcome: @unchecked Sendable {
        let lock = NSLock()
        var data: Data?
        var response: URLResponse?
        var error: Error?
    }

    func send(_ method: String, _ url: URL, headers: [String: String] = [:], body: Body = .none) throws -> Response {
        var req = URLRequest(url: url)
        req.httpMethod = method
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let handler: @Sendable (Data?, URLResponse?, Error?) -> Void = { d, r, e in
            outcome.lock.withLock { outcome.data = d; outcome.response = r; outcome.error = e }
            done.signal()
        }
        let task: URLSessionTask
        switch body {
        case .none:
            task = session.dataTask(with: req, completionHandler: handler)
        case let .data(d):
            task = session.uploadTask(with: req, from: d, completionHandler: handler)
        case let .file(path):
            task = session.uploadTask(with: req, fromFile: URL(fileURLWithPath: path), completionHandler: handler)
        }
        task.resume()
        done.wait()
        let (data, response, error) = outcome.lock.withLock { (outcome.data, outcome.response, outcome.error) }
        if let error {
            throw HubError.network(method: method, url: Redact.url(url), reason: Redact.text(error.localizedDescription))
        }
        guard let http = response as? HTTPURLResponse else {
            throw HubError.network(method: method, url: Redact.url(url), reason: "no HTTP response")
        }
        var hs: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { hs[k.lowercased()] = v }
        }
        return Response(status: http.statusCode, headers: hs, body: data ?? Data())
    }
}

/// Small JSON helpers over JSONSerialization (the Hub's answers are loosely typed).
enum JSON {
    static func encode(_ object: Any) -> Data {
        // Only ever called with dictionaries/arrays of strings, numbers and booleans.
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func object(_ data: Data) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}
