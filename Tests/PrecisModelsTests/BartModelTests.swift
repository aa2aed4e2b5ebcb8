import Foundation
import Testing
import PrecisCore
import PrecisModels
import PrecisTestSupport

func tinyConfig(dropout: Double = 0, scale: Bool = false, activation: String = "gelu") -> BartConfig {
    var c = BartConfig()
    c.vocabSize = 40; c.dModel = 16; c.encoderLayers = 2; c.decoderLayers = 2
    c.encoderAttentionHeads = 4; c.decoderAttentionHeads = 2; c.encoderFfnDim = 24; c.decoderFfnDim = 20
    c.maxPositionEmbeddings = 32; c.dropout = dropout; c.attentionDropout = dropout; c.activationDropout = dropout
    c.scaleEmbedding = scale; c.activationFunction = activation; c.initStd = 0.2
    return c
}

func tinyBatch() throws -> Seq2SeqBatch {
    try Seq2SeqBatch(batchSize: 2, sourceLength: 6, targetLength: 5,
                     inputIds: [0, 5, 9, 12, 7, 2, 0, 8, 33, 2, 1, 1],
                     attentionMask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
                     labels: [0, 14, 22, 6, 2, 0, 39, 2, -100, -100])
}

@Suite struct BartModelTests {
    /// Central differences of the whole model's loss against backward, for a sample of parameters in
    /// every kind of block (embeddings, positions, attention, cross-attention, FFN, LayerNorms), with
    /// dropout on (its masks are a function of the seed, so the loss is a deterministic function).
    @Test(arguments: [(0.0, false, "gelu"), (0.2, true, "gelu"), (0.1, false, "gelu_new"), (0.0, true, "relu")])
    func backwardMatchesFiniteDifferences(_ dropout: Double, _ scale: Bool, _ activation: String) throws {
        let model = BartModel(config: tinyConfig(dropout: dropout, scale: scale, activation: activation))
        model.initializeWeights(seed: 3)
        for i in 0..<model.finalLogitsBias.count { model.finalLogitsBias[i] = Float(i % 5) * 0.01 }
        try expectBackwardMatchesFiniteDifferences(model, try tinyBatch()) { e, rng in
            var i = e.offset + Int(rng.next() % UInt64(e.count))
            if e.name == "model.shared.weight" { i = e.offset + 14 * 16 + Int(rng.next() % 16) } // a used row
            if e.name.contains("embed_positions") { i = e.offset + 2 * 16 + Int(rng.next() % 64) } // used positions
            return i
        }
    }

    @Test func gradientsAccumulateAcrossMicroBatches() throws {
        let model = BartModel(config: tinyConfig())
        model.initializeWeights(seed: 1)
        let batch = try tinyBatch()
        model.zeroGradients()
        _ = try model.step(batch, options: StepOptions(), logitsOut: nil)
        let once = model.grads.array
        _ = try model.step(batch, options: StepOptions(), logitsOut: nil)
        let twice = model.grads.array
        for i in stride(from: 0, to: once.count, by: 97) { #expect(abs(twice[i] - 2 * once[i]) <= 1e-6 + 1e-5 * abs(once[i])) }
    }

    @Test func evalModeIsDeterministicAndTrainingDropoutChangesTheLoss() throws {
        let model = BartModel(config: tinyConfig(dropout: 0.3))
        model.initializeWeights(seed: 2)
        let batch = try tinyBatch()
        let e1 = try model.step(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: nil).mean
        let e2 = try model.step(batch, options: StepOptions(training: false, computeGradients: false, seed: 99), logitsOut: nil).mean
        #expect(e1 == e2)
        let t1 = try model.step(batch, options: StepOptions(training: true, computeGradients: false, seed: 1), logitsOut: nil).mean
        let t1b = try model.step(batch, options: StepOptions(training: true, computeGradients: false, seed: 1), logitsOut: nil).mean
        let t2 = try model.step(batch, options: StepOptions(training: true, computeGradients: false, seed: 2), logitsOut: nil).mean
        #expect(t1 == t1b)
        #expect(t1 != e1 && t1 != t2)
    }

    /// A tiny model learns 8 fixed pairs: the loss must fall below 0.05.
    @Test func overfitsEightPairs() throws {
        var c = tinyConfig()
        c.dModel = 32; c.encoderFfnDim = 64; c.decoderFfnDim = 64; c.initStd = 0.05
        let model = BartModel(config: c)
        model.initializeWeights(seed: 7)
        var rng = SeededRNG(seed: 8)
        var ids: [Int32] = [], labels: [Int32] = []
        for _ in 0..<8 {
            ids += [0] + (0..<6).map { _ in Int32(4 + rng.next() % 36) } + [2]
            labels += [0] + (0..<4).map { _ in Int32(4 + rng.next() % 36) } + [2]
        }
        let batch = try Seq2SeqBatch(batchSize: 8, sourceLength: 8, targetLength: 6, inputIds: ids,
                                     attentionMask: Array(repeating: 1, count: 64), labels: labels)
        let steps = 300
        let opt = OptimizerState(table: model.table, adamw: AdamW(weightDecay: 0.01),
                                 schedule: LRSchedule(kind: .constantWithWarmup, baseLR: 3e-3, warmupSteps: 10, totalSteps: steps))
        var loss = 0.0
        for s in 0..<steps {
            model.zeroGradients()
            loss = try model.step(batch, options: StepOptions(seed: UInt64(s)), logitsOut: nil).mean
            let norm = GradClip.norm(model.grads.pointer, count: model.grads.count)
            opt.apply(params: model.params.pointer, grads: model.grads.pointer,
                      clipCoefficient: GradClip.coefficient(totalNorm: norm, maxNorm: 1))
        }
        let final = try model.step(batch, options: StepOptions(training: false, computeGradients: false), logitsOut: nil).mean
        #expect(final < 0.05, "loss after \(steps) steps: \(final) (last training loss \(loss))")
    }

    @Test func badBatchesAreRejectedWithTheField() throws {
        let model = BartModel(config: tinyConfig())
        #expect(throws: ModelError.self) {
            try Seq2SeqBatch(batchSize: 1, sourceLength: 2, targetLength: 2, inputIds: [0], attentionMask: [1], labels: [0, 2])
        }
        let badId = try Seq2SeqBatch(batchSize: 1, sourceLength: 2, targetLength: 2, inputIds: [0, 40],
                                     attentionMask: [1, 1], labels: [0, 2])
        do { _ = try model.step(badId, options: StepOptions(), logitsOut: nil); Issue.record("no error") } catch let e as ModelError {
            #expect("\(e)".contains("input_ids") && "\(e)".contains("40"))
        }
        let long = try Seq2SeqBatch(batchSize: 1, sourceLength: 33, targetLength: 2, inputIds: Array(repeating: 4, count: 33),
                                    attentionMask: Array(repeating: 1, count: 33), labels: [0, 2])
        #expect(throws: ModelError.self) { try model.step(long, options: StepOptions(), logitsOut: nil) }
        let mask = try? Seq2SeqBatch(batchSize: 1, sourceLength: 2, targetLength: 2, inputIds: [0, 2], attentionMask: [1, 2], labels: [0, 2])
        #expect(mask == nil)
    }

    @Test func allLabelsIgnoredGivesZeroLossAndNoGradient() throws {
        let model = BartModel(config: tinyConfig())
        model.initializeWeights(seed: 1)
        let b = try Seq2SeqBatch(batchSize: 1, sourceLength: 3, targetLength: 2, inputIds: [0, 5, 2],
                                 attentionMask: [1, 1, 1], labels: [-100, -100])
        model.zeroGradients()
        let r = try model.step(b, options: StepOptions(), logitsOut: nil)
        #expect(r.count == 0 && r.mean == 0)
        #expect(model.grads.array.allSatisfy { $0 == 0 })
    }

    /// Growing and shrinking batch shapes reuse or regrow the workspace without changing results.
    @Test func resultsDoNotDependOnWorkspaceHistory() throws {
        let model = BartModel(config: tinyConfig())
        model.initializeWeights(seed: 4)
        let small = try tinyBatch()
        let fresh = try model.step(small, options: StepOptions(computeGradients: false), logitsOut: nil).mean
        let big = try Seq2SeqBatch.random(vocab: 40, batch: 3, source: 20, target: 9, seed: 1)
        _ = try model.step(big, options: StepOptions(), logitsOut: nil)
        let again = try model.step(small, options: StepOptions(computeGradients: false), logitsOut: nil).mean
        #expect(fresh == again)
    }
}

@Suite struct ModelFolderTests {
    @Test func saveThenLoadRoundTripsExactly() throws {
        let model = BartModel(config: tinyConfig(scale: true))
        model.initializeWeights(seed: 9)
        for i in 0..<model.finalLogitsBias.count { model.finalLogitsBias[i] = Float(i) * 0.001 }
        let dir = TestData.tempDir("models")
        try ModelFolder.save(model, to: dir)
        let (loaded, report) = try ModelFolder.load(dir)
        #expect(report.unexpected.isEmpty && report.defaulted.isEmpty)
        let bart = try #require(loaded as? BartModel)
        #expect(bart.config == model.config)
        #expect(bart.params.array == model.params.array)
        #expect(bart.finalLogitsBias.array == model.finalLogitsBias.array)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == ["config.json", "generation_config.json", "model.safetensors"])
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        #expect(cfg["architectures"] as? [String] == ["BartForConditionalGeneration"])
        #expect(cfg["model_type"] as? String == "bart")
    }

    @Test func initFollowsTransformersScheme() throws {
        let model = BartModel(config: tinyConfig())
        model.initializeWeights(seed: 1)
        for e in model.table.entries {
            let v = Array(UnsafeBufferPointer(start: model.params.pointer + e.offset, count: e.count))
            if e.name.hasSuffix(".bias") { #expect(v.allSatisfy { $0 == 0 }, "\(e.name)") }
            else if e.name.contains("layer_norm") || e.name.contains("layernorm") { #expect(v.allSatisfy { $0 == 1 }, "\(e.name)") }
            else {
                let mean = v.reduce(0, +) / Float(v.count)
                let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(v.count)).squareRoot()
                #expect(abs(std - 0.2) < 0.05, "\(e.name) std \(std)")
            }
        }
        let padRow = Array(UnsafeBufferPointer(start: model.params.pointer + model.table.offset("model.shared.weight") + 16, count: 16))
        #expect(padRow.allSatisfy { $0 == 0 })
    }

    @Test func loadsTiedAliasesAndReportsProblemsByName() throws {
        let model = BartModel(config: tinyConfig())
        model.initializeWeights(seed: 2)
        // Store the embedding under lm_head.weight only, as some exporters do.
        var w = SafeTensorsWriter()
        for e in model.table.entries {
            let name = e.name == "model.shared.weight" ? "lm_head.weight" : e.name
            w.add(name, floats: UnsafeBufferPointer(start: model.params.pointer + e.offset, count: e.count), shape: e.shape)
        }
        w.add("some.extra", floats: [1], shape: [1])
        let dir = TestData.tempDir("models")
        try AtomicFile.write(try model.configJSON(), to: dir + "/config.json")
        try w.write(to: dir + "/model.safetensors")
        let (loaded, report) = try ModelFolder.load(dir)
        #expect(loaded.params.array == model.params.array)
        #expect(report.unexpected == ["some.extra"])
        #expect(report.defaulted == ["final_logits_bias"])

        // A missing weight names the tensor.
        var partial = SafeTensorsWriter()
        partial.add("model.shared.weight", floats: [Float](repeating: 0, count: 40 * 16), shape: [40, 16])
        try partial.write(to: dir + "/model.safetensors")
        #expect(throws: ModelError.missingWeight(file: dir + "/model.safetensors", tensor: "model.encoder.embed_positions.weight")) {
            try ModelFolder.load(dir)
        }
        // A wrong shape names the tensor and both shapes.
        var wrong = SafeTensorsWriter()
        wrong.add("model.shared.weight", floats: [Float](repeating: 0, count: 41 * 16), shape: [41, 16])
        try wrong.write(to: dir + "/model.safetensors")
        #expect(throws: SafeTensorsError.shapeMismatch(path: dir + "/model.safetensors", tensor: "model.shared.weight",
                                                       expected: [40, 16], found: [41, 16])) { try ModelFolder.load(dir) }
    }

    @Test func configErrorsNameTheField() throws {
        func parse(_ s: String) throws -> BartConfig { try BartConfig.parse(Data(s.utf8), file: "c.json") }
        #expect(throws: ModelError.invalidConfig(file: "c.json", field: "d_model", reason: "expected Int")) {
            try parse(#"{"d_model": "big"}"#)
        }
        #expect(throws: ModelError.invalidConfig(file: "c.json", field: "encoder_attention_heads",
                                                 reason: "d_model 100 must be divisible by encoder_attention_heads 16")) {
            try parse(#"{"d_model": 100}"#)
        }
        #expect(throws: ModelError.self) { try parse(#"{"activation_function": "swiglu"}"#) }
        #expect(throws: ModelError.self) { try parse("{not json") }
        // A number that is not an integer is named as such, not as bad JSON.
        do { _ = try parse(#"{"d_model": 16.5}"#); Issue.record("16.5 accepted") } catch let ModelError.invalidConfig(_, field, reason) {
            #expect(field == "d_model" && !reason.contains("not valid JSON") && reason.contains("16.5"), "\(reason)")
        }
        // Sizes that would allocate terabytes are refused before anything is allocated.
        #expect(throws: ModelError.self) { try parse(#"{"vocab_size": 1000000000000}"#) }
        #expect(throws: ModelError.self) { try parse(#"{"vocab_size": 4000000, "d_model": 65536, "encoder_attention_heads": 16, "decoder_attention_heads": 16}"#) }
        #expect(throws: ModelError.self) { try parse(#"{"encoder_layers": 100000}"#) }
        // Unknown keys are ignored, missing ones take transformers' defaults, null forced tokens mean none.
        let c = try parse(#"{"vocab_size": 100, "d_model": 32, "encoder_attention_heads": 4, "decoder_attention_heads": 4, "whatever": [1, 2], "forced_eos_token_id": null}"#)
        #expect(c.vocabSize == 100 && c.encoderLayers == 12 && c.dropout == 0.1 && c.forcedEosTokenId == nil)
        #expect(throws: ModelError.unknownModelType(file: "x", modelType: "gpt2", known: ModelRegistry.knownTypes)) {
            try ModelRegistry.model(config: Data(#"{"model_type": "gpt2"}"#.utf8), file: "x")
        }
    }

    /// `config.json` as written reads back as the same config, for BART and Pegasus (the shared core
    /// and each family's own fields), with an unset forced BOS written as transformers writes it:
    /// null for BART, left out for Pegasus.
    @Test func configJSONRoundTripsForBartAndPegasus() throws {
        var b = tinyConfig(dropout: 0.2, scale: true)
        b.forcedBosTokenId = nil; b.bosTokenId = 3
        let bartJSON = try BartModel(config: b).configJSON()
        #expect(try BartConfig.parse(bartJSON, file: "b") == b)
        let bart = try JSONSerialization.jsonObject(with: bartJSON) as! [String: Any]
        #expect(bart["forced_bos_token_id"] is NSNull && (bart["bos_token_id"] as? NSNumber)?.intValue == 3)
        #expect(bart["architectures"] as? [String] == ["BartForConditionalGeneration"] && bart["model_type"] as? String == "bart")
        var p = tinyPegasusConfig(dropout: 0.1)
        p.forcedBosTokenId = nil; p.bosTokenId = nil
        let pegasusJSON = try PegasusModel(config: p).configJSON()
        #expect(try PegasusConfig.parse(pegasusJSON, file: "p") == p)
        let pegasus = try JSONSerialization.jsonObject(with: pegasusJSON) as! [String: Any]
        #expect(pegasus["forced_bos_token_id"] == nil && pegasus["bos_token_id"] == nil)
        #expect((pegasus["encoder_layerdrop"] as? NSNumber)?.doubleValue == 0 && pegasus["model_type"] as? String == "pegasus")
        p.bosTokenId = 2; p.forcedBosTokenId = 4
        #expect(try PegasusConfig.parse(PegasusModel(config: p).configJSON(), file: "p") == p)
        // Each family keeps its own defaults for what a file leaves out.
        let bartDefaults = try BartConfig.parse(Data("{}".utf8), file: "b"), pegasusDefaults = try PegasusConfig.parse(Data("{}".utf8), file: "p")
        #expect(bartDefaults.padTokenId == 1 && bartDefaults.eosTokenId == 2 && bartDefaults.forcedEosTokenId == 2 && bartDefaults.bosTokenId == 0)
        #expect(pegasusDefaults.padTokenId == 0 && pegasusDefaults.eosTokenId == 1 && pegasusDefaults.decoderStartTokenId == 0)
        #expect(pegasusDefaults.bosTokenId == nil && pegasusDefaults.forcedEosTokenId == 1)
    }

    @Test func shippedConfigFilesMatchThePresets() throws {
        let repo = TestData.repo
        for name in ModelPresets.all.keys where name.hasPrefix("bart-") {
            let file = try BartConfig.parse(Data(contentsOf: repo.appendingPathComponent("configs/\(name).json")), file: name)
            let preset = try BartConfig.parse(Data(ModelPresets.all[name]!.utf8), file: name)
            #expect(file == preset, "\(name)")
        }
        let small = try BartConfig.parse(Data(ModelPresets.all["bart-small"]!.utf8), file: "bart-small")
        #expect(small.vocabSize == 8192 && small.dModel == 256 && small.encoderLayers == 3 && small.decoderLayers == 3)
        #expect(small.encoderAttentionHeads == 4 && small.encoderFfnDim == 1024 && small.maxPositionEmbeddings == 1024)
    }
}
