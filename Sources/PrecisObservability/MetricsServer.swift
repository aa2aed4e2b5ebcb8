import Dispatch
import Hummingbird
import Logging
import Synchronization

/// A role's HTTP listener (Hummingbird, HTTP/1.1): `GET /metrics` answers the role's metrics in
/// Prometheus's text format; other paths are looked up in `routes` (the hook for extra pages);
/// anything else is 404, a method other than GET/HEAD 405.
///
/// It runs on its own threads (SwiftNIO's event loops and a detached task), never on the role's
/// event loop: a scrape reads the atomic counters and gauges the role updates, and takes no lock the
/// role's hot loop holds. `start` returns once the socket listens (or throws why it could not), so a
/// role can log the URL or exit with a clear error.
public final class MetricsServer: Sendable {
    /// The path of the metrics page.
    public static let metricsPath = "/metrics"
    /// Prometheus's text exposition format, version 0.0.4.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The role (for messages), the address bound and the port actually listened on.
    public let role: String
    public let bind: String
    public let port: Int
    /// Extra routes (see `HTTPRoutes`).
    public let routes: HTTPRoutes
    private let task: Task<Void, Never>
    private let ended: DispatchSemaphore

    /// The URL of the metrics page, as roles log it (`http://HOST:PORT/metrics`; IPv6 in brackets).
    public var url: String { "http://\(bind.contains(":") ? "[\(bind)]" : bind):\(port)\(Self.metricsPath)" }

    private init(role: String, bind: String, port: Int, routes: HTTPRoutes, task: Task<Void, Never>, ended: DispatchSemaphore) {
        self.role = role; self.bind = bind; self.port = port; self.routes = routes; self.task = task; self.ended = ended
    }

    /// Starts listening on `endpoint` and serving `metrics` (and `routes`). Blocks until the socket
    /// listens or binding failed. `role` names the process in errors (`coordinator`, `ps0`, `w1`).
    public static func start(_ endpoint: MetricsEndpoint, metrics: any MetricsExposing, routes: HTTPRoutes = HTTPRoutes(),
                             role: String, startTimeout: Double = 60) throws(MetricsServerError) -> MetricsServer {
        guard MetricsEndpoint.isValidPort(endpoint.port) else { throw .invalidPort(role: role, port: endpoint.port) }
        let outcome = StartOutcome()
        let ended = DispatchSemaphore(value: 0)
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in
                Self.respond(method: request.method, path: request.uri.path, metrics: metrics, routes: routes)
            },
            configuration: ApplicationConfiguration(address: .hostname(endpoint.bind, port: endpoint.port), serverName: nil),
            onServerRunning: { channel in outcome.listening(port: channel.localAddress?.port ?? endpoint.port) },
            // The library's own log lines (one per start, per connection error) stay out of the role's log.
            logger: Logger(label: "precis.metrics", factory: { _ in SwiftLogNoOpLogHandler() }))
        let task = Task(executorPreference: ListenerExecutor.shared) {
            do { try await app.run() } catch { outcome.failed(String(describing: error)) }
            outcome.failed("the listener stopped")
            ended.signal()
        }
        switch outcome.wait(seconds: startTimeout) {
        case .listening(let port)?:
            return MetricsServer(role: role, bind: endpoint.bind, port: port, routes: routes, task: task, ended: ended)
        case .failed(let reason)?:
            task.cancel()
            throw .cannotListen(role: role, bind: endpoint.bind, port: endpoint.port, reason: reason)
        case nil:
            task.cancel()
            throw .startTimedOut(role: role, bind: endpoint.bind, port: endpoint.port, seconds: startTimeout)
        }
    }

    /// Stops listening (waits up to `timeout` seconds for the listener to close).
    public func stop(timeout: Double = 10) {
        task.cancel()
        _ = ended.wait(timeout: .now() + timeout)
    }

    /// One request's answer: what `/metrics` or an extra route serves.
    static func respond(method: HTTPRequest.Method, path: String, metrics: any MetricsExposing, routes: HTTPRoutes) -> Response {
        let page: HTTPPage
        if method != .get && method != .head {
            page = HTTPPage(status: 405, contentType: "text/plain; charset=utf-8", text: "only GET and HEAD\n")
        } else if path == metricsPath {
            page = HTTPPage(contentType: metricsContentType, body: metrics.exposition())
        } else if let p = routes.page(for: path) {
            page = p
        } else {
            page = HTTPPage(status: 404, contentType: "text/plain; charset=utf-8", text: "not found: \(path) (try \(metricsPath))\n")
        }
        var headers = HTTPFields()
        headers[.contentType] = page.contentType
        headers[.cacheControl] = "no-store"   // live figures: never from a cache
        if page.status == 405 { headers[.allow] = "GET, HEAD" }
        let body = method == .head ? ByteBuffer() : ByteBuffer(bytes: page.body)
        if method == .head { headers[.contentLength] = String(page.body.count) }
        return Response(status: status(page.status), headers: headers, body: ResponseBody(byteBuffer: body))
    }

    /// A route's status code as HTTP's (with its reason phrase); a code that is not one is a 500.
    static func status(_ code: Int) -> HTTPResponse.Status {
        switch code {
        case 200: return .ok
        case 204: return .noContent
        case 304: return .notModified
        case 400: return .badRequest
        case 404: return .notFound
        case 405: return .methodNotAllowed
        case 503: return .serviceUnavailable
        case 100...599: return HTTPResponse.Status(code: code, reasonPhrase: "Status \(code)")
        default: return .internalServerError
        }
    }
}

/// How the listener's start ended, handed from its task to the thread waiting in `start`.
private final class StartOutcome: Sendable {
    enum State: Sendable, Equatable { case listening(Int), failed(String) }
    private let state = Mutex<State?>(nil)
    private let decided = DispatchSemaphore(value: 0)

    func listening(port: Int) { decide(.listening(port)) }
    func failed(_ reason: String) { decide(.failed(reason)) }

    /// The first outcome wins; later ones (the listener stopping after it started) are ignored.
    private func decide(_ s: State) {
        let first = state.withLock { current -> Bool in
            guard current == nil else { return false }
            current = s
            return true
        }
        if first { decided.signal() }
    }

    func wait(seconds: Double) -> State? {
        guard decided.wait(timeout: .now() + seconds) == .success else { return nil }
        return state.withLock { $0 }
    }
}

/// Where the listener's tasks run: a serial dispatch queue of their own, not Swift's cooperative
/// pool. `start` blocks its caller until the socket listens; a caller that is itself on a pool
/// thread (an async context, a test) must not be able to starve the very task it waits for.
final class ListenerExecutor: TaskExecutor {
    static let shared = ListenerExecutor()
    private let queue = DispatchQueue(label: "precis.metrics.listener")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
