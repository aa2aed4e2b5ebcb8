import ArgumentParser
import PrecisCore
import PrecisObservability
import PrecisServer
import PrecisWire

@main
struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "precis-ps",
        abstract: "A Precis parameter server: owns partitions of the flat parameter buffer and their AdamW state.",
        version: PrecisVersion.string)

    @Option(help: "The coordinator's endpoint (tcp://HOST:PORT).")
    var coordinator: String
    @Option(help: "The address this server binds and is reached at.")
    var host = "127.0.0.1"
    @Option(help: "A name for logs and status.")
    var name = "ps"
    @Option(help: "Threads for the optimizer.")
    var threads = 1
    @Option(help: "The cluster's keys folder (`precis keys generate`): CURVE authentication and encryption on every connection.")
    var keys: String?
    @Flag(help: "Listen on a non-loopback address without keys (anyone who reaches the port can join the cluster).")
    var insecure = false
    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics at http://BIND:PORT/metrics (0: any free port, logged; default: no listener).")
    var metricsPort: Int?
    @Option(name: .customLong("metrics-bind"), help: "The address the metrics listener binds.")
    var metricsBind = "127.0.0.1"

    @Option(name: .customLong("connect-timeout"), help: "Seconds to keep trying to register with the coordinator (not started yet, or refusing for now) before exiting 1.")
    var connectTimeout: Double = 120

    @Option(name: .customLong("log-format"), help: "Log lines as text (ISO-8601 UTC time, name, message) or json (one object per line).")
    var logFormat = "text"

    func validate() throws {
        do { _ = try LogFormat.parse(logFormat) } catch { throw ValidationError("\(error)") }
        guard connectTimeout.isFinite, connectTimeout > 0, connectTimeout <= 86_400 else {
            throw ValidationError("--connect-timeout \(connectTimeout) is not a number of seconds in (0, 86400]")
        }
        if let p = metricsPort, !(0...65_535).contains(p) { throw ValidationError("--metrics-port \(p) is not a TCP port (0–65535; 0 picks a free one)") }
    }

    func run() throws {
        Stdio.lineBufferStdout()
        Logging.configure(format: (try? LogFormat.parse(logFormat)) ?? .text, role: "server")
        var o = ParameterServer.Options(coordinator: coordinator)
        o.host = host; o.name = name; o.threads = max(1, threads); o.insecure = insecure
        o.connectTimeout = connectTimeout
        o.metrics = metricsPort.map { MetricsEndpoint(bind: metricsBind, port: $0) }
        let code: Int32
        do {
            o.keys = try keys.map { try ClusterKeys.load(dir: $0, role: .server) }
            code = try ParameterServer(o).run()
        } catch {
            print(Logging.format == .json ? Logging.line(name, "error: \(error)") : "\(name): error: \(error)")
            throw ExitCode(1)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
