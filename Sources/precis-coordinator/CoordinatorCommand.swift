import ArgumentParser
import PrecisCore
import PrecisCoordinator

@main
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "precis-coordinator",
        abstract: "The Precis coordinator: membership, data assignment, the training schedule, the end of the run.")

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

    func run() throws {
        Stdio.lineBufferStdout()
        var o = Coordinator.Options(config: config)
        o.bind = bind; o.endpointFile = endpointFile; o.outputDir = outputDir; o.maxSteps = maxSteps; o.progressLines = progressLines
        o.resume = resume; o.reshard = reshard
        let code: Int32
        do { code = try Coordinator(o).run() } catch {
            print("coordinator: error: \(error)")
            throw ExitCode(1)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
