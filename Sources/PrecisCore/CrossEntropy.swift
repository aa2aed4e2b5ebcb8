import Foundation

/// Token-level cross-entropy with an ignore index and label smoothing, fused with its gradient.
///
/// Per active row i (label ≠ ignoreIndex): with lse = log Σ exp(z),
///   loss_i = (1 − ε)·(lse − z[y]) + ε·(lse − mean(z)),
/// which is PyTorch's `cross_entropy(..., label_smoothing: ε)` and HF Trainer's `LabelSmoother`.
/// The mean is over active rows. The gradient of the mean loss (times `gradScale`) is
///   softmax(z) − (1 − ε)·onehot(y) − ε/V, divided by the active count; ignored rows get 0.
public enum CrossEntropy {
    public struct Result: Sendable {
        /// Σ over active rows of loss_i (double precision).
        public var lossSum: Double
        /// Number of active rows.
        public var count: Int
        public var mean: Double { count > 0 ? lossSum / Double(count) : 0 }

        public init(lossSum: Double, count: Int) { self.lossSum = lossSum; self.count = count }
    }

    /// Computes the loss and writes the gradient into `dlogits` (which may alias `logits`).
    /// `normalizer` is the count the mean divides by (defaults to this batch's active rows; pass the
    /// global count when micro-batches are accumulated). Pass `dlogits: nil` for loss only.
    /// Rows are spread over the workers; the loss is summed over rows in order.
    public static func forwardBackward(
        logits: UnsafePointer<Float>, dlogits: UnsafeMutablePointer<Float>?, labels: UnsafePointer<Int32>,
        rows: Int, vocab: Int, ignoreIndex: Int32 = -100, smoothing: Float = 0,
        normalizer: Int? = nil, gradScale: Float = 1
    ) -> Result {
        var count = 0
        for r in 0..<rows where labels[r] != ignoreIndex { count += 1 }
        let scale = gradScale / Float(normalizer ?? count)
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: max(1, rows)) { rowLoss in
            let losses = rowLoss.baseAddress!
            Parallel.chunks(rows, grain: max(1, (1 << 15) / vocab)) { _, block in
                for r in block {
                    losses[r] = row(logits + r * vocab, dlogits.map { $0 + r * vocab }, label: labels[r],
                                    ignoreIndex: ignoreIndex, vocab: vocab, eps: smoothing, scale: scale)
                }
            }
            var total = 0.0
            for r in 0..<rows { total += losses[r] }
            return Result(lossSum: total, count: count)
        }
    }

    @inline(__always)
    static func row(_ z: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>?, label: Int32, ignoreIndex: Int32,
                    vocab: Int, eps: Float, scale: Float) -> Double {
        if label == ignoreIndex {
            if let d { Vec.zero(d, vocab) }
            return 0
        }
        if let K = CPUFeatures.vectorKernels {
            return K.crossEntropy(z, d, label: Int(label), vocab: vocab, eps: eps, scale: scale)
        }
        return Row.crossEntropy(z, d, label: Int(label), vocab: vocab, eps: eps, scale: scale)
    }
}

/// Row-wise log-softmax: out = z − max − log Σ exp(z − max) (float accumulation, as PyTorch's CPU
/// kernel). `out` may alias `z`.
public enum LogSoftmax {
    public static func forward(_ out: UnsafeMutablePointer<Float>, _ z: UnsafePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let zr = z + r * cols, o = out + r * cols
            let m = Vec.max(zr, cols)
            let mv = F8(repeating: m)
            var acc = F8()
            var j = 0
            while j + 8 <= cols { acc += vexp(load8(zr + j) - mv); j += 8 }
            var s = acc.sum()
            while j < cols { s += sexp(zr[j] - m); j += 1 }
            let shift = m + Float(log(Double(s)))
            let sv = F8(repeating: shift)
            j = 0
            while j + 8 <= cols { store8(load8(zr + j) - sv, o + j); j += 8 }
            while j < cols { o[j] = zr[j] - shift; j += 1 }
        }
    }
}
