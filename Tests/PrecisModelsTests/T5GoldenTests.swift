import Foundation
import Synchronization
import Testing
import PrecisCore
import PrecisModels
import PrecisTestSupport

extension Fixtures {
    static func t5(_ name: String) -> String { root.appendingPathComponent("t5/\(name)").path }
    /// v1_0: ReLU, head tied to `shared` (scaled by d_model^-0.5); v1_1: gated-gelu, own `lm_head`.
    static let t5Cases = ["v1_0", "v1_1"]
}

/// T5 against transformers 5.24 / PyTorch 2.13 (fixtures from tools/golden/make_t5_golden.py).
@Suite struct T5GoldenTests {
    @Test(arguments: Fixtures.t5Cases)
    func parameterNamesAndShapesMatchTransformers(_ name: String) throws {
        let dir = Fixtures.t5(name)
        let (model, report) = try ModelFolder.load(dir)
        #expect(report.unexpected.isEmpty, "unexpected tensors: \(report.unexpected)")
        #expect(model.facts.modelType == "t5" && model.facts.tiedHead == (name == "v1_0"))
        #expect(model.facts.maxSourcePositions == nil && model.facts.maxTargetPositions == nil)
        let expected = try SafeTensorsFile(path: dir + "/expected.safetensors")
        #expect(model.table.entries.map(\.name) == (try Fixtures.paramNames(expected)))
        for e in model.table.entries {
            #expect(try expected.tensor("grad." + e.name).shape == e.shape, "\(e.name)")
        }
    }

    @Test(arguments: Fixtures.t5Cases)
    func lossLogitsEncoderOutputAndGradientsMatchTransformers(_ name: String) throws {
        let dir = Fixtures.t5(name)
        let (model, _) = try ModelFolder.load(dir)
        let batch = try Fixtures.batch(dir)
        let expected = try SafeTensorsFile(path: dir + "/expected.safetensors")
        var logits = [Float](repeating: 0, count: batch.batchSize * batch.targetLength * model.vocabSize)
        model.zeroGradients()
        let result = try logits.withUnsafeMutableBufferPointer {
            try model.step(batch, options: StepOptions(training: true), logitsOut: $0.baseAddress)
        }
        let refLoss = try expected.floats("loss")[0]
        #expect(abs(result.mean - Double(refLoss)) / Double(refLoss) <= 1e-5, "loss \(result.mean) vs \(refLoss)")
        #expect(maxAbsDiff(logits, try expected.floats("logits")) <= 1e-4)
        let t5 = try #require(model as? T5Model)
        #expect(maxAbsDiff(t5.lastEncoderOutput(), try expected.floats("encoder_last_hidden_state")) <= 1e-4)
        // The encoder alone (generation's path) gives the same states.
        let enc = try model.encoderHiddenStates(inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                                batchSize: batch.batchSize, sourceLength: batch.sourceLength)
        #expect(maxAbsDiff(enc.array, try expected.floats("encoder_last_hidden_state")) <= 1e-4)
        try expectGradientsMatch(model, expected, tolerance: 1e-4)
    }

    @Test(arguments: Fixtures.t5Cases)
    func labelSmoothingMatchesTrainer(_ name: String) throws {
        let dir = Fixtures.t5(name)
        let (model, _) = try ModelFolder.load(dir)
        let batch = try Fixtures.batch(dir)
        let expected = try SafeTensorsFile(path: dir + "/label_smoothing.safetensors")
        model.zeroGradients()
        let result = try model.step(batch, options: StepOptions(labelSmoothing: 0.1), logitsOut: nil)
        let refLoss = try expected.floats("loss")[0]
        #expect(abs(result.mean - Double(refLoss)) / Double(refLoss) <= 1e-5, "loss \(result.mean) vs \(refLoss)")
        try expectGradientsMatch(model, expected, tolerance: 1e-4)
    }

    @Test(arguments: Fixtures.t5Cases)
    func fiveAdamWStepsWithClippingAndWarmupMatchPyTorch(_ name: String) throws {
        try expectFiveAdamWStepsMatchPyTorch(folder: Fixtures.t5(name))
    }

    /// Saving writes what was loaded (the untied head as `lm_head.weight`, the tied one not at all),
    /// and the config round-trips to the same architecture.
    @Test(arguments: Fixtures.t5Cases)
    func saveThenLoadRoundTripsExactly(_ name: String) throws {
        let (model, _) = try ModelFolder.load(Fixtures.t5(name))
        let dir = TestData.tempDir("models")
        try ModelFolder.save(model, to: dir)
        let (again, report) = try ModelFolder.load(dir)
        #expect(report.unexpected.isEmpty)
        #expect(again.table == model.table && again.params.array == model.params.array && again.facts == model.facts)
        let names = try SafeTensorsFile(path: dir + "/model.safetensors").names
        #expect(names.contains("lm_head.weight") == (name == "v1_1"))
        #expect(!names.contains("encoder.embed_tokens.weight"))
        // transformers 5 refuses `"initializer_factor": 1` (a float is expected).
        let config = try String(contentsOfFile: dir + "/config.json", encoding: .utf8)
        #expect(config.contains(#""initializer_factor" : 1.0"#) && config.contains(#""dropout_rate" : 0.0"#), "\(config)")
    }
}

/// T5's own behaviour beyond the fixtures: dropout, gradient reports, init, config errors.
@Suite struct T5ModelTests {
    static func config(gated: Bool = false, tied: Bool = true, dropout: Double = 0) throws -> T5Config {
        try T5Config.parse(Data("""
            {"model_type": "t5", "vocab_size": 40, "d_model": 16, "d_kv": 6, "num_heads": 2, "d_ff": 24, "num_layers": 2,
             "num_decoder_layers": 2, "relative_attention_num_buckets": 8, "relative_attention_max_distance": 10,
             "feed_forward_proj": "\(gated ? "gated-gelu" : "relu")", "tie_word_embeddings": \(tied), "dropout_rate": \(dropout),
             "initializer_factor": 1.0}
            """.utf8), file: "t5 test config")
    }

    static func batch() throws -> Seq2SeqBatch {
        try Seq2SeqBatch(batchSize: 2, sourceLength: 7, targetLength: 5,
                         inputIds: [5, 9, 12, 7, 30, 22, 1, 8, 33, 17, 1, 0, 0, 0],
                         attentionMask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                         labels: [14, 22, 6, 39, 1, 39, 3, 1, -100, -100])
    }

    /// Central differences of the loss against backward for a sample of every parameter (the
    /// position biases included), with dropout on (its masks are a function of the seed).
    @Test(arguments: [(false, true, 0.0), (true, false, 0.2), (false, true, 0.2)])
    func backwardMatchesFiniteDifferences(_ gated: Bool, _ tied: Bool, _ dropout: Double) throws {
        let model = T5Model(config: try Self.config(gated: gated, tied: tied, dropout: dropout))
        model.initializeWeights(seed: 3)
        Vec.scale(model.params.pointer, 0.5, model.params.count)  // keep the loss smooth at this step size
        try expectBackwardMatchesFiniteDifferences(model, try Self.batch(), samples: 3) { e, rng in
            // The position biases: only the rows the batch's buckets reach get a gradient.
            e.name.hasSuffix("relative_attention_bias.weight") ? e.offset + Int(rng.next() % UInt64(min(e.count, 6 * 2)))
                                                               : e.offset + Int(rng.next() % UInt64(e.count))
        }
    }

    @Test func evalModeIsDeterministicAndTrainingDropoutChangesTheLoss() throws {
        let model = T5Model(config: try Self.config(dropout: 0.3))
        model.initializeWeights(seed: 2)
        let batch = try Self.batch()
        func mean(_ o: StepOptions) throws -> Double { try model.step(batch, options: o, logitsOut: nil).mean }
        let e1 = try mean(StepOptions(training: false, computeGradients: false))
        let e2 = try mean(StepOptions(training: false, computeGradients: false, seed: 99))
        #expect(e1 == e2)
        let t1 = try mean(StepOptions(training: true, computeGradients: false, seed: 1))
        let t1b = try mean(StepOptions(training: true, computeGradients: false, seed: 1))
        let t2 = try mean(StepOptions(training: true, computeGradients: false, seed: 2))
        #expect(t1 == t1b)
        #expect(t1 != e1 && t1 != t2)
    }

    /// Every range reported before the end lies between two cuts, none twice, each is final when
    /// reported, block 0 of a stack (the shared position bias) after its other blocks, the whole
    /// buffer last, and the reports and the rest cover the buffer.
    @Test(arguments: [true, false])
    func gradientsAreFinalWhenReportedAndTheReportsCoverTheBuffer(_ tied: Bool) throws {
        let model = T5Model(config: try Self.config(gated: !tied, tied: tied, dropout: 0.1))
        model.initializeWeights(seed: 4)
        var rng = SeededRNG(seed: 11)
        let rows = 5, s = 12, t = 9
        let batch = try Seq2SeqBatch(
            batchSize: rows, sourceLength: s, targetLength: t,
            inputIds: (0..<(rows * s)).map { _ in Int32(2 + rng.next() % 38) }, attentionMask: Array(repeating: 1, count: rows * s),
            labels: (0..<(rows * t)).map { i in i % t < t - i / t ? Int32(2 + rng.next() % 38) : -100 })
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
        let seen = reports.seen.withLock { $0 }, final = grads.array, cuts = model.gradientCuts
        #expect(seen.last?.range == 0..<final.count)
        let early = Array(seen.dropLast())
        #expect(early.count == (tied ? 0 : 1) + 1 + 2 + 1 + 2)
        #expect(Set(early.flatMap { [$0.range.lowerBound, $0.range.upperBound] } + [0, final.count]) == Set(cuts))
        var covered = Set<Int>()
        for (range, values, _) in early {
            #expect(covered.isDisjoint(with: range), "\(range) reported twice")
            covered.formUnion(range)
            #expect(values == Array(final[range]), "\(range) changed after it was reported final")
            #expect(values.contains { $0 != 0 }, "\(range) has a gradient")
        }
        // What is not reported early is the shared embedding alone.
        let shared = try #require(model.table["shared.weight"])
        #expect(Set(0..<final.count).subtracting(covered) == Set(shared.offset..<(shared.offset + shared.count)))
        // Block 0 (with the bias) after block 1 in each stack.
        for stack in ["decoder", "encoder"] {
            let b0 = try #require(model.table["\(stack).block.0.layer.0.SelfAttention.relative_attention_bias.weight"])
            let b1 = try #require(model.table["\(stack).block.1.layer.0.SelfAttention.q.weight"])
            let i0 = try #require(early.firstIndex { $0.range.contains(b0.offset) })
            let i1 = try #require(early.firstIndex { $0.range.contains(b1.offset) })
            #expect(i1 < i0)
        }
    }

    /// transformers' `_init_weights` scales, measured by the sample standard deviation.
    @Test func initFollowsTransformersScheme() throws {
        var c = try Self.config(gated: true, tied: false)
        c.dModel = 64; c.dFf = 256; c.dKv = 16; c.numHeads = 4; c.initializerFactor = 1.0
        let model = T5Model(config: c)
        model.initializeWeights(seed: 7)
        func std(_ name: String) throws -> Double {
            let e = try #require(model.table[name])
            let v = UnsafeBufferPointer(start: model.params.pointer + e.offset, count: e.count)
            return (v.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(e.count)).squareRoot()
        }
        let checks: [(String, Double)] = [
            ("shared.weight", 1), ("lm_head.weight", 1),
            ("encoder.block.0.layer.0.SelfAttention.q.weight", 1 / (64.0 * 16).squareRoot()),
            ("encoder.block.0.layer.0.SelfAttention.k.weight", 1 / 8.0),
            ("encoder.block.0.layer.0.SelfAttention.o.weight", 1 / 8.0),
            ("decoder.block.1.layer.2.DenseReluDense.wi_1.weight", 1 / 8.0),
            ("decoder.block.1.layer.2.DenseReluDense.wo.weight", 1 / 16.0),
        ]
        for (name, want) in checks {
            let got = try std(name)
            #expect(abs(got - want) <= 0.1 * want, "\(name): std \(got), want \(want)")
        }
        let ln = try #require(model.table["decoder.final_layer_norm.weight"])
        #expect(UnsafeBufferPointer(start: model.params.pointer + ln.offset, count: ln.count).allSatisfy { $0 == 1 })
    }

    /// A config with only a few keys gets transformers' defaults through the registry.
    @Test func registryBuildsT5WithTransformersDefaults() throws {
        let model = try ModelRegistry.model(config: Data(#"{"model_type": "t5", "vocab_size": 40, "d_model": 16, "d_kv": 4, "num_heads": 4, "d_ff": 16, "num_layers": 1}"#.utf8), file: "c")
        #expect(model.facts.decoderStartTokenId == 0 && model.facts.padTokenId == 0 && model.facts.eosTokenId == 1)
        #expect(model.facts.tiedHead)
        let c = try #require((model as? T5Model)?.config)
        #expect(c.decoderLayers == 1 && c.activation == .relu && !c.isGatedAct)
    }

    @Test func configErrorsNameTheField() throws {
        func parse(_ s: String) throws -> T5Config { try T5Config.parse(Data(s.utf8), file: "c.json") }
        let cases: [(String, String)] = [
            (#"{"d_model": 16.5}"#, "d_model"), (#"{"d_model": 0}"#, "d_model"), (#"{"num_heads": "x"}"#, "num_heads"),
            (#"{"feed_forward_proj": "gated-gated-gelu"}"#, "feed_forward_proj"), (#"{"feed_forward_proj": "tanh"}"#, "feed_forward_proj"),
            (#"{"dropout_rate": 1.5}"#, "dropout_rate"), (#"{"vocab_size": 10, "eos_token_id": 10}"#, "eos_token_id"),
            (#"{"vocab_size": 10, "pad_token_id": 3, "decoder_start_token_id": -1}"#, "decoder_start_token_id"),
            (#"{"num_layers": 0}"#, "num_layers"), (#"{"num_decoder_layers": 0}"#, "num_decoder_layers"),
            (#"{"d_ff": 9999999999}"#, "d_ff"), (#"{"num_heads": 4611686018427387904, "d_kv": 4}"#, "num_heads"),
            (#"{"relative_attention_num_buckets": 2}"#, "relative_attention_num_buckets"),
            (#"{"relative_attention_num_buckets": 32, "relative_attention_max_distance": 16}"#, "relative_attention_max_distance"),
            (#"{"vocab_size": 4194304, "d_model": 4096}"#, "vocab_size"), (#"{"model_type": "bart"}"#, "model_type"),
            (#"[1, 2]"#, "(root)"), (#"{"d_model": 65536, "d_ff": 262144, "num_layers": 1024}"#, "num_layers"), (#"{"layer_norm_epsilon": -1}"#, "layer_norm_epsilon"),
        ]
        for (json, field) in cases {
            #expect(throws: ModelError.self, "\(json)") { try parse(json) }
            do { _ = try parse(json) } catch let ModelError.invalidConfig(file, f, reason) {
                #expect(file == "c.json" && f == field, "\(json): field \(f) (\(reason))")
            }
        }
        // Defaults as transformers: t5-small's shape, decoder layers = layers, start = pad.
        let d = try parse(#"{"whatever": [1]}"#)
        #expect(d.dModel == 512 && d.decoderLayers == 6 && d.startTokenId == 0 && d.tiedHead && d.scalesDecoderOutput)
        // flan-t5 on the hub: untied and unscaled; saved by transformers 5: tie true but scale false.
        let flan = try parse(#"{"feed_forward_proj": "gated-gelu", "tie_word_embeddings": false}"#)
        #expect(!flan.tiedHead && !flan.scalesDecoderOutput && flan.denseActFn == "gelu_new" && flan.isGatedAct)
        let resaved = try parse(#"{"tie_word_embeddings": true, "scale_decoder_outputs": false}"#)
        #expect(!resaved.tiedHead && !resaved.scalesDecoderOutput)
    }

    @Test func shippedConfigFilesMatchThePresets() throws {
        let repo = TestData.repo
        for name in ["t5-tiny", "t5-scratch-small", "t5-small", "flan-t5-small"] {
            let json = try #require(ModelPresets.all[name])
            let file = try T5Config.parse(Data(contentsOf: repo.appendingPathComponent("configs/\(name).json")), file: name)
            #expect(file == (try T5Config.parse(Data(json.utf8), file: name)), "\(name)")
            #expect(try ModelPresets.model(name).facts.modelType == "t5")
        }
        let scratch = try T5Config.parse(Data(ModelPresets.all["t5-scratch-small"]!.utf8), file: "s")
        #expect(scratch.dModel == 256 && scratch.dKv == 64 && scratch.numHeads == 4 && scratch.dFf == 1024)
        #expect(scratch.numLayers == 3 && scratch.decoderLayers == 3 && scratch.vocabSize == 8192 && scratch.tiedHead)
        let flan = try T5Config.parse(Data(ModelPresets.all["flan-t5-small"]!.utf8), file: "f")
        #expect(flan.isGatedAct && !flan.tiedHead && flan.numLayers == 8 && flan.numHeads == 6 && flan.dFf == 1024)
        // t5-small: 60.5M parameters (transformers' count, the tied head once).
        #expect(try ModelPresets.model("t5-small").table.count == 60_506_624)
        for name in ["t5-tiny", "t5-scratch-small", "t5-small", "flan-t5-small"] {
            let m = try ModelPresets.model(name)
            #expect((m as? T5Model)?.config.parameterCount == m.table.count, "\(name)")
        }
    }
}
