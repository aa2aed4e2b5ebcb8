import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small real HTTP/1.1 server over POSIX sockets for the tests: 127.0.0.1 on a port the kernel
/// picks, one thread per connection, `Content-Length` (and chunked) bodies, `Expect: 100-continue`,
/// one request per connection (`Connection: close`).
final class TestHTTPServer: @unchecked Sendable {
    struct Request: Sendable {
        let method: String
        /// The path without the query.
        let path: String
        let query: String?
        /// Lowercased names.
        let headers: [String: String]
        let body: Data

        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    struct Response: Sendable {
        var status: Int
        var headers: [String: String] = [:]
        var body = Data()
        /// Send only this many bytes of the body (after headers announcing all of it), then close
        /// the connection: a transfer broken mid-way.
        var dropAfter: Int? = nil
        /// Send the body `bytes` at a time, `every` seconds apart (a slow or dripping server),
        /// until it is all sent or the client goes away.
        var drip: (bytes: Int, every: TimeInterval)? = nil

        static func json(_ object: Any, status: Int = 200) -> Response {
            Response(status: status, headers: ["Content-Type": "application/json"],
                     body: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        }
        static func text(_ s: String, status: Int) -> Response {
            Response(status: status, headers: ["Content-Type": "text/plain"], body: Data(s.utf8))
        }
    }

    let port: UInt16
    var baseURL: String { "http://127.0.0.1:\(port)" }
    private let listener: Int32
    private let handler: @Sendable (Request) -> Response
    private let lock = NSLock()
    private var stopped = false

    init(handler: @escaping @Sendable (Request) -> Response) throws {
        self.handler = handler
        (listener, port) = try loopbackSocket(listening: true)
        let t = Thread { [self] in acceptLoop() }
        t.name = "test-http-accept"
        t.start()
    }

    deinit { stop() }

    func stop() {
        let first = lock.withLock { () -> Bool in
            if stopped { return false }
            stopped = true
            return true
        }
        if first { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }
    }

    private func acceptLoop() {
        while true {
            let c = accept(listener, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                return  // closed by stop()
            }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        let separator = Data("\r\n\r\n".utf8)
        var headerEnd: Range<Data.Index>?
        while true {
            headerEnd = buffer.range(of: separator)
            if headerEnd != nil { break }
            if !fill() { return }
        }
        let head = String(decoding: buffer[buffer.startIndex..<headerEnd!.lowerBound], as: UTF8.self)
        var rest = Data(buffer[headerEnd!.upperBound...])
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["expect"]?.lowercased() == "100-continue" { send(fd, Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }

        buffer = rest
        var body = Data()
        if let length = headers["content-length"].flatMap(Int.init) {
            while buffer.count < length { if !fill() { return } }
            body = Data(buffer.prefix(length))
        } else if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            // <hex size>\r\n<bytes>\r\n … 0\r\n\r\n
            while true {
                var lineEnd = buffer.range(of: Data("\r\n".utf8))
                while lineEnd == nil { if !fill() { return }; lineEnd = buffer.range(of: Data("\r\n".utf8)) }
                let sizeText = String(decoding: buffer[buffer.startIndex..<lineEnd!.lowerBound], as: UTF8.self)
                let size = Int(sizeText.split(separator: ";")[0], radix: 16) ?? 0
                rest = Data(buffer[lineEnd!.upperBound...])
                buffer = rest
                while buffer.count < size + 2 { if !fill() { return } }
                if size == 0 { break }
                body.append(Data(buffer.prefix(size)))
                buffer = Data(buffer.dropFirst(size + 2))
            }
        }
        let target = String(parts[1])
        let q = target.firstIndex(of: "?")
        let request = Request(method: String(parts[0]), path: q.map { String(target[..<$0]) } ?? target,
                              query: q.map { String(target[target.index(after: $0)...]) }, headers: headers, body: body)
        let response = handler(request)
        var out = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        var hs = response.headers
        // A HEAD answer announces the length of the body a GET would get (a handler may set it).
        if request.method != "HEAD" || hs["Content-Length"] == nil { hs["Content-Length"] = String(response.body.count) }
        hs["Connection"] = "close"
        for (k, v) in hs.sorted(by: { $0.key < $1.key }) { out += "\(k): \(v)\r\n" }
        out += "\r\n"
        if request.method == "HEAD" {
            send(fd, Data(out.utf8))
        } else if let n = response.dropAfter {
            send(fd, Data(out.utf8) + response.body.prefix(n))
            shutdown(fd, Int32(SHUT_RDWR))
        } else if let drip = response.drip {
            guard send(fd, Data(out.utf8)) else { return }
            var at = response.body.startIndex
            while at < response.body.endIndex {
                Thread.sleep(forTimeInterval: drip.every)
                let end = min(at + max(1, drip.bytes), response.body.endIndex)
                guard send(fd, Data(response.body[at..<end])) else { return }  // the client gave up
                at = end
            }
        } else {
            send(fd, Data(out.utf8) + response.body)
        }
    }

    /// Sends all of `data`; false when the connection broke first.
    @discardableResult
    private func send(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                done += n
            }
            return true
        }
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 206: return "Partial Content"
        case 302: return "Found"
        case 307: return "Temporary Redirect"
        case 416: return "Range Not Satisfiable"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 409: return "Conflict"
        case 422: return "Unprocessable Entity"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

/// A TCP socket bound to 127.0.0.1 on a port the kernel picks: its descriptor and port. A listening
/// one (a server's) may reuse an address in TIME_WAIT; one that does not listen does not set
/// SO_REUSEADDR, so no other socket can bind its port while it is open.
func loopbackSocket(listening: Bool) throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    if listening {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, !listening || listen(fd, 64) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return (fd, UInt16(bigEndian: addr.sin_port))
}

/// A port nothing listens on: a socket bound to it but not listening, so connections are refused,
/// kept open until `close` so the kernel cannot hand the port to another test's server meanwhile
/// (bind-then-close left it free, and a server of a test running alongside could take it).
struct RefusedPort {
    let fd: Int32
    let port: UInt16
    init() throws { (fd, port) = try loopbackSocket(listening: false) }
    func close() { _ = Glibc.close(fd) }
}
