import Foundation
import Testing
import PrecisCore
import PrecisModels

/// BART against transformers 5.24 / PyTorch 2.13 (fixtures from tools/golden/make_bart_golden.py).
@Suite struct BartGoldenTests {
    @Test(arguments: Fixtures.bartCases)
    func parameterNamesAndShapesMatchTransformers(_ name: String) throws {
        let dir = Fixtures.bart(name)
        let (model, report) = try ModelFolder.load(dir)
        #expect(report.unexpected.isEmpty, "unexpected tensors: \(report.unexpected)")
        let expected = try SafeTensorsFile(path: dir + "/expected.safetensors")
        let names = try Fixtures.paramNames(expected)
        #expect(model.table.entries.map(\.name) == names)
        for e in model.table.entries {
            #expect(try expected.tensor("grad." + e.name).shape == e.shape, "\(e.name)")
        }
    }

    @Test(arguments: Fixtures.bartCases)
    func lossLogitsAndGradientsMatchTransformers(_ name: String) throws {
        let dir = Fixtures.bart(name)
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
        let refLogits = try expected.floats("logits")
        #expect(maxAbsDiff(logits, refLogits) <= 1e-4)
        let bart = try #require(model as? BartModel)
        #expect(maxAbsDiff(bart.lastEncoderOutput(), try expected.floats("encoder_last_hidden_state")) <= 1e-4)
        try expectGradientsMatch(model, expected, tolerance: 1e-4)
    }

    @Test(arguments: Fixtures.bartCases)
    func labelSmoothingMatchesTrainer(_ name: String) throws {
        let dir = Fixtures.bart(name)
        let (model, _) = try ModelFolder.load(dir)
        let batch = try Fixtures.batch(dir)
        let expected = try SafeTensorsFile(path: dir + "/label_smoothing.safetensors")
        model.zeroGradients()
        let result = try model.step(batch, options: StepOptions(labelSmoothing: 0.1), logitsOut: nil)
        let refLoss = try expected.floats("loss")[0]
        #expect(abs(result.mean - Double(refLoss)) / Double(refLoss) <= 1e-5, "loss \(result.mean) vs \(refLoss)")
        try expectGradientsMatch(model, expected, tolerance: 1e-4)
    }

    @Test(arguments: Fixtures.bartCases)
    func fiveAdamWStepsWithClippingAndWarmupMatchPyTorch(_ name: String) throws {
        let dir = Fixtures.bart(name)
        try expectFiveAdamWStepsMatchPyTorch(folder: dir)
    }
}
