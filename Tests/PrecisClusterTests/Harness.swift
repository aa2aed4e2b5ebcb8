import Foundation
import PrecisCore
import PrecisTrain
import Synchronization
import Testing
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Starts real coordinator, server and worker processes (the executables beside the test binary)
/// over TCP loopback, with their output in files, and cleans them up.
final class TestCluster {
    static var binDir: String {
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            if FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("precis-coordinator").path) { return dir.path }
            dir = dir.deletingLastPathComponent()
        }
        return TestData.repo.appendingPathComponent(".build/release").path
    }

    /// A tiny BART config (dropout off, so micro-batch boundaries do not change the result).
    static func tinyModel(in dir: String, dropout: Double = 0) throws -> String {
        var text = try String(contentsOf: TestData.repo.appendingPathComponent("configs/bart-tiny.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"dropout\": 0.1", with: "\"dropout\": \(dropout)")
        let path = dir + "/tiny.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A training config for the tests: absolute paths, so the processes' working folder does not matter.
    /// `extraTraining` / `extraCluster` lines (`key: value`) replace the defaults of the same key or
    /// add to them: a config may not name a key twice.
    static func config(dir: String, model: String, batch: Int, steps: Int, servers: Int, workers: Int,
                       consistency: String = "sync", maxGradNorm: Double = 0.5,
                       extraTraining: String = "", extraCluster: String = "") throws -> String {
        let training = [
            "output_dir: \(dir)/out", "model: \(model)", "tokenizer: \(TestData.repo.path)/Tests/Fixtures/tokenizer/samsum-bpe-8192.json",
            "train_file: \(try TestData.samsum("validation"))", "validation_file: \(try TestData.samsum("validation"))", "max_train_samples: 96",
            "max_source_length: 96", "max_target_length: 32", "per_device_train_batch_size: \(batch)", "learning_rate: 2.0e-3",
            "weight_decay: 0.01", "warmup_steps: 3", "max_grad_norm: \(maxGradNorm)", "label_smoothing_factor: 0.1",
            "max_steps: \(steps)", "logging_steps: 1", "seed: 11",
        ]
        let cluster = [
            "coordinator: tcp://127.0.0.1:*", "servers: \(servers)", "workers: \(workers)", "consistency: \(consistency)",
            "partition_bytes: 200000", "heartbeat_interval: 0.2", "heartbeat_timeout: 3.0", "start_timeout: 30",
        ]
        func merged(_ base: [String], _ extra: String) -> String {
            func key(_ line: String) -> String { String(line.prefix { $0 != ":" }).trimmingCharacters(in: .whitespaces) }
            var lines = base
            for line in extra.split(separator: "\n").map(String.init) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                let l = line.trimmingCharacters(in: .whitespaces)
                if let i = lines.firstIndex(where: { key($0) == key(l) }) { lines[i] = l } else { lines.append(l) }
            }
            return lines.map { "  " + $0 }.joined(separator: "\n")
        }
        let yaml = "training:\n" + merged(training, extraTraining) + "\ncluster:\n" + merged(cluster, extraCluster) + "\n"
        let path = dir + "/config.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    let dir: String
    let config: String
    private(set) var processes: [String: Process] = [:]
    private(set) var endpoint = ""
    /// A keys folder (`precis keys generate`): every role is started with `--keys` (CURVE).
    let keys: String?
    /// Extra environment variables for the processes started from now on.
    var environment: [String: String] = [:]
    /// Extra command-line arguments for the workers started from now on, by name.
    var workerArguments: [String: [String]] = [:]

    init(dir: String, config: String, keys: String? = nil) {
        self.dir = dir; self.config = config; self.keys = keys
    }

    var keyArguments: [String] { keys.map { ["--keys", $0] } ?? [] }

    deinit { stopAll() }

    func logPath(_ name: String) -> String { dir + "/\(name).log" }
    func log(_ name: String) -> String { (try? String(contentsOfFile: logPath(name), encoding: .utf8)) ?? "" }

    @discardableResult
    func start(_ exe: String, _ name: String, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binDir + "/" + exe)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        _ = FileManager.default.createFile(atPath: logPath(name), contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(name)))
        p.standardOutput = h; p.standardError = h
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        p.environment = env.merging(environment) { $1 }
        try p.run()
        processes[name] = p
        return p
    }

    /// Starts the coordinator and waits until it listens.
    func startCoordinator() throws {
        let ep = dir + "/coordinator.endpoint"
        try? FileManager.default.removeItem(atPath: ep)
        try start("precis-coordinator", "coordinator", ["--config", config, "--endpoint-file", ep] + keyArguments)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let s = try? String(contentsOfFile: ep, encoding: .utf8), !s.isEmpty {
                endpoint = s.trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            if processes["coordinator"]?.isRunning == false { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("the coordinator did not start listening:\n\(log("coordinator"))")
    }

    func setEndpoint(_ e: String) { endpoint = e }

    func startServer(_ name: String) throws { try start("precis-ps", name, ["--coordinator", endpoint, "--name", name] + keyArguments) }
    func startWorker(_ name: String, threads: Int = 1) throws {
        try start("precis-worker", name, ["--coordinator", endpoint, "--name", name, "--threads", String(threads)] + keyArguments
                  + (workerArguments[name] ?? []))
    }

    /// A whole cluster: coordinator, `servers` servers, `workers` workers.
    static func up(dir: String, config: String, servers: Int, workers: Int, workerThreads: Int = 1, keys: String? = nil) throws -> TestCluster {
        let c = TestCluster(dir: dir, config: config, keys: keys)
        try c.startCoordinator()
        for i in 0..<servers { try c.startServer("ps\(i)") }
        for i in 0..<workers { try c.startWorker("w\(i)", threads: workerThreads) }
        return c
    }

    /// Waits for a process to exit; nil on timeout.
    func wait(_ name: String, timeout: Double = 120) -> Int32? {
        guard let p = processes[name] else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return p.isRunning ? nil : p.terminationStatus
    }

    /// Waits until `name`'s log contains `text`.
    func waitForLog(_ name: String, _ text: String, timeout: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log(name).contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// The coordinator's latest reported step.
    func coordinatorStep() -> Int {
        let lines = log("coordinator").split(separator: "\n").filter { $0.contains("coordinator: step ") }
        guard let last = lines.last, let r = last.range(of: "step ") else { return 0 }
        return Int(last[r.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    func waitForStep(_ s: Int, timeout: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if coordinatorStep() >= s { return true }
            if processes["coordinator"]?.isRunning == false { return false }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    func signal(_ name: String, _ sig: Int32) {
        if let p = processes[name], p.isRunning { kill(p.processIdentifier, sig) }
    }

    func stopAll() {
        for (_, p) in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for (_, p) in processes { p.waitUntilExit() }
    }

    /// Every log, for failure messages.
    func allLogs() -> String {
        processes.keys.sorted().map { "--- \($0)\n" + log($0).split(separator: "\n").suffix(25).joined(separator: "\n") }.joined(separator: "\n")
    }
}

/// Loopback TCP ports for runs whose coordinator binds a fixed address (to come back at it after
/// kill -9, or to be found by members started before it). They are taken from below the kernel's
/// ephemeral range (`ip_local_port_range`), where neither bind(0) nor connect() ever picks a port:
/// a port merely found free by binding 0 and closing could be handed to another test's socket
/// before the coordinator binds it. Each port is checked free now by binding it; successive calls
/// in one process walk the range from a start set by the pid, so two test processes rarely meet.
enum FixedPorts {
    private static let next = Mutex<Int>(Int(getpid()) &* 7919)

    static func take() throws -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let ephemeralStart = Int(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first ?? "") ?? 32768
        let low = 10_000, high = min(ephemeralStart, 65_536)
        guard high - low >= 1_000 else { throw HarnessError("ephemeral ports start at \(ephemeralStart): no room below them for fixed ports") }
        for _ in 0..<200 {
            let port = low + next.withLock { n in n &+= 1; return (n & Int.max) % (high - low) }
            if canBind(port) { return port }
        }
        throw HarnessError("no free loopback port in \(low)..<\(high) after 200 tries")
    }

    /// Whether a TCP socket can bind 127.0.0.1:port now (closed again at once; SO_REUSEADDR as
    /// ZeroMQ sets it, so a port left in TIME_WAIT counts as free, as it is for the coordinator).
    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        return withLoopbackAddress(port: UInt16(port)) { bind(fd, $0, $1) == 0 }
    }
}

/// Calls `body` with 127.0.0.1:`port` as the address and length that bind(2) and connect(2) take.
func withLoopbackAddress<T>(port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = port.bigEndian
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

/// The parameters of a saved model folder, by name.
func loadParameters(_ folder: String) throws -> [String: [Float]] {
    let f = try SafeTensorsFile(path: folder + "/model.safetensors")
    var out: [String: [Float]] = [:]
    for n in f.names { out[n] = try f.floats(n) }
    return out
}

/// A disturbed run's model (`dir/out`) against the same config run again undisturbed: the model is
/// moved to `dir/out-<tag>`, the config trained once more (`servers` × `workers`, no keys), and
/// every parameter of the two must be bitwise equal (sync training does not depend on who computed
/// what, or how often a step was repeated).
func expectBitwiseEqualToUndisturbedRun(dir: String, config: String, servers: Int, workers: Int, tag: String,
                                        timeout: Double = 120, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let disturbed = try loadParameters(dir + "/out")
    try FileManager.default.moveItem(atPath: dir + "/out", toPath: dir + "/out-" + tag)
    let plain = try TestCluster.up(dir: dir, config: config, servers: servers, workers: workers)
    #expect(plain.wait("coordinator", timeout: timeout) == 0, "\(plain.allLogs())", sourceLocation: sourceLocation)
    let undisturbed = try loadParameters(dir + "/out")
    #expect(disturbed.keys.sorted() == undisturbed.keys.sorted(), sourceLocation: sourceLocation)
    for (name, v) in undisturbed {
        #expect(disturbed[name]?.map(\.bitPattern) == v.map(\.bitPattern), "\(name) differs from the undisturbed run's",
                sourceLocation: sourceLocation)
    }
}

/// Relative L2 difference of two parameter sets: over everything, and the worst single tensor
/// (leaving out the attention key biases, whose true gradient is exactly zero: softmax ignores a
/// constant shift, so what they hold is rounding noise that AdamW scales up; they are bounded in
/// absolute terms instead).
func compareParameters(_ a: [String: [Float]], _ b: [String: [Float]]) -> (global: Double, worst: Double, worstName: String, keyBias: Double) {
    var num = 0.0, den = 0.0, worst = 0.0, worstName = "", keyBias = 0.0
    for (name, x) in a {
        guard let y = b[name] else { continue }
        guard y.count == x.count else { return (.infinity, .infinity, name, .infinity) }
        var n = 0.0, d = 0.0, m = 0.0
        for i in 0..<x.count {
            let e = Double(x[i]) - Double(y[i])
            n += e * e; d += Double(y[i]) * Double(y[i]); m = max(m, abs(e))
        }
        num += n; den += d
        if name.hasSuffix("k_proj.bias") { keyBias = max(keyBias, m); continue }
        let rel = d > 0 ? (n / d).squareRoot() : n.squareRoot()
        if rel > worst { worst = rel; worstName = name }
    }
    return ((num / max(den, 1e-30)).squareRoot(), worst, worstName, keyBias)
}

/// The single-process reference: `precis train --in-process` on the same config with one batch of
/// `batch` per step, one thread. A process of its own, not LocalTrainer in this one: the executables
/// pick OpenBLAS's kernels for this CPU before the library loads (`BLASKernel`), which the test
/// process cannot, and the reference must multiply with the kernels the workers use (on a CPU that
/// OpenBLAS does not know, the test process's generic kernels round differently).
func referenceRun(config: String, batch: Int, outputDir: String) throws -> [String: [Float]] {
    let (status, output) = try RealProcesses.ClusterCommandTests.precis(
        ["train", "--config", config, "--in-process", "--threads", "1", "--output-dir", outputDir,
         "--set", "per_device_train_batch_size=\(batch)"],
        in: URL(fileURLWithPath: outputDir).deletingLastPathComponent().path)
    guard status == 0 else { throw ReferenceRunFailed(status: status, log: String(output.suffix(4000))) }
    return try loadParameters(outputDir)
}

struct ReferenceRunFailed: Error, CustomStringConvertible {
    var status: Int32
    var log: String
    var description: String { "precis train --in-process (the reference) exited \(status):\n\(log)" }
}
