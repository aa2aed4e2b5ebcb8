import Testing
import PrecisCore
import PrecisServer
import PrecisWire

/// The server's `bf16-delta` chains: one shadow per partition, each link encoded once and sent to
/// every puller on the chain; anyone else gets the shadow in full and joins it.
@Suite struct DeltaChainsTests {
    let n = 5003

    func decode(_ r: (header: WireHeader, payload: WireBuffer, kind: DeltaChains.Kind)) throws -> [Float] {
        var out = [Float](repeating: 0, count: Int(r.header.count))
        try ShardCodec().decode(r.payload.bytes, codec: r.header.codec, count: Int(r.header.count), into: &out)
        return out
    }

    /// A puller that follows the replies: full replies replace its copy, deltas are added.
    func follow(_ copy: inout [Float], _ r: (header: WireHeader, payload: WireBuffer, kind: DeltaChains.Kind)) throws {
        let v = try decode(r)
        if r.header.codec == .bf16Delta {
            v.withUnsafeBufferPointer { d in copy.withUnsafeMutableBufferPointer { PullDelta.add(d.baseAddress!, to: $0.baseAddress!, count: $0.count) } }
        } else { copy = v }
    }

    @Test func workersOnTheChainGetOneSharedDeltaOthersTheShadowInFull() throws {
        var rng = SeededRNG(seed: 5)
        var master = (0..<n).map { _ in Float(rng.normal()) * 0.1 }
        let chains = DeltaChains()
        func pull(version: Int, base: Int?) throws -> (header: WireHeader, payload: WireBuffer, kind: DeltaChains.Kind) {
            try master.withUnsafeBufferPointer { try chains.reply(local: 0, partition: 7, master: $0, version: version, base: base, epoch: 4) }
        }
        // Version 3: the chain starts; the first reply is the master itself, lossless.
        let first = try pull(version: 3, base: nil)
        #expect(first.kind == .full && first.header.codec == .fp32 && first.header.slot == 0 && first.header.step == 3)
        #expect(first.header.partition == 7 && first.header.epoch == 4)
        var w0 = try decode(first), w1 = w0
        let firstIsMaster = w0.map(\.bitPattern) == master.map(\.bitPattern)
        #expect(firstIsMaster)
        for v in 4...12 {
            for i in master.indices { master[i] += Float(rng.normal()) * 1e-3 }
            let a = try pull(version: v, base: v - 1), b = try pull(version: v, base: v - 1)
            #expect(a.kind == .delta && a.header.codec == .bf16Delta && a.header.slot == UInt32(v) && a.header.step == UInt64(v))
            #expect(a.payload === b.payload && a.header == b.header, "one encoding per link, sent to every worker")
            #expect(a.payload.count < n * 2 + 64, "bf16: about 2 bytes a value (\(a.payload.count))")
            try follow(&w0, a); try follow(&w1, b)
            let d = try decode(a)
            let outside = master.indices.filter { abs(Double(master[$0]) - Double(w0[$0])) > PullDelta.errorBound(decodedDelta: d[$0], copy: w0[$0]) }
            #expect(outside.isEmpty, "version \(v): \(outside.count) values outside the bound")
        }
        let workersSame = w0.map(\.bitPattern) == w1.map(\.bitPattern)
        #expect(workersSame)
        #expect(chains.sent[.delta] == 18 && chains.sent[.full] == 1)
        // A worker that missed version 12 (its copy is at 10), one already at 12 (a repeated pull), a
        // new one, and one naming a base this chain never sent: the shadow in full (not the master:
        // they join the chain).
        var late = w0
        for base in [10, 12, nil, 9_999] as [Int?] {
            let r = try pull(version: 12, base: base)
            #expect(r.kind == .full && r.header.codec == .fp32 && r.header.slot == 0)
            late = try decode(r)
            let same = late.map(\.bitPattern) == w0.map(\.bitPattern)
            #expect(same, "base \(String(describing: base)): the full reply is the shadow")
        }
        let isMaster = late.map(\.bitPattern) == master.map(\.bitPattern)
        #expect(!isMaster, "the shadow is the chain's copy, not the master")
        // The next version: the late worker is on the chain.
        for i in master.indices { master[i] += 1e-3 }
        let next = try pull(version: 13, base: 12)
        #expect(next.kind == .delta)
        try follow(&late, next); try follow(&w0, next)
        let lateSame = late.map(\.bitPattern) == w0.map(\.bitPattern)
        #expect(lateSame)
        // New initial values (or an assignment): the chain starts again, full replies first.
        chains.reset()
        let restarted = try pull(version: 13, base: 12)
        #expect(restarted.kind == .full)
        let restartedIsMaster = try decode(restarted).map(\.bitPattern) == master.map(\.bitPattern)
        #expect(restartedIsMaster)
    }

    /// Versions skipped between pulls (ssp/async, or nobody pulled a version): one delta spans
    /// them, and the copy is as close to the master as after a single step.
    @Test func aDeltaSpansVersionsNobodyPulled() throws {
        var master = (0..<n).map { Float($0 % 97) * 0.01 }
        let chains = DeltaChains()
        var copy = try master.withUnsafeBufferPointer {
            try decode(try chains.reply(local: 2, partition: 2, master: $0, version: 10, base: nil, epoch: 1))
        }
        for i in master.indices { master[i] -= 3e-4 * Float(i % 5) }
        let r = try master.withUnsafeBufferPointer { try chains.reply(local: 2, partition: 2, master: $0, version: 17, base: 10, epoch: 1) }
        #expect(r.kind == .delta && r.header.slot == 11 && r.header.step == 17)
        try follow(&copy, r)
        let d = try decode(r)
        let outside = master.indices.filter { abs(Double(master[$0]) - Double(copy[$0])) > PullDelta.errorBound(decodedDelta: d[$0], copy: copy[$0]) }
        #expect(outside.isEmpty, "\(outside.count) values outside the bound")
    }
}
