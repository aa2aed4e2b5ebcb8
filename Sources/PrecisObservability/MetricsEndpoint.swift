/// Where a role serves its metrics: an address to bind (an IP address or host name; loopback by
/// default) and a TCP port (0: the system picks a free one, which the role logs).
public struct MetricsEndpoint: Sendable, Equatable {
    public static let defaultBind = "127.0.0.1"

    public var bind: String
    public var port: Int

    public init(bind: String = MetricsEndpoint.defaultBind, port: Int) {
        self.bind = bind; self.port = port
    }

    /// Whether `port` can be asked for: 0 (any free port) through 65535.
    public static func isValidPort(_ port: Int) -> Bool { (0...65_535).contains(port) }
}
