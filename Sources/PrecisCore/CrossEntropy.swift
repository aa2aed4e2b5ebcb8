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
    }

    /// Computes the loss and writes the gradient into `dlogits` (which may alias `logits`).
    /// `normalizer` is the count the mean divides by (defaults to this batch's active rows; pass the
    /// global count when micro-batches are accumulated). Pass `dlogits: nil` for loss only.
    public static func forwardBackward(
        logits: UnsafePointer<Float>, dlogits: UnsafeMutablePointer<Float>?, labels: UnsafePointer<Int32>,
        rows: Int, vocab: Int, ignoreIndex: Int32 = -100, smoothing: Float = 0,
        normalizer: Int? = nil, gradScale: Float = 1
    ) -> Result {
        var count = 0
        for r in 0..<rows where labels[r] != ignoreIndex { count += 1 }
        let norm = Float(normalizer ?? count)
        var total = 0.0
        let eps = smoothing
        for r in 0..<rows {
            let z = logits + r * vocab
            let label = labels[r]
            if label == ignoreIndex {
                if let d = dlogits { Vec.zero(d + r * vocab, vocab) }
                continue
            }
            let m = Vec.max(z, vocab)
            // Σ exp(z − m), vectorised.
            var acc = F8()
            let mv = F8(repeating: m)
            var j = 0
            while j + 8 <= vocab { acc += vexp(load8(z + j) - mv); j += 8 }
            var s = acc.sum()
            while j < vocab { s += sexp(z[j] - m); j += 1 }
            let lse = Double(m) + log(Double(s))
            var rowLoss = (1 - Double(eps)) * (lse - Double(z[Int(label)]))
            if eps != 0 {
                let meanZ = Double(Vec.total(z, vocab)) / Double(vocab)
                rowLoss += Double(eps) * (lse - meanZ)
            }
            total += rowLoss
            if let d = dlogits {
                let dr = d + r * vocab
                let scale = gradScale / norm
                let inv = F8(repeating: 1 / s)
                let sc = F8(repeating: scale)
                let shift = F8(repeating: eps / Float(vocab))
                j = 0
                while j + 8 <= vocab {
                    store8((vexp(load8(z + j) - mv) * inv - shift) * sc, dr + j)
                    j += 8
                }
                while j < vocab { dr[j] = (sexp(z[j] - m) / s - eps / Float(vocab)) * scale; j += 1 }
                dr[Int(label)] -= (1 - eps) * scale
            }
        }
        return Result(lossSum: total, count: count)
    }
}
