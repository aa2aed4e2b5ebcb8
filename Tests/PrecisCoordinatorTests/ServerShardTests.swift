import Testing
import PrecisCoordinator
import PrecisWire

/// What the coordinator takes from a server for a snapshot or the final parameters: a whole
/// partition's parameters, m or v, at a step that is one. Anything else is refused with a reason
/// before a value is written (a moments shard with slot 2 once landed in v while it was counted as
/// the next partition's parameters; a short shard would have left the rest of its partition as it was).
@Suite struct ServerShardTests {
    func header(_ type: MessageType, slot: UInt32 = 0, codec: Codec = .none, step: UInt64 = 7, count: UInt32 = 64) -> WireHeader {
        WireHeader(type: type, codec: codec, epoch: 1, step: step, partition: 3, slot: slot, count: count, payloadLength: 0, checksum: 0)
    }

    @Test func wholeShardsGoToTheirBuffer() throws {
        #expect(try ServerShard.check(header(.parameters), values: 64).get() == .init(kind: 0, step: 7))
        #expect(try ServerShard.check(header(.moments, codec: .fp32), values: 64).get() == .init(kind: 1, step: 7))
        #expect(try ServerShard.check(header(.moments, slot: 1, codec: .fp32), values: 64).get() == .init(kind: 2, step: 7))
        #expect(try ServerShard.check(header(.parameters, step: 9), values: 64, minStep: 9).get() == .init(kind: 0, step: 9))
    }

    @Test func anythingElseIsRefusedWithItsReason() {
        let cases: [(WireHeader, Int, String)] = [
            (header(.moments, slot: 2), 0, "a moments with slot 2 is not a full shard"),
            (header(.parameters, slot: 1, codec: .bf16Delta), 0, "a parameters with slot 1 is not a full shard"),
            (header(.parameters, codec: .bf16Delta), 0, "codec bf16-delta: a full shard was asked for"),
            (header(.pushGradient), 0, "a pushGradient with slot 0 is not a full shard"),
            (header(.parameters, count: 63), 0, "63 values, the partition has 64"),
            (header(.parameters, count: 65), 0, "65 values, the partition has 64"),
            (header(.parameters, step: UInt64(Int.max) + 1), 0, "step 9223372036854775808, at least 0 was asked for"),
            (header(.parameters, step: 6), 7, "step 6, at least 7 was asked for"),
        ]
        for (h, minStep, why) in cases {
            switch ServerShard.check(h, values: 64, minStep: minStep) {
            case .success(let a): Issue.record("\(h) accepted as \(a)")
            case .failure(let r): #expect(r.description == why)
            }
        }
    }
}
