import Foundation

/// A blocking HTTP exchange (call it from a background thread, never from an async context), over
/// `HTTPTransfer` (libcurl) with redirects followed and the whole body collected. Transport
/// failures become `HubError.network`; any status is returned as is. The project's one HTTP client:
/// the hub's uploads and downloads, and the tests that read the roles' HTTP pages (`request`).
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

    package typealias Body = HTTPTransfer.Body

    let transfer: HTTPTransfer

    /// One request to `url` (`timeout` seconds to connect, and at most that long below 1 KiB/s).
    package static func request(_ url: String, method: String = "GET", timeout: TimeInterval = 60) throws -> Response {
        guard let u = URL(string: url) else { throw HubError.network(method: method, url: url, reason: "not a URL") }
        return try HTTP(timeout: timeout).send(method, u)
    }

    package init(timeout: TimeInterval) {
        transfer = HTTPTransfer(timeout: timeout)
    }

    /// The largest answer `send` keeps in memory: the Hub's JSON answers and the roles' pages are a
    /// few KiB to a few MiB; a server sending more is refused rather than followed into memory.
    package static let maxAnswerBytes = 64 << 20

    /// `maxDuration`: how long the whole exchange may take (nil: no limit beyond the transfer's
    /// stall and slowness limits).
    package func send(_ method: String, _ url: URL, headers: [String: String] = [:], body: Body = .none,
                      maxDuration: TimeInterval? = nil) throws -> Response {
        var received = Data()
        var tooLarge = false
        let head = try transfer.run(method, url, headers: headers, body: body, followRedirects: true, maxDuration: maxDuration,
                                    onHead: { _ in .more },
                                    onBody: { piece in
                                        guard received.count + piece.count <= Self.maxAnswerBytes else { tooLarge = true; return .skip }
                                        received.append(piece)
                                        return .more
                                    })
        if tooLarge {
            throw HubError.badResponse(url: Redact.url(url), reason: "the answer to \(method) is larger than \(Self.maxAnswerBytes >> 20) MiB")
        }
        return Response(status: head.status, headers: head.headers, body: received)
    }
}

/// Small JSON helpers over JSONSerialization (the Hub's answers are loosely typed).
package enum JSON {
    static func encode(_ object: Any) -> Data {
        // Only ever called with dictionaries/arrays of strings, numbers and booleans.
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    package static func object(_ data: Data) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}
