import ArgumentParser
import Foundation
import PrecisWire

/// `precis keys generate`: a cluster's CurveZMQ key pairs.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "CurveZMQ keys for a cluster on a network.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate",
            abstract: "Write a cluster's key pairs: coordinator, server (shared by every server), worker (shared by every worker), operator (the CLI).",
            discussion: """
                DIR gets ROLE.key_secret (mode 0600, that role's secret: give each host only the secrets of the roles it runs), \
                ROLE.key (public) and authorized_keys (the public keys the coordinator and the servers admit, with their roles). \
                Start each role with --keys DIR. Existing files are never overwritten: to rotate, generate into a new folder.
                """)

        @Option(name: .customLong("output-dir"), help: "The folder to write the keys into (created mode 0700 when missing).")
        var outputDir: String?
        @Option(name: .customLong("out"), help: .hidden)
        var legacyOut: String?

        func validate() throws { _ = try OutputDir.resolve(outputDir, legacy: legacyOut, required: true) }

        func run() throws {
            let out = try OutputDir.resolve(outputDir, legacy: legacyOut, required: true)!
            do {
                let files = try ClusterKeys.generate(into: out)
                print("wrote \(files.count) files to \(out):")
                for f in files { print("  \(f)") }
            } catch { throw fail(error) }
        }
    }
}
