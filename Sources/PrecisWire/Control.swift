import Foundation

/// Control messages: the 40-byte header (codec `none`, count 0) followed by one small JSON object.
/// Every payload type is listed here and in docs/protocol.md; unknown JSON keys are ignored, so a
/// field can be added without a version change.
public enum Control {
    /// The two frames of a control message.
    public static func frames<T: Encodable>(_ type: MessageType, _ value: T, epoch: UInt32 = 0, step: UInt64 = 0) -> [[UInt8]] {
        precondition(type.isControl, "\(type) is not a control message")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // A NaN loss or norm must reach the coordinator as what it is (JSON has no NaN: the strings below).
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let payload = (try? [UInt8](encoder.encode(value))) ?? Array("{}".utf8)
        let h = WireHeader(type: type, codec: .none, epoch: epoch, step: step, partition: 0, count: 0,
                           payloadLength: UInt32(payload.count), checksum: CRC32C.checksum(payload))
        return [h.bytes(), payload]
    }

    /// A control message whose JSON payload is already encoded.
    public static func frames(_ type: MessageType, json payload: [UInt8], epoch: UInt32 = 0, step: UInt64 = 0) -> [[UInt8]] {
        let h = WireHeader(type: type, codec: .none, epoch: epoch, step: step, partition: 0, count: 0,
                           payloadLength: UInt32(payload.count), checksum: CRC32C.checksum(payload))
        return [h.bytes(), payload]
    }

    /// Decodes a control payload, with an error naming the message type and the problem.
    public static func decode<T: Decodable>(_ type: T.Type, _ message: DataMessage) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do { return try decoder.decode(T.self, from: Data(message.payload)) } catch {
            throw WireError.badControl(type: "\(message.header.type)", reason: "\(error)")
        }
    }
}

/// `register` (member → coordinator): who I am. Sent by servers, workers and status clients.
public struct RegisterMessage: Codable, Sendable {
    public enum Role: String, Codable, Sendable { case server, worker, client }
    public var role: Role
    public var name: String
    public var host: String
    public var pid: Int32
    /// A server's data endpoint (its ROUTER), nil for others.
    public var endpoint: String?
    public var threads: Int
    public init(role: Role, name: String, host: String, pid: Int32, endpoint: String? = nil, threads: Int) {
        self.role = role; self.name = name; self.host = host; self.pid = pid; self.endpoint = endpoint; self.threads = threads
    }
}

/// `registered` (coordinator → member): your id, and what every member needs to know about the run.
public struct RegisteredMessage: Codable, Sendable {
    public var id: Int
    public var name: String
    /// The training config (YAML text) and its file name, so remote hosts need not have it.
    public var config: String
    public var configFile: String
    /// The model's config.json text (workers build the network from it).
    public var modelConfig: String
    public var heartbeatInterval: Double
    public var heartbeatTimeout: Double
    /// A digest of the tokenized training set (count and lengths): a worker that loads different data refuses to train.
    public var dataDigest: String
    /// training.output_dir as the coordinator runs it (a command-line override included).
    public var outputDir: String
    /// cluster.partition_bytes: no partition is larger (a server sizes its data socket's
    /// `ZMQ_MAXMSGSIZE` from it).
    public var partitionBytes: Int?
    public init(id: Int, name: String, config: String, configFile: String, modelConfig: String,
                heartbeatInterval: Double, heartbeatTimeout: Double, dataDigest: String, outputDir: String, partitionBytes: Int? = nil) {
        self.outputDir = outputDir; self.partitionBytes = partitionBytes
        self.id = id; self.name = name; self.config = config; self.configFile = configFile; self.modelConfig = modelConfig
        self.heartbeatInterval = heartbeatInterval; self.heartbeatTimeout = heartbeatTimeout; self.dataDigest = dataDigest
    }
}

/// `refused` (coordinator → would-be member): why it may not join.
public struct RefusedMessage: Codable, Sendable {
    public var reason: String
    /// Present when the refusal is transient (a server registering while the coordinator still
    /// counts its dead predecessor as alive): the member may register again after about this many
    /// seconds, within its connect timeout. Absent: final (the member exits 2).
    public var retryAfter: Double?
    public init(reason: String, retryAfter: Double? = nil) { self.reason = reason; self.retryAfter = retryAfter }
}

/// `heartbeat` (member → coordinator) and `heartbeatAck` (back).
public struct HeartbeatMessage: Codable, Sendable {
    public var id: Int
    public init(id: Int) { self.id = id }
}

/// A run of the flat buffer with or without weight decay.
public struct DecaySegment: Codable, Sendable, Equatable {
    public var lower: Int
    public var upper: Int
    public var decay: Bool
    public init(lower: Int, upper: Int, decay: Bool) { self.lower = lower; self.upper = upper; self.decay = decay }
}

/// `assign` (coordinator → server): the partitions it owns and how to optimise them.
public struct AssignMessage: Codable, Sendable {
    public var server: Int
    /// Global partition indices this server owns, with their [lower, upper) element ranges.
    public var partitions: [Int]
    public var plan: PartitionPlan
    public var segments: [DecaySegment]
    public var beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    public var schedule: String, learningRate: Double, warmupSteps: Int, totalSteps: Int
    public var consistency: Consistency
    public var pullCodec: Codec
    /// Optimizer steps already taken (resuming), and the version the parameters are at.
    public var startStep: Int
    /// The cluster epoch of this assignment: gradients stamped with an older epoch were computed for
    /// an earlier layout or run and are dropped.
    public var epoch: UInt32?
    /// The most contributions a sync step can have (the step's micro-batches): a push naming a
    /// contribution index at or above it is dropped before anything is allocated for it.
    public var maxContributions: Int?
    public init(server: Int, partitions: [Int], plan: PartitionPlan, segments: [DecaySegment], beta1: Double, beta2: Double,
                eps: Double, weightDecay: Double, schedule: String, learningRate: Double, warmupSteps: Int, totalSteps: Int,
                consistency: Consistency, pullCodec: Codec, startStep: Int) {
        self.server = server; self.partitions = partitions; self.plan = plan; self.segments = segments
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        self.schedule = schedule; self.learningRate = learningRate; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
        self.consistency = consistency; self.pullCodec = pullCodec; self.startStep = startStep
    }
}

/// How servers combine worker gradients.
public enum Consistency: String, Codable, Sendable, CaseIterable {
    /// Bulk synchronous: step t's update is the sum of all of step t's contributions.
    case sync
    /// Stale synchronous parallel: a worker runs at most `staleness` steps ahead of the slowest.
    case ssp
    /// Each contribution is applied when it arrives.
    case async
}

/// One server as workers see it.
public struct ServerInfo: Codable, Sendable, Equatable {
    public var id: Int
    public var name: String
    public var endpoint: String
    public var partitions: [Int]
    public init(id: Int, name: String, endpoint: String, partitions: [Int]) {
        self.id = id; self.name = name; self.endpoint = endpoint; self.partitions = partitions
    }
}

/// `view` (coordinator → workers): the cluster as it is now. `epoch` changes on every membership change.
public struct ViewMessage: Codable, Sendable {
    public var epoch: UInt32
    public var servers: [ServerInfo]
    public var plan: PartitionPlan
    public var workers: [String]
    public var consistency: Consistency
    public var codec: Codec
    public var pullCodec: Codec
    /// Grows on every rollback to a checkpoint: a worker drops its queued tasks and its parameters.
    public var attempt: Int?
    /// The epoch at which the servers got the current partition layout (their replies carry it).
    public var layoutEpoch: UInt32?
    public init(epoch: UInt32, servers: [ServerInfo], plan: PartitionPlan, workers: [String], consistency: Consistency,
                codec: Codec, pullCodec: Codec, attempt: Int = 0) {
        self.attempt = attempt
        self.epoch = epoch; self.servers = servers; self.plan = plan; self.workers = workers
        self.consistency = consistency; self.codec = codec; self.pullCodec = pullCodec
    }
}

/// `plan` (coordinator → servers): how many contributions make step `step` (sync mode).
public struct PlanMessage: Codable, Sendable {
    public var step: Int
    public var contributions: Int
    public init(step: Int, contributions: Int) { self.step = step; self.contributions = contributions }
}

/// `task` (coordinator → worker): compute contribution `contribution` of step `step`: the gradient
/// over the micro-batches (dataset indices), normalised by `normalizer` label tokens.
public struct TaskMessage: Codable, Sendable {
    public var step: Int
    public var contribution: Int
    public var micro: [[Int]]
    /// Index of the first micro-batch within the step (dropout seeds follow the single-process loop).
    public var firstMicro: Int
    public var normalizer: Int
    /// Parameters must be exactly at version `step` (sync); otherwise any version ≥ `minVersion`.
    public var exactVersion: Bool
    public var minVersion: Int
    /// ssp/async: the worker clips its own gradient to this global norm (0 = off) before pushing.
    public var clipNorm: Double
    /// Which start of the run this task belongs to (it grows on every rollback to a checkpoint);
    /// echoed in `contributionDone`, so a report from before a rollback is not counted.
    public var attempt: Int?
    public init(step: Int, contribution: Int, micro: [[Int]], firstMicro: Int, normalizer: Int, exactVersion: Bool,
                minVersion: Int, clipNorm: Double, attempt: Int = 0) {
        self.attempt = attempt
        self.step = step; self.contribution = contribution; self.micro = micro; self.firstMicro = firstMicro
        self.normalizer = normalizer; self.exactVersion = exactVersion; self.minVersion = minVersion; self.clipNorm = clipNorm
    }
}

/// `contributionDone` (worker → coordinator): pushed; with the loss and the timings of the step.
public struct DoneMessage: Codable, Sendable {
    public var step: Int
    public var contribution: Int
    public var lossSum: Double
    public var tokens: Int
    public var examples: Int
    public var computeSeconds: Double
    /// Time spent waiting on the network that was not hidden behind computation.
    public var waitSeconds: Double
    public var wireBytes: Int
    public var rawBytes: Int
    public var gradNorm: Double
    /// Source + target positions of the padded batches (what a fixed-shape benchmark counts).
    public var paddedTokens: Int
    /// Parameter bytes received for this contribution, on the wire and raw.
    public var pullWireBytes: Int
    public var pullRawBytes: Int
    public var attempt: Int?
    /// Time spent encoding gradient partitions (on the compute thread, during and after backward);
    /// not part of `computeSeconds`.
    public var encodeSeconds: Double?
    /// The worker did not compute this contribution: the servers had already applied its step (the
    /// gradient came from the contribution's previous worker, which left before reporting). Only
    /// `step`, `contribution` and `attempt` mean anything then.
    public var skipped: Bool?
    public init(step: Int, contribution: Int, lossSum: Double, tokens: Int, examples: Int, computeSeconds: Double,
                waitSeconds: Double, wireBytes: Int, rawBytes: Int, gradNorm: Double, paddedTokens: Int = 0,
                pullWireBytes: Int = 0, pullRawBytes: Int = 0, attempt: Int = 0, encodeSeconds: Double = 0, skipped: Bool? = nil) {
        self.attempt = attempt; self.encodeSeconds = encodeSeconds; self.skipped = skipped
        self.paddedTokens = paddedTokens; self.pullWireBytes = pullWireBytes; self.pullRawBytes = pullRawBytes
        self.step = step; self.contribution = contribution; self.lossSum = lossSum; self.tokens = tokens; self.examples = examples
        self.computeSeconds = computeSeconds; self.waitSeconds = waitSeconds; self.wireBytes = wireBytes; self.rawBytes = rawBytes
        self.gradNorm = gradNorm
    }

    /// Its loss sum, tokens and examples.
    public var figures: ContributionFigures { ContributionFigures(lossSum: lossSum, tokens: tokens, examples: examples) }
}

/// `normReport` (server → coordinator): the sum of squares of step `step`'s summed gradient on this
/// server, and the figures each contribution's pushes carried (index = contribution; empty when the
/// server owns no partition).
public struct NormMessage: Codable, Sendable {
    public var step: Int
    public var server: Int
    public var sumOfSquares: Double
    public var contributions: [ContributionFigures]?
    public init(step: Int, server: Int, sumOfSquares: Double, contributions: [ContributionFigures]? = nil) {
        self.step = step; self.server = server; self.sumOfSquares = sumOfSquares; self.contributions = contributions
    }
}

/// `apply` (coordinator → servers): apply step `step` with this clip coefficient.
public struct ApplyMessage: Codable, Sendable {
    public var step: Int
    public var clip: Float
    /// Right after applying, copy the parameters and moments and send them to the coordinator (a
    /// checkpoint's consistent cut at this step boundary).
    public var snapshot: Bool?
    public init(step: Int, clip: Float, snapshot: Bool = false) { self.step = step; self.clip = clip; self.snapshot = snapshot }
}

/// `snapshot` (coordinator → servers): send me your parameters and moments as they are now
/// (ssp/async, after the coordinator has let every outstanding contribution finish).
public struct SnapshotMessage: Codable, Sendable {
    public var tag: Int
    public init(tag: Int) { self.tag = tag }
}

/// `applied` (server → coordinator): the parameters are now at `version`.
public struct AppliedMessage: Codable, Sendable {
    public var server: Int
    public var version: Int
    public var updates: Int
    public init(server: Int, version: Int, updates: Int) { self.server = server; self.version = version; self.updates = updates }
}

/// `leave` (worker → coordinator): deregister (after SIGTERM).
public struct LeaveMessage: Codable, Sendable {
    public var id: Int
    public var reason: String
    public init(id: Int, reason: String) { self.id = id; self.reason = reason }
}

/// `shutdown` (coordinator → members): the run is over (or aborted); exit with this status.
public struct ShutdownMessage: Codable, Sendable {
    public var reason: String
    public var exitCode: Int32
    public init(reason: String, exitCode: Int32) { self.reason = reason; self.exitCode = exitCode }
}

/// `initDone` (server → coordinator): every partition has its initial values.
public struct InitDoneMessage: Codable, Sendable {
    public var server: Int
    public var version: Int
    public init(server: Int, version: Int) { self.server = server; self.version = version }
}

/// An empty control payload (`statusRequest`).
public struct Empty: Codable, Sendable { public init() {} }

/// `evalTask` (coordinator → worker): evaluate these examples of the validation set with the
/// parameters of version `version` (exactly, in sync mode).
public struct EvalTaskMessage: Codable, Sendable {
    public var id: Int
    public var version: Int
    public var exactVersion: Bool
    public var indices: [Int]
    public var generate: Bool
    /// Evaluate a saved checkpoint (a folder the worker can read) on `dataFile` instead of the
    /// training parameters on the validation set.
    public var checkpoint: String?
    public var dataFile: String?
    public init(id: Int, version: Int, exactVersion: Bool, indices: [Int], generate: Bool, checkpoint: String? = nil, dataFile: String? = nil) {
        self.checkpoint = checkpoint; self.dataFile = dataFile
        self.id = id; self.version = version; self.exactVersion = exactVersion; self.indices = indices; self.generate = generate
    }
}

/// `evalResult` (worker → coordinator): the loss and the generated summaries of an eval task, in
/// the order of its indices.
public struct EvalResultMessage: Codable, Sendable {
    public var id: Int
    public var indices: [Int]
    public var lossSum: Double
    public var count: Int
    public var predictions: [String]
    public var genLengths: [Int]
    public var seconds: Double
    public init(id: Int, indices: [Int], lossSum: Double, count: Int, predictions: [String], genLengths: [Int], seconds: Double) {
        self.id = id; self.indices = indices; self.lossSum = lossSum; self.count = count; self.predictions = predictions
        self.genLengths = genLengths; self.seconds = seconds
    }
}

/// `evaluateRequest` (client → coordinator): evaluate a checkpoint on the cluster's workers.
public struct EvaluateRequest: Codable, Sendable {
    public var checkpoint: String
    public var dataFile: String
    public var maxSamples: Int?
    public init(checkpoint: String, dataFile: String, maxSamples: Int?) {
        self.checkpoint = checkpoint; self.dataFile = dataFile; self.maxSamples = maxSamples
    }
}

/// `evaluateReply` (coordinator → client): the metrics (`eval_*` keys), or an error.
public struct EvaluateReply: Codable, Sendable {
    public var metrics: [String: Double]
    public var error: String?
    public var outputDir: String?
    public init(metrics: [String: Double], error: String?, outputDir: String?) {
        self.metrics = metrics; self.error = error; self.outputDir = outputDir
    }
}

/// `members` (coordinator → server): the routing ids a server takes data messages from. Sent after
/// every `assign` (before the initial values) and before every `view` goes to the workers, so a
/// worker's first pull finds itself announced. `coordinator` alone may send initial values and ask
/// for moments; `workers` may pull and push (a worker's push thread adds `/push` to its id).
public struct MembersMessage: Codable, Sendable, Equatable {
    public var epoch: UInt32
    public var coordinator: [UInt8]
    public var workers: [[UInt8]]
    public init(epoch: UInt32, coordinator: [UInt8], workers: [[UInt8]]) {
        self.epoch = epoch; self.coordinator = coordinator; self.workers = workers
    }
}
