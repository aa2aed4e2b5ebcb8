import Foundation
import Testing
import PrecisCore
import PrecisModels

/// Pegasus against transformers 5.24 / PyTorch 2.13 (fixtures from tools/golden/make_pegasus_golden.py),
/// within BART's tolerances.
@Suite struct PegasusGoldenTests {
    static let cases = ["tiny", "tiny-gelu"]
    static func dir(_ name: String) -> String { Fixtures.root.appendingPathComponent("pegasus/\(name)").path }

    @Test(arguments: cases)
    func parameterNamesAndShapesMatchTransformers(_ name: String) throws {
        let dir = Self.dir(name)
        let (model, report) = try ModelFolder.load(dir)
        #expect(model is PegasusModel)
        // The file holds the frozen sinusoidal tables too (save_pretrained writes them): they are
        // rebuilt, not loaded, and not reported as unexpected.
        let file = try SafeTensorsFile(path: dir + "/model.safetensors")
        #expect(file.names.contains("model.encoder.embed_positions.weight"))
        #expect(report.unexpected.isEmpty, "unexpected tensors: \(report.unexpected)")
        #expect(report.defaulted.isEmpty)
        let expected = try SafeTensorsFile(path: dir + "/expected.safetensors")
        #expect(model.table.entries.map(\.name) == (try Fixtures.paramNames(expected)))
        for e in model.table.entries {
            #expect(try expected.tensor("grad." + e.name).shape == e.shape, "\(e.name)")
        }
    }

    /// The rebuilt sinusoidal tables are transformers' (stored in the fixture by save_pretrained).
    @Test(arguments: cases)
    func sinusoidalPositionsMatchTransformers(_ name: String) throws {
        let dir = Self.dir(name)
        let (m, _) = try ModelFolder.load(dir)
        let model = try #require(m as? PegasusModel)
        let file = try SafeTensorsFile(path: dir + "/model.safetensors")
        for key in ["model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"] {
            let want = try file.floats(key)
            #expect(try file.tensor(key).shape == [model.config.maxPositionEmbeddings, model.config.dModel])
            let got = model.positionTable
            #expect(got.count == want.count)
            #expect(maxAbsDiff(got, want) <= 1e-6, "\(key)")
        }
    }

    @Test(arguments: cases)
    func lossLogitsAndGradientsMatchTransformers(_ name: String) throws {
        let dir = Self.dir(name)
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
        let pegasus = try #require(model as? PegasusModel)
        #expect(maxAbsDiff(pegasus.lastEncoderOutput(), try expected.floats("encoder_last_hidden_state")) <= 1e-4)
        // The encoder alone (generation's path) gives the same last hidden state.
        let enc = try model.encoderHiddenStates(inputIds: batch.inputIds, attentionMask: batch.attentionMask,
                                                batchSize: batch.batchSize, sourceLength: batch.sourceLength)
        #expect(maxAbsDiff(enc.array, try expected.floats("encoder_last_hidden_state")) <= 1e-4)
        try checkGradients(model, expected, tolerance: 1e-4)
    }

    @Test(arguments: cases)
    func labelSmoothingMatchesTrainer(_ name: String) throws {
        let dir = Self.dir(name)
        let (model, _) = try ModelFolder.load(dir)
        let batch = try Fixtures.batch(dir)
        let expected = try SafeTensorsFile(path: dir + "/label_smoothing.safetensors")
        model.zeroGradients()
        let result = try model.step(batch, options: StepOptions(labelSmoothing: 0.1), logitsOut: nil)
        let refLoss = try expected.floats("loss")[0]
        #expect(abs(result.mean - Double(refLoss)) / Double(refLoss) <= 1e-5, "loss \(result.mean) vs \(refLoss)")
        try checkGradients(model, expected, tolerance: 1e-4)
    }

    @Test(arguments: cases)
    func fiveAdamWStepsWithClippingAndWarmupMatchPyTorch(_ name: String) throws {
        let dir = Self.dir(name)
        let (model, _) = try ModelFolder.load(dir)
        let batch = try Fixtures.batch(dir)
        let ref = try SafeTensorsFile(path: dir + "/adamw.safetensors")
        let decayNames = try JSONDecoder().decode([String].self, from: Data((ref.metadata["decay_names"] ?? "[]").utf8))
        #expect(Set(model.table.entries.filter(\.decay).map(\.name)) == Set(decayNames))
        let opt = OptimizerState(table: model.table, adamw: AdamW(weightDecay: 0.01),
                                 schedule: LRSchedule(kind: .linear, baseLR: 1e-2, warmupSteps: 2, totalSteps: 10))
        let refLR = try ref.floats("lr"), refNorm = try ref.floats("grad_norm"), refLoss = try ref.floats("loss")
        for s in 0..<5 {
            model.zeroGradients()
            let r = try model.step(batch, options: StepOptions(), logitsOut: nil)
            #expect(abs(r.mean - Double(refLoss[s])) <= 1e-5 * Double(refLoss[s]), "step \(s) loss")
            let norm = GradClip.norm(model.grads.pointer, count: model.grads.count)
            #expect(abs(norm - Double(refNorm[s])) <= 1e-4 * Double(refNorm[s]), "step \(s) grad norm \(norm) vs \(refNorm[s])")
            #expect(abs(opt.currentLR - Double(refLR[s])) <= 1e-9, "step \(s) lr")
            opt.apply(params: model.params.pointer, grads: model.grads.pointer,
                      clipCoefficient: GradClip.coefficient(totalNorm: norm, maxNorm: 0.5))
        }
        let lrSum = refLR.reduce(0, +)
        let initial = try SafeTensorsFile(path: dir + "/model.safetensors")
        for e in model.table.entries {
            let got = UnsafeBufferPointer(start: model.params.pointer + e.offset, count: e.count)
            let want = try ref.floats("param." + e.name)
            if e.name.hasSuffix("k_proj.bias") {
                // Analytically zero gradient: Adam's steps follow rounding noise; only its step bound holds.
                let start = try initial.floats(e.name)
                for i in 0..<e.count {
                    #expect(abs(got[i] - start[i]) <= lrSum * 1.0001, "\(e.name)[\(i)] moved more than Adam allows")
                    #expect(abs(got[i] - want[i]) <= 2 * lrSum, "\(e.name)[\(i)]")
                }
                continue
            }
            let err = relativeError(got, want)
            #expect(err.rel <= 1e-5, "\(e.name): relative error \(err.rel)")
            let m = UnsafeBufferPointer(start: opt.m.pointer + e.offset, count: e.count)
            let mErr = relativeError(m, try ref.floats("exp_avg." + e.name))
            #expect(mErr.rel <= 1e-4 || mErr.absNorm <= 1e-7, "\(e.name): exp_avg relative error \(mErr.rel)")
        }
    }

    private func checkGradients(_ model: any Seq2SeqModel, _ ref: SafeTensorsFile, tolerance: Double) throws {
        for e in model.table.entries {
            let got = UnsafeBufferPointer(start: model.grads.pointer + e.offset, count: e.count)
            let want = try ref.floats("grad." + e.name)
            let err = relativeError(got, want)
            if e.name.hasSuffix("k_proj.bias") {
                #expect(err.absNorm <= 1e-6, "\(e.name): |grad| \(err.absNorm)")
            } else {
                #expect(err.rel <= tolerance, "\(e.name): relative error \(err.rel) (ref norm \(err.refNorm))")
            }
        }
        // nn.Embedding(padding_idx=0): the decoder's start token (= pad) adds nothing through the
        // lookup; row 0 of the shared embedding has only the LM head's gradient, nonzero.
        let shared = try #require(model.table["model.shared.weight"])
        let row0 = Array(UnsafeBufferPointer(start: model.grads.pointer + shared.offset, count: model.facts.dModel))
        #expect(row0.contains { $0 != 0 })
    }
}
