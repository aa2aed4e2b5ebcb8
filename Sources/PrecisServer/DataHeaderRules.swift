import PrecisWire

/// What a data header must satisfy against the server's assignment before anything is looked up,
/// decoded or allocated for it: the partition exists in the plan (and, for values it would store,
/// is this server's), the value count is the partition's, the epoch is not older than the
/// assignment nor further ahead than `epochWindow` of the newest epoch announced (a worker's view
/// may legitimately be a few membership changes ahead of the server's assignment while the
/// cluster reshards), the step is within the run, and the codec and slot fit the type (`bf16-delta`
/// only in a pull, whose slot names the puller's base version, at most the run's last step).
package struct DataHeaderRules {
    package static let epochWindow: UInt32 = 1024

    let layout: OwnedPartitions
    let assignmentEpoch: UInt32?
    let announcedEpoch: UInt32
    let totalSteps: Int

    package init(layout: OwnedPartitions, assignmentEpoch: UInt32?, announcedEpoch: UInt32, totalSteps: Int) {
        self.layout = layout; self.assignmentEpoch = assignmentEpoch; self.announcedEpoch = announcedEpoch; self.totalSteps = totalSteps
    }

    /// Nil when the header is acceptable; otherwise why not (for the log line).
    package func refusal(_ h: WireHeader) -> String? {
        let stores = h.type == .pushGradient || h.type == .initParameters || h.type == .initMomentM || h.type == .initMomentV
        let everything = h.type == .pullParameters && h.partition == UInt32.max
        if !everything && h.type != .pullMoments {
            guard Int(h.partition) < layout.plan.count else { return "partition \(h.partition): the plan has \(layout.plan.count)" }
        }
        if stores && layout.local(Int(h.partition)) == nil { return "partition \(h.partition) is not this server's" }
        if h.type == .pushGradient || h.type == .pullParameters {
            guard h.step <= UInt64(max(0, totalSteps)) else { return "step \(h.step) is beyond the run's last step \(totalSteps)" }
        }
        if h.codec == .bf16Delta && h.type != .pullParameters { return "codec bf16-delta is for parameter pulls only" }
        if h.type == .pullParameters && h.slot != 0 {
            guard h.codec == .bf16Delta else { return "slot \(h.slot) in a \(h.codec.name) pull (only a bf16-delta pull names a base version)" }
            guard let base = PullDelta.base(slot: h.slot), base <= max(0, totalSteps) else {
                return "base version \(h.slot - 1) is beyond the run's last step \(totalSteps)"
            }
        }
        if let e = assignmentEpoch {
            switch h.type {
            case .pushGradient:
                if h.epoch < e { return "epoch \(h.epoch) is older than this server's assignment (epoch \(e))" }
                let newest = max(e, announcedEpoch)
                if h.epoch > newest && h.epoch - newest > Self.epochWindow {
                    return "epoch \(h.epoch) is more than \(Self.epochWindow) ahead of the newest announced (\(newest))"
                }
            case .initParameters, .initMomentM, .initMomentV:
                if h.epoch != e { return "epoch \(h.epoch), this server's assignment is epoch \(e)" }
            default: break
            }
        }
        if stores, let local = layout.local(Int(h.partition)) {
            let n = layout.range(local: local).count
            guard Int(h.count) == n else { return "\(h.count) values, partition \(h.partition) has \(n)" }
        }
        return nil
    }
}
