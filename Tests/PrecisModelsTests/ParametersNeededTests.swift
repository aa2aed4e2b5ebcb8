import Foundation
import Synchronization
import Testing
import PrecisCore
import PrecisModels

/// `Seq2SeqModel.onParametersNeeded`, what a worker's overlapped pull relies on: a training pass
/// started with every parameter NaN, whose hook fills each range only when asked, gives the same
/// loss and gradients, bit for bit, as a pass with all parameters in place. So forward reads no
/// range before asking for it (a NaN would reach the loss), asks for every range exactly once per
/// pass, and the bf16 copies are packed from the values that arrived, not from the NaNs.
@Suite struct ParametersNeededTests {
    /// Each family's tiny preset, and T5 with its own LM head (a range asked for after the decoder).
    static let configs: [(name: String, json: String?)] = [
        ("bart-tiny", nil), ("pegasus-tiny", nil), ("t5-tiny", nil),
        ("t5 untied", #"{"model_type": "t5", "vocab_size": 300, "d_model": 32, "d_kv": 8, "num_heads": 4, "d_ff": 64, "num_layers": 3, "num_decoder_layers": 2, "tie_word_embeddings": false, "feed_forward_proj": "gated-gelu"}"#),
    ]

    static func model(_ c: (name: String, json: String?)) throws -> any Seq2SeqModel {
        let m = try c.json.map { try ModelRegistry.model(config: Data($0.utf8), file: c.name) } ?? ModelPresets.model(c.name)
        m.initializeWeights(seed: 21)
        return m
    }

    /// The ranges a pass asked for, in order, each with the thread count that asked at once.
    final class Requests: Sendable {
        let ranges = Mutex<[Range<Int>]>([])
        let inside = Atomic<Int>(0)
        let overlapped = Atomic<Bool>(false)
    }

    static func pass(_ model: any Seq2SeqModel, _ batch: Seq2SeqBatch) throws -> (loss: Double, grads: [Float]) {
        model.zeroGradients()
        let r = try model.step(batch, options: StepOptions(training: true, seed: 5), logitsOut: nil)
        return (r.lossSum, model.grads.array)
    }

    /// The first index where the two differ bit for bit (an `==` of two large arrays in `#expect`
    /// would diff them element by element when they differ).
    static func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
        if a.count != b.count { return min(a.count, b.count) }
        return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
    }

    @Test(arguments: [false, true])
    func aPassWaitingForEachRangeMatchesAPassWithAllInPlace(bf16: Bool) throws {
        for c in Self.configs {
            let model = try Self.model(c)
            if bf16 { try model.setMatmulPrecision(.bf16, kernel: BF16Gemm.kernel ?? .portable) }
            let batch = try BF16StepTests.randomBatch(vocab: model.vocabSize, pad: model.facts.padTokenId)
            let want = try Self.pass(model, batch)
            #expect(want.loss.isFinite && want.grads.allSatisfy(\.isFinite), "\(c.name)")

            let truth = model.params.array, params = model.params
            let requests = Requests()
            model.onParametersNeeded = { r in
                if requests.inside.add(1, ordering: .sequentiallyConsistent).newValue > 1 { requests.overlapped.store(true, ordering: .relaxed) }
                requests.ranges.withLock { $0.append(r) }
                truth.withUnsafeBufferPointer { (params.pointer + r.lowerBound).update(from: $0.baseAddress! + r.lowerBound, count: r.count) }
                requests.inside.subtract(1, ordering: .sequentiallyConsistent)
            }
            defer { model.onParametersNeeded = nil }
            for pass in 0..<2 {
                params.pointer.update(repeating: .nan, count: params.count)
                requests.ranges.withLock { $0 = [] }
                let got = try Self.pass(model, batch)
                #expect(got.loss.bitPattern == want.loss.bitPattern, "\(c.name) pass \(pass): loss \(got.loss), want \(want.loss)")
                let differ = Self.firstDifference(got.grads, want.grads)
                #expect(differ == nil, "\(c.name) pass \(pass): the gradients differ first at \(differ ?? -1)")
                let overlapped = requests.overlapped.load(ordering: .relaxed)
                #expect(!overlapped, "\(c.name): two threads in the hook at once")

                // Every value asked for exactly once; the ranges fall on the cuts.
                let asked = requests.ranges.withLock { $0 }
                var covered = [Int](repeating: 0, count: params.count)
                for r in asked { for i in r { covered[i] += 1 } }
                #expect(covered.allSatisfy { $0 == 1 }, "\(c.name): \(asked)")
                let cuts = Set(model.gradientCuts)
                for r in asked { #expect(cuts.contains(r.lowerBound) && cuts.contains(r.upperBound), "\(c.name): \(r)") }
                // The embedding first; the encoder's layers before the decoder's, each in order.
                let names = model.table.entries
                func first(_ prefix: String) -> Int? {
                    names.first { $0.name.contains(prefix) }.flatMap { e in asked.firstIndex { $0.contains(e.offset) } }
                }
                #expect(first("shared") == 0, "\(c.name)")
                let order = ["encoder.layers.0.", "encoder.layers.1.", "decoder.layers.0.", "decoder.layers.1.",
                             "encoder.block.0.", "encoder.block.1.", "decoder.block.0.", "decoder.block.1."].compactMap(first)
                #expect(order.count == 4 && order == order.sorted(), "\(c.name): \(order)")
            }
            // Unset, a pass reads the parameters as they are.
            model.onParametersNeeded = nil
            let again = try Self.pass(model, batch)
            let differ = Self.firstDifference(again.grads, want.grads)
            #expect(differ == nil, "\(c.name): the gradients differ first at \(differ ?? -1)")
        }
    }
}
