import CCurl
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request over libcurl's easy interface, run to its end on the calling thread (blocking:
/// call it from a plain thread, never from an async context). The answer's head goes to `onHead`
/// before any body byte, and the body to `onBody` piece by piece as it arrives. Transport failures
/// become `HubError.network`; bytes delivered before a failure have already reached `onBody` (so a
/// download can resume from them).
///
/// Why libcurl directly rather than URLSession (which is libcurl too, underneath): on Linux,
/// FoundationNetworking drives libcurl's multi interface through libdispatch sources whose teardown
/// races the socket's close (swift-corelibs-foundation #4791 and its sequels), and a process that
/// makes requests while some fail (connection refused, timeouts, retries) can die in libdispatch's
/// event loop ("Source finalized twice"); this project's test process did. The easy interface runs
/// the whole exchange on this thread: no sources, no queues, no shared state between requests.
package struct HTTPTransfer: Sendable {
    package struct Head: Sendable {
        package let status: Int
        /// Header names lowercased (a repeated header's values joined with ", ").
        package let headers: [String: String]
        package func header(_ name: String) -> String? { headers[name.lowercased()] }
        var isRedirect: Bool { [301, 302, 303, 307, 308].contains(status) }
    }

    /// What the sinks say after the head and after each piece of the body: go on, or stop (with an
    /// error to report).
    package enum Verdict: Sendable {
        case more
        /// Not interested in the body (a redirect's, an error page's): not an error.
        case skip
        case stop(HubDownloadError)
    }

    /// What the request sends.
    package enum Body: Sendable {
        case none
        case data(Data)
        /// Streamed from the file.
        case file(String)
    }

    /// Seconds to connect; and the window over which the transfer must average at least
    /// `minimumSpeed` bytes per second (both directions together) or fail: a server that stops, or
    /// one that drips a byte now and then, does not hold the request open.
    package let timeout: TimeInterval

    /// 1 KiB/s: far below any real link, far above a server dripping bytes to keep a request alive.
    package static let minimumSpeed = 1024

    package init(timeout: TimeInterval) { self.timeout = timeout }

    /// Sends the request. Redirects are not followed unless `followRedirects` (then only the last
    /// answer's head and body are seen, and never to a scheme other than http and https). `onHead`
    /// sees the status and headers before any body byte and may refuse the body (a redirect's or an
    /// error's body then goes nowhere); `onBody` gets each piece. `maxDuration`: the most seconds the
    /// whole exchange may take (API calls with small answers); nil for transfers of any size.
    package func run(_ method: String, _ url: URL, headers: [String: String], body: Body = .none, followRedirects: Bool = false,
                     maxDuration: TimeInterval? = nil,
                     onHead: @escaping (Head) -> Verdict, onBody: @escaping (Data) -> Verdict) throws -> Head {
        func failure(_ reason: String) -> HubError {
            HubError.network(method: method, url: Redact.url(url), reason: Redact.text(reason))
        }
        guard curlReady else { throw failure("libcurl could not be initialised") }
        guard let handle = curl_easy_init() else { throw failure("libcurl could not make a request handle") }
        defer { curl_easy_cleanup(handle) }

        let upload: UploadSource?
        switch body {
        case .none: upload = nil
        case let .data(d): upload = UploadSource(data: d)
        case let .file(path):
            switch UploadSource.open(path) {
            case let .success(u): upload = u
            case let .failure(e): throw failure("cannot read \(path): \(e.reason)")
            }
        }
        let exchange = Exchange(onHead: onHead, onBody: onBody, reportsEachHead: !followRedirects, upload: upload)
        var errorText = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        // Everything curl_easy_perform reads (strings, the header list, the exchange) lives until it returns.
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        // "Expect:" turns off curl's `Expect: 100-continue` (and its wait) on uploads.
        for line in headers.sorted(by: { $0.key < $1.key }).map({ "\($0.key): \($0.value)" }) + ["Expect:"] {
            guard let next = curl_slist_append(list, line) else { throw failure("out of memory for the request headers") }
            list = next
        }
        let code: CURLcode = try withExtendedLifetime(exchange) {
            let context = Unmanaged.passUnretained(exchange).toOpaque()
            var options: [CURLcode] = []
            func set(_ o: CURLoption, _ v: Int) { options.append(precis_curl_setopt_long(handle, o, v)) }
            func set(_ o: CURLoption, _ s: String) { options.append(precis_curl_setopt_string(handle, o, s)) }  // libcurl copies strings
            set(CURLOPT_URL, url.absoluteString)
            set(CURLOPT_NOSIGNAL, 1)
            set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1)  // a proxy's CONNECT answer is not the server's head
            set(CURLOPT_PROTOCOLS_STR, "http,https")
            set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
            set(CURLOPT_CONNECTTIMEOUT_MS, Int(min(max(timeout, 0.001), 1e6) * 1000))
            set(CURLOPT_LOW_SPEED_LIMIT, Self.minimumSpeed)
            set(CURLOPT_LOW_SPEED_TIME, max(1, Int(min(max(timeout, 0), 1e6).rounded(.up))))
            if let maxDuration { set(CURLOPT_TIMEOUT_MS, Int(min(max(maxDuration, 0.001), 1e6) * 1000)) }
            if followRedirects { set(CURLOPT_FOLLOWLOCATION, 1); set(CURLOPT_MAXREDIRS, 10) }
            if method == "HEAD" {
                set(CURLOPT_NOBODY, 1)
            } else if let upload {
                set(CURLOPT_UPLOAD, 1)
                options.append(precis_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(upload.size)))
                options.append(precis_curl_setopt_data_callback(handle, CURLOPT_READFUNCTION, readBody))
                options.append(precis_curl_setopt_pointer(handle, CURLOPT_READDATA, context))
                options.append(precis_curl_setopt_seek_callback(handle, CURLOPT_SEEKFUNCTION, seekBody))
                options.append(precis_curl_setopt_pointer(handle, CURLOPT_SEEKDATA, context))
                if method != "PUT" { set(CURLOPT_CUSTOMREQUEST, method) }
            } else if method != "GET" {
                set(CURLOPT_CUSTOMREQUEST, method)
            }
            options.append(precis_curl_setopt_list(handle, CURLOPT_HTTPHEADER, list))
            options.append(precis_curl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, receiveHeader))
            options.append(precis_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context))
            options.append(precis_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, receiveBody))
            options.append(precis_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
            if let bad = options.first(where: { $0 != CURLE_OK }) {
                throw failure("libcurl refused an option: \(String(cString: curl_easy_strerror(bad)))")
            }
            return errorText.withUnsafeMutableBufferPointer { buffer in
                _ = precis_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, buffer.baseAddress)
                let code = curl_easy_perform(handle)
                _ = precis_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
                return code
            }
        }
        if code == CURLE_OK { _ = exchange.report() }  // a head with no body byte is handed over now
        if let stop = exchange.stopReason { throw stop }
        if let refusal = exchange.refusal { throw failure(refusal) }
        if let error = exchange.upload?.error { throw failure("reading the request body: \(error)") }
        if code == CURLE_OK || exchange.skipped, let head = exchange.finalHead { return head }
        if code == CURLE_OK { throw failure("no HTTP response") }
        let detail = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw failure(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
    }
}

/// libcurl's process-wide set-up, done once before the first request (thread-safe since 7.84).
private let curlReady: Bool = curl_global_init(3 /* CURL_GLOBAL_ALL */) == CURLE_OK

/// The state of one request while curl_easy_perform runs; its callbacks reach it through their
/// user-data pointer, always on the thread that called `run`.
private final class Exchange {
    let onHead: (HTTPTransfer.Head) -> HTTPTransfer.Verdict
    let onBody: (Data) -> HTTPTransfer.Verdict
    /// false when curl follows redirects itself: only the last head counts, and it is handed over
    /// with the first body byte (or at the end).
    let reportsEachHead: Bool
    let upload: UploadSource?
    /// The header block being read (curl hands one line per call).
    var status = 0
    var headers: [String: String] = [:]
    /// The latest complete final (non-1xx) head.
    var finalHead: HTTPTransfer.Head?
    var headReported = false
    var skipped = false
    var stopReason: HubDownloadError?
    /// Header bytes of the answers so far (redirects and 1xx included), bounded by `maxHeaderBytes`
    /// (below libcurl's own 300 KiB, so the error is the same whatever libcurl a host has).
    var headerBytes = 0
    static let maxHeaderBytes = 256 << 10
    /// Why the exchange was cut short by this side, other than a sink's verdict.
    var refusal: String?

    init(onHead: @escaping (HTTPTransfer.Head) -> HTTPTransfer.Verdict, onBody: @escaping (Data) -> HTTPTransfer.Verdict,
         reportsEachHead: Bool, upload: UploadSource?) {
        self.onHead = onHead; self.onBody = onBody; self.reportsEachHead = reportsEachHead; self.upload = upload
    }

    /// One header line (CRLF included). Returns false to abort the transfer.
    func header(_ line: String) -> Bool {
        headerBytes += line.utf8.count
        guard headerBytes <= Self.maxHeaderBytes else {
            refusal = "the answer's headers are larger than \(Self.maxHeaderBytes >> 10) KiB"
            return false
        }
        let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("HTTP/") {
            // A new answer (after a 1xx, or a redirect curl follows) starts a new block.
            let parts = text.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            headers = [:]
            headReported = false
        } else if text.isEmpty {
            guard status >= 200 else { return true }  // 1xx: the real answer follows
            finalHead = HTTPTransfer.Head(status: status, headers: headers)
            if reportsEachHead { return report() }
        } else if let colon = text.firstIndex(of: ":") {
            let name = text[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        return true
    }

    /// Hands the head over once. Returns false when the body is not wanted.
    func report() -> Bool {
        guard !headReported, let h = finalHead else { return !(skipped || stopReason != nil) }
        headReported = true
        switch onHead(h) {
        case .more: return true
        case .skip: skipped = true; return false
        case let .stop(e): stopReason = e; return false
        }
    }

    /// A piece of the body. Returns false to abort the transfer.
    func body(_ data: Data) -> Bool {
        guard report() else { return false }
        switch onBody(data) {
        case .more: return true
        case .skip: skipped = true; return false
        case let .stop(e): stopReason = e; return false
        }
    }
}

/// What an upload sends: bytes in memory, or a file read as curl asks (rewound if curl must resend).
private final class UploadSource {
    struct OpenError: Error { let reason: String }
    private let data: Data?
    private let fd: Int32
    let size: Int64
    private var offset: Int64 = 0
    /// A read error, reported after the transfer.
    var error: String?

    init(data: Data) {
        self.data = data; fd = -1; size = Int64(data.count)
    }

    private init(fd: Int32, size: Int64) {
        data = nil; self.fd = fd; self.size = size
    }

    /// The file at `path`, which must be a regular file.
    static func open(_ path: String) -> Result<UploadSource, OpenError> {
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)   // a FIFO: refused below, not waited on
        guard fd >= 0 else { return .failure(OpenError(reason: String(cString: strerror(errno)))) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return .failure(OpenError(reason: "not a regular file"))
        }
        return .success(UploadSource(fd: fd, size: Int64(st.st_size)))
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Fills `buffer`; 0 at the end; nil on a read error.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let want = Int(min(Int64(buffer.count), size - offset))
        guard want > 0 else { return 0 }
        if let data {
            let start = data.startIndex + Int(offset)
            data.copyBytes(to: buffer.bindMemory(to: UInt8.self), from: start..<(start + want))
            offset += Int64(want)
            return want
        }
        while true {
            let got = pread(fd, buffer.baseAddress, want, off_t(offset))
            if got < 0 && errno == EINTR { continue }
            if got < 0 { error = String(cString: strerror(errno)); return nil }
            if got == 0 { error = "the file shrank while it was sent"; return nil }
            offset += Int64(got)
            return got
        }
    }

    func seek(to position: Int64) -> Bool {
        guard position >= 0 && position <= size else { return false }
        offset = position
        return true
    }
}

// The C callbacks: each finds its Exchange through the user-data pointer.

private func receiveHeader(_ bytes: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let bytes, let context else { return 0 }
    let n = size * count
    let exchange = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: bytes, count: n), as: UTF8.self)
    return exchange.header(line) ? n : 0
}

private func receiveBody(_ bytes: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let bytes, let context else { return 0 }
    let n = size * count
    let exchange = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue()
    return exchange.body(Data(bytes: bytes, count: n)) ? n : 0
}

private func readBody(_ bytes: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let bytes, let context else { return Int(CURL_READFUNC_ABORT) }
    let exchange = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue()
    guard let upload = exchange.upload else { return 0 }
    return upload.read(into: UnsafeMutableRawBufferPointer(start: bytes, count: size * count)) ?? Int(CURL_READFUNC_ABORT)
}

private func seekBody(_ context: UnsafeMutableRawPointer?, _ offset: curl_off_t, _ origin: Int32) -> Int32 {
    guard let context, origin == SEEK_SET else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
    let exchange = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue()
    return exchange.upload?.seek(to: Int64(offset)) == true ? Int32(CURL_SEEKFUNC_OK) : Int32(CURL_SEEKFUNC_FAIL)
}
