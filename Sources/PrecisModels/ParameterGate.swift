import PrecisCore
import Synchronization

/// Lets a pass start before all its parameters are in (a worker whose pull is still arriving):
/// forward waits for each part of the flat buffer just before it first reads it. The parts, in
/// forward's order, are the stages: stage 0 is everything in no range backward reports (the
/// embeddings, which forward reads first, and whatever else no layer owns), stage s ≥ 1 is
/// backward's reported range `count − s` (forward visits the layers in backward's reverse order).
///
/// Each stage is waited for once per pass, by the first lane that reaches it, under one lock: the
/// lane calls `Seq2SeqModel.onParametersNeeded` for each of the stage's ranges, then packs the
/// stage's bf16 weight copies, then publishes the stage (a release store the other lanes' fast
/// path reads with acquire). A lane that reaches a stage another lane is waiting for blocks on the
/// lock; no lane holds work another lane needs while it waits (the board's products are taken by
/// their poster if nobody helps).
///
/// `@unchecked Sendable` because `need` and `weights` are set by `open` before the lanes start and
/// cleared by `close` after they end; between, they are read only under `lock`.
final class ParameterGate: @unchecked Sendable {
    /// The ranges of each stage, in forward's order.
    let stages: [[Range<Int>]]
    /// Stages published in this pass (`Int.max` while closed: every stage counts as in).
    private let passed = Atomic<Int>(Int.max)
    private let lock = Mutex(())
    private var need: ((Range<Int>) -> Void)?
    private var weights: BF16Weights?

    /// `reportRanges`: backward's reported ranges in its order; `restRanges`: the rest of the buffer.
    init(reportRanges: [Range<Int>], restRanges: [Range<Int>]) {
        stages = [restRanges] + reportRanges.reversed().map { [$0] }
    }

    /// Starts a pass whose parameters arrive while it runs: no stage is in yet.
    func open(need: @escaping (Range<Int>) -> Void, weights: BF16Weights?) {
        self.need = need
        self.weights = weights
        passed.store(0, ordering: .releasing)
    }

    /// Ends the pass: every stage counts as in.
    func close() {
        passed.store(Int.max, ordering: .releasing)
        need = nil
        weights = nil
    }

    /// Returns once stages 0…`stage` are in (at once when the gate is closed or they already are).
    func reach(_ stage: Int) {
        if stage < passed.load(ordering: .acquiring) { return }
        lock.withLock { _ in
            var s = passed.load(ordering: .relaxed)
            while s <= min(stage, stages.count - 1) {
                for r in stages[s] where !r.isEmpty {
                    need?(r)
                    weights?.refresh(r)
                }
                s += 1
                passed.store(s, ordering: .releasing)
            }
        }
    }

    /// Returns once every stage is in.
    func reachAll() { reach(stages.count - 1) }
}
