import Foundation
import PrecisCore

/// The one interface to an encoder–decoder architecture that code outside `PrecisModels` uses:
/// the flat parameter buffer and its table, a gradient mirror, the training step, the hooks the
/// cluster's push path needs, incremental decoding for generation, the config facts callers need,
/// and what a Hugging Face model folder needs. Nothing outside this module names a concrete model.
///
/// Not thread-safe: one caller at a time (a step runs its own threads inside).
public protocol Seq2SeqModel: AnyObject, MatrixProductDescribing {
    /// `model_type` in `config.json`.
    static var modelType: String { get }
    /// What callers need to know of the config (ids, limits, widths).
    var facts: Seq2SeqFacts { get }

    var table: ParameterTable { get }
    var params: FloatBuffer { get }
    var grads: FloatBuffer { get }
    /// Non-trainable tensors stored with the weights (e.g. BART's `final_logits_bias`).
    var extraTensors: [(name: String, values: FloatBuffer, shape: [Int])] { get }
    func zeroGradients()
    func initializeWeights(seed: UInt64)

    // MARK: Training

    /// Forward and (with `options.computeGradients`) backward on one batch; gradients are added
    /// into `grads`. Returns the summed token loss and the token count.
    func step(_ batch: Seq2SeqBatch, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?) throws -> CrossEntropy.Result
    /// The forward half of `step`, leaving what `backward()` needs.
    func forward(_ batch: Seq2SeqBatch, options: StepOptions, logitsOut: UnsafeMutablePointer<Float>?) throws -> CrossEntropy.Result
    /// The backward half of `step`; does nothing unless the last `forward` computed the loss gradient.
    func backward()
    /// Called during backward each time a range of the flat buffer has its final gradient for the
    /// batch (in backward's order, then the whole buffer once at the end), with the batch's loss
    /// (what `step` returns: forward is over for every row by the first report, so a worker's
    /// first push can carry it); it may be called from any of the step's compute threads, one
    /// call at a time.
    var onGradientsFinal: ((Range<Int>, CrossEntropy.Result) -> Void)? { get set }
    /// The offsets where the time a gradient becomes final changes (the bounds of every range
    /// `onGradientsFinal` reports before the end of backward, plus 0 and the count): the cluster
    /// cuts its partitions here.
    var gradientCuts: [Int] { get }
    /// Set, the next training pass (`step` or `forward`) starts before its parameters are all in:
    /// its forward calls this with each range of the flat buffer just before it first reads it —
    /// the ranges `gradientCuts` bounds, in forward's order, starting with everything outside the
    /// ranges `onGradientsFinal` reports — and reads it only once this returns. Called from any
    /// of the step's compute threads, one call at a time, once per range per pass. A worker waits
    /// here for the pull's partitions, so forward runs while the later layers' parameters travel.
    var onParametersNeeded: ((Range<Int>) -> Void)? { get set }
    /// Wall time per region of the step (enable for profiling).
    var profiler: Profiler { get }
    /// How the lanes of the steps so far spent their time (see `LaneRunner`).
    var laneFigures: LaneFigures { get }
    /// The precision of the linear layers' and the LM head's products in steps, encoder passes and
    /// decoders made from now on (`MatmulPrecision`); fp32 until set.
    var matmulPrecision: MatmulPrecision { get }
    /// Sets `matmulPrecision`, bf16 on `kernel` (nil: the best this CPU runs, `BF16Gemm.kernel`).
    /// bf16 throws `BF16Error.unavailable` (naming the missing CPU flags) on a CPU without a bf16
    /// kernel, or `.kernelUnsupported` for a kernel that does not run here; the weights' bf16 copies
    /// are then made again before every pass.
    func setMatmulPrecision(_ precision: MatmulPrecision, kernel: BF16Kernel?) throws

    // MARK: Generation

    /// Runs the encoder alone in evaluation mode and returns its last hidden state [B, S, d_model].
    func encoderHiddenStates(inputIds: [Int32], attentionMask: [Int32], batchSize: Int, sourceLength: Int) throws -> FloatBuffer
    /// A decoder that feeds one token per row at a time over `encoderOutput` ([sources, S, d_model]
    /// from `encoderHiddenStates`); `rowSource[r]` is the source row r attends to.
    func incrementalDecoder(encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength: Int,
                            rowSource: [Int], maxLength: Int) -> any IncrementalDecoding

    // MARK: Model folders

    /// `config.json` as transformers writes it.
    func configJSON() throws -> Data
    /// `generation_config.json` defaults derived from the config, as transformers derives them.
    var generationDefaults: [String: Any] { get }
    /// `model_max_length` of `tokenizer_config.json`: the longest input the positions allow (or, for
    /// relative positions, the length transformers gives the family's tokenizer).
    var tokenizerModelMaxLength: Int { get }
    /// transformers' tokenizer class for the family and its special-token keys, when that class
    /// rebuilds `tokenizer` (the run's tokenizer.json) into the same tokenizer; nil otherwise (the
    /// folder then names the generic class; see `TokenizerConfig`).
    func tokenizerSettings(for tokenizer: TokenizerJSON) -> TokenizerSettings?
    /// Other names a checkpoint may store parameter `name` under (tied copies, a bare base-model prefix).
    func aliases(for name: String) -> [String]
    /// Tensors the model rebuilds from its config instead of loading (Pegasus' frozen sinusoidal
    /// position tables): written with the weights, as transformers saves them; ignored when a
    /// checkpoint holds them (under these names or without the `model.` prefix), never reported.
    var derivedTensors: [(name: String, values: FloatBuffer, shape: [Int])] { get }
}

extension Seq2SeqModel {
    public var vocabSize: Int { facts.vocabSize }
    /// `setMatmulPrecision(_:kernel:)` on the best kernel this CPU runs.
    public func setMatmulPrecision(_ precision: MatmulPrecision) throws { try setMatmulPrecision(precision, kernel: nil) }
    public var derivedTensors: [(name: String, values: FloatBuffer, shape: [Int])] { [] }
}

/// The facts about a model's config that callers need, whatever the architecture.
public struct Seq2SeqFacts: Sendable, Equatable {
    public var modelType: String
    public var vocabSize: Int
    /// The width of the encoder's output and of the decoder's hidden states.
    public var dModel: Int
    public var padTokenId: Int
    public var eosTokenId: Int
    public var bosTokenId: Int?
    public var decoderStartTokenId: Int
    public var forcedBosTokenId: Int?
    public var forcedEosTokenId: Int?
    /// The longest source / target the position encoding allows; nil: no limit (relative positions).
    public var maxSourcePositions: Int?
    public var maxTargetPositions: Int?
    /// Whether the LM head is the shared token embedding (else a weight of its own).
    public var tiedHead: Bool

    public init(modelType: String, vocabSize: Int, dModel: Int, padTokenId: Int, eosTokenId: Int, bosTokenId: Int?,
                decoderStartTokenId: Int, forcedBosTokenId: Int?, forcedEosTokenId: Int?,
                maxSourcePositions: Int?, maxTargetPositions: Int?, tiedHead: Bool) {
        self.modelType = modelType; self.vocabSize = vocabSize; self.dModel = dModel
        self.padTokenId = padTokenId; self.eosTokenId = eosTokenId; self.bosTokenId = bosTokenId
        self.decoderStartTokenId = decoderStartTokenId
        self.forcedBosTokenId = forcedBosTokenId; self.forcedEosTokenId = forcedEosTokenId
        self.maxSourcePositions = maxSourcePositions; self.maxTargetPositions = maxTargetPositions
        self.tiedHead = tiedHead
    }
}

/// Incremental decoding for generation: rows (hypotheses) advance one token at a time together,
/// with what earlier positions computed cached. Evaluation mode (no dropout). Not thread-safe.
public protocol IncrementalDecoding: AnyObject {
    /// Decoding rows (sources × beams or samples).
    var rows: Int { get }
    /// The positions filled so far.
    var length: Int { get }
    /// Logits of the last step, [rows, vocab] with row stride `logitsStride`.
    var logits: UnsafeMutablePointer<Float> { get }
    var logitsStride: Int { get }
    /// Feeds one token per row at position `length` and fills `logits`.
    func step(_ tokens: [Int32])
    /// Row i continues from old row `from[i]` (beam reordering).
    func reorder(_ from: [Int])
}

/// Per lane, seconds spent since the model was made (or the lane count last changed, for helping
/// and idle): on its own rows (forward and backward), running other lanes' products, and idle
/// with nothing left to take; and when the last step's last lane finished its forward.
public struct LaneFigures: Sendable, Equatable {
    public var busySeconds: [Double] = []
    public var helpingSeconds: [Double] = []
    public var idleSeconds: [Double] = []
    /// Seconds from the start of the last `step` or `forward` until its last lane finished its forward.
    public var lastForwardSeconds = 0.0

    public init(busySeconds: [Double] = [], helpingSeconds: [Double] = [], idleSeconds: [Double] = [],
                lastForwardSeconds: Double = 0) {
        self.busySeconds = busySeconds; self.helpingSeconds = helpingSeconds; self.idleSeconds = idleSeconds
        self.lastForwardSeconds = lastForwardSeconds
    }
}
