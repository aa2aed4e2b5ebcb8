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
        func decoded<T: Decodable>(_ type: T.Type) -> Result<T, WireError> {
            do { return .success(try Control.decode(T.self, m)) } catch let e as WireError { return .failure(e) } catch {
                return .failure(.badControl(type: "\(m.header.type)", reason: "\(error)"))
            }
        }
        switch m.header.type {
        case .registered:
            switch decoded(RegisteredMessage.self) {
            case .failure(let e): return .stop("\(e)")
            case .success(let r):
                if let why = r.dropReason { return .stop("bad registered message: \(why)") }
                return .registered(r)
            }
        case .shutdown:
            switch decoded(ShutdownMessage.self) {
            case .failure(let e): return .stop("\(e) (stopping all the same)")
            case .success(let s): return .shutdown(s)
            }
        case .refused:
            switch decoded(RefusedMessage.self) {
            case .failure(let e): return .drop("\(e)")
            case .success(let r): return .refused(r)
            }
        case .view:
            switch decoded(ViewMessage.self) {
            case .failure(let e): return .drop("\(e)")
            case .success(let v):
                guard let facts else { return .drop("this worker is not registered yet (no model to check the plan against)") }
                if let why = v.dropReason(parameters: facts.parameters) { return .drop(why) }
                return .view(v)
            }
        case .task:
            switch decoded(TaskMessage.self) {
            case .failure(let e): return .drop("\(e)")
            case .success(let t):
                guard let facts else { return .drop("this worker is not registered yet (no training data to check it against)") }
                if let why = t.dropReason(examples: facts.examples, perDevice: facts.perDevice, microPerStep: facts.microPerStep) {
                    return .drop(why)
                }
                return .task(t)
            }
        case .evalTask:
            switch decoded(EvalTaskMessage.self) {
            case .failure(let e): return .drop("\(e)")
            case .success(let t):
                // The indices' upper bound is checked once the data they index is loaded (`evaluate`).
                if let why = t.dropReason(examples: nil) { return .drop(why) }
                return .evalTask(t)
            }
        default: return .ignore
        }
    }
}
