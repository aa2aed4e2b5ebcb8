import Foundation

// `statusRequest` / `statusReply`: a client (`precis cluster status`, the live page) asks the
// coordinator for its view of the run. Keys are snake_case; every field added after the first
// version decodes as absent/empty when an older coordinator leaves it out, and readers ignore keys
// they do not know, so fields are added without a protocol version change. docs/protocol.md lists
// every field.

/// `statusRequest` (client → coordinator). An older coordinator ignores the payload (it answered `{}`).
public struct StatusRequest: Codable, Sendable, Equatable {
    /// Ask for `history` (the loss / learning-rate curve) in the reply too.
    public var history: Bool?
    public init(history: Bool? = nil) { self.history = history }
}

/// `statusReply` (coordinator → client): the coordinator's view of the cluster and the run.
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
        /// "server" or "worker" ("" from an older coordinator).
        public var role: String
        /// `alive`, `silent` (alive, but nothing heard for longer than `SilentMember.seconds`),
        /// `left` (deregistered) or `lost` (no heartbeat for `heartbeat_timeout`).
        public var state: String
        /// Workers: examples computed, and seconds of forward + backward + gradient encoding, summed.
        public var examples: Int
        public var computeSeconds: Double
        /// Workers: examples per second of compute (`examples / compute_seconds`).
        public var examplesPerSecond: Double
        /// Workers: contributions per second of wall time since its first task.
        public var contributionsPerSecond: Double
        /// Workers: mean compute seconds of its last (up to 20) contributions.
        public var secondsPerContribution: Double
        /// Workers: seconds its oldest unfinished task has been out (0: none).
        public var taskAgeSeconds: Double
        /// Workers: notably slower than the median worker (`StragglerRule`).
        public var straggler: Bool

        public init(name: String, host: String, pid: Int32, alive: Bool, contributions: Int, endpoint: String, secondsSinceHeartbeat: Double,
                    role: String = "", state: String = "", examples: Int = 0, computeSeconds: Double = 0, examplesPerSecond: Double = 0,
                    contributionsPerSecond: Double = 0, secondsPerContribution: Double = 0, taskAgeSeconds: Double = 0, straggler: Bool = false) {
            self.name = name; self.host = host; self.pid = pid; self.alive = alive; self.contributions = contributions
            self.endpoint = endpoint; self.secondsSinceHeartbeat = secondsSinceHeartbeat
            self.role = role; self.state = state.isEmpty ? (alive ? "alive" : "lost") : state; self.examples = examples
            self.computeSeconds = computeSeconds; self.examplesPerSecond = examplesPerSecond
            self.contributionsPerSecond = contributionsPerSecond; self.secondsPerContribution = secondsPerContribution
            self.taskAgeSeconds = taskAgeSeconds; self.straggler = straggler
        }

        enum CodingKeys: String, CodingKey {
            case name, host, pid, alive, contributions, endpoint, role, state, examples, straggler
            case secondsSinceHeartbeat = "seconds_since_heartbeat"
            case computeSeconds = "compute_seconds"
            case examplesPerSecond = "examples_per_second"
            case contributionsPerSecond = "contributions_per_second"
            case secondsPerContribution = "seconds_per_contribution"
            case taskAgeSeconds = "task_age_seconds"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(name: try c.decode(String.self, forKey: .name), host: try c.decode(String.self, forKey: .host),
                      pid: try c.decode(Int32.self, forKey: .pid), alive: try c.decode(Bool.self, forKey: .alive),
                      contributions: try c.decode(Int.self, forKey: .contributions), endpoint: try c.decode(String.self, forKey: .endpoint),
                      secondsSinceHeartbeat: try c.decode(Double.self, forKey: .secondsSinceHeartbeat),
                      role: try c.decodeIfPresent(String.self, forKey: .role) ?? "",
                      state: try c.decodeIfPresent(String.self, forKey: .state) ?? "",
                      examples: try c.decodeIfPresent(Int.self, forKey: .examples) ?? 0,
                      computeSeconds: try c.decodeIfPresent(Double.self, forKey: .computeSeconds) ?? 0,
                      examplesPerSecond: try c.decodeIfPresent(Double.self, forKey: .examplesPerSecond) ?? 0,
                      contributionsPerSecond: try c.decodeIfPresent(Double.self, forKey: .contributionsPerSecond) ?? 0,
                      secondsPerContribution: try c.decodeIfPresent(Double.self, forKey: .secondsPerContribution) ?? 0,
                      taskAgeSeconds: try c.decodeIfPresent(Double.self, forKey: .taskAgeSeconds) ?? 0,
                      straggler: try c.decodeIfPresent(Bool.self, forKey: .straggler) ?? false)
        }
    }

    /// An evaluation of the training parameters: its step and log_history metrics (`eval_loss`,
    /// `eval_rouge1`, `eval_rouge2`, `eval_rougeL`, `eval_rougeLsum`, `eval_gen_len`, `eval_runtime`, …).
    public struct EvaluationStatus: Codable, Sendable, Equatable {
        public var step: Int
        public var metrics: [String: Double]
        public init(step: Int, metrics: [String: Double]) { self.step = step; self.metrics = metrics }
    }

    /// A checkpoint written (or that failed to be).
    public struct CheckpointStatus: Codable, Sendable, Equatable {
        public var step: Int
        /// The folder (absent when the save failed).
        public var path: String?
        public var bytes: Int
        /// Seconds from the end of the step to the folder's rename.
        public var seconds: Double
        /// Why it was not saved.
        public var error: String?
        /// Removed since by `save_total_limit`.
        public var removed: Bool?
        public init(step: Int, path: String?, bytes: Int, seconds: Double, error: String? = nil, removed: Bool? = nil) {
            self.step = step; self.path = path; self.bytes = bytes; self.seconds = seconds; self.error = error; self.removed = removed
        }
    }

    /// A hub push: handed to the uploader (`queued`), then `pushed`, `failed` or `skipped` (another was running).
    public struct PushStatus: Codable, Sendable, Equatable {
        public var folder: String
        public var message: String
        public var outcome: String
        public var attempts: Int
        public var commitURL: String?
        public var error: String?
        public init(folder: String, message: String, outcome: String, attempts: Int = 0, commitURL: String? = nil, error: String? = nil) {
            self.folder = folder; self.message = message; self.outcome = outcome; self.attempts = attempts; self.commitURL = commitURL; self.error = error
        }
        enum CodingKeys: String, CodingKey {
            case folder, message, outcome, attempts, error
            case commitURL = "commit_url"
        }
    }

    /// One point of the training curve (a finished step).
    public struct HistoryPoint: Codable, Sendable, Equatable {
        public var step: Int
        /// The step's mean token loss over its contributions.
        public var loss: Double
        public var learningRate: Double
        public var gradNorm: Double
        public var examplesPerSecond: Double
        public init(step: Int, loss: Double, learningRate: Double, gradNorm: Double, examplesPerSecond: Double) {
            self.step = step; self.loss = loss; self.learningRate = learningRate; self.gradNorm = gradNorm; self.examplesPerSecond = examplesPerSecond
        }
        enum CodingKeys: String, CodingKey {
            case step, loss
            case learningRate = "lr"
            case gradNorm = "grad_norm"
            case examplesPerSecond = "examples_per_second"
        }
    }

    /// The state machine's state: waiting, initializing, training, recovering, finishing.
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

    // Added fields (absent from older coordinators: they decode as nil or empty).
    /// What the run is doing: `state`, or within training `evaluating`, `checkpointing` or `paused` (no worker).
    public var phase: String?
    /// UTC time of this view (ISO 8601).
    public var time: String?
    /// Epochs of the training data done (`step / steps per epoch`).
    public var trainEpoch: Double?
    /// The latest step's mean loss, learning rate and gradient norm (absent before the first step).
    public var loss: Double?
    public var learningRate: Double?
    public var gradNorm: Double?
    /// Examples per second since training started, seconds since then, and the estimate of the rest.
    public var examplesPerSecond: Double?
    public var elapsedSeconds: Double?
    public var etaSeconds: Double?
    public var heartbeatTimeout: Double?
    public var evaluations: [EvaluationStatus]
    public var checkpoints: [CheckpointStatus]
    public var pushes: [PushStatus]
    /// The training curve, only when asked for (`StatusRequest.history`, the live page): at most
    /// `StatusReport.historyLimit` points, thinned evenly over the run.
    public var history: [HistoryPoint]?

    /// The most points `history` holds.
    public static let historyLimit = 2000

    public init(state: RunPhase, step: Int, maxSteps: Int, epoch: UInt32, consistency: String, endpoint: String,
                servers: [MemberStatus], workers: [MemberStatus]) {
        self.state = state; self.step = step; self.maxSteps = maxSteps; self.epoch = epoch; self.consistency = consistency
        self.endpoint = endpoint; self.servers = servers; self.workers = workers
        evaluations = []; checkpoints = []; pushes = []
    }

    enum CodingKeys: String, CodingKey {
        case state, step, epoch, consistency, endpoint, servers, workers
        case maxSteps = "max_steps"
        case phase, time, loss, evaluations, checkpoints, pushes, history
        case trainEpoch = "train_epoch"
        case learningRate = "learning_rate"
        case gradNorm = "grad_norm"
        case examplesPerSecond = "examples_per_second"
        case elapsedSeconds = "elapsed_seconds"
        case etaSeconds = "eta_seconds"
        case heartbeatTimeout = "heartbeat_timeout"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(state: try c.decode(RunPhase.self, forKey: .state), step: try c.decode(Int.self, forKey: .step),
                  maxSteps: try c.decode(Int.self, forKey: .maxSteps), epoch: try c.decode(UInt32.self, forKey: .epoch),
                  consistency: try c.decode(String.self, forKey: .consistency), endpoint: try c.decode(String.self, forKey: .endpoint),
                  servers: try c.decode([MemberStatus].self, forKey: .servers), workers: try c.decode([MemberStatus].self, forKey: .workers))
        phase = try c.decodeIfPresent(String.self, forKey: .phase)
        time = try c.decodeIfPresent(String.self, forKey: .time)
        trainEpoch = try c.decodeIfPresent(Double.self, forKey: .trainEpoch)
        loss = try c.decodeIfPresent(Double.self, forKey: .loss)
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate)
        gradNorm = try c.decodeIfPresent(Double.self, forKey: .gradNorm)
        examplesPerSecond = try c.decodeIfPresent(Double.self, forKey: .examplesPerSecond)
        elapsedSeconds = try c.decodeIfPresent(Double.self, forKey: .elapsedSeconds)
        etaSeconds = try c.decodeIfPresent(Double.self, forKey: .etaSeconds)
        heartbeatTimeout = try c.decodeIfPresent(Double.self, forKey: .heartbeatTimeout)
        evaluations = try c.decodeIfPresent([EvaluationStatus].self, forKey: .evaluations) ?? []
        checkpoints = try c.decodeIfPresent([CheckpointStatus].self, forKey: .checkpoints) ?? []
        pushes = try c.decodeIfPresent([PushStatus].self, forKey: .pushes) ?? []
        history = try c.decodeIfPresent([HistoryPoint].self, forKey: .history)
    }

    /// The report as JSON: sorted keys, non-finite numbers as the strings `NaN` / `Infinity` (as
    /// every control payload), pretty-printed when asked.
    public func json(pretty: Bool = false) -> Data {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return (try? e.encode(self)) ?? Data("{}".utf8)
    }
}

/// When a worker counts as a straggler: among the living workers with a figure, each one's pace is
/// the larger of its mean compute seconds per contribution (its last 20) and the age of its oldest
/// unfinished task (a worker that stopped answering grows slower by the second). With at least two
/// such workers, one is a straggler when its pace is more than `factor` × the median pace and at
/// least `margin` seconds above it.
public enum StragglerRule {
    public static let factor = 1.5
    public static let margin = 0.5

    /// Which of `paces` (seconds per contribution; nil: no figure yet) are stragglers.
    public static func flags(_ paces: [Double?]) -> [Bool] {
        let known = paces.compactMap { $0 }.sorted()
        guard known.count >= 2 else { return paces.map { _ in false } }
        let n = known.count
        let median = n % 2 == 1 ? known[n / 2] : (known[n / 2 - 1] + known[n / 2]) / 2
        return paces.map { p in p.map { $0 > factor * median && $0 - median >= margin } ?? false }
    }
}

/// How a member's `state` is named: `silent` once nothing was heard from a living member for
/// longer than `seconds(heartbeatInterval:)`.
public enum SilentMember {
    public static func seconds(heartbeatInterval: Double) -> Double { max(2, 3 * heartbeatInterval) }
}

extension ClusterStatus {
    /// The coordinator's status, decoded.
    public static func report(endpoint: String, timeoutMs: Int = 2000, keys: ClusterKeys? = nil, history: Bool = false) throws -> StatusReport {
        let text = try query(endpoint: endpoint, timeoutMs: timeoutMs, keys: keys, history: history)
        do { return try JSONDecoder.statusDecoder.decode(StatusReport.self, from: Data(text.utf8)) } catch {
            throw WireError.badControl(type: "statusReply", reason: "\(error)")
        }
    }
}

extension JSONDecoder {
    /// Decodes what `StatusReport.json` writes (non-finite numbers as strings).
    public static var statusDecoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return d
    }
}
