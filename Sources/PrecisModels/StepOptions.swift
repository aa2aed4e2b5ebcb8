import PrecisCore

/// Options for one training or evaluation step.
public struct StepOptions: Sendable {
    /// Dropout on (training) or off (evaluation).
    public var training = true
    public var computeGradients = true
    public var labelSmoothing: Float = 0
    /// Seed for this step's dropout masks.
    public var seed: UInt64 = 0
    /// Token count the loss is averaged over for the gradient (nil: this batch's).
    public var lossNormalizer: Int? = nil
    public var gradScale: Float = 1

    public init(training: Bool = true, computeGradients: Bool = true, labelSmoothing: Float = 0,
                seed: UInt64 = 0, lossNormalizer: Int? = nil, gradScale: Float = 1) {
        self.training = training; self.computeGradients = computeGradients; self.labelSmoothing = labelSmoothing
        self.seed = seed; self.lossNormalizer = lossNormalizer; self.gradScale = gradScale
    }
}
