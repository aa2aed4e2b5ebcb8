/// What a member's control message may carry. Every message from a member may be malformed or
/// malicious, even from an authenticated peer: each type's `dropReason` says why the coordinator
/// drops it (logged with the peer), before any of its figures reach a sum, an index or an allocation.
/// nil: its fields are sound (whether it is the one expected of its sender is the coordinator's
/// state to judge).
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
