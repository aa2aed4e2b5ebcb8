import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP request whose answer is streamed to a sink as it arrives, with redirects NOT followed
/// (the caller decides where to go next and which headers to send there). Blocking: call it from a
/// plain thread, never from an async context. Transport failures become `HubError.network`; bytes
/// delivered before a failure have already reached the sink (so a download can resume from them).
struct HTTPTransfer: Sendable {
    struct Head: Sendable {
        let status: Int
        /// Header names lowercased.
        let headers: [String: String]
        func header(_ name: String) -> String? { headers[name.lowercased()] }
        var isRedirect: Bool { [301, 302, 303, 307, 308].contains(status) }
    }

    /// What the sink says after each piece of the body: go on, or stop (with an error to report).
    enum Verdict: Sendable {
        case more
        /// Not interested in the body (a redirect's, an error page's): not an error.
        case skip
        case stop(HubDownloadError)
    }

    let timeout: TimeInterval

    /// Sends the request. `onHead` sees the status and headers before any body byte and may refuse
    /// the body (a redirect's or an error's body then goes nowhere); `onBody` gets each piece.
    func run(_ method: String, _ url: URL, headers: [String: String],
             onHead: @escaping @Sendable (Head) -> Verdict,
             onBody: @escaping @Sendable (Data) -> Verdict) throws -> Head {
        var req = URLRequest(url: url)
        req.httpMethod = method
        req.timeoutInterval = timeout
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        let state = TransferState(onHead: onHead, onBody: onBody)
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = 7 * 24 * 3600
        config.httpShouldSetCookies = false
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: config, delegate: state, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: req)
        task.resume()
        state.done.wait()
        let (head, error, stop) = state.lock.withLock { (state.head, state.error, state.stopReason) }
        if let stop { throw stop }
        if let head, error == nil || isCancel(error) { return head }
        if let error {
            throw HubError.network(method: method, url: Redact.url(url), reason: Redact.text(error.localizedDescription))
        }
        throw HubError.network(method: method, url: Redact.url(url), reason: "no HTTP response")
    }

    private func isCancel(_ error: Error?) -> Bool {
        guard let e = error as? URLError else { return false }
        return e.code == .cancelled
    }
}

/// The delegate of one transfer's session. `@unchecked Sendable`: URLSession calls it on its own
/// queue while the caller waits on `done`; every mutable field is read and written under `lock`.
private final class TransferState: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let lock = NSLock()
    let done = DispatchSemaphore(value: 0)
    let onHead: @Sendable (HTTPTransfer.Head) -> HTTPTransfer.Verdict
    let onBody: @Sendable (Data) -> HTTPTransfer.Verdict
    var head: HTTPTransfer.Head?
    var error: Error?
    var stopReason: HubDownloadError?
    var finished = false

    init(onHead: @escaping @Sendable (HTTPTransfer.Head) -> HTTPTransfer.Verdict,
         onBody: @escaping @Sendable (Data) -> HTTPTransfer.Verdict) {
        self.onHead = onHead
        self.onBody = onBody
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        // Never follow: the caller goes on with the Location (and decides about the token).
        completionHandler(nil)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse else { completionHandler(.cancel); return }
        let verdict = record(http)
        switch verdict {
        case .more: completionHandler(.allow)
        case .skip: completionHandler(.cancel)
        case let .stop(e):
            lock.withLock { stopReason = e }
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        if lock.withLock({ stopReason != nil }) { return }
        switch onBody(data) {
        case .more: break
        case .skip: dataTask.cancel()
        case let .stop(e):
            lock.withLock { stopReason = e }
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        // A refused redirect may complete without `didReceive response`: take its head from the task.
        if lock.withLock({ head == nil }), let http = task.response as? HTTPURLResponse {
            if case let .stop(e) = record(http) { lock.withLock { if stopReason == nil { stopReason = e } } }
        }
        let first = lock.withLock { () -> Bool in
            if finished { return false }
            finished = true
            self.error = error
            return true
        }
        if first { done.signal() }
    }

    private func record(_ http: HTTPURLResponse) -> HTTPTransfer.Verdict {
        var hs: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { hs[k.lowercased()] = v }
        }
        let h = HTTPTransfer.Head(status: http.statusCode, headers: hs)
        lock.withLock { head = h }
        return onHead(h)
    }
}
