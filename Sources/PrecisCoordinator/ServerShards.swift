import PrecisWire

/// A parameters or moments shard a server sends the coordinator (for a checkpoint's snapshot, or
/// the run's final parameters), checked before a value of it is written: a shard that would fill
/// only part of its partition, land in the wrong buffer or carry a step that is not one is dropped
/// (with the reason, for the log), never half-applied or counted as received.
package enum ServerShard {
    /// Where a checked shard goes: 0 the parameters, 1 AdamW's m, 2 its v; and the server's step.
    package struct Accepted: Equatable {
        package var kind: Int
        package var step: Int
        package init(kind: Int, step: Int) { self.kind = kind; self.step = step }
    }

    /// `h` against a partition of `values` values, from a server asked for at least `minStep`.
    package static func check(_ h: WireHeader, values: Int, minStep: Int = 0) -> Result<Accepted, Refusal> {
        let kind: Int
        switch (h.type, h.slot) {
        case (.parameters, 0): kind = 0
        case (.moments, 0): kind = 1
        case (.moments, 1): kind = 2
        default: return .failure(Refusal("a \(h.type) with slot \(h.slot) is not a full shard"))
        }
        guard h.codec != .bf16Delta else { return .failure(Refusal("codec bf16-delta: a full shard was asked for")) }
        guard Int(h.count) == values else { return .failure(Refusal("\(h.count) values, the partition has \(values)")) }
        guard let step = Int(exactly: h.step), step >= minStep else {
            return .failure(Refusal("step \(h.step), at least \(minStep) was asked for"))
        }
        return .success(Accepted(kind: kind, step: step))
    }

    package struct Refusal: Error, Equatable, CustomStringConvertible {
        package var description: String
        init(_ d: String) { description = d }
    }
}
