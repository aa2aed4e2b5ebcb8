/// What a control message may carry. Every message may be malformed or malicious, even from an
/// authenticated peer, and so may one a server or worker takes for the coordinator's: each type's
/// `dropReason` says why its receiver drops it (logged), or stops for it where it cannot go on
/// without it, before any of its figures reach a sum, an index, a conversion or an allocation.
/// nil: its fields are sound (whether it is the one expected now is the receiver's state to judge).
public enum ControlChecks {
    /// The most any byte or count figure of one contribution may be (2⁴⁰, 1 TiB): far above any real
    /// one (a whole model's gradient is a few GiB), and 2²³ reports of it still add up within 63 bits.
    public static let maxFigure = 1 << 40
    /// Label tokens and examples of one contribution travel as 32-bit unsigned integers in its
    /// pushes' `ContributionFigures`: the report may not claim more.
    public static let maxCount = Int(UInt32.max)
    /// The most seconds one contribution or evaluation share may report (about 31 years): finite,
    /// and no sum of them comes near infinity.
    public static let maxSeconds = 1e9
    /// The longest generated summary, in tokens (models generate at most a few thousand).
    public static let maxGenLength = 1 << 20
    /// The longest name or host a `register` may give, in UTF-8 bytes.
    public static let maxNameBytes = 256
    /// The longest data endpoint a server may give, in UTF-8 bytes (a 253-byte host name fits).
    public static let maxEndpointBytes = 1024
    /// The most parameters a plan may cut (2³⁴, 64 GiB of fp32): far above the models Precis trains
    /// (a few billion values), and a server allocates a few buffers of its share without overflow.
    public static let maxParameters = 1 << 34
    /// The most steps a run may have: `max_steps`' own bound (TrainingArguments.maxStepsLimit).
    public static let maxSteps = 1 << 40
    /// The most servers a `view` may list: `cluster.servers`' own bound (a worker opens a
    /// connection to each).
    public static let maxServers = 1024
    /// The longest heartbeat interval or timeout, in seconds (a day): any setting a run uses is far
    /// below, and the milliseconds derived from it stay small integers.
    public static let maxHeartbeatSeconds = 86_400.0

    /// A loss or norm: any value at or above 0, non-finite ones included (NaN and +∞ are the signal
    /// `stop_on_nonfinite` acts on); a negative one is no loss.
    static func isLossLike(_ x: Double) -> Bool { x.isNaN || x >= 0 }

    static func isSeconds(_ x: Double) -> Bool { x.isFinite && x >= 0 && x <= maxSeconds }

    /// The first `(name, value)` outside `0...limit`, described; nil when all are within.
    static func outOfRange(_ figures: KeyValuePairs<String, Int>, limit: Int) -> String? {
        for (name, v) in figures where v < 0 || v > limit { return "\(name) \(v) is outside 0...\(limit)" }
        return nil
    }
}

extension ContributionFigures {
    /// Why these figures cannot count (nil: they can): a negative loss sum, or tokens or examples
    /// outside what their 32-bit wire fields hold.
    public var dropReason: String? {
        guard ControlChecks.isLossLike(lossSum) else { return "loss sum \(lossSum) is negative" }
        return ControlChecks.outOfRange(["tokens": tokens, "examples": examples], limit: ControlChecks.maxCount)
    }
}

extension DoneMessage {
    /// Why a `contributionDone` is dropped before anything of it counts (nil: its fields are sound),
    /// in a run of `totalSteps` steps (tasks, in ssp/async).
    public func dropReason(totalSteps: Int) -> String? {
        guard step >= 0, step < totalSteps else { return "step \(step) is outside 0..<\(totalSteps)" }
        guard contribution >= 0 else { return "contribution \(contribution) is negative" }
        if skipped == true { return nil }   // only step, contribution and attempt mean anything
        if let why = figures.dropReason { return why }
        if let why = ControlChecks.outOfRange(["paddedTokens": paddedTokens, "wireBytes": wireBytes, "rawBytes": rawBytes,
                                               "pullWireBytes": pullWireBytes, "pullRawBytes": pullRawBytes],
                                              limit: ControlChecks.maxFigure) { return why }
        guard ControlChecks.isLossLike(gradNorm) else { return "gradient norm \(gradNorm) is negative" }
        for (name, s) in [("computeSeconds", computeSeconds), ("waitSeconds", waitSeconds), ("encodeSeconds", encodeSeconds ?? 0)]
        where !ControlChecks.isSeconds(s) {
            return "\(name) \(s) is outside 0...\(ControlChecks.maxSeconds)"
        }
        return nil
    }
}

extension NormMessage {
    /// Why a `normReport` is dropped (nil: it is sound), from the server in slot `slot` (nil: the
    /// sender holds no server slot).
    public func dropReason(senderSlot slot: Int?) -> String? {
        guard let slot else { return "its sender holds no server slot" }
        guard server == slot else { return "it names server \(server), its sender is server \(slot)" }
        guard ControlChecks.isLossLike(sumOfSquares) else { return "sum of squares \(sumOfSquares) is negative" }
        for (c, f) in (contributions ?? []).enumerated() {
            if let why = f.dropReason { return "contribution \(c): \(why)" }
        }
        return nil
    }
}

extension InitDoneMessage {
    /// Why an `initDone` is dropped (nil: it is sound), from the server in slot `slot` (nil: the
    /// sender holds no server slot).
    public func dropReason(senderSlot slot: Int?) -> String? {
        guard let slot else { return "its sender holds no server slot" }
        return server == slot ? nil : "it names server \(server), its sender is server \(slot)"
    }
}

extension EvalResultMessage {
    /// Why an `evalResult` is dropped (nil: it is sound). A share's result counts each of its
    /// examples once (`count` = its indices), with a prediction and a length per example when it
    /// generated (none otherwise). `count` -1 is a worker's failure, its message the one prediction.
    public var dropReason: String? {
        guard ControlChecks.isSeconds(seconds) else { return "seconds \(seconds) is outside 0...\(ControlChecks.maxSeconds)" }
        if count == -1 {
            return predictions.count <= 1 && genLengths.isEmpty ? nil : "a failure carries one message and no lengths"
        }
        guard count == indices.count else { return "count \(count) is not its \(indices.count) example(s)" }
        guard ControlChecks.isLossLike(lossSum) else { return "loss sum \(lossSum) is negative" }
        guard predictions.isEmpty || predictions.count == indices.count else {
            return "\(predictions.count) prediction(s) for \(indices.count) example(s)"
        }
        guard genLengths.count == predictions.count else { return "\(genLengths.count) length(s) for \(predictions.count) prediction(s)" }
        if let bad = genLengths.first(where: { $0 < 0 || $0 > ControlChecks.maxGenLength }) {
            return "generated length \(bad) is outside 0...\(ControlChecks.maxGenLength)"
        }
        return nil
    }
}

extension RegisterMessage {
    /// Why a `register` is refused for its fields alone (nil: they are sound): its name, host and
    /// endpoint are kept, logged and sent to others for the rest of the run.
    public var dropReason: String? {
        for (field, text, limit) in [("name", name, ControlChecks.maxNameBytes), ("host", host, ControlChecks.maxNameBytes),
                                     ("endpoint", endpoint ?? "", ControlChecks.maxEndpointBytes)] where text.utf8.count > limit {
            return "its \(field) is \(text.utf8.count) bytes long (at most \(limit))"
        }
        return nil
    }
}

extension RegisteredMessage {
    /// Why a `registered` cannot be used (nil: it is sound). A member cannot go on without it: it
    /// stops with this reason (exit status 1). The heartbeat interval and timeout become a thread's
    /// waits in milliseconds; `partitionBytes` sizes a server's data frames (32-bit LZ4 bounds).
    public var dropReason: String? {
        for (field, s) in [("heartbeatInterval", heartbeatInterval), ("heartbeatTimeout", heartbeatTimeout)]
        where !(s.isFinite && s > 0 && s <= ControlChecks.maxHeartbeatSeconds) {
            return "\(field) \(s) is outside (0, \(ControlChecks.maxHeartbeatSeconds)] seconds"
        }
        if let b = partitionBytes, b < 1 || b > WireLimits.maxPartitionBytes {
            return "partitionBytes \(b) is outside 1...\(WireLimits.maxPartitionBytes)"
        }
        return nil
    }
}

extension AssignMessage {
    /// Why a server cannot take this `assign` (nil: it is sound): its plan sound over at most
    /// `maxParameters` values (`PartitionPlan.dropReason`); `partitions` exactly the plan's
    /// partitions of `server`, and at least one; `segments` in order, each non-empty, covering
    /// 0..<total without gap or overlap (as the coordinator's `decaySegments` of the whole table);
    /// AdamW's figures as the config allows them; steps within the run.
    public var dropReason: String? {
        if let why = plan.dropReason(expectedTotal: nil, servers: plan.count) { return why }
        guard server >= 0 else { return "server \(server) is negative" }
        let own = plan.partitions(of: server)
        guard !own.isEmpty else { return "server \(server) owns no partition of the plan" }
        guard partitions == own else {
            return "partitions \(partitions.count > 8 ? "(\(partitions.count))" : "\(partitions)") are not the plan's \(own.count) partition(s) of server \(server)"
        }
        var covered = 0
        for (i, s) in segments.enumerated() {
            guard s.lower == covered, s.upper > s.lower, s.upper <= plan.total else {
                return "segment \(i) is \(s.lower)..<\(s.upper); segments must cover 0..<\(plan.total) in order, from \(covered) here"
            }
            covered = s.upper
        }
        guard covered == plan.total else { return "segments cover 0..<\(covered), not 0..<\(plan.total)" }
        for (field, b) in [("beta1", beta1), ("beta2", beta2)] where !(b >= 0 && b < 1) { return "\(field) \(b) is outside [0, 1)" }
        // AdamW runs in fp32: an epsilon that rounds to 0 there divides 0 by 0 (the config's own rule).
        guard eps.isFinite, Float(eps) >= Float.leastNormalMagnitude else { return "eps \(eps) is not a finite fp32 normal number above 0" }
        guard weightDecay.isFinite, weightDecay >= 0 else { return "weightDecay \(weightDecay) is not finite and at least 0" }
        guard learningRate.isFinite, learningRate >= 0 else { return "learningRate \(learningRate) is not finite and at least 0" }
        guard totalSteps >= 0, totalSteps <= ControlChecks.maxSteps else { return "totalSteps \(totalSteps) is outside 0...\(ControlChecks.maxSteps)" }
        guard warmupSteps >= 0, warmupSteps <= ControlChecks.maxSteps else { return "warmupSteps \(warmupSteps) is outside 0...\(ControlChecks.maxSteps)" }
        guard startStep >= 0, startStep <= totalSteps else { return "startStep \(startStep) is outside 0...\(totalSteps)" }
        // A step's contributions are its micro-batches (gradient_accumulation_steps × workers); their
        // index travels in a push header's 32-bit slot.
        if let n = maxContributions, n < 1 || n > ControlChecks.maxCount {
            return "maxContributions \(n) is outside 1...\(ControlChecks.maxCount)"
        }
        return nil
    }
}

extension ViewMessage {
    /// Why a worker cannot take this `view` (nil: it is sound): it lists at most `maxServers`
    /// servers, each under its index (as the coordinator numbers its server slots) with an endpoint
    /// of at most `maxEndpointBytes`; its plan cuts exactly the worker's `parameters` model values
    /// (`PartitionPlan.dropReason`), each partition owned by one of those servers.
    public func dropReason(parameters: Int) -> String? {
        guard servers.count <= ControlChecks.maxServers else { return "it lists \(servers.count) servers (at most \(ControlChecks.maxServers))" }
        for (i, s) in servers.enumerated() {
            guard s.id == i else { return "server \(i) of the list has id \(s.id)" }
            guard s.endpoint.utf8.count <= ControlChecks.maxEndpointBytes else {
                return "server \(i)'s endpoint is \(s.endpoint.utf8.count) bytes long (at most \(ControlChecks.maxEndpointBytes))"
            }
        }
        return plan.dropReason(expectedTotal: parameters, servers: servers.count)
    }
}

extension TaskMessage {
    /// Why a worker cannot compute this `task` (nil: it is sound) with its plan's `examples` training
    /// examples, micro-batches of at most `perDevice` examples and `microPerStep` micro-batches a
    /// step (what the coordinator cuts steps with, from the same config): 1...microPerStep
    /// micro-batches of 1...perDevice indices within the data set, `firstMicro` such that the
    /// task's micro-batches lie within the step, no negative step or version, a contribution index
    /// a push header's 32-bit slot holds, and no negative label-token count. Steps are within the
    /// `maxSteps` any run has (not the worker's own `totalSteps`: the coordinator's `--max-steps`
    /// may differ from the config it sends). The normalizer may be
    /// 0: it is the label tokens of the whole step, which examples with empty targets can leave at
    /// 0, and the worker divides by at least 1.
    public func dropReason(examples: Int, perDevice: Int, microPerStep: Int) -> String? {
        // Steps and versions become pulls' and pushes' UInt64 steps, and the next version (step + 1).
        guard step >= 0, step <= ControlChecks.maxSteps else { return "step \(step) is outside 0...\(ControlChecks.maxSteps)" }
        guard minVersion >= 0, minVersion <= ControlChecks.maxSteps else {
            return "minVersion \(minVersion) is outside 0...\(ControlChecks.maxSteps)"
        }
        guard contribution >= 0, contribution <= ControlChecks.maxCount else {
            return "contribution \(contribution) is outside 0...\(ControlChecks.maxCount)"
        }
        guard !micro.isEmpty, micro.count <= microPerStep else { return "\(micro.count) micro-batches, a step has 1...\(microPerStep)" }
        guard firstMicro >= 0, firstMicro <= microPerStep - micro.count else {
            return "firstMicro \(firstMicro) with \(micro.count) micro-batches runs outside the step's \(microPerStep)"
        }
        for (i, mb) in micro.enumerated() {
            guard !mb.isEmpty, mb.count <= perDevice else { return "micro-batch \(i) has \(mb.count) examples, not 1...\(perDevice)" }
            if let bad = mb.first(where: { $0 < 0 || $0 >= examples }) {
                return "micro-batch \(i) names example \(bad), outside 0..<\(examples)"
            }
        }
        guard normalizer >= 0 else { return "normalizer \(normalizer) is negative" }
        return nil
    }
}

extension EvalTaskMessage {
    /// Why a worker cannot evaluate this `evalTask` (nil: it is sound): the version it names must be
    /// within 0...`maxSteps` (it becomes a pull's step), and no index negative, which must also be below
    /// `examples` once the worker knows how many the data has (nil: not yet).
    public func dropReason(examples: Int?) -> String? {
        guard version >= 0, version <= ControlChecks.maxSteps else { return "version \(version) is outside 0...\(ControlChecks.maxSteps)" }
        if let bad = indices.first(where: { $0 < 0 || $0 >= (examples ?? Int.max) }) {
            return "index \(bad) is outside 0..<\(examples.map(String.init) ?? "the data set")"
        }
        return nil
    }
}

extension ApplyMessage {
    /// Why a server does not apply this `apply` (nil: it is sound): the clip coefficient must be
    /// finite within [0, 1] (the coordinator's min(1, max_grad_norm / norm); 0 when that norm is
    /// infinite and `stop_on_nonfinite` is off), and the step not negative.
    public var dropReason: String? {
        guard step >= 0 else { return "step \(step) is negative" }
        guard clip.isFinite, clip >= 0, clip <= 1 else { return "clip \(clip) is outside [0, 1]" }
        return nil
    }
}

extension ControlChecks {
    /// Why a control message cannot be used: its payload does not decode, or its check refused it.
    public struct Refusal: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// The payload of control message `m` as `T`, once `check` finds nothing wrong with it; else the
    /// decoding error, or "bad TYPE message: " and the check's reason.
    public static func read<T: Decodable>(_ type: T.Type, _ m: DataMessage, check: (T) -> String? = { _ in nil }) -> Result<T, Refusal> {
        let value: T
        do { value = try Control.decode(T.self, m) } catch { return .failure(Refusal(description: "\(error)")) }
        if let why = check(value) { return .failure(Refusal(description: "bad \(m.header.type) message: \(why)")) }
        return .success(value)
    }
}

extension Result where Failure == ControlChecks.Refusal {
    /// What a role does with a control message it read: `use` the value, or `otherwise` the reason.
    public func action<A>(_ use: (Success) -> A, otherwise: (String) -> A) -> A {
        switch self {
        case .success(let v): return use(v)
        case .failure(let r): return otherwise(r.description)
        }
    }
}
