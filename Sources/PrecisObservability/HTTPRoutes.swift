import Synchronization

/// A page the metrics listener serves: a content type and a body (and a status, 200 unless set).
public struct HTTPPage: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int = 200, contentType: String, body: [UInt8]) {
        self.status = status; self.contentType = contentType; self.body = body
    }

    public init(status: Int = 200, contentType: String, text: String) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8))
    }
}

/// The extra routes of a role's metrics listener: exact paths (`/`, `/status.json`) answered by
/// `@Sendable` closures, called on the listener's threads for every `GET` (and `HEAD`) of their
/// path. This is the hook for pages beside `/metrics` (the coordinator's live page and status
/// JSON): a closure must not touch the role's event-loop state directly, only something made for
/// other threads (a `Mutex`-guarded snapshot the loop refreshes, an atomic).
///
/// Routes may be added or replaced before or after the listener starts. `/metrics` itself is the
/// listener's and cannot be replaced here.
public final class HTTPRoutes: Sendable {
    public typealias Source = @Sendable () -> HTTPPage

    private let table = Mutex<[String: Source]>([:])

    public init() {}

    /// Serves `path` (exact, starting with `/`) from `source`. `/metrics` is refused (returns false).
    @discardableResult
    public func set(_ path: String, _ source: @escaping Source) -> Bool {
        guard path.hasPrefix("/"), path != MetricsServer.metricsPath else { return false }
        table.withLock { $0[path] = source }
        return true
    }

    /// Stops serving `path`.
    public func remove(_ path: String) { _ = table.withLock { $0.removeValue(forKey: path) } }

    /// The paths served, sorted.
    public var paths: [String] { table.withLock { $0.keys.sorted() } }

    /// The page for `path` (nil: not served). The closure runs outside the lock.
    func page(for path: String) -> HTTPPage? {
        guard let source = table.withLock({ $0[path] }) else { return nil }
        return source()
    }
}
