import PrecisCore

/// What every architecture's lane workspace holds of the batch (see `LaneRunner`), so that one
/// function fills it for BART, Pegasus and T5.
protocol LaneWorkspace: AnyObject {
    /// The shape its buffers were allocated for.
    var capB: Int { get }
    var capS: Int { get }
    var capT: Int { get }
    /// The shape of the rows it holds now.
    var b: Int { get set }
    var s: Int { get set }
    var t: Int { get set }
    /// Whether its regions are timed (lane 0's).
    var profiled: Bool { get set }
    /// Where its products go (a board, or run at once).
    var work: LaneWork { get set }
    var attnScratch: AttentionScratch { get }
    var sourceIds: UnsafeMutablePointer<Int32> { get }
    var sourceMask: Ptr { get }
    var labels: UnsafeMutablePointer<Int32> { get }
    var targetIds: UnsafeMutablePointer<Int32> { get }
}

extension LaneWorkspace {
    /// Lane `index`'s workspace holding `rows` of `batch`: `old` when it is large enough, else
    /// `make(b, s, t)` at least as large as `old`. It gets the rows' source ids and mask, their
    /// labels, and the decoder's inputs as transformers' shift_tokens_right makes them:
    /// [decoder_start, labels[:-1]] with -100 replaced by pad. Its products run at once (no board).
    static func lane(_ old: Self?, index: Int, rows: Range<Int>, batch: Seq2SeqBatch, decoderStart: Int, pad: Int,
                     make: (_ b: Int, _ s: Int, _ t: Int) -> Self) -> Self {
        let b = rows.count, s = batch.sourceLength, t = batch.targetLength, r0 = rows.lowerBound
        let ws: Self
        if let w = old, w.capB >= b, w.capS >= s, w.capT >= t, w.attnScratch.probTiles.count >= Parallel.available {
            ws = w
        } else {
            ws = make(max(b, old?.capB ?? 0), max(s, old?.capS ?? 0), max(t, old?.capT ?? 0))
        }
        ws.b = b; ws.s = s; ws.t = t
        ws.profiled = index == 0
        ws.work = LaneWork()  // no board unless the caller's region has one
        let sourceIds = ws.sourceIds, sourceMask = ws.sourceMask, labels = ws.labels, targetIds = ws.targetIds
        for i in 0..<(b * s) {
            sourceIds[i] = batch.inputIds[r0 * s + i]
            sourceMask[i] = Float(batch.attentionMask[r0 * s + i])
        }
        for r in 0..<b {
            for j in 0..<t {
                labels[r * t + j] = batch.labels[(r0 + r) * t + j]
                let prev: Int32 = j == 0 ? Int32(decoderStart) : batch.labels[(r0 + r) * t + j - 1]
                targetIds[r * t + j] = prev == Seq2SeqBatch.ignoreIndex ? Int32(pad) : prev
            }
        }
        return ws
    }
}
