/// Why a role's metrics listener could not start.
public enum MetricsServerError: Error, Equatable, CustomStringConvertible {
    /// The port is not 0…65535.
    case invalidPort(role: String, port: Int)
    /// Binding or listening failed (the port is in use, the address is not this host's, …).
    case cannotListen(role: String, bind: String, port: Int, reason: String)
    /// The listener neither started nor failed within the time allowed.
    case startTimedOut(role: String, bind: String, port: Int, seconds: Double)

    public var description: String {
        switch self {
        case .invalidPort(let role, let port):
            return "metrics port \(port) of \(role) is not a TCP port (0–65535, 0 picks a free one)"
        case .cannotListen(let role, let bind, let port, let reason):
            return "cannot serve the metrics of \(role) on \(bind):\(port): \(reason)"
        case .startTimedOut(let role, let bind, let port, let seconds):
            return "the metrics listener of \(role) on \(bind):\(port) did not start within \(Int(seconds)) s"
        }
    }
}
