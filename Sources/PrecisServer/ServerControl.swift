import PrecisWire

/// A control message from the coordinator as the server takes it: decoded and its fields checked
/// (`dropReason`) before the server acts on it. A payload that does not decode or fails its check is
/// dropped (logged with its type), except where the server cannot go on without it, where it stops
/// with exit status 1 and the reason:
/// - `registered`: its heartbeat figures drive the link to the coordinator (a bad one would come
///   back on every registration, until the connect timeout says nothing useful);
/// - `assign`: the server has no partitions without it, and the coordinator waits for its
///   `initDone` (the lost server is noticed, and replaced, instead of a run that never starts);
/// - `shutdown`: the coordinator is ending the run; without its exit status, 1.
/// Dropped: `refused` (the server registers again and gives up at its connect timeout), `plan`,
/// `apply`, `members` (the server keeps what it has).
package enum ServerControl {
    case registered(RegisteredMessage)
    case refused(RefusedMessage)
    case assign(AssignMessage)
    case plan(PlanMessage)
    case apply(ApplyMessage)
    case snapshot
    case members(MembersMessage)
    case shutdown(ShutdownMessage)
    /// Not used: why (the caller logs it with the type).
    case drop(String)
    /// The server stops (exit status 1): why, naming the message and the field.
    case stop(String)
    /// Not a message the coordinator sends a server.
    case ignore

    package static func read(_ m: DataMessage) -> ServerControl {
        switch m.header.type {
        case .registered: return ControlChecks.read(RegisteredMessage.self, m) { $0.dropReason }.action(registered, otherwise: stop)
        case .assign: return ControlChecks.read(AssignMessage.self, m) { $0.dropReason }.action(assign, otherwise: stop)
        case .shutdown: return ControlChecks.read(ShutdownMessage.self, m).action(shutdown) { .stop($0 + " (stopping all the same)") }
        case .refused: return ControlChecks.read(RefusedMessage.self, m).action(refused, otherwise: drop)
        case .plan: return ControlChecks.read(PlanMessage.self, m).action(plan, otherwise: drop)
        case .apply: return ControlChecks.read(ApplyMessage.self, m) { $0.dropReason }.action(apply, otherwise: drop)
        case .members: return ControlChecks.read(MembersMessage.self, m).action(members, otherwise: drop)
        case .snapshot: return .snapshot
        default: return .ignore
        }
    }
}
