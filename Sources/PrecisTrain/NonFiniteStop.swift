/// A non-finite loss or gradient norm at a step. With `stop_on_nonfinite` (on by default) the run
/// stops at that step, before its update is applied, so no parameters saved afterwards are NaN:
/// in process nothing is saved; in a cluster the servers are never told to apply the step and the
/// checkpoints already written stay as they are.
public struct NonFiniteStop: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Quantity: String, Sendable {
        case loss
        case gradientNorm = "gradient norm"
    }

    /// The step (1-based, as the log lines count them).
    public let step: Int
    public let quantity: Quantity
    public let value: Double

    public init(step: Int, quantity: Quantity, value: Double) {
        self.step = step; self.quantity = quantity; self.value = value
    }

    public var description: String {
        let shown = value.isNaN ? "NaN" : value > 0 ? "+infinity" : value < 0 ? "-infinity" : "\(value)"
        return "step \(step): the \(quantity.rawValue) is \(shown), not a finite number: training stopped before applying this step "
            + "(training.stop_on_nonfinite is true; a smaller learning_rate or max_grad_norm usually helps)"
    }

    /// Throws for the first non-finite of `loss` and `gradientNorm` (nil: not known here).
    public static func check(step: Int, loss: Double?, gradientNorm: Double?) throws {
        if let loss, !loss.isFinite { throw NonFiniteStop(step: step, quantity: .loss, value: loss) }
        if let gradientNorm, !gradientNorm.isFinite { throw NonFiniteStop(step: step, quantity: .gradientNorm, value: gradientNorm) }
    }
}
