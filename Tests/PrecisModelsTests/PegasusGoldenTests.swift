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
        try checkGradients(model, expected)
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
        try checkGradients(model, expected)
    }

    @Test(arguments: cases)
    func fiveAdamWStepsWithClippingAndWarmupMatchPyTorch(_ name: String) throws {
        let dir = Self.dir(name)
        try expectFiveAdamWStepsMatchPyTorch(folder: dir)
    }

    private func checkGradients(_ model: any Seq2SeqModel, _ ref: SafeTensorsFile) throws {
        try expectGradientsMatch(model, ref, tolerance: 1e-4)
        // nn.Embedding(padding_idx=0): the decoder's start token (= pad) adds nothing through the
        // lookup; row 0 of the shared embedding has only the LM head's gradient, nonzero.
        let shared = try #require(model.table["model.shared.weight"])
        let row0 = Array(UnsafeBufferPointer(start: model.grads.pointer + shared.offset, count: model.facts.dModel))
        #expect(row0.contains { $0 != 0 })
    }
}
