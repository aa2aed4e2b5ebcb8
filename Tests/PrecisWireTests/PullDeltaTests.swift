import Testing
import PrecisCore
import PrecisWire

/// `pull_codec: bf16-delta` on its own: the codec, and a chain of versions sent as bf16 deltas
/// (the server's shadow side by side with a puller's copy, through the real encoder and decoder).
@Suite struct PullDeltaTests {
    /// Parameters of mixed scales, and a walk of AdamW-sized updates (a few 1e-4, some larger, some zero).
    func parameters(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { i in Float(rng.normal()) * (i % 7 == 0 ? 3 : 0.05) + (i % 11 == 0 ? 1 : 0) }
    }

    func step(_ master: inout [Float], rng: inout SeededRNG, scale: Float) {
        for i in master.indices where i % 13 != 0 { master[i] -= scale * Float(rng.normal()) * (i % 5 == 0 ? 10 : 1) }
    }

    /// The payload of bf16-delta is the bf16 codec's: it decodes to each value rounded to nearest even.
    @Test func payloadIsTheValuesRoundedToBF16() throws {
        let v = parameters(4099, seed: 3).map { $0 * 1e-4 }
        let c = ShardCodec()
        let payload = try v.withUnsafeBufferPointer { try c.encode($0, codec: .bf16Delta) }
        #expect(payload == (try v.withUnsafeBufferPointer { try c.encode($0, codec: .bf16) }))
        var out = [Float](repeating: 9, count: v.count)
        try payload.withUnsafeBytes { try c.decode($0, codec: .bf16Delta, count: v.count, into: &out) }
        let rounded = out.map(\.bitPattern) == v.map { ShardCodec.fromBF16(ShardCodec.toBF16($0)).bitPattern }
        #expect(rounded)
        #expect(Codec(name: "bf16-delta") == .bf16Delta && Codec.bf16Delta.name == "bf16-delta" && Codec.bf16Delta.bytesPerValue == 2)
    }

    /// 60 versions through encode → wire bytes → decode → add: the copy is the shadow bit for bit,
    /// within the stated bound of the master after every version, and the error does not grow (the
    /// residual rides in the next delta). Sending the updates themselves without the residual drifts.
    @Test func copyStaysWithinOneDeltasRoundingOfTheMaster() throws {
        let n = 20_011
        var master = parameters(n, seed: 7)
        var rng = SeededRNG(seed: 8)
        let shadow = FloatBuffer(master), delta = FloatBuffer(count: n)
        var copy = master, naive = master, previous = master
        let server = ShardCodec(), worker = ShardCodec()
        var decoded = [Float](repeating: 0, count: n)
        var worstRatio = 0.0, lastError = 0.0, naiveError = 0.0
        for version in 1...60 {
            step(&master, rng: &rng, scale: version % 10 == 0 ? 1e-2 : 1e-4)
            // Server: δ = master − shadow, encoded; the shadow takes the decoded δ.
            master.withUnsafeBufferPointer { PullDelta.advance(shadow: shadow.pointer, toward: $0.baseAddress!, delta: delta.pointer, count: n) }
            let sentDelta = Array(delta.buffer)
            let payload = try server.encode(UnsafeBufferPointer(delta.buffer), codec: .bf16Delta)
            PullDelta.commit(shadow: shadow.pointer, delta: delta.pointer, count: n)
            // Worker: decode, add.
            try payload.withUnsafeBytes { try worker.decode($0, codec: .bf16Delta, count: n, into: &decoded) }
            decoded.withUnsafeBufferPointer { d in copy.withUnsafeMutableBufferPointer { PullDelta.add(d.baseAddress!, to: $0.baseAddress!, count: n) } }
            let same = copy.map(\.bitPattern) == shadow.array.map(\.bitPattern)
            #expect(same, "version \(version): copy and shadow differ")
            var worst = 0.0
            for i in 0..<n {
                let err = abs(Double(master[i]) - Double(copy[i]))
                let bound = PullDelta.errorBound(delta: sentDelta[i], copy: copy[i])
                #expect(err <= bound, "version \(version) value \(i): error \(err) above the bound \(bound)")
                #expect(err <= PullDelta.errorBound(decodedDelta: decoded[i], copy: copy[i]), "version \(version) value \(i)")
                if bound > 0 { worstRatio = max(worstRatio, err / bound) }
                worst = max(worst, err)
                // Without error feedback: the update alone, rounded, added to a copy that never learns what was lost.
                naive[i] += ShardCodec.fromBF16(ShardCodec.toBF16(master[i] - previous[i]))
            }
            previous = master
            if version == 59 { lastError = worst }
            if version == 60 { naiveError = zip(master, naive).map { abs(Double($0) - Double($1)) }.max()! }
        }
        #expect(worstRatio > 0.2, "the bound is tight, not vacuous (worst error / bound \(worstRatio))")
        // Version 59's deltas are 1e-4-sized: the error is that small too, though version 50 moved by 1e-2.
        #expect(lastError < 1e-5, "error after a small step: \(lastError)")
        #expect(naiveError > 10 * lastError, "bf16 updates without the residual drift: \(naiveError) vs \(lastError)")
    }

    @Test func slotNamesTheBaseVersionPlusOne() {
        #expect(PullDelta.slot(base: nil) == 0 && PullDelta.slot(base: -1) == 0)
        #expect(PullDelta.slot(base: 0) == 1 && PullDelta.slot(base: 41) == 42)
        #expect(PullDelta.base(slot: 0) == nil && PullDelta.base(slot: 42) == 41)
        #expect(PullDelta.slot(base: Int(UInt32.max)) == 0, "a base the slot cannot hold is no base")
    }
}
