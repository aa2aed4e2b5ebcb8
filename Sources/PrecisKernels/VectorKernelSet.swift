/// The kernels a vector-ISA module compiles from this module's portable bodies (`VectorKernels` in
/// `PrecisAVX512` and in `PrecisAVX2`, one source compiled for each ISA): one interface, so that
/// callers pick a module once (`PrecisCore.CPUFeatures.vectorKernels`) and call through it. Each
/// does what the portable kernel of the same name does, with the same bits. The exact GELU's three
/// take n a multiple of 8 (callers run the tail portably); the rest take any size. The conforming
/// types are caseless enums, so their metatypes are safe to share between threads (`SendableMetatype`).
public protocol VectorKernelSet: SendableMetatype {
    // Activations (`Pointwise` over `GeluErf`, `GeluTanh`, `ReLU`).
    static func geluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int)
    static func geluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int)
    static func geluRecomputeBackward(_ x: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int)
    static func geluNewForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int)
    static func geluNewBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int)
    static func geluNewRecomputeBackward(_ x: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int)
    static func gatedGeluNewForward(_ h: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int)
    static func gatedGeluNewBackward(dGate: UnsafeMutablePointer<Float>, dLinear: UnsafeMutablePointer<Float>,
                                     output: UnsafeMutablePointer<Float>?, grad: UnsafePointer<Float>,
                                     gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int)
    static func reluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int)
    static func reluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int)
    static func reluRecomputeBackward(_ x: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int)
    static func gatedReluForward(_ h: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int)
    static func gatedReluBackward(dGate: UnsafeMutablePointer<Float>, dLinear: UnsafeMutablePointer<Float>,
                                  output: UnsafeMutablePointer<Float>?, grad: UnsafePointer<Float>,
                                  gate: UnsafePointer<Float>, linear: UnsafePointer<Float>, _ n: Int)

    // The optimizer (`AdamWUpdate`).
    static func adamW(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                      v: UnsafeMutablePointer<Float>, count: Int, _ c: AdamWConstants)

    // Decoding's products with packed weights (`PrecisCore.PackedWeights`).
    static func packedMatmul(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, ldx: Int,
                             packed: UnsafePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, inDim: Int, blocks: Range<Int>)

    // Rows: softmax (plain and with a position bias), cross-entropy, dropout, LayerNorm, RMS norm.
    static func softmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                        keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int)
    static func softmax(_ s: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, biasLd: Int, rows: Int, cols: Int, ld: Int,
                        keyMask: UnsafePointer<Float>?, causal: Bool, causalOffset: Int)
    static func softmaxBackward(_ dp: UnsafeMutablePointer<Float>, p: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int)
    static func accumulateBiasGradient(dBias: UnsafeMutablePointer<Float>, ldBias: Int, dScores: UnsafePointer<Float>, ld: Int,
                                       batch: Int, batchStride: Int, rows: Range<Int>, cols: Int)
    static func crossEntropy(_ z: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>?, label: Int,
                             vocab: Int, eps: Float, scale: Float) -> Double
    static func dropout(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int, threshold: UInt32,
                        scale: Float, seed: UInt64, stream: UInt32, offset: Int, bits: UnsafeMutablePointer<UInt8>?)
    static func layerNorm(y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                          x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                          rows: Range<Int>, dim: Int, eps: Float)
    static func layerNormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                  rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int)
    static func layerNormParameterGradients(dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
                                            dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rows: Int, dim: Int,
                                            columns lo: Int, _ hi: Int)
    static func rmsNorm(y: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                        x: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int, eps: Float)
    static func rmsNormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                rstd: UnsafePointer<Float>, gamma: UnsafePointer<Float>, rows: Range<Int>, dim: Int)
    static func rmsNormParameterGradients(dgamma: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                                          rows: Int, dim: Int, columns lo: Int, _ hi: Int)
}
