import Foundation
import Testing
import PrecisCore
import PrecisModels

/// What the families' golden tests (BART, Pegasus, T5) check against transformers / PyTorch fixtures.

/// Every parameter's gradient against the reference's `grad.<name>` within `tolerance` (relative); a
/// key projection's bias, analytically zero, absolutely.
func expectGradientsMatch(_ model: any Seq2SeqModel, _ ref: SafeTensorsFile, tolerance: Double) throws {
    for e in model.table.entries {
        let got = UnsafeBufferPointer(start: model.grads.pointer + e.offset, count: e.count)
        let want = try ref.floats("grad." + e.name)
        let err = relativeError(got, want)
        if e.name.hasSuffix("k_proj.bias") {
            // Analytically zero (softmax is shift-invariant): compare absolutely.
            #expect(err.absNorm <= 1e-6, "\(e.name): |grad| \(err.absNorm)")
        } else {
            #expect(err.rel <= tolerance, "\(e.name): relative error \(err.rel) (ref norm \(err.refNorm))")
        }
    }
}

/// Five AdamW steps (weight decay 0.01, linear schedule with 2 warm-up steps, clipping at 0.5) on the
/// folder's batch against its `adamw.safetensors`: each step's loss, gradient norm and learning rate,
/// then every parameter and its first moment; the decayed parameters are the reference's.
func expectFiveAdamWStepsMatchPyTorch(folder dir: String) throws {
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
            // Its gradient is analytically zero, so both sides' Adam updates are driven by rounding
            // noise (Adam normalises any nonzero gradient to a step of about lr). The only meaningful
            // check is Adam's step bound: |Δ| ≤ Σ lr_t per element.
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
