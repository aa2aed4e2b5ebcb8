import Dispatch
import PrecisCore
import Synchronization

/// What `LaneRunner` drives: one architecture's per-lane workspace, its forward over a lane's rows
/// to the loss, and its backward reporting each range of the flat buffer final. The architecture
/// knows its layers; the runner knows lanes, the shared `WorkBoard`, the lanes' gradient buffers
/// and when a range is final for the whole batch.
protocol LaneArchitecture: AnyObject {
    associatedtype Workspace: LaneWorkspace
    /// Parameter-name prefixes of the ranges backward reports final, in the order it finishes them
    /// (`laneBackward`'s `report(k)` means prefix k's parameters are done).
    var gradientReportPrefixes: [String] { get }
    /// Logits per target position (the vocabulary), for the lanes' slices of `logitsOut`.
    var logitsWidth: Int { get }
    /// A workspace holding `rows` of `batch` for lane `index`: `old` when it is large enough, else a
    /// new one. Its products run at once (no board) until a forward or backward is given one.
    func laneWorkspace(_ old: Workspace?, lane index: Int, rows: Range<Int>, batch: Seq2SeqBatch) -> Workspace
    /// The lane's forward from the embeddings to the loss (and, with `options.computeGradients`,
    /// the logits' gradient), keeping what `laneBackward` needs. `logitsOut` is the lane's slice;
    /// `work` is where products other lanes may share go.
    func laneForward(_ ws: Workspace, rows: Range<Int>, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?,
                     work: LaneWork) -> CrossEntropy.Result
    /// The lane's backward over what its last `laneForward` kept, adding into `gradients`; calls
    /// `report(k)` as soon as the range of `gradientReportPrefixes[k]` has its final gradient.
    func laneBackward(_ ws: Workspace, gradients: UnsafeMutablePointer<Float>, work: LaneWork, report: (Int) -> Void)
}

/// Runs a step in lanes: with several compute workers, the batch's rows are cut into contiguous
/// slices and each lane runs its slice from the embeddings to the loss — and at once back, in the
/// same parallel region — on one thread, with single-threaded kernels and its own workspace (one
/// lane, kernels split over the workers, when there is one worker or one row, or inside another
/// parallel region). Lanes share weight-gradient and big chain products through a `WorkBoard`.
/// Lane 0 accumulates into the model's gradients, the others into a buffer each; whichever lane
/// finishes a reported range last adds the other lanes' buffers into the model's for that range
/// and reports it (`onGradientsFinal`), so a worker pushes partitions while backward runs.
///
/// Not thread-safe: one step at a time (it runs its own threads inside). `onGradientsFinal` is
/// called one call at a time, under the arrivals lock.
final class LaneRunner<Arch: LaneArchitecture> {
    /// One lane: the rows of the batch it runs, its workspace, and (after lane 0) its own gradient
    /// buffer, allocated at its first backward.
    final class Lane {
        let index: Int
        var workspace: Arch.Workspace?
        var ownGrads: FloatBuffer?
        var rows = 0..<0
        var result = CrossEntropy.Result(lossSum: 0, count: 0)
        /// Whether its last forward computed the logits' gradient that backward consumes.
        var pendingBackward = false
        /// Seconds this lane has spent in forward and backward (for the profile: how evenly lanes finish).
        var busy = 0.0
        /// Seconds from the start of the last forward region until this lane finished its forward.
        var forwardEnd = 0.0

        init(index: Int) { self.index = index }
    }

    private let grads: FloatBuffer
    private var lanes: [Lane] = []
    /// How many lanes the last step, forward or lane pass used.
    private var laneCount = 0
    /// The ranges backward reports final, in the order it finishes them, and the rest of the buffer
    /// (final only at the end).
    let reportRanges: [Range<Int>], restRanges: [Range<Int>]
    /// Per report: how many lanes have finished it in the current backward.
    private let arrivals: Mutex<[Int]>
    /// Weight-gradient products the lanes of a backward share (made for the lane count in use).
    private var workBoard: WorkBoard?
    /// Seconds from the start of the last `step` or `forward` until its last lane finished its forward.
    private(set) var lastForwardSeconds = 0.0
    /// See `Seq2SeqModel.onGradientsFinal`.
    var onGradientsFinal: ((Range<Int>, CrossEntropy.Result) -> Void)?
    /// The last `forward`'s loss, which `backward` reports with its ranges.
    private var forwardLoss = CrossEntropy.Result(lossSum: 0, count: 0)
    /// See `Seq2SeqModel.onParametersNeeded`.
    var onParametersNeeded: ((Range<Int>) -> Void)?
    /// Where forward waits for the parameters `onParametersNeeded` brings in (open for a pass only
    /// when it is set).
    private let gate: ParameterGate
    /// The precision of the linear products (`Seq2SeqModel.matmulPrecision`).
    private(set) var precision: MatmulPrecision = .fp32
    /// With bf16: the weights' packed copies, made again at the start of every pass, and each
    /// board slot's converted activations.
    private var bf16Weights: BF16Weights?
    private var bf16Lanes: [BF16Lane] = []

    /// `reportPrefixes`: parameter-name prefixes in backward's order; each range reported is the
    /// span of the entries of `table` with that prefix.
    init(grads: FloatBuffer, table: ParameterTable, reportPrefixes: [String]) {
        self.grads = grads
        let entries = table.entries
        reportRanges = reportPrefixes.map { prefix in
            let es = entries.filter { $0.name.hasPrefix(prefix) }
            guard let lo = es.map(\.offset).min(), let hi = es.map({ $0.offset + $0.count }).max() else { return 0..<0 }
            return lo..<hi
        }
        var rest: [Range<Int>] = [], from = 0
        for r in reportRanges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) + [table.count..<table.count] {
            if r.lowerBound > from { rest.append(from..<r.lowerBound) }
            from = max(from, r.upperBound)
        }
        restRanges = rest
        arrivals = Mutex(Array(repeating: 0, count: reportRanges.count))
        gate = ParameterGate(reportRanges: reportRanges, restRanges: rest)
    }

    /// Where in the flat buffer the time a gradient becomes final changes: the bounds of every
    /// reported range, 0 and the count.
    var gradientCuts: [Int] {
        var cuts = Set([0, grads.count])
        for r in reportRanges where !r.isEmpty { cuts.insert(r.lowerBound); cuts.insert(r.upperBound) }
        return cuts.sorted()
    }

    var figures: LaneFigures {
        LaneFigures(busySeconds: lanes.map(\.busy), helpingSeconds: workBoard?.helpingSeconds ?? [],
                    idleSeconds: workBoard?.idleSeconds ?? [], lastForwardSeconds: lastForwardSeconds)
    }

    /// The workspaces of the lanes the last pass used, in row order (nil if one has none).
    var activeWorkspaces: [Arch.Workspace]? {
        var out: [Arch.Workspace] = []
        for lane in lanes.prefix(laneCount) {
            guard let ws = lane.workspace else { return nil }
            out.append(ws)
        }
        return out
    }

    // MARK: Precision

    /// Sets the precision of the products of every following pass (bf16 on `kernel`, nil: the
    /// best here). For bf16, `weights` lists the
    /// weight matrices of the buffer at `base` that the linear layers multiply by (packed now and
    /// before every pass); throws when this CPU has no bf16 kernel, naming the missing flags.
    func setPrecision(_ p: MatmulPrecision, kernel: BF16Kernel?, base: UnsafePointer<Float>, weights: [BF16Weights.Entry]) throws {
        switch p {
        case .fp32:
            bf16Weights = nil
        case .bf16:
            let chosen = try kernel ?? BF16Gemm.requireKernel()
            guard BF16Support.current.supports(chosen) else {
                throw BF16Error.kernelUnsupported(chosen, "this CPU/OS reports \(BF16Support.current)")
            }
            bf16Weights = try BF16Weights(kernel: chosen, base: base, entries: weights)
        }
        bf16Lanes = []
        precision = p
    }

    /// The kernel of the bf16 products, nil in fp32.
    var bf16Kernel: BF16Kernel? { bf16Weights?.kernel }

    /// The products' destination for board slot `slot` (a board's lane, or 0 without one).
    private func work(board: WorkBoard?, slot: Int) -> LaneWork {
        guard let w = bf16Weights else { return LaneWork(board: board, lane: slot, gate: gate) }
        while bf16Lanes.count <= slot { bf16Lanes.append(BF16Lane(weights: w)) }
        return LaneWork(board: board, lane: slot, bf16: bf16Lanes[slot], gate: gate)
    }

    /// Before a pass that starts from the parameters: the bf16 copies of the weights, from their
    /// current values (a pull or an optimizer step may have changed them since the last pass).
    private func refreshWeights() { bf16Weights?.refresh() }

    /// Before a training pass: with `onParametersNeeded`, the gate opens (each stage's parameters
    /// are waited for, and their bf16 copies packed, when forward reaches it); else every copy is
    /// packed now.
    private func beginTrainingPass() {
        if let need = onParametersNeeded { gate.open(need: need, weights: bf16Weights) } else { refreshWeights() }
    }

    // MARK: Passes

    /// Forward and backward of a validated batch with `options.computeGradients`.
    func step(_ arch: Arch, _ batch: Seq2SeqBatch, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?) -> CrossEntropy.Result {
        let n = lanes(forRows: batch.batchSize)
        if n == 1 {
            let result = forward(arch, batch, options: options, logitsOut: logitsOut)
            backward(arch)
            return result
        }
        beginTrainingPass()
        defer { gate.close() }
        // Several lanes: each runs its forward and then at once its backward, in one region, so a
        // lane that finishes its forward first starts on its backward instead of waiting, and the
        // lanes even out on the weight-gradient products they share (`WorkBoard`).
        let options = laneOptions(batch, lanes: n, options)
        let all = Array(lanes.prefix(n))
        for (i, lane) in all.enumerated() { lane.rows = batch.batchSize * i / n ..< batch.batchSize * (i + 1) / n }
        let running = all.filter { lane in
            lane.rows.contains { r in
                batch.labels[r * batch.targetLength ..< (r + 1) * batch.targetLength].contains { $0 != Seq2SeqBatch.ignoreIndex }
            }
        }
        let shared = beginLaneBackward(running, boardLanes: n, loss: nil)
        let works = (0..<n).map { work(board: shared.board, slot: $0) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        Parallel.run(n) { i in
            shared.board.begin(i)
            defer { shared.board.finish(helping: i) }
            let lane = all[i]
            forwardLane(arch, lane, batch, options, logitsOut, start: t0, work: works[i])
            guard running.contains(where: { $0 === lane }) else { return }
            // A lane with label tokens has its logits' gradient (the loss counted them).
            lane.pendingBackward = false
            backwardLane(arch, lane, slot: i, shared, work: works[i])
        }
        lastForwardSeconds = all.map(\.forwardEnd).max()!
        // No label token in the whole batch: no gradient, nothing to report (as `backward()`).
        if !running.isEmpty { endLaneBackward(shared) }
        return Self.total(all)
    }

    /// The forward half of `step` on a validated batch: the loss, and (with `computeGradients`) the
    /// logits' gradient, ready for `backward`.
    func forward(_ arch: Arch, _ batch: Seq2SeqBatch, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?) -> CrossEntropy.Result {
        let n = lanes(forRows: batch.batchSize)
        let options = laneOptions(batch, lanes: n, options)
        beginTrainingPass()
        defer { gate.close() }
        let all = Array(lanes.prefix(n)), t0 = DispatchTime.now().uptimeNanoseconds
        let works = (0..<n).map { work(board: nil, slot: $0) }
        Parallel.run(n) { i in
            all[i].rows = batch.batchSize * i / n ..< batch.batchSize * (i + 1) / n
            forwardLane(arch, all[i], batch, options, logitsOut, start: t0, work: works[i])
        }
        lastForwardSeconds = all.map(\.forwardEnd).max()!
        forwardLoss = Self.total(all)
        return forwardLoss
    }

    /// The backward half of `step`: adds the last forward's gradients into the model's. Does nothing
    /// unless that forward computed the logits' gradient.
    func backward(_ arch: Arch) {
        let running = lanes.prefix(laneCount).filter(\.pendingBackward)
        if running.isEmpty { return }
        if running.count == 1 && running[0].index == 0 {
            let lane = running[0]
            lane.pendingBackward = false
            arch.laneBackward(lane.workspace!, gradients: grads.pointer, work: work(board: nil, slot: 0)) { k in
                onGradientsFinal?(reportRanges[k], forwardLoss)
            }
            onGradientsFinal?(0..<grads.count, forwardLoss)
            return
        }
        let shared = beginLaneBackward(running, boardLanes: running.count, loss: forwardLoss)
        let works = running.indices.map { work(board: shared.board, slot: $0) }
        Parallel.run(running.count) { i in
            shared.board.begin(i)
            defer { shared.board.finish(helping: i) }
            running[i].pendingBackward = false
            backwardLane(arch, running[i], slot: i, shared, work: works[i])
        }
        endLaneBackward(shared)
    }

    /// The encoder's last hidden state [B, S, D] for these sources, in evaluation mode: `encode` runs
    /// the encoder in a lane's workspace and returns where its output (rows × S × D) is.
    func encoderHiddenStates(_ arch: Arch, facts: Seq2SeqFacts, dModel: Int, inputIds: [Int32], attentionMask: [Int32],
                             batchSize: Int, sourceLength: Int,
                             encode: (Arch.Workspace) -> UnsafePointer<Float>) throws -> FloatBuffer {
        let batch = try Seq2SeqBatch(batchSize: batchSize, sourceLength: sourceLength, targetLength: 1, inputIds: inputIds,
                                     attentionMask: attentionMask, labels: Array(repeating: Seq2SeqBatch.ignoreIndex, count: batchSize))
        try batch.validate(facts)
        let out = FloatBuffer(count: batchSize * sourceLength * dModel)
        let rowFloats = sourceLength * dModel
        eachLane(arch, batch) { rows, ws in
            (out.pointer + rows.lowerBound * rowFloats).update(from: encode(ws), count: rows.count * rowFloats)
        }
        return out
    }

    /// Runs `body` for each lane's rows of `batch` (a validated batch) in its workspace, the lanes
    /// at once; no board (an encoder pass for generation, say).
    func eachLane(_ arch: Arch, _ batch: Seq2SeqBatch, _ body: (_ rows: Range<Int>, _ ws: Arch.Workspace) -> Void) {
        let n = lanes(forRows: batch.batchSize), all = lanes
        refreshWeights()
        let works = (0..<n).map { work(board: nil, slot: $0) }
        Parallel.run(n) { i in
            let lane = all[i]
            lane.rows = batch.batchSize * i / n ..< batch.batchSize * (i + 1) / n
            let ws = arch.laneWorkspace(lane.workspace, lane: lane.index, rows: lane.rows, batch: batch)
            ws.work = works[i]
            lane.workspace = ws
            body(lane.rows, ws)
        }
    }

    // MARK: Lanes

    /// How many lanes a batch of `rows` runs in, with the lanes allocated: one per compute worker
    /// (at most one per row); one when there is one worker or one row, or inside another region.
    private func lanes(forRows rows: Int) -> Int {
        let n = max(1, min(Parallel.available, rows))
        while lanes.count < n { lanes.append(Lane(index: lanes.count)) }
        for lane in lanes { lane.pendingBackward = false }
        laneCount = n
        return n
    }

    /// The step's options as every lane uses them: with several lanes, each lane's loss gradient
    /// is divided by the whole batch's token count.
    private func laneOptions(_ batch: Seq2SeqBatch, lanes n: Int, _ options: StepOptions) -> StepOptions {
        var options = options
        if n > 1 && options.lossNormalizer == nil {
            let active = batch.labels.reduce(0) { $0 + ($1 == Seq2SeqBatch.ignoreIndex ? 0 : 1) }
            if active > 0 { options.lossNormalizer = active }
        }
        return options
    }

    /// One lane's forward over its rows (`lane.rows`, set by the caller).
    private func forwardLane(_ arch: Arch, _ lane: Lane, _ batch: Seq2SeqBatch, _ options: StepOptions,
                             _ logitsOut: UnsafeMutablePointer<Float>?, start: UInt64, work: LaneWork) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let ws = arch.laneWorkspace(lane.workspace, lane: lane.index, rows: lane.rows, batch: batch)
        lane.workspace = ws
        gate.reach(0)
        lane.result = arch.laneForward(ws, rows: lane.rows, options: options,
                                       logitsOut: logitsOut.map { $0 + lane.rows.lowerBound * batch.targetLength * arch.logitsWidth },
                                       work: work)
        // A range forward read without asking would be read before it arrived (see `ParameterGate`).
        precondition(ws.work.rangesNeeded == reportRanges.count,
                     "forward asked for \(ws.work.rangesNeeded) of the \(reportRanges.count) reported ranges")
        lane.pendingBackward = options.computeGradients && lane.result.count > 0
        let t1 = DispatchTime.now().uptimeNanoseconds
        lane.busy += Double(t1 - t0) / 1e9
        lane.forwardEnd = Double(t1 - start) / 1e9
    }

    /// The lanes' losses added up.
    fileprivate static func total(_ lanes: [Lane]) -> CrossEntropy.Result {
        lanes.reduce(CrossEntropy.Result(lossSum: 0, count: 0)) {
            CrossEntropy.Result(lossSum: $0.lossSum + $1.result.lossSum, count: $0.count + $1.result.count)
        }
    }

    // MARK: Backward across lanes

    /// What the lanes of one backward share: the lanes that run it, the extra lanes' gradient
    /// buffers, the board of weight-gradient products, and the batch's loss when its forward is
    /// already over (`backward`; in `step` it is added up at the first report, once every lane
    /// with label tokens has finished its forward).
    private struct LaneBackward {
        var running: [Lane]
        var extra: [Ptr]
        var board: WorkBoard
        var loss: CrossEntropy.Result?

        /// The loss reported with a range: every running lane's forward is over by then (each
        /// counted its arrival under the lock the report is made under). Lanes without label tokens
        /// add nothing.
        var reportedLoss: CrossEntropy.Result { loss ?? LaneRunner.total(running) }
    }

    /// Lanes after the first accumulate into their own buffers; whichever lane finishes a range last
    /// adds them into the model's (and zeroes them for the next call) and reports the range.
    private func beginLaneBackward(_ running: [Lane], boardLanes: Int, loss: CrossEntropy.Result?) -> LaneBackward {
        arrivals.withLock { counts in for k in counts.indices { counts[k] = 0 } }
        for lane in running where lane.index > 0 && lane.ownGrads == nil {
            lane.ownGrads = FloatBuffer(count: grads.count)
        }
        if workBoard?.lanes != boardLanes { workBoard = WorkBoard(lanes: boardLanes) }
        workBoard!.reset()
        return LaneBackward(running: running, extra: running.compactMap { $0.ownGrads?.pointer }, board: workBoard!, loss: loss)
    }

    /// One lane's backward; `slot` is its place on the board.
    private func backwardLane(_ arch: Arch, _ lane: Lane, slot: Int, _ shared: LaneBackward, work: LaneWork) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { lane.busy += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        let g = grads.pointer, lanes = shared.running.count
        arch.laneBackward(lane.workspace!, gradients: lane.ownGrads?.pointer ?? g, work: work) { k in
            let last = arrivals.withLock { counts in
                counts[k] += 1
                return counts[k] == lanes
            }
            guard last else { return }
            // The last lane to finish a range adds the others' buffers into it — in two halves a
            // lane with nothing left to do can share (the last lane is the slowest) — and reports it.
            gatherLaneGradients(into: g, from: shared.extra, reportRanges[k], work: work)
            arrivals.withLock { _ in onGradientsFinal?(reportRanges[k], shared.reportedLoss) }
        }
    }

    /// The rest (embeddings, the encoder's own LayerNorm…), once every lane is done.
    private func endLaneBackward(_ shared: LaneBackward) {
        for r in restRanges { addLaneGradients(into: grads.pointer, from: shared.extra, r) }
        onGradientsFinal?(0..<grads.count, shared.reportedLoss)
    }
}

/// A range of the lanes' gradient buffers to add into the model's (see `LaneRunner.backwardLane`).
private struct GatherJob {
    var into: Ptr
    var from: [Ptr]
    var range: Range<Int>
}

/// g[r] += Σ e[r] over the extra lanes' buffers in two parts another lane may take; the buffers
/// are zeroed.
private func gatherLaneGradients(into g: Ptr, from extra: [Ptr], _ range: Range<Int>, work: LaneWork) {
    var job = GatherJob(into: g, from: extra, range: range)
    withUnsafePointer(to: &job) { job in
        work.items(range.count, maxParts: 2, job: job) { job, _, lo, hi in
            let j = job.assumingMemoryBound(to: GatherJob.self).pointee
            addLaneGradients(into: j.into, from: j.from, j.range.lowerBound + lo ..< j.range.lowerBound + hi)
        }
    }
}

/// g[r] += Σ e[r] over the extra lanes' buffers, which are zeroed.
private func addLaneGradients(into g: Ptr, from extra: [Ptr], _ r: Range<Int>) {
    for e in extra { Vec.moveAdd(g + r.lowerBound, e + r.lowerBound, r.count) }
}
