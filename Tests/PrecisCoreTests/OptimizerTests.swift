import Foundation
import Testing
import PrecisCore

@Suite struct OptimizerTests {
    @Test func adamWMatchesTheFormulaInDoublePrecision() {
        var table = ParameterTable()
        table.add("w", [5], decay: true)
        table.add("b", [3], decay: false)
        let p: [Float] = [0.5, -1, 2, 0.25, -0.75, 0.1, 0.2, 0.3]
        let grads: [[Float]] = [[0.1, -0.2, 0.3, 0, 1, -1, 0.5, 0.05], [0.2, 0.1, -0.3, 0.4, -1, 1, 0.5, -0.05]]
        let params = FloatBuffer(p), g = FloatBuffer(count: 8)
        let opt = OptimizerState(table: table, adamw: AdamW(weightDecay: 0.1),
                                 schedule: LRSchedule(kind: .constant, baseLR: 0.01, totalSteps: 10))
        var ref = p.map(Double.init), m = [Double](repeating: 0, count: 8), v = m
        for (t, gs) in grads.enumerated() {
            for i in 0..<8 { g[i] = gs[i] }
            opt.apply(params: params.pointer, grads: g.pointer)
            for i in 0..<8 {
                let gi = Double(gs[i])
                if i < 5 { ref[i] *= 1 - 0.01 * 0.1 }
                m[i] = 0.9 * m[i] + 0.1 * gi
                v[i] = 0.999 * v[i] + 0.001 * gi * gi
                let mh = m[i] / (1 - pow(0.9, Double(t + 1))), vh = v[i] / (1 - pow(0.999, Double(t + 1)))
                ref[i] -= 0.01 * mh / (vh.squareRoot() + 1e-8)
            }
        }
        for i in 0..<8 { #expect(abs(Double(params[i]) - ref[i]) < 1e-6, "param \(i)") }
        #expect(opt.steps == 2)
    }

    @Test func optimizerOnAShardMatchesTheWholeBuffer() {
        var table = ParameterTable()
        table.add("a.weight", [6], decay: true)
        table.add("a.bias", [4], decay: false)
        table.add("b.weight", [6], decay: true)
        var rng = SeededRNG(seed: 7)
        let init0 = (0..<16).map { _ in Float(rng.normal()) }, gr = (0..<16).map { _ in Float(rng.normal()) }
        let whole = FloatBuffer(init0), g1 = FloatBuffer(gr)
        let sched = LRSchedule(kind: .linear, baseLR: 0.1, warmupSteps: 1, totalSteps: 5)
        let full = OptimizerState(table: table, adamw: AdamW(weightDecay: 0.01), schedule: sched)
        for _ in 0..<3 { full.apply(params: whole.pointer, grads: g1.pointer) }
        // Two shards splitting in the middle of a parameter.
        let shards = [0..<9, 9..<16].map { OptimizerState(table: table, range: $0, adamw: AdamW(weightDecay: 0.01), schedule: sched) }
        let split = FloatBuffer(init0), g2 = FloatBuffer(gr)
        for _ in 0..<3 { for s in shards { s.apply(params: split.pointer, grads: g2.pointer) } }
        #expect(whole.array == split.array)
    }

    @Test func schedulesMatchTransformers() {
        let lin = LRSchedule(kind: .linear, baseLR: 1, warmupSteps: 2, totalSteps: 10)
        #expect((0..<11).map { lin.lr(at: $0) } == [0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0])
        let cos = LRSchedule(kind: .cosine, baseLR: 1, warmupSteps: 0, totalSteps: 4)
        let want = [1, 0.8535533905932737, 0.5, 0.14644660940672627, 0]
        for (i, w) in want.enumerated() { #expect(abs(cos.lr(at: i) - w) < 1e-12) }
        let cw = LRSchedule(kind: .constantWithWarmup, baseLR: 2, warmupSteps: 4, totalSteps: 100)
        #expect([0, 1, 4, 50].map { cw.lr(at: $0) } == [0, 0.5, 2, 2])
        #expect(LRSchedule(kind: .constant, baseLR: 3, totalSteps: 1).lr(at: 7) == 3)
        #expect(LRSchedule.warmupSteps(ratio: 0.1, totalSteps: 25) == 3)
    }

    @Test func clippingCoefficient() {
        #expect(GradClip.coefficient(totalNorm: 0.5, maxNorm: 1) == 1)
        #expect(abs(GradClip.coefficient(totalNorm: 4, maxNorm: 1) - Float(1 / (4 + 1e-6))) < 1e-9)
        let g: [Float] = [3, 4]
        #expect(GradClip.norm(g, count: 2) == 5)
    }

    @Test func decaySegmentsMergeAndClip() {
        var t = ParameterTable()
        t.add("x.weight", [4], decay: true)
        t.add("y.weight", [4], decay: true)
        t.add("y.bias", [2], decay: false)
        let segs = t.decaySegments(in: 2..<9)
        #expect(segs.count == 2)
        #expect(segs[0].range == 2..<8 && segs[0].decay)
        #expect(segs[1].range == 8..<9 && !segs[1].decay)
    }
}

@Suite struct DropoutTests {
    @Test func keepsAboutOneMinusPAndScales() {
        let n = 100_000
        let x = [Float](repeating: 1, count: n)
        var y = [Float](repeating: 0, count: n)
        Dropout.apply(&y, x, count: n, p: 0.1, seed: 1, stream: 3)
        let kept = y.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / Double(n) - 0.9) < 0.005)
        #expect(kept.allSatisfy { abs($0 - 1 / 0.9) < 1e-6 })
    }

    @Test func maskIsAPureFunctionOfSeedStreamAndIndex() {
        let n = 1001
        let x = (0..<n).map { Float($0) }
        var whole = [Float](repeating: 0, count: n), parts = whole
        Dropout.apply(&whole, x, count: n, p: 0.3, seed: 9, stream: 5)
        // The same tensor in two unaligned pieces gives the same mask.
        x.withUnsafeBufferPointer { xb in
            parts.withUnsafeMutableBufferPointer { pb in
                Dropout.apply(pb.baseAddress!, xb.baseAddress!, count: 333, p: 0.3, seed: 9, stream: 5, offset: 0)
                Dropout.apply(pb.baseAddress! + 333, xb.baseAddress! + 333, count: n - 333, p: 0.3, seed: 9, stream: 5, offset: 333)
            }
        }
        #expect(whole == parts)
        var other = [Float](repeating: 0, count: n)
        Dropout.apply(&other, x, count: n, p: 0.3, seed: 9, stream: 6)
        #expect(other != whole)
    }

    /// Forward records its mask one bit per value; backward applies the recorded mask to another
    /// tensor: exactly the values drawing the mask again gives, for any length and offset.
    @Test(arguments: [1, 7, 8, 1001, 300_003])
    func recordedMaskIsTheDrawnMask(_ n: Int) {
        let x = (0..<n).map { Float($0 % 97) + 1 }, g = (0..<n).map { Float($0 % 13) - 6.5 }
        var drawn = [Float](repeating: 0, count: n), recorded = drawn, gDrawn = drawn, gRecorded = drawn
        var bits = [UInt8](repeating: 0, count: (n + 7) / 8)
        Dropout.apply(&drawn, x, count: n, p: 0.1, seed: 4, stream: 2, offset: 37)
        Dropout.apply(&recorded, x, count: n, p: 0.1, seed: 4, stream: 2, offset: 37, recordingTo: &bits)
        #expect(drawn == recorded)
        Dropout.apply(&gDrawn, g, count: n, p: 0.1, seed: 4, stream: 2, offset: 37)
        Dropout.applyRecorded(&gRecorded, g, count: n, p: 0.1, bits: bits)
        #expect(gDrawn == gRecorded)
        if n > 1000 { #expect(bits.contains { $0 != 0xFF } && bits.contains { $0 != 0 }) }
    }
}
