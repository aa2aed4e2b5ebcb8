import Testing
import PrecisCore
import PrecisModels

/// Central differences of the whole model's loss (training mode, label smoothing 0.1, dropout seed
/// 11, so the loss is a deterministic function of the parameters) against backward, for `samples`
/// parameters of every entry of the table: `index(entry, rng)` picks one (an offset into the flat
/// buffer). A key projection's bias must get no gradient (softmax ignores it).
func expectBackwardMatchesFiniteDifferences(_ model: any Seq2SeqModel, _ batch: Seq2SeqBatch, samples: Int = 2,
                                            index: (ParameterTable.Entry, inout SeededRNG) -> Int) throws {
    let opts = StepOptions(training: true, labelSmoothing: 0.1, seed: 11)
    model.zeroGradients()
    _ = try model.step(batch, options: opts, logitsOut: nil)
    let analytic = model.grads.array
    func loss() throws -> Double {
        try model.step(batch, options: StepOptions(training: true, computeGradients: false, labelSmoothing: 0.1, seed: 11),
                       logitsOut: nil).mean
    }
    var rng = SeededRNG(seed: 5)
    var checked = 0
    for e in model.table.entries {
        for _ in 0..<samples {
            let i = index(e, &rng)
            let orig = model.params[i], h: Float = 1e-2
            model.params[i] = orig + h; let up = try loss()
            model.params[i] = orig - h; let down = try loss()
            model.params[i] = orig
            let numeric = (up - down) / Double(2 * h), a = Double(analytic[i])
            let tol = 2e-3 + 3e-2 * max(abs(numeric), abs(a))
            if e.name.hasSuffix("k_proj.bias") {
                #expect(abs(a) < 1e-5, "\(e.name): gradient should be zero")
            } else {
                #expect(abs(numeric - a) <= tol, "\(e.name)[\(i - e.offset)]: analytic \(a), numeric \(numeric)")
            }
            checked += 1
        }
    }
    #expect(checked == samples * model.table.entries.count)
}
