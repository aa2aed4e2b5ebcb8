import Foundation
import PrecisCore
import PrecisTrain

/// Runs a whole cluster on this host: the coordinator, `cluster.servers` parameter servers and
/// `cluster.workers` workers as separate processes over TCP loopback. The coordinator's output comes
/// through this process (its `@progress` lines drive the progress bar); the others log to
/// `output_dir/logs/<name>.log`.
struct LocalCluster {
    let config: TrainingConfig
    let configPath: String
    let outputDir: String
    let maxSteps: Int?
    let threads: Int?

    /// The role executables sit beside this one.
    static func sibling(_ name: String) -> String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent(name).path
    }

    final class Children: @unchecked Sendable {
        // @unchecked: `list` is only touched under `lock`.
        private let lock = NSLock()
        private var list: [Process] = []
        func add(_ p: Process) { lock.lock(); list.append(p); lock.unlock() }
        func all() -> [Process] { lock.lock(); defer { lock.unlock() }; return list }
        func terminate() { for p in all() where p.isRunning { p.terminate() } }
    }

    /// Starts everything, relays the coordinator's output and returns its exit status.
    func run(onLine: (String) -> Void) throws -> Int32 {
        let logs = (outputDir as NSString).appendingPathComponent("logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let endpointFile = (logs as NSString).appendingPathComponent("coordinator.endpoint")
        try? FileManager.default.removeItem(atPath: endpointFile)
        let children = Children()

        let coordinator = Process()
        coordinator.executableURL = URL(fileURLWithPath: Self.sibling("precis-coordinator"))
        var args = ["--config", configPath, "--bind", "tcp://127.0.0.1:*", "--endpoint-file", endpointFile,
                    "--output-dir", outputDir, "--progress-lines"]
        if let maxSteps { args += ["--max-steps", String(maxSteps)] }
        coordinator.arguments = args
        let pipe = Pipe()
        coordinator.standardOutput = pipe
        coordinator.standardError = pipe
        try coordinator.run()
        children.add(coordinator)
        defer { children.terminate() }

        // Wait for the coordinator to listen (it loads and tokenizes the data first).
        var endpoint = ""
        let deadline = Date().addingTimeInterval(600)
        while endpoint.isEmpty {
            if let s = try? String(contentsOfFile: endpointFile, encoding: .utf8) { endpoint = s.trimmingCharacters(in: .whitespacesAndNewlines) }
            if !coordinator.isRunning {
                coordinator.waitUntilExit()
                relay(pipe.fileHandleForReading, onLine)
                return coordinator.terminationStatus
            }
            if Date() > deadline { throw ValidationErrorText("the coordinator did not start listening within 600 s") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let c = config.cluster
        let workerThreads = max(1, threads ?? c.threadsPerWorker ?? max(1, Compute.availableCores / c.workers))
        func start(_ exe: String, _ name: String, _ extra: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.sibling(exe))
            p.arguments = ["--coordinator", endpoint, "--name", name] + extra
            let log = (logs as NSString).appendingPathComponent("\(name).log")
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            p.standardOutput = h
            p.standardError = h
            try p.run()
            children.add(p)
        }
        for i in 0..<c.servers { try start("precis-ps", "ps\(i)", ["--threads", "1"]) }
        for i in 0..<c.workers { try start("precis-worker", "w\(i)", ["--threads", String(workerThreads)]) }
        onLine("cluster on this host: coordinator \(endpoint), \(c.servers) server(s), \(c.workers) worker(s) × \(workerThreads) thread(s); logs in \(logs)")

        relay(pipe.fileHandleForReading, onLine)
        coordinator.waitUntilExit()
        // Members exit when the coordinator tells them to; give them a moment, then make sure.
        let until = Date().addingTimeInterval(10)
        while children.all().contains(where: \.isRunning) && Date() < until { Thread.sleep(forTimeInterval: 0.05) }
        return coordinator.terminationStatus
    }
}

/// Hands each line read from `reader` to `onLine` until end of file.
func relay(_ reader: FileHandle, _ onLine: (String) -> Void) {
    var buffer = Data()
    while true {
        let chunk = reader.availableData
        if chunk.isEmpty { break }
        buffer.append(chunk)
        while let nl = buffer.firstIndex(of: 0x0A) {
            onLine(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
            buffer.removeSubrange(buffer.startIndex...nl)
        }
    }
    if !buffer.isEmpty { onLine(String(decoding: buffer, as: UTF8.self)) }
}

struct ValidationErrorText: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}
