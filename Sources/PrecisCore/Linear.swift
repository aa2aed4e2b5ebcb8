/// A fully connected layer in PyTorch's convention: W is [out × in], y = x·Wᵀ + b.
public enum Linear {
    /// y[rows × outDim] = x[rows × inDim] · Wᵀ + b
    public static func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        rows: Int, inDim: Int, outDim: Int
    ) {
        if let b = bias { fill(y, rowsWith: b, rows: rows, cols: outDim) }
        BLAS.gemm(transA: false, transB: true, m: rows, n: outDim, k: inDim,
                  a: x, lda: inDim, b: weight, ldb: inDim,
                  beta: bias == nil ? 0 : 1, c: y, ldc: outDim)
    }

    /// Every row of y[rows × cols] = b: the bias the forward product then adds to (β = 1).
    @inline(__always)
    public static func fill(_ y: UnsafeMutablePointer<Float>, rowsWith b: UnsafePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows { Vec.copy(y + r * cols, b, cols) }
    }

    /// dx (= or +=) dy·W; dW += dyᵀ·x; db += Σ_rows dy. Pass `dx: nil` when the input needs no gradient.
    public static func backward(
        dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool = false,
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
        rows: Int, inDim: Int, outDim: Int
    ) {
        if let dx { backwardInput(dx: dx, accumulate: accumulateDx, dy: dy, weight: weight, rows: rows, inDim: inDim, outDim: outDim) }
        GemmTask.weightGradient(dy: dy, x: x, dWeight: dWeight, dBias: dBias, rows: rows, inDim: inDim, outDim: outDim).run()
    }

    /// dx (= or +=) dy·W alone: the input's gradient, for callers that take the weight's later.
    public static func backwardInput(
        dx: UnsafeMutablePointer<Float>, accumulate: Bool = false, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        rows: Int, inDim: Int, outDim: Int
    ) {
        BLAS.gemm(transA: false, transB: false, m: rows, n: inDim, k: outDim,
                  a: dy, lda: outDim, b: weight, ldb: inDim,
                  beta: accumulate ? 1 : 0, c: dx, ldc: inDim)
    }
}
