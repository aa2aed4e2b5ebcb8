import Foundation
import Synchronization
import Testing
import PrecisCore
import PrecisModels
import PrecisTestSupport

func tinyPegasusConfig(dropout: Double = 0, scale: Bool = true, activation: String = "relu") -> PegasusConfig {
    var c = PegasusConfig()
    c.vocabSize = 40; c.dModel = 16; c.encoderLayers = 2; c.decoderLayers = 2
    c.encoderAttentionHeads = 4; c.decoderAttentionHeads = 2; c.encoderFfnDim = 24; c.decoderFfnDim = 20
    c.maxPositionEmbeddings = 32; c.dropout = dropout; c.attentionDropout = dropout; c.activationDropout = dropout
    c.scaleEmbedding = scale; c.activationFunction = activation; c.initStd = 0.2
    return c
}

/// Pegasus-style ids (pad 0, eos 1, no bos): right padding with 0.
func tinyPegasusBatch() throws -> Seq2SeqBatch {
    try Seq2SeqBatch(batchSize: 2, sourceLength: 6, targetLength: 5,
                     inputIds: [5, 9, 12, 7, 3, 1, 8, 33, 4, 1, 0, 0],
                     attentionMask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
                     labels: [14, 22, 6, 2, 1, 39, 7, 1, -100, -100])
}

@Suite struct PegasusModelTests {
    /// Central differences of the whole model's loss against backward, for a sample of parameters of
    /// every kind (embedding, attention, cross-attention, FFN, each LayerNorm, the final norms), with
    /// dropout on (its masks are a function of the seed, so the loss is a deterministic function):
    /// backward draws the same masks as forward at every site.
    @Test(arguments: [(0.0, true, "relu"), (0.2, true, "relu"), (0.1, false, "gelu"), (0.15, true, "gelu_new")])
    func backwardMatchesFiniteDifferences(_ dropout: Double, _ scale: Bool, _ activation: String) throws {
        let model = PegasusModel(config: tinyPegasusConfig(dropout: dropout, scale: scale, activation: activation))
        model.initializeWeights(seed: 3)
        for i in 0..<model.finalLogitsBias.count { model.finalLogitsBias[i] = Float(i % 5) * 0.01 }
        try expectBackwardMatchesFiniteDifferences(model, try tinyPegasusBatch()) { e, rng in
            var i = e.offset + Int(rng.next() % UInt64(e.count))
            if e.name == "model.shared.weight" { i = e.offset + 14 * 16 + Int(rng.next() % 16) } // a used row
            return i
        }
    }

    @Test func evalModeIsDeterministicAndTrainingDropoutChangesTheLoss() throws {
        let model = PegasusModel(config: tinyPegasusConfig(dropout: 0.3))
        model.initializeWeights(seed: 2)
        let batch = try tinyPegasusBatch()
        let e1 = try model.step(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: nil).mean
        let e2 = try model.step(batch, options: StepOptions(training: false, computeGradients: false, seed: 99), logitsOut: nil).mean
        #expect(e1 == e2)
        let t1 = try model.step(batch, options: StepOptions(training: true, computeGradients: false, seed: 1), logitsOut: nil).mean
        let t1b = try model.step(batch, options: StepOptions(training: true, computeGradients: false, seed: 1), logitsOut: nil).mean
        let t2 = try model.step(batch, options: StepOptions(training: true, computeGradients: false, seed: 2), logitsOut: nil).mean
        #expect(t1 == t1b)
        #expect(t1 != e1 && t1 != t2)
    }

    /// Positions past `max_position_embeddings` are refused with the field and the limit, before
    /// anything runs (the sinusoidal table has that many rows); the limit itself is accepted.
    @Test func positionsOverTheLimitAreRefused() throws {
        let model = PegasusModel(config: tinyPegasusConfig())
        model.initializeWeights(seed: 1)
        #expect(model.facts.maxSourcePositions == 32 && model.facts.maxTargetPositions == 32)
        let atLimit = try Seq2SeqBatch.random(vocab: 40, batch: 1, source: 32, target: 32, seed: 1)
        _ = try model.step(atLimit, options: StepOptions(), logitsOut: nil)
        let longSource = try Seq2SeqBatch.random(vocab: 40, batch: 1, source: 33, target: 4, seed: 1)
        #expect(throws: ModelError.badBatch(field: "input_ids", reason: "length 33 exceeds max_position_embeddings 32")) {
            try model.step(longSource, options: StepOptions(), logitsOut: nil)
        }
        let longTarget = try Seq2SeqBatch.random(vocab: 40, batch: 1, source: 4, target: 40, seed: 1)
        #expect(throws: ModelError.badBatch(field: "labels", reason: "length 40 exceeds max_position_embeddings 32")) {
            try model.forward(longTarget, options: StepOptions(), logitsOut: nil)
        }
        #expect(throws: ModelError.self) {
            try model.encoderHiddenStates(inputIds: Array(repeating: 5, count: 33), attentionMask: Array(repeating: 1, count: 33),
                                          batchSize: 1, sourceLength: 33)
        }
        var g = GenerationSettings()
        g.maxLength = 33
        #expect(throws: ModelError.self) {
            try Generator.generate(model: model, inputIds: [5, 1], attentionMask: [1, 1], batchSize: 1, sourceLength: 2, settings: g)
        }
    }

    /// The ranges backward reports: each final when reported, disjoint, in backward's order (decoder
    /// norm, decoder layers from the last, encoder norm, encoder layers), and with the rest (the
    /// shared embedding) they cover the whole buffer.
    @Test func gradientReportsCoverTheBufferInBackwardsOrder() throws {
        let model = PegasusModel(config: tinyPegasusConfig(dropout: 0.1))
        model.initializeWeights(seed: 4)
        let batch = try Seq2SeqBatch.random(vocab: 40, batch: 3, source: 10, target: 7, seed: 2)
        final class Reports: Sendable { let seen = Mutex<[(range: Range<Int>, values: [Float], loss: CrossEntropy.Result)]>([]) }
        let reports = Reports(), grads = model.grads
        model.zeroGradients()
        model.onGradientsFinal = { r, loss in
            let values = Array(UnsafeBufferPointer(start: grads.pointer + r.lowerBound, count: r.count))
            reports.seen.withLock { $0.append((r, values, loss)) }
        }
        defer { model.onGradientsFinal = nil }
        let result = try model.step(batch, options: StepOptions(training: true, seed: 3), logitsOut: nil)
        // Every report carries the batch's loss, the one `step` returns (a worker's pushes carry it).
        #expect(reports.seen.withLock { $0 }.allSatisfy { $0.loss.lossSum.bitPattern == result.lossSum.bitPattern && $0.loss.count == result.count })
        #expect(result.count > 0)
        let seen = reports.seen.withLock { $0 }, final = grads.array
        #expect(seen.last?.range == 0..<final.count)
        let early = Array(seen.dropLast())
        #expect(early.count == 1 + 2 + 1 + 2)
        func span(_ prefix: String) -> Range<Int> {
            let es = model.table.entries.filter { $0.name.hasPrefix(prefix) }
            return es.map(\.offset).min()! ..< es.map { $0.offset + $0.count }.max()!
        }
        let order = ["model.decoder.layer_norm.", "model.decoder.layers.1.", "model.decoder.layers.0.",
                     "model.encoder.layer_norm.", "model.encoder.layers.1.", "model.encoder.layers.0."]
        #expect(early.map(\.range) == order.map(span))
        var covered = Set<Int>()
        for (range, values, _) in early {
            #expect(covered.isDisjoint(with: range), "\(range) reported twice")
            covered.formUnion(range)
            #expect(values == Array(final[range]), "\(range) changed after it was reported final")
            #expect(values.contains { $0 != 0 })
        }
        let shared = try #require(model.table["model.shared.weight"])
        #expect(covered.union(shared.range) == Set(0..<final.count))
        #expect(Set(model.gradientCuts) == Set(early.flatMap { [$0.range.lowerBound, $0.range.upperBound] } + [0, final.count]))
    }

    @Test func saveThenLoadRoundTripsWithThePositionTablesRebuilt() throws {
        let model = PegasusModel(config: tinyPegasusConfig(scale: false, activation: "gelu"))
        model.initializeWeights(seed: 9)
        for i in 0..<model.finalLogitsBias.count { model.finalLogitsBias[i] = Float(i) * 0.001 }
        let dir = TestData.tempDir("models")
        try ModelFolder.save(model, to: dir)
        let (loaded, report) = try ModelFolder.load(dir)
        #expect(report.unexpected.isEmpty && report.defaulted.isEmpty)
        let pegasus = try #require(loaded as? PegasusModel)
        #expect(pegasus.config == model.config)
        #expect(pegasus.params.array == model.params.array)
        #expect(pegasus.finalLogitsBias.array == model.finalLogitsBias.array)
        // The sinusoidal tables are written as transformers' save_pretrained writes them (so its
        // from_pretrained finds every key), and rebuilt, not read, on load.
        let file = try SafeTensorsFile(path: dir + "/model.safetensors")
        for key in ["model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"] {
            #expect(try file.tensor(key).shape == [32, 16])
            #expect(try file.floats(key) == model.positionTable)
        }
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        #expect(cfg["architectures"] as? [String] == ["PegasusForConditionalGeneration"])
        #expect(cfg["model_type"] as? String == "pegasus" && cfg["pad_token_id"] as? Int == 0 && cfg["eos_token_id"] as? Int == 1)
        #expect(cfg["bos_token_id"] == nil)
        let gen = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/generation_config.json"))) as! [String: Any]
        #expect(gen["decoder_start_token_id"] as? Int == 0 && gen["forced_eos_token_id"] as? Int == 1 && gen["bos_token_id"] == nil)
    }

    @Test func initFollowsTransformersScheme() throws {
        let model = PegasusModel(config: tinyPegasusConfig())
        model.initializeWeights(seed: 1)
        for e in model.table.entries {
            let v = Array(UnsafeBufferPointer(start: model.params.pointer + e.offset, count: e.count))
            if e.name.hasSuffix(".bias") { #expect(v.allSatisfy { $0 == 0 }, "\(e.name)") }
            else if e.name.contains("layer_norm") { #expect(v.allSatisfy { $0 == 1 }, "\(e.name)") }
            else {
                let mean = v.reduce(0, +) / Float(v.count)
                let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(v.count)).squareRoot()
                #expect(abs(std - 0.2) < 0.05, "\(e.name) std \(std)")
            }
        }
        let padRow = Array(UnsafeBufferPointer(start: model.params.pointer + model.table.offset("model.shared.weight"), count: 16))
        #expect(padRow.allSatisfy { $0 == 0 })
        #expect(model.table.entries.allSatisfy { !$0.name.contains("embed_positions") })
    }

    @Test func configErrorsNameTheField() throws {
        func parse(_ s: String) throws -> PegasusConfig { try PegasusConfig.parse(Data(s.utf8), file: "p.json") }
        #expect(throws: ModelError.invalidConfig(file: "p.json", field: "d_model", reason: "expected Int")) {
            try parse(#"{"d_model": "big"}"#)
        }
        #expect(throws: ModelError.invalidConfig(file: "p.json", field: "decoder_attention_heads",
                                                 reason: "d_model 1024 must be divisible by decoder_attention_heads 5")) {
            try parse(#"{"decoder_attention_heads": 5}"#)
        }
        #expect(throws: ModelError.invalidConfig(file: "p.json", field: "encoder_layerdrop",
                                                 reason: "LayerDrop is not supported (must be 0, got 0.1)")) {
            try parse(#"{"encoder_layerdrop": 0.1}"#)
        }
        #expect(throws: ModelError.invalidConfig(file: "p.json", field: "tie_word_embeddings",
                                                 reason: "untied LM heads are not supported for Pegasus")) {
            try parse(#"{"tie_word_embeddings": false}"#)
        }
        #expect(throws: ModelError.self) { try parse(#"{"activation_function": "swiglu"}"#) }
        #expect(throws: ModelError.self) { try parse(#"{"pad_token_id": 50265}"#) }
        #expect(throws: ModelError.self) { try parse(#"{"forced_eos_token_id": -1}"#) }
        #expect(throws: ModelError.self) { try parse("{not json") }
        // The sinusoidal table is allocated from the config: a hostile size is refused by name first.
        #expect(throws: ModelError.invalidConfig(file: "p.json", field: "max_position_embeddings",
                                                 reason: "max_position_embeddings 131072 × d_model 1024 is larger than Precis can hold (at most 2^26 values)")) {
            try parse(#"{"max_position_embeddings": 131072}"#)
        }
        #expect(throws: ModelError.self) { try parse(#"{"max_position_embeddings": 1048576, "d_model": 4096}"#) }
        do { _ = try parse(#"{"d_model": 16.5}"#); Issue.record("16.5 accepted") } catch let ModelError.invalidConfig(_, field, reason) {
            #expect(field == "d_model" && reason.contains("16.5"), "\(reason)")
        }
        // Unknown keys are ignored, missing ones take transformers' PegasusConfig defaults.
        let c = try parse(#"{"vocab_size": 100, "d_model": 32, "encoder_attention_heads": 4, "decoder_attention_heads": 4, "static_position_embeddings": true, "bos_token_id": 0}"#)
        #expect(c.vocabSize == 100 && c.encoderLayers == 12 && c.padTokenId == 0 && c.eosTokenId == 1 && c.decoderStartTokenId == 0)
        #expect(c.forcedEosTokenId == 1 && c.bosTokenId == 0 && c.activationFunction == "gelu" && !c.scaleEmbedding)
        // The registry builds it from model_type.
        let m = try ModelRegistry.model(config: Data(#"{"model_type": "pegasus", "vocab_size": 50, "d_model": 8, "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_layers": 1, "decoder_layers": 1, "encoder_ffn_dim": 8, "decoder_ffn_dim": 8}"#.utf8), file: "p.json")
        #expect(m.facts.modelType == "pegasus" && m.facts.padTokenId == 0 && m.facts.eosTokenId == 1 && m.facts.bosTokenId == nil)
    }

    /// Pre-LN moves the norms, not the products: pegasus-scratch-small's step runs bart-small's
    /// matrix products (the same widths, layers and vocabulary), and each weight product's shape is
    /// read from Pegasus' own parameter table.
    @Test func matrixProductsAreThoseOfTheSameShapedBart() throws {
        let pegasus = try ModelPresets.model("pegasus-scratch-small"), bart = try ModelPresets.model("bart-small")
        let p = pegasus.matrixProducts(batch: 4, source: 64, target: 16), b = bart.matrixProducts(batch: 4, source: 64, target: 16)
        #expect(p == b)
        #expect(p.flops(.backward) == 2 * p.flops(.forward))
        // One layer's worth: the products scale with the layer count.
        var c = try PegasusConfig.parse(Data(ModelPresets.all["pegasus-scratch-small"]!.utf8), file: "s")
        c.encoderLayers = 0; c.decoderLayers = 0
        let headOnly = PegasusModel(config: c).matrixProducts(batch: 4, source: 64, target: 16)
        #expect(headOnly.count == 3 && headOnly.flops() == 3 * 2 * (4 * 16) * 256 * 8192)
    }

    @Test func shippedConfigFilesMatchThePresets() throws {
        let repo = TestData.repo
        for name in ["pegasus-tiny", "pegasus-scratch-small", "pegasus-xsum"] {
            let preset = try #require(ModelPresets.all[name])
            let file = try PegasusConfig.parse(Data(contentsOf: repo.appendingPathComponent("configs/\(name).json")), file: name)
            #expect(file == (try PegasusConfig.parse(Data(preset.utf8), file: name)), "\(name)")
            #expect(try ModelPresets.model(name).facts.modelType == "pegasus")
        }
        let small = try PegasusConfig.parse(Data(ModelPresets.all["pegasus-scratch-small"]!.utf8), file: "s")
        #expect(small.dModel == 256 && small.encoderAttentionHeads == 4 && small.encoderFfnDim == 1024)
        #expect(small.encoderLayers == 3 && small.decoderLayers == 3 && small.vocabSize == 8192)
        #expect(small.activationFunction == "relu" && small.maxPositionEmbeddings == 1024)
    }
}
