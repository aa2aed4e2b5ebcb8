import Foundation
import Testing
import PrecisCore
import PrecisModels

@Suite struct IncrementalDecodingTests {
    /// Cached incremental decoding gives the same logits as the full (training-path) forward pass at
    /// every position, for every row, including a reordering of rows mid-way (beam search).
    @Test func incrementalLogitsMatchTheFullForwardPass() throws {
        let model = BartModel(config: tinyConfig(dropout: 0.3, scale: true))
        model.initializeWeights(seed: 12)
        for i in 0..<model.finalLogitsBias.count { model.finalLogitsBias[i] = Float(i % 7) * 0.05 }
        let batch = try tinyBatch()
        let t = batch.targetLength, v = model.vocabSize
        var full = [Float](repeating: 0, count: batch.batchSize * t * v)
        _ = try full.withUnsafeMutableBufferPointer {
            try model.step(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: $0.baseAddress)
        }
        let enc = try model.encoderHiddenStates(inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                                batchSize: batch.batchSize, sourceLength: batch.sourceLength)
        // Rows 0,1 decode sources 0,1; after two steps they swap (as a beam reorder would).
        let dec = BartIncrementalDecoder(model: model, encoderOutput: enc, attentionMask: batch.attentionMask, sources: 2,
                                         sourceLength: batch.sourceLength, rowSource: [0, 1], maxLength: t)
        func decoderInput(_ row: Int, _ j: Int) -> Int32 {
            if j == 0 { return Int32(model.config.decoderStartTokenId) }
            let l = batch.labels[row * t + j - 1]
            return l == -100 ? Int32(model.config.padTokenId) : l
        }
        var order = [0, 1]
        for j in 0..<t {
            if j == 2 { dec.reorder([1, 0]); order = [1, 0] }
            dec.step(order.map { decoderInput($0, j) })
            for (r, src) in order.enumerated() {
                var maxDiff: Float = 0
                for k in 0..<v { maxDiff = max(maxDiff, abs(dec.logits[r * dec.logitsStride + k] - full[(src * t + j) * v + k])) }
                #expect(maxDiff < 2e-5, "row \(r) (source \(src)) position \(j): max |Δlogit| \(maxDiff)")
            }
        }
    }

    @Test func greedyStopsAtEOSAndPadsFinishedRows() throws {
        let model = BartModel(config: tinyConfig())
        model.initializeWeights(seed: 5)
        // Make EOS (2) very likely right after the forced BOS for every row.
        model.finalLogitsBias[2] = 50
        let batch = try tinyBatch()
        var g = GenerationSettings()
        g.maxNewTokens = 6
        g.forcedBosTokenId = 0
        let out = try Generator.generate(model: model, inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                         batchSize: 2, sourceLength: batch.sourceLength, settings: g)
        #expect(out.sequences == [[2, 0, 2], [2, 0, 2]])
        g.minLength = 5
        let longer = try Generator.generate(model: model, inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                            batchSize: 2, sourceLength: batch.sourceLength, settings: g)
        #expect(longer.sequences.allSatisfy { $0.count == 6 && $0[5] == 2 && !$0[2..<5].contains(2) })
    }

    @Test func settingsParseTransformersKeysAndRejectBadValues() throws {
        let g = try GenerationSettings(json: ["max_length": 62, "num_beams": 4, "early_stopping": true, "length_penalty": 2,
                                              "no_repeat_ngram_size": 3, "eos_token_id": [2, 5], "forced_bos_token_id": NSNull()],
                                       file: "g.json")
        #expect(g.maxLength == 62 && g.numBeams == 4 && g.earlyStopping == .yes && g.lengthPenalty == 2)
        #expect(g.eosTokenIds == [2, 5] && g.forcedBosTokenId == nil && g.noRepeatNgramSize == 3)
        #expect(throws: ModelError.invalidConfig(file: "g.json", field: "num_beams", reason: "expected an integer")) {
            try GenerationSettings(json: ["num_beams": "four"], file: "g.json")
        }
        #expect(throws: ModelError.self) { try GenerationSettings(json: ["early_stopping": "sometimes"], file: "g.json") }
        #expect(throws: ModelError.self) { try GenerationSettings(json: ["num_beams": 2, "num_return_sequences": 3], file: "g.json") }
    }
}

@Suite struct SamplingTests {
    /// top_k = 1 leaves only the argmax, so sampling must reproduce greedy search; top_p near 0 keeps
    /// only the most likely token too; and a seed makes sampling reproducible.
    @Test func degenerateSamplingEqualsGreedyAndSeedsReproduce() throws {
        let model = BartModel(config: tinyConfig())
        model.initializeWeights(seed: 21)
        for i in 0..<model.finalLogitsBias.count { model.finalLogitsBias[i] = Float((i * 7) % 11) * 0.3 }
        let batch = try tinyBatch()
        func run(_ edit: (inout GenerationSettings) -> Void) throws -> [[Int32]] {
            var g = GenerationSettings()
            g.maxNewTokens = 8
            edit(&g)
            return try Generator.generate(model: model, inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                          batchSize: 2, sourceLength: batch.sourceLength, settings: g).sequences
        }
        let greedy = try run { _ in }
        #expect(try run { $0.doSample = true; $0.topK = 1; $0.seed = 5 } == greedy)
        #expect(try run { $0.doSample = true; $0.topK = 0; $0.topP = 1e-6; $0.seed = 6 } == greedy)
        let a = try run { $0.doSample = true; $0.temperature = 1.5; $0.seed = 11 }
        #expect(try run { $0.doSample = true; $0.temperature = 1.5; $0.seed = 11 } == a)
        let others = try (12..<20).map { s in try run { $0.doSample = true; $0.temperature = 1.5; $0.seed = UInt64(s) } }
        #expect(others.contains { $0 != a }, "different seeds should give different samples")
        #expect(try run { $0.doSample = true; $0.numReturnSequences = 3; $0.seed = 1 }.count == 6)
    }
}
