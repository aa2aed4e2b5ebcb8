import Testing
import PrecisBench
import PrecisCore
import PrecisModels
import PrecisWire

/// `precis bench codec` on a small model: a row per buffer and codec, every decoded value checked.
@Suite struct CodecBenchmarkTests {
    @Test func measuresEachCodecAndChecksEveryValue() throws {
        let model = try Configs.model(Configs.tiny())
        let batch = try Seq2SeqBatch.random(vocab: model.facts.vocabSize, batch: 2, source: 8, target: 4, seed: 1)
        let bench = try CodecBenchmark(model: model, batch: batch, threads: Compute.threads)
        let n = bench.parameters
        #expect(n == model.table.count && bench.plan.count == 1)
        #expect(model.grads.array.contains { $0 != 0 }, "real gradients: one backward pass ran")
        var streamed: [String] = []
        let rows = try bench.run(repeats: 3) { streamed.append("\($0.data) \($0.codec.name)") }
        let names = ["gradients", "parameters"].flatMap { d in ["none", "fp32", "bf16"].map { "\(d) \($0)" } }
        #expect(rows.map { "\($0.data) \($0.codec.name)" } == names)
        #expect(streamed == names, "each row is handed over as it is measured")
        for r in rows {
            #expect(r.checkedValues == 3 * n, "\(r.data) \(r.codec.name)")
            #expect(r.encodeMBps > 0 && r.decodeMBps > 0 && r.encodeMs > 0 && r.decodeMs > 0, "\(r.data) \(r.codec.name)")
            switch r.codec {
            case .none:
                #expect(r.maxError == 0)
                #expect(r.ratio < 1, "raw floats plus a header")
            case .fp32:
                #expect(r.maxError == 0)
                #expect(r.ratio > 0.9)
            case .bf16:
                #expect(r.ratio > 1.5, "\(r.data): half the bytes, the top plane compressed")
                #expect(r.maxError > 0 && r.maxError < 1.0 / 128, "\(r.data): bf16 rounding, \(r.maxError)")
            case .bf16Delta:
                Issue.record("the codec bench measures none, fp32 and bf16 only (bf16-delta is bf16's payload)")
            }
        }
        let crc = bench.checksumRates(repeats: 3)
        #expect(crc.inUseMBps > 0 && crc.tableMBps > 0)
    }
}
