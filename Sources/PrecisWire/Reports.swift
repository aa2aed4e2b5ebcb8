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
