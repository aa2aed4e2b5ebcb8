import Foundation
import Testing
import PrecisCore
import PrecisWire
import CLZ4

@Suite struct CodecTests {
    func gradientLike(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in Float(rng.normal() * 1e-3) }
    }

    @Test(arguments: [Codec.none, .fp32])
    func losslessCodecsRoundTripExactly(_ codec: Codec) throws {
        let v = gradientLike(10_007, seed: 1) + [0, -0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let c = ShardCodec()
        let payload = try v.withUnsafeBufferPointer { try c.encode($0, codec: codec) }
        var out = [Float](repeating: 7, count: v.count)
        try payload.withUnsafeBytes { try c.decode($0, codec: codec, count: v.count, into: &out) }
        #expect(out.map(\.bitPattern) == v.map(\.bitPattern))
    }

    /// Every length around the 8-value groups of the bit-transposed top plane (tails of 1–7 values
    /// travel as bytes) round-trips bit for bit with both LZ4 codecs; bf16 decodes to the rounded values.
    @Test func everyLengthRoundTrips() throws {
        let c = ShardCodec()
        for n in Array(0...33) + [4095, 4096, 4097] {
            let v = gradientLike(n, seed: UInt64(n)).enumerated().map { $0.offset % 5 == 0 ? -$0.element * 1e6 : $0.element }
            for codec in [Codec.fp32, .bf16] {
                let payload = try v.withUnsafeBufferPointer { try c.encode($0, codec: codec) }
                var out = [Float](repeating: 7, count: n)
                try payload.withUnsafeBytes { try c.decode($0, codec: codec, count: n, into: &out) }
                let want = codec == .fp32 ? v : v.map { ShardCodec.fromBF16(ShardCodec.toBF16($0)) }
                #expect(out.map(\.bitPattern) == want.map(\.bitPattern), "\(codec.name), \(n) values")
            }
        }
    }

    /// The top plane's layout as docs/protocol.md gives it: bit k of value 8j+i is bit i of byte k·m + j.
    @Test func topPlaneIsBitTransposedAsDocumented() throws {
        let v: [Float] = (0..<19).map { Float(bitPattern: UInt32($0 * 37 % 256) << 24 | 0x0012_3456) }
        let c = ShardCodec()
        let payload = try v.withUnsafeBufferPointer { try c.encode($0, codec: .fp32) }
        // The three lower planes as they are, then an LZ4 block of the transposed top plane.
        var raw = Array(payload.prefix(v.count * 3)) + [UInt8](repeating: 0, count: v.count)
        let got = Array(payload.dropFirst(v.count * 3)).withUnsafeBytes { src in
            raw.withUnsafeMutableBytes { dst in
                Int(LZ4_decompress_safe(src.baseAddress!.assumingMemoryBound(to: CChar.self),
                                        dst.baseAddress!.assumingMemoryBound(to: CChar.self) + v.count * 3,
                                        Int32(src.count), Int32(v.count)))
            }
        }
        #expect(got == v.count)
        let n = v.count, m = n / 8, top = Array(raw[(3 * n)...])
        for i in 0..<n {
            let byte = UInt8(v[i].bitPattern >> 24)
            #expect(raw[i] == 0x56 && raw[n + i] == 0x34 && raw[2 * n + i] == 0x12)
            if i < 8 * m {
                for k in 0..<8 {
                    #expect((top[k * m + i / 8] >> UInt8(i % 8)) & 1 == (byte >> UInt8(k)) & 1, "value \(i) bit \(k)")
                }
            } else {
                #expect(top[i] == byte, "tail value \(i)")
            }
        }
    }

    @Test func bf16RoundsToNearestEvenAndShrinksGradientsAboutTwoAndAHalfTimes() throws {
        #expect(ShardCodec.toBF16(1.0) == 0x3F80)
        // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties go to even (1.0).
        #expect(ShardCodec.toBF16(1 + 1.0 / 256) == 0x3F80)
        #expect(ShardCodec.toBF16(1 + 3.0 / 256) == 0x3F82)
        #expect(ShardCodec.fromBF16(ShardCodec.toBF16(.nan)).isNaN)
        let v = gradientLike(1 << 18, seed: 2)
        let c = ShardCodec()
        let fp32 = try v.withUnsafeBufferPointer { try c.encode($0, codec: .fp32) }.count
        let bf16 = try v.withUnsafeBufferPointer { try c.encode($0, codec: .bf16) }.count
        let raw = v.count * 4
        #expect(Double(raw) / Double(fp32) >= 1.0)
        #expect(Double(raw) / Double(bf16) >= 2.2, "bf16 ratio \(Double(raw) / Double(bf16))")
    }

    /// With error feedback, what the receiver accumulates over many steps matches what was sent to
    /// within one bf16 rounding, instead of drifting by steps × rounding.
    @Test func bf16ErrorFeedbackKeepsTheSumExact() throws {
        let n = 4096, steps = 50
        let c = ShardCodec()
        var errorFeedback = [Float](repeating: 0, count: n)
        var sentSum = [Double](repeating: 0, count: n), gotSum = [Double](repeating: 0, count: n)
        var noFeedbackSum = [Double](repeating: 0, count: n)
        var out = [Float](repeating: 0, count: n)
        for s in 0..<steps {
            let g = gradientLike(n, seed: UInt64(100 + s)).map { $0 + 1e-3 }
            for i in 0..<n { sentSum[i] += Double(g[i]) }
            let payload = try g.withUnsafeBufferPointer { gb in try errorFeedback.withUnsafeMutableBufferPointer { try c.encode(gb, codec: .bf16, errorFeedback: $0.baseAddress) } }
            try payload.withUnsafeBytes { try c.decode($0, codec: .bf16, count: n, into: &out) }
            for i in 0..<n { gotSum[i] += Double(out[i]); noFeedbackSum[i] += Double(ShardCodec.fromBF16(ShardCodec.toBF16(g[i]))) }
        }
        let err = zip(sentSum, gotSum).map { abs($0 - $1) }.max()!
        let drift = zip(sentSum, noFeedbackSum).map { abs($0 - $1) }.max()!
        #expect(err < 2e-5, "error with feedback \(err)")
        #expect(drift > 4 * err, "without feedback the sums drift (\(drift))")
    }

    @Test func corruptPayloadsAreRefusedNotMisread() throws {
        let v = gradientLike(1000, seed: 3)
        let c = ShardCodec()
        var payload = try v.withUnsafeBufferPointer { try c.encode($0, codec: .fp32) }
        var out = [Float](repeating: 0, count: 1000)
        #expect(throws: WireError.self) {
            try payload.withUnsafeBytes { try c.decode($0, codec: .fp32, count: 999, into: &out) }
        }
        payload = Array(payload.prefix(payload.count / 2))
        #expect(throws: WireError.self) {
            try payload.withUnsafeBytes { try c.decode($0, codec: .fp32, count: 1000, into: &out) }
        }
    }

    @Test func crc32cKnownAnswer() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.software(UnsafeRawBufferPointer(start: nil, count: 0)) == 0)
        Array("123456789".utf8).withUnsafeBytes { #expect(CRC32C.software($0) == 0xE306_9283) }
    }

    /// The hardware path (three interleaved streams of 8 KiB, combined) gives the table-driven
    /// checksum for every length around the stream boundaries, every alignment, and with a seed.
    @Test func crc32cHardwareMatchesSoftware() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<(3 * 8192 * 3 + 100)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let lengths = [0, 1, 7, 8, 9, 63, 4096, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 13, 6 * 8192, 9 * 8192 + 99]
        bytes.withUnsafeBytes { all in
            for n in lengths {
                for offset in [0, 1, 3] where offset + n <= all.count {
                    let b = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)])
                    #expect(CRC32C.checksum(b) == CRC32C.software(b), "length \(n), offset \(offset)")
                    #expect(CRC32C.checksum(b, seed: 0xDEAD_BEEF) == CRC32C.software(b, seed: 0xDEAD_BEEF), "seeded, length \(n)")
                }
            }
        }
        print("CRC-32C in hardware: \(CRC32C.hardware)")
    }
}

@Suite struct MessageTests {
    let figures = ContributionFigures(lossSum: -.pi * 1e5, tokens: 4_000_000_000, examples: 77)

    func message() throws -> DataMessage {
        let v: [Float] = (0..<300).map { Float($0) * 0.5 }
        return try v.withUnsafeBufferPointer {
            try DataMessage.make(type: .pushGradient, codec: .fp32, epoch: 7, step: 123_456_789_012, partition: 3, slot: 5, values: $0,
                                 using: ShardCodec(), figures: figures)
        }
    }

    @Test func headerIsFortyBytesAndRoundTrips() throws {
        let m = try message()
        let h = m.header.bytes()
        #expect(h.count == 40)
        #expect(Array(h[0..<4]) == Array("PRCS".utf8))
        #expect(h[24] == 5 && h[28] == 44 && h[29] == 1, "slot at 24, count (300) at 28")
        let parsed = try DataMessage(frames: m.frames)
        #expect(parsed == m)
        var out = [Float](repeating: 0, count: 300)
        try parsed.decode(into: &out, capacity: 300, using: ShardCodec())
        #expect(out[299] == 149.5)
        #expect(throws: WireError.lengthMismatch(field: "shard", expected: 100, got: 300)) {
            try parsed.decode(into: &out, capacity: 100, using: ShardCodec())
        }
        // A gradient push ends with its contribution's figures (16 bytes, little-endian), which the
        // shard's decoding leaves alone.
        #expect(try parsed.figures() == figures)
        let tail = Array(m.payload.suffix(16))
        #expect(tail[0..<8] == ArraySlice(withUnsafeBytes(of: figures.lossSum.bitPattern.littleEndian) { Array($0) }))
        #expect(tail[8..<16] == [0x00, 0x28, 0x6B, 0xEE, 77, 0, 0, 0], "tokens 4,000,000,000, then examples")
        let none = try (0..<3).map(Float.init).withUnsafeBufferPointer {
            try DataMessage.make(type: .pushGradient, codec: .none, epoch: 1, step: 1, partition: 0, values: $0, using: ShardCodec(), figures: figures)
        }
        #expect(none.payload.count == 3 * 4 + 16)
        // A payload too short to hold them is an error, not a read past its end.
        let short = DataMessage(header: WireHeader(type: .pushGradient, codec: .none, epoch: 1, step: 1, partition: 0, count: 0), payload: [1, 2, 3])
        #expect(throws: WireError.lengthMismatch(field: "gradient payload (at least, for its contribution figures)", expected: 16, got: 3)) {
            try short.figures()
        }
        // Other data messages carry none: their whole payload is the shard.
        let parameters = try (0..<3).map(Float.init).withUnsafeBufferPointer {
            try DataMessage.make(type: .parameters, codec: .none, epoch: 1, step: 1, partition: 0, values: $0, using: ShardCodec())
        }
        #expect(parameters.payload.count == 12 && parameters.header.trailerLength == 0)
    }

    @Test func everyKindOfBadMessageIsNamed() throws {
        let m = try message()
        var bad = m.frames
        bad[0][0] = 0x58
        #expect(throws: WireError.badMagic(0x5343_5258)) { try DataMessage(frames: bad) }
        bad = m.frames; bad[0][4] = 9
        #expect(throws: WireError.wrongVersion(got: 9, expected: WireHeader.version)) { try DataMessage(frames: bad) }
        bad = m.frames; bad[0][7] = 77
        #expect(throws: WireError.unknownCodec(77)) { try DataMessage(frames: bad) }
        bad = m.frames; bad[0][6] = 99
        #expect(throws: WireError.unknownType(99)) { try DataMessage(frames: bad) }
        bad = m.frames; bad[1][5] ^= 0xFF
        #expect(throws: WireError.self) { try DataMessage(frames: bad) }
        bad = m.frames; bad[1].removeLast()
        #expect(throws: WireError.lengthMismatch(field: "payload", expected: m.payload.count, got: m.payload.count - 1)) {
            try DataMessage(frames: bad)
        }
        #expect(throws: WireError.truncated(expected: 40, got: 10)) { try DataMessage(frames: [Array(m.frames[0].prefix(10)), []]) }
        // A header frame longer than 40 bytes is refused too; one of another version is told so first.
        bad = m.frames; bad[0].append(0)
        #expect(throws: WireError.lengthMismatch(field: "header", expected: 40, got: 41)) { try DataMessage(frames: bad) }
        bad[0][4] = 5
        #expect(throws: WireError.wrongVersion(got: 5, expected: WireHeader.version)) { try DataMessage(frames: bad) }
        #expect(throws: WireError.self) { try DataMessage(frames: [m.frames[0]]) }
    }

    /// A NaN or infinite loss or norm reaches the coordinator as what it is (JSON has no NaN: it
    /// travels as a string), not as an empty object it cannot decode.
    @Test func nonFiniteNumbersInControlMessagesSurviveTheTrip() throws {
        let done = DoneMessage(step: 1, contribution: 0, lossSum: .nan, tokens: 10, examples: 2, computeSeconds: 0, waitSeconds: 0,
                               wireBytes: 0, rawBytes: 0, gradNorm: -.infinity)
        let back = try Control.decode(DoneMessage.self, DataMessage(frames: Control.frames(.contributionDone, done)))
        #expect(back.lossSum.isNaN && back.gradNorm == -.infinity && back.tokens == 10)
        let norm = try Control.decode(NormMessage.self, DataMessage(frames: Control.frames(.normReport, NormMessage(
            step: 3, server: 1, sumOfSquares: .infinity, contributions: [ContributionFigures(lossSum: .infinity, tokens: 3, examples: 1)]))))
        #expect(norm.sumOfSquares == .infinity && norm.step == 3)
        #expect(norm.contributions == [ContributionFigures(lossSum: .infinity, tokens: 3, examples: 1)])
    }
}

@Suite struct SocketTests {
    /// A DEALER sends data messages to a ROUTER over TCP loopback (port chosen by the OS); the router
    /// sees the peer identity, verifies and decodes each one, and a corrupted one is dropped with its
    /// reason while the next valid message still arrives.
    @Test func routerAndDealerExchangeVerifiedShardsOverTCP() throws {
        let ctx = try ZMQContext()
        let router = try ZMQSocket(ctx, .router)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))
        let dealer = try ZMQSocket(ctx, .dealer)
        try dealer.set(ZMQSocket.routingID, bytes: Array("worker-0".utf8))
        try dealer.connect(endpoint)

        let codec = ShardCodec()
        var values = [Float](repeating: 0, count: 50_000)
        for i in 0..<values.count { values[i] = Float(i % 97) * 1e-3 }
        let good = try values.withUnsafeBufferPointer {
            try DataMessage.make(type: .pushGradient, codec: .bf16, epoch: 1, step: 5, partition: 2, values: $0, using: codec,
                                 figures: ContributionFigures(lossSum: 1, tokens: 2, examples: 3))
        }
        var corrupt = good.frames
        corrupt[1][10] ^= 0x55
        try dealer.send(corrupt)
        try dealer.send(good.frames)

        var dropped: [String] = []
        var received: DataMessage?
        for _ in 0..<2 {
            let frames = try router.receive(timeoutMs: 5000)
            #expect(frames.count == 3)
            #expect(String(decoding: frames[0], as: UTF8.self) == "worker-0")
            do { received = try DataMessage(frames: Array(frames.dropFirst())) } catch {
                dropped.append("\(String(decoding: frames[0], as: UTF8.self)): \(error)")
            }
        }
        #expect(dropped.count == 1 && dropped[0].hasPrefix("worker-0: checksum mismatch"))
        let msg = try #require(received)
        var out = [Float](repeating: 0, count: values.count)
        try msg.decode(into: &out, capacity: out.count, using: ShardCodec())
        for i in stride(from: 0, to: values.count, by: 997) { #expect(abs(out[i] - values[i]) <= abs(values[i]) / 128) }
        // Replies route back by identity.
        try router.send([Array("worker-0".utf8), Array("ack".utf8)])
        #expect(try dealer.receive(timeoutMs: 5000) == [Array("ack".utf8)])
    }

    /// The heartbeat thread beats on its own DEALER, records the acknowledgements, and `stop()`
    /// returns only once it has ended: nothing arrives after it, and the context closes at once.
    @Test func heartbeatThreadBeatsAndStopsForGood() throws {
        let ctx = try ZMQContext()
        let router = try ZMQSocket(ctx, .router)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        let hb = HeartbeatThread(context: ctx, coordinator: endpoint, id: 7, interval: 0.02, name: "test")
        for _ in 0..<3 {
            let frames = try router.receive(timeoutMs: 5000)
            let m = try DataMessage(frames: Array(frames.dropFirst()))
            #expect(m.header.type == .heartbeat)
            #expect(try Control.decode(HeartbeatMessage.self, m).id == 7)
            try router.send([frames[0]] + Control.frames(.heartbeatAck, Empty()))
        }
        let deadline = Date().addingTimeInterval(5)
        while hb.coordinatorSilence > 0.5 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(hb.coordinatorSilence < 1, "the acknowledgements were not recorded")
        let t0 = Date()
        hb.stop()
        hb.stop()  // a second stop returns at once
        #expect(Date().timeIntervalSince(t0) < 2)
        // Drain what was sent before the stop; then count what still comes over 2 s (100 intervals): a
        // beat sent before the stop may arrive late when ZeroMQ's I/O thread was not scheduled for a
        // while, a thread still beating would send dozens.
        while (try? router.receive(timeoutMs: 100)) != nil {}
        var late = 0
        let quiet = Date().addingTimeInterval(2)
        while Date() < quiet { if (try? router.receive(timeoutMs: 100)) != nil { late += 1 } }
        #expect(late <= 5, "\(late) heartbeats after stop()")
    }

    @Test func receiveTimesOutInsteadOfHanging() throws {
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .router)
        try s.bind("tcp://127.0.0.1:*")
        let t0 = Date()
        #expect(throws: WireError.timeout(operation: "receive", milliseconds: 100)) { try s.receive(timeoutMs: 100) }
        #expect(Date().timeIntervalSince(t0) < 5)
        #expect(throws: WireError.self) { try s.connect("not-an-endpoint") }
    }
}

@Suite struct ZeroCopyTests {
    /// A payload sent from a WireBuffer arrives intact, the buffer is busy until ZeroMQ has sent it,
    /// and a free buffer is reused instead of allocating another.
    @Test func wireBuffersAreSentWithoutCopiesAndReused() throws {
        let ctx = try ZMQContext()
        let router = try ZMQSocket(ctx, .router)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        let dealer = try ZMQSocket(ctx, .dealer)
        try dealer.set(ZMQSocket.routingID, bytes: Array("w".utf8))
        try dealer.connect(endpoint)
        var values = [Float](repeating: 0, count: 100_000)
        for i in values.indices { values[i] = Float(i % 113) * 1e-3 }
        let codec = ShardCodec()
        var pool: [WireBuffer] = []
        for round in 0..<3 {
            let buf = WireBuffer.free(in: &pool)
            let h = try values.withUnsafeBufferPointer {
                try codec.encode($0, codec: .fp32, into: buf, type: .pushGradient, epoch: 1, step: UInt64(round), partition: 2, slot: 1,
                                 figures: ContributionFigures(lossSum: Double(round) + 0.5, tokens: 10 * round, examples: round))
            }
            try dealer.send(header: h, payload: buf)
            let frames = try router.receive(timeoutMs: 5000)
            #expect(frames[0] == Array("w".utf8))
            let m = try DataMessage(frames: Array(frames.dropFirst()))
            #expect(m.header.step == UInt64(round) && m.header.slot == 1 && m.header.partition == 2)
            #expect(try m.figures() == ContributionFigures(lossSum: Double(round) + 0.5, tokens: 10 * round, examples: round))
            var out = [Float](repeating: 0, count: values.count)
            try m.decode(into: &out, capacity: out.count, using: codec)
            #expect(out == values)
            // Received means sent: the buffer is free again once ZeroMQ's I/O thread has released the
            // message (a moment, or longer while a loaded machine has not scheduled that thread).
            let deadline = Date().addingTimeInterval(10)
            while !buf.isFree && Date() < deadline { usleep(1000) }
            #expect(buf.isFree)
        }
        #expect(pool.count == 1, "one buffer served every round")
    }
}

@Suite struct InPlaceReceiveTests {
    /// A message read in place is verified like `DataMessage(frames:)` (payload length, CRC-32C),
    /// names the sender on a ROUTER, decodes straight from ZeroMQ's buffer, and a bad one is handed
    /// over as the error that made it unreadable; nothing waiting gives false at once.
    @Test func dataMessagesAreReadAndVerifiedInPlace() throws {
        let ctx = try ZMQContext()
        let router = try ZMQSocket(ctx, .router)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        let dealer = try ZMQSocket(ctx, .dealer)
        try dealer.set(ZMQSocket.routingID, bytes: Array("w7".utf8))
        try dealer.connect(endpoint)
        #expect(try router.receiveInPlace { _, _ in Issue.record("nothing was sent") } == false)

        let values: [Float] = (0..<5000).map { Float($0 % 97) * 0.25 - 3 }
        let codec = ShardCodec()
        let good = try values.withUnsafeBufferPointer {
            try DataMessage.make(type: .pushGradient, codec: .bf16, epoch: 3, step: 9, partition: 4, slot: 2, values: $0, using: codec,
                                 figures: ContributionFigures(lossSum: .nan, tokens: 5, examples: 1))
        }
        var corrupt = good.frames
        corrupt[1][corrupt[1].count / 2] ^= 0xFF
        var threeFrames = good.frames
        threeFrames.append([1, 2, 3])
        for frames in [good.frames, corrupt, threeFrames] { try dealer.send(frames) }

        var results: [String] = []
        var out = [Float](repeating: 0, count: values.count)
        let deadline = Date().addingTimeInterval(5)
        while results.count < 3 && Date() < deadline {
            _ = try ZMQPoll.wait([router], timeoutMs: 100)
            while try router.receiveInPlace({ received, identity in
                #expect(Array(identity) == Array("w7".utf8))
                switch received {
                case .success(let m):
                    #expect(m.header.step == 9 && m.header.partition == 4 && m.header.slot == 2 && m.header.codec == .bf16)
                    try m.decode(into: &out, capacity: out.count, using: codec)
                    let f = try m.figures()
                    #expect(f.lossSum.isNaN && f.tokens == 5 && f.examples == 1, "a NaN loss travels as it is")
                    results.append("ok")
                case .failure(let e):
                    results.append("\(e)")
                }
            }) {}
        }
        #expect(results.count == 3)
        #expect(results.first == "ok")
        #expect(out == values.map { ShardCodec.fromBF16(ShardCodec.toBF16($0)) })
        #expect(results.dropFirst().first?.hasPrefix("checksum mismatch") == true, "\(results)")
        #expect(results.last == "frames: expected 2 bytes, got 3", "\(results)")
    }
}

@Suite struct PartitionPlanTests {
    /// A plan with cuts: no partition straddles a cut, none is larger than asked, every value is
    /// covered once, each server owns one contiguous run and the runs are about equal.
    @Test func partitionsFollowTheCutsAndServersStayBalanced() {
        let total = 8_153_088
        let cuts = [2_359_808, 3_148_288, 3_936_768, 4_725_248, 4_725_760, 4_988_416, 6_039_040, 7_089_664, 8_152_576]
        for servers in 1...3 {
            let plan = PartitionPlan(total: total, servers: servers, partitionFloats: 1_024_000, cuts: cuts)
            #expect(plan.bounds.first == 0 && plan.bounds.last == total)
            #expect(zip(plan.bounds, plan.bounds.dropFirst()).allSatisfy { $0 < $1 && $1 - $0 <= 1_024_000 })
            for c in cuts { #expect(plan.bounds.contains(c), "cut \(c) is a partition boundary") }
            #expect(plan.owner == plan.owner.sorted() && Set(plan.owner) == Set(0..<servers))
            let sizes = (0..<servers).map { plan.range(ofServer: $0).count }
            #expect(sizes.reduce(0, +) == total)
            #expect(sizes.max()! - sizes.min()! <= 2_100_000, "servers own \(sizes)")
        }
        // Too few pieces for the servers: the uniform plan.
        let small = PartitionPlan(total: 1000, servers: 4, partitionFloats: 10_000, cuts: [10])
        #expect(small == PartitionPlan(total: 1000, servers: 4, partitionFloats: 10_000))
    }
}
