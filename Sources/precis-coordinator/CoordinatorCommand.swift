import ArgumentParser
import Foundation
import PrecisCore
import PrecisCoordinator
import PrecisTrain
import PrecisWire

@main
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "precis-coordinator",
        abstract: "The Precis coordinator: membership, data assignment, the training schedule, checkpoints, evaluation, hub uploads.",
        version: PrecisVersion.string,
        subcommands: [Run.self, Evaluate.self, LivePageCommand.self], defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Coordinate a training run (the default).")

    @Option(help: "Training config (YAML with `training:` and `cluster:` sections).")
    var config: String
    @Option(help: "Endpoint to listen on (default: cluster.coordinator of the config; port * picks a free one).")
    var bind: String?
    @Option(name: .customLong("endpoint-file"), help: "Write the endpoint actually bound to this file once listening.")
    var endpointFile: String?
    @Option(name: .customLong("output-dir"), help: "Overrides training.output_dir.")
    var outputDir: String?
    @Option(name: .customLong("max-steps"), help: "Overrides training.max_steps.")
    var maxSteps: Int?
    @Flag(name: .customLong("progress-lines"), help: "Print one machine-readable @progress line per step.")
    var progressLines = false
    @Flag(help: "Resume from the latest valid checkpoint in output_dir if there is one (restarting a coordinator).")
    var resume = false
    @Flag(help: "When a parameter server is lost, spread its partitions over the others instead of waiting for a replacement.")
    var reshard = false
    @Option(help: "The cluster's keys folder (`precis keys generate`): CURVE authentication and encryption on every connection.")
    var keys: String?
    @Flag(help: "Listen on a non-loopback address without keys (anyone who reaches the port can join the cluster).")
    var insecure = false
    @Option(name: .customLong("metrics-port"), help: "Overrides cluster.metrics_port: serve Prometheus metrics at http://BIND:PORT/metrics (0: any free port, logged).")
    var metricsPort: Int?
    @Option(name: .customLong("metrics-bind"), help: "Overrides cluster.metrics_bind: the address the metrics listener binds.")
    var metricsBind: String?

    @Option(name: .customLong("log-format"), help: "Log lines as text (ISO-8601 UTC time, name, message) or json (one object per line).")
    var logFormat = "text"

    func validate() throws {
        do { _ = try LogFormat.parse(logFormat) } catch { throw ValidationError("\(error)") }
        if let p = metricsPort, !(0...65_535).contains(p) { throw ValidationError("--metrics-port \(p) is not a TCP port (0–65535; 0 picks a free one)") }
    }

    func run() throws {
        Stdio.lineBufferStdout()
        Logging.configure(format: (try? LogFormat.parse(logFormat)) ?? .text, role: "coordinator")
        var o = Coordinator.Options(config: config)
        o.bind = bind; o.endpointFile = endpointFile; o.outputDir = outputDir; o.maxSteps = maxSteps; o.progressLines = progressLines
        o.resume = resume; o.reshard = reshard; o.insecure = insecure
        o.metricsPort = metricsPort; o.metricsBind = metricsBind
        let code: Int32
        do {
            o.keys = try keys.map { try ClusterKeys.load(dir: $0, role: .coordinator) }
            code = try Coordinator(o).run()
        } catch {
            print(Logging.format == .json ? Logging.line("coordinator", "error: \(error)") : "coordinator: error: \(error)")
            throw ExitCode(1)
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a saved checkpoint: loss, ROUGE and predictions, written beside it in eval-<split>/.",
        discussion: "On the running cluster's workers when its coordinator answers (--coordinator, or the config's fixed cluster.coordinator address); otherwise in this process.")

    @Option(help: "A checkpoint or model folder (config.json, model.safetensors, tokenizer.json).")
    var checkpoint: String
    @Option(help: "SAMSum split to evaluate on (data/samsum/<split>.jsonl).")
    var split = "test"
    @Option(help: "A dataset file instead of a SAMSum split.")
    var data: String?
    @Option(help: "Training config: evaluation settings (generation_max_length, generation_num_beams, batch size, lengths) and the coordinator's address.")
    var config: String?
    @Option(help: "A running coordinator to evaluate on (tcp://HOST:PORT).")
    var coordinator: String?
    @Option(name: .customLong("max-samples"), help: "Evaluate the first N examples only.")
    var maxSamples: Int?
    @Flag(help: "Evaluate in this process even when a cluster is up.")
    var local = false
    @Option(help: "The cluster's keys folder: the request goes over CURVE with the operator key.")
    var keys: String?

    func validate() throws {
        if let why = CheckpointEvaluation.invalid(maxSamples: maxSamples) { throw ValidationError(why) }
    }

    func run() throws {
        Stdio.lineBufferStdout()
        do {
            let cfg = try config.map { try TrainingConfig.load($0) } ?? TrainingConfig()
            let file = data ?? "data/samsum/\(split).jsonl"
            guard FileManager.default.fileExists(atPath: file) else { throw ValidationError("\(file) does not exist (run `make data`)") }
            let endpoint = coordinator ?? (config != nil && !cfg.cluster.coordinator.hasSuffix(":*") ? cfg.cluster.coordinator : nil)
            if !local, let endpoint {
                let abs = URL(fileURLWithPath: checkpoint).standardizedFileURL.path
                let absData = URL(fileURLWithPath: file).standardizedFileURL.path
                if let reply = try CheckpointEvaluation.onCluster(endpoint: endpoint, request: EvaluateRequest(checkpoint: abs, dataFile: absData,
                                                                                                               maxSamples: maxSamples),
                                                                  timeoutSeconds: 6 * 3600,
                                                                  keys: try keys.map { try ClusterKeys.load(dir: $0, role: .operator) }) {
                    if let e = reply.error { throw ValidationError("the cluster could not evaluate: \(e)") }
                    print("evaluated \(checkpoint) on \(file) on the cluster at \(endpoint):")
                    for (k, v) in reply.metrics.sorted(by: { $0.key < $1.key }) { print(String(format: "  %@ %.4f", k, v)) }
                    print("written to \(reply.outputDir ?? "")")
                    return
                }
                print("no coordinator answers at \(endpoint): evaluating here")
            }
            Compute.setThreads(Compute.availableCores)
            let (report, out) = try CheckpointEvaluation.local(checkpoint: checkpoint, dataFile: file, config: cfg, maxSamples: maxSamples)
            print("evaluated \(checkpoint) on \(file) (\(report.samples) examples, in this process):")
            for (k, v) in report.metrics.sorted(by: { $0.key < $1.key }) { print(String(format: "  %@ %.4f", k, v)) }
            print("written to \(out)")
        } catch {
            // A ValidationError thrown while running is about an input (a missing data file), not the
            // command line: an error line and status 1, not ArgumentParser's usage text and status 64.
            print("precis-coordinator evaluate: error: \(error)")
            throw ExitCode(1)
        }
    }
}

struct LivePageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live-page",
        abstract: "Write the live page (index.html: self-contained, reads status.json beside it) to a folder, with a recorded status if given.",
        discussion: "Record a status with `precis cluster status --json --history > status.json`; serve the folder with any static HTTP server.")

    @Option(name: [.customLong("output-dir"), .customLong("out")], help: "The folder to write index.html to (created if missing).")
    var out: String
    @Option(help: "A status JSON to copy beside it as status.json.")
    var status: String?

    func run() throws {
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try AtomicFile.write(Data(LivePage.html.utf8), to: (out as NSString).appendingPathComponent("index.html"))
            if let status {
                let data: Data
                do { data = try SmallFile.read(status, limit: 64 << 20) } catch {
                    throw LivePageError(description: "\(status): \(error)")
                }
                do { _ = try JSONDecoder.statusDecoder.decode(StatusReport.self, from: data) } catch {
                    throw LivePageError(description: "\(status) is not a status reply: \(error)")
                }
                try AtomicFile.write(data, to: (out as NSString).appendingPathComponent("status.json"))
            }
            print("wrote \(out)/index.html" + (status != nil ? " and status.json" : ""))
        } catch {
            print("precis-coordinator live-page: error: \(error)")
            throw ExitCode(1)
        }
    }
}

struct LivePageError: Error, CustomStringConvertible { let description: String }
