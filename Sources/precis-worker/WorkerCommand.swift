import ArgumentParser
import PrecisCore
import PrecisObservability
import PrecisWorker
import PrecisWire

@main
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "precis-worker",
        abstract: "A Precis worker: pulls parameters, computes gradients on its share of each step, pushes them.",
        version: PrecisVersion.string)

    @Option(help: "The coordinator's endpoint (tcp://HOST:PORT).")
    var coordinator: String
    @Option(help: "This host's address (for logs and status).")
    var host = "127.0.0.1"
    @Option(help: "A name for logs and status.")
    var name = "worker"
    @Option(help: "Compute threads (default: the cores available).")
    var threads: Int?
    @Option(help: "The cluster's keys folder (`precis keys generate`): CURVE authentication and encryption on every connection.")
    var keys: String?
    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics at http://BIND:PORT/metrics (0: any free port, logged; default: no listener).")
    var metricsPort: Int?
    @Option(name: .customLong("metrics-bind"), help: "The address the metrics listener binds.")
    var metricsBind = "127.0.0.1"

    @Option(name: .customLong("dump-parameters"), help: "For checks: at exit, write this worker's parameter copy (with its partitions' versions and the last bf16-delta it added) to this safetensors file.")
    var dumpParameters: String?
    @Option(name: .customLong("connect-timeout"), help: "Seconds to keep trying to register with the coordinator (not started yet) before exiting 1.")
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
        Logging.configure(format: (try? LogFormat.parse(logFormat)) ?? .text, role: "worker")
        BLASKernel.selectBLASKernel()
        var o = Worker.Options(coordinator: coordinator)
        o.host = host; o.name = name; o.threads = max(1, threads ?? Compute.availableCores)
        o.dumpParameters = dumpParameters
        o.metrics = metricsPort.map { MetricsEndpoint(bind: metricsBind, port: $0) }
        o.connectTimeout = connectTimeout
        let code: Int32
        do {
            o.keys = try keys.map { try ClusterKeys.load(dir: $0, role: .worker) }
            code = try Worker(o).run()
        } catch {
            print(Logging.format == .json ? Logging.line(name, "error: \(error)") : "\(name): error: \(error)")
            throw ExitCode(1)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
