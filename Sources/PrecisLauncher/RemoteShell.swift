import Foundation

/// How this machine runs a shell script on another host: `ssh DEST SCRIPT`. The ssh command is
/// `ssh -o BatchMode=yes -o ConnectTimeout=10` unless `$PRECIS_SSH` replaces it (words split on
/// spaces), e.g. with a stand-in that runs the script in a network namespace.
public struct RemoteShell: Sendable, Equatable {
    public static let defaultCommand = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]

    /// The command and options before the destination.
    public let command: [String]

    public init(command: [String]) {
        self.command = command
    }

    /// From `PRECIS_SSH` in `environment` (this process's by default).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let words = environment["PRECIS_SSH"].map { $0.split(separator: " ").map(String.init) } ?? []
        command = words.isEmpty ? Self.defaultCommand : words
    }

    /// The command line that runs `script` with the remote shell on `destination` (one argument).
    public func argv(_ destination: String, _ script: String) -> [String] {
        command + [destination, script]
    }

    /// Runs `script` on `destination` and waits for it (not for what it starts in the background).
    public func run(_ destination: String, _ script: String, input: [UInt8]? = nil) -> CommandResult {
        runCommand(argv(destination, script), input: input)
    }
}
