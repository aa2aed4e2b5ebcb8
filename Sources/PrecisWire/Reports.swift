import Foundation

// What the coordinator tells its readers about a run — `precis cluster status`, `precis train`'s
// progress bar, `precis bench cluster` — as Codable values: the coordinator encodes them, every
// reader decodes the same type. Keys are snake_case on the wire (explicit `CodingKeys`), and a
// reader ignores keys it does not know, so a field can be added without a protocol version change.

/// The phase a run is in (the coordinator's state machine).
public enum RunPhase: String, Codable, Sendable, CaseIterable {
    /// Waiting for the planned servers and workers.
    case waiting
    /// Servers have their partitions; initial values are on their way.
    case initializing
    case training
    /// A server was lost: no step opens until one replaces it (or the survivors take its partitions).
    case recovering
    /// The last step is done: final pull, save, hub push.
    case finishing
}

/// `statusReply` (coordinator → client): the coordinator's view of the cluster.
public struct StatusReport: Codable, Sendable, Equatable {
    /// One server or worker as the coordinator knows it.
    public struct MemberStatus: Codable, Sendable, Equatable {
        public var name: String
        public var host: String
        public var pid: Int32
        public var alive: Bool
        /// Contributions (sync) or tasks (ssp/async) this worker reported; 0 for servers.
        public var contributions: Int
        /// A server's data endpoint; "" for workers.
        public var endpoint: String
        public var secondsSinceHeartbeat: Double

        public init(name: String, host: String, pid: Int32, alive: Bool, contributions: Int, endpoint: String, secondsSinceHeartbeat: Double) {
            self.name = name; self.host = host; self.pid = pid; self.alive = alive; self.contributions = contributions
            self.endpoint = endpoint; self.secondsSinceHeartbeat = secondsSinceHeartbeat
        }

        enum CodingKeys: String, CodingKey {
            case name, host, pid, alive, contributions, endpoint
            case secondsSinceHeartbeat = "seconds_since_heartbeat"
        }
    }

    public var state: RunPhase
    /// Steps done (sync: the global step; ssp/async: tasks completed).
    public var step: Int
    public var maxSteps: Int
    /// The membership epoch (grows on every join and loss).
    public var epoch: UInt32
    public var consistency: String
    /// The coordinator's bound endpoint.
    public var endpoint: String
    public var servers: [MemberStatus]
    public var workers: [MemberStatus]

    public init(state: RunPhase, step: Int, maxSteps: Int, epoch: UInt32, consistency: String, endpoint: String,
                servers: [MemberStatus], workers: [MemberStatus]) {
        self.state = state; self.step = step; self.maxSteps = maxSteps; self.epoch = epoch; self.consistency = consistency
        self.endpoint = endpoint; self.servers = servers; self.workers = workers
    }

    enum CodingKeys: String, CodingKey {
        case state, step, epoch, consistency, endpoint, servers, workers
        case maxSteps = "max_steps"
    }
}

/// One `@progress {json}` line per step (`Coordinator.Options.progressLines`), read by `precis train`'s
/// progress bar and `precis bench cluster`.
public struct ProgressReport: Codable, Sendable, Equatable {
    public var step: Int
    public var total: Int
    public var epoch: Double
    /// The last contribution's mean token loss.
    public var loss: Double
    public var learningRate: Double
    public var examplesPerSecond: Double
    /// Seconds since training started.
    public var elapsed: Double
    public var eta: Double
    public var workers: Int

    public init(step: Int, total: Int, epoch: Double, loss: Double, learningRate: Double, examplesPerSecond: Double,
                elapsed: Double, eta: Double, workers: Int) {
        self.step = step; self.total = total; self.epoch = epoch; self.loss = loss; self.learningRate = learningRate
        self.examplesPerSecond = examplesPerSecond; self.elapsed = elapsed; self.eta = eta; self.workers = workers
    }

    enum CodingKeys: String, CodingKey {
        case step, total, epoch, loss, elapsed, eta, workers
        case learningRate = "lr"
        case examplesPerSecond = "examples_per_second"
    }
}

/// What a finished run cost, per timed step (the first two steps — start-up — are left out): printed
/// as the coordinator's `summary:` log line for people and as one `@summary {json}` line for programs
/// (`precis bench cluster`).
public struct RunSummary: Codable, Sendable, Equatable {
    public var stepsTimed: Int
    /// Wall time per step, from the end of the last warm-up step to the end of the last step.
    public var secondsPerStep: Double
    /// The slowest contribution's forward + backward.
    public var computeSecondsPerStep: Double
    /// That worker's wait for parameters, from its previous report.
    public var waitingSecondsPerStep: Double
    /// That worker's gradient encoding not overlapped with backward (on its compute thread).
    public var encodeSecondsPerStep: Double
    /// Summed over the workers.
    public var gradientWireMBPerStep: Double
    public var gradientRawMBPerStep: Double
    public var parameterWireMBPerStep: Double
    public var parameterRawMBPerStep: Double
    /// Padded tokens (source + target) per second of wall time.
    public var tokensPerSecond: Double

    public init(stepsTimed: Int, secondsPerStep: Double, computeSecondsPerStep: Double, waitingSecondsPerStep: Double,
                encodeSecondsPerStep: Double, gradientWireMBPerStep: Double, gradientRawMBPerStep: Double,
                parameterWireMBPerStep: Double, parameterRawMBPerStep: Double, tokensPerSecond: Double) {
        self.stepsTimed = stepsTimed; self.secondsPerStep = secondsPerStep; self.computeSecondsPerStep = computeSecondsPerStep
        self.waitingSecondsPerStep = waitingSecondsPerStep; self.encodeSecondsPerStep = encodeSecondsPerStep
        self.gradientWireMBPerStep = gradientWireMBPerStep; self.gradientRawMBPerStep = gradientRawMBPerStep
        self.parameterWireMBPerStep = parameterWireMBPerStep; self.parameterRawMBPerStep = parameterRawMBPerStep
        self.tokensPerSecond = tokensPerSecond
    }

    /// Raw ÷ wire bytes of the gradients (1 when nothing was sent).
    public var gradientCompression: Double { gradientRawMBPerStep / max(gradientWireMBPerStep, 1e-12) }
    public var parameterCompression: Double { parameterRawMBPerStep / max(parameterWireMBPerStep, 1e-12) }

    enum CodingKeys: String, CodingKey {
        case stepsTimed = "steps_timed"
        case secondsPerStep = "s_per_step"
        case computeSecondsPerStep = "compute_s_per_step"
        case waitingSecondsPerStep = "waiting_s_per_step"
        case encodeSecondsPerStep = "encode_s_per_step"
        case gradientWireMBPerStep = "gradient_wire_mb_per_step"
        case gradientRawMBPerStep = "gradient_raw_mb_per_step"
        case parameterWireMBPerStep = "parameter_wire_mb_per_step"
        case parameterRawMBPerStep = "parameter_raw_mb_per_step"
        case tokensPerSecond = "tokens_per_s"
    }
}

/// The `@name {json}` lines the coordinator prints for programs that run it (`precis train`,
/// `precis bench cluster`): one prefix per type, one JSON object per line.
public enum ReportLine {
    public static let progressPrefix = "@progress "
    public static let summaryPrefix = "@summary "

    /// `prefix` followed by `value` as one line of sorted-key JSON.
    public static func line<T: Encodable>(_ prefix: String, _ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        let json = (try? e.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return prefix + json
    }

    /// The value of a line that starts with `prefix`, or nil (another line, or JSON that does not decode).
    public static func parse<T: Decodable>(_ type: T.Type, prefix: String, from line: String) -> T? {
        guard line.hasPrefix(prefix) else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(line.dropFirst(prefix.count).utf8))
    }

    public static func progress(_ p: ProgressReport) -> String { line(progressPrefix, p) }
    public static func summary(_ s: RunSummary) -> String { line(summaryPrefix, s) }
    public static func progress(from line: String) -> ProgressReport? { parse(ProgressReport.self, prefix: progressPrefix, from: line) }
    public static func summary(from line: String) -> RunSummary? { parse(RunSummary.self, prefix: summaryPrefix, from: line) }
}

extension ClusterStatus {
    /// The coordinator's status, decoded.
    public static func report(endpoint: String, timeoutMs: Int = 2000, keys: ClusterKeys? = nil) throws -> StatusReport {
        let text = try query(endpoint: endpoint, timeoutMs: timeoutMs, keys: keys)
        do { return try JSONDecoder().decode(StatusReport.self, from: Data(text.utf8)) } catch {
            throw WireError.badControl(type: "statusReply", reason: "\(error)")
        }
    }
}
