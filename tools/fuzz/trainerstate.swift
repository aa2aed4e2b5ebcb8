// libFuzzer target: a checkpoint's trainer_state.json as a resumed run reads it
// (`TrainerState.read`: transformers' keys and defaults, "NaN" / "Infinity" strings for non-finite
// numbers), then what a run makes of it: the results files' figures (`RunArtifacts.trainMetrics`,
// `evalMetrics`) and the model card (`RunArtifacts.modelCard`, whose evaluation table prints the
// log_history's steps and values); and the state written back, read again and written again to the
// same bytes (a state Precis accepts must survive its own checkpoints). A difference is a crash.
import Foundation
import PrecisTrain

let path = NSTemporaryDirectory() + "/precis-fuzz-trainer-state-\(getpid()).json"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard (try? Data(bytes: data, count: size).write(to: URL(fileURLWithPath: path))) != nil,
          let state = try? TrainerState.read(path: path) else { return 0 }
    let step = max(0, state.globalStep)
    let outcome = RunOutcome(globalStep: step, epoch: state.epoch, seconds: 1, examples: 8, trainSamples: 8, history: state.logHistory,
                             savedStep: state.bestGlobalStep ?? step, plannedWorkers: 1, warmupSteps: 0, totalSteps: max(1, state.maxSteps))
    _ = RunArtifacts.trainMetrics(outcome)
    _ = RunArtifacts.evalMetrics(outcome, evalBatchSize: 8)
    _ = RunArtifacts.modelCard(outcome, config: TrainingConfig(), step: outcome.savedStep, baseModel: nil)
    guard let first = try? state.jsonData() else { fatalError("a state read could not be written") }
    try? first.write(to: URL(fileURLWithPath: path))
    guard let back = try? TrainerState.read(path: path), let second = try? back.jsonData() else {
        fatalError("a state Precis wrote could not be read back")
    }
    if first != second { fatalError("trainer_state.json changed on its way through a checkpoint") }
    return 0
}
