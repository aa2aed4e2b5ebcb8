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
        case .assign:
            switch decoded(AssignMessage.self) {
            case .failure(let e): return .stop("\(e)")
            case .success(let a):
                if let why = a.dropReason { return .stop("bad assign message: \(why)") }
                return .assign(a)
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
        case .plan:
            switch decoded(PlanMessage.self) {
            case .failure(let e): return .drop("\(e)")
            case .success(let p): return .plan(p)
            }
        case .apply:
            switch decoded(ApplyMessage.self) {
            case .failure(let e): return .drop("\(e)")
            case .success(let a):
                if let why = a.dropReason { return .drop(why) }
                return .apply(a)
            }
        case .members:
            switch decoded(MembersMessage.self) {
            case .failure(let e): return .drop("\(e)")
            case .success(let x): return .members(x)
            }
        case .snapshot: return .snapshot
        default: return .ignore
        }
    }
}
