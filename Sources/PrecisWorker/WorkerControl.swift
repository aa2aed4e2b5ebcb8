import PrecisWire

/// What a worker knows once registered, against which the coordinator's `view` and `task` are
/// checked: its model's parameter count and its training plan's figures.
package struct WorkerFacts: Sendable, Equatable {
    package var parameters: Int
    package var examples: Int
    package var perDevice: Int
    package var microPerStep: Int
    package init(parameters: Int, examples: Int, perDevice: Int, microPerStep: Int) {
        self.parameters = parameters; self.examples = examples; self.perDevice = perDevice; self.microPerStep = microPerStep
    }
}

/// A control message from the coordinator as the worker takes it: decoded and its fields checked
/// (`dropReason`) before the worker acts on it. A payload that does not decode or fails its check is
/// dropped (logged with its type), except where the worker cannot go on without it, where it stops
/// with exit status 1 and the reason:
/// - `registered`: the run's config, model and heartbeat figures come with it (a bad one would come
///   back on every registration);
/// - `shutdown`: the coordinator is ending the run; without its exit status, 1.
/// Dropped: `refused` (the worker registers again and gives up at its connect timeout), `view` (the
/// worker keeps the view it has; without one it computes nothing), `task` and `evalTask` (nothing of
/// them is computed; before `registered`, `facts` nil, a `view` or `task` cannot be checked and is
/// dropped too).
package enum WorkerControl {
    case registered(RegisteredMessage)
    case refused(RefusedMessage)
    case view(ViewMessage)
    case task(TaskMessage)
    case evalTask(EvalTaskMessage)
    case shutdown(ShutdownMessage)
    /// Not used: why (the caller logs it with the type).
    case drop(String)
    /// The worker stops (exit status 1): why, naming the message and the field.
    case stop(String)
    /// Not a message the coordinator sends a worker.
    case ignore

    package static func read(_ m: DataMessage, facts: WorkerFacts?) -> WorkerControl {
        switch m.header.type {
        case .registered: return ControlChecks.read(RegisteredMessage.self, m) { $0.dropReason }.action(registered, otherwise: stop)
        case .shutdown: return ControlChecks.read(ShutdownMessage.self, m).action(shutdown) { .stop($0 + " (stopping all the same)") }
        case .refused: return ControlChecks.read(RefusedMessage.self, m).action(refused, otherwise: drop)
        case .view:
            guard let facts else { return .drop("this worker is not registered yet (no model to check the plan against)") }
            return ControlChecks.read(ViewMessage.self, m) { $0.dropReason(parameters: facts.parameters) }.action(view, otherwise: drop)
        case .task:
            guard let facts else { return .drop("this worker is not registered yet (no training data to check it against)") }
            return ControlChecks.read(TaskMessage.self, m) {
                $0.dropReason(examples: facts.examples, perDevice: facts.perDevice, microPerStep: facts.microPerStep)
            }.action(task, otherwise: drop)
        case .evalTask:
            // The indices' upper bound is checked once the data they index is loaded (`evaluate`).
            return ControlChecks.read(EvalTaskMessage.self, m) { $0.dropReason(examples: nil) }.action(evalTask, otherwise: drop)
        default: return .ignore
        }
    }
}
