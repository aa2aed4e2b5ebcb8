import PrecisWire

/// Which control messages each key may send to the coordinator, when the cluster has keys (the ZAP
/// handler names the role of every peer): servers and workers their members' messages, the
/// operator's key (the CLI) status and evaluation requests. Without keys (loopback only) every
/// peer may send any of them, and membership alone decides.
enum ControlPermissions {
    static func allowed(_ type: MessageType) -> Set<KeyRole> {
        switch type {
        case .register, .heartbeat, .leave: return [.server, .worker, .operator]
        case .initDone, .normReport, .applied: return [.server]
        case .contributionDone, .evalResult: return [.worker]
        case .statusRequest: return [.server, .worker, .operator]
        case .evaluateRequest: return [.operator]
        default: return []
        }
    }

    /// Nil when a peer with `role` may send `type`; otherwise why not.
    static func refusal(_ type: MessageType, role: KeyRole?, keyed: Bool) -> String? {
        guard keyed else { return nil }
        guard let role else { return "no authenticated key" }
        return allowed(type).contains(role) ? nil : "the \(role.rawValue) key may not send it"
    }

    /// A `register` must claim the role of the key it comes with.
    static func refusal(register claimed: RegisterMessage.Role, role: KeyRole) -> String? {
        let expected: KeyRole
        switch claimed {
        case .server: expected = .server
        case .worker: expected = .worker
        case .client: expected = .operator
        }
        return role == expected ? nil : "registering as \(claimed.rawValue) with the \(role.rawValue) key"
    }
}
