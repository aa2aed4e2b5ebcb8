import PrecisWire

/// Who may use a server's data socket, as the coordinator announced it (`MembersMessage`), and
/// with keys the role each peer authenticated as: initial values and moments only from the
/// coordinator's data connection, pulls from the coordinator and the announced workers, pushes
/// from the announced workers only. Pulls from a peer not announced yet wait here (a bounded few)
/// in case its announcement is still on its way.
package struct AnnouncedPeers {
    package enum Need { case coordinator, member, worker }

    private(set) var coordinator: [UInt8]?
    private var workers = Set<[UInt8]>()
    /// The newest membership epoch announced.
    private(set) var epoch: UInt32 = 0
    /// Pulls from peers not (yet) announced, oldest first, at most `parkedLimit`.
    package private(set) var parked: [ParameterReplies.Pull] = []
    package static let parkedLimit = 64

    package init() {}

    package mutating func announce(_ m: MembersMessage) {
        coordinator = m.coordinator
        workers = Set(m.workers.flatMap { [$0, $0 + Array("/push".utf8)] })
        epoch = max(epoch, m.epoch)
    }

    /// Nil when `peer` (authenticated as `role`, nil without keys) may send a message needing
    /// `need`; otherwise why not.
    package func refusal(_ peer: [UInt8], role: KeyRole?, keyed: Bool, need: Need) -> String? {
        let isCoordinator = coordinator == peer && (!keyed || role == .coordinator)
        let isWorker = workers.contains(peer) && (!keyed || role == .worker)
        switch need {
        case .coordinator: return isCoordinator ? nil : "only the coordinator's data connection may send it"
        case .member: return isCoordinator || isWorker ? nil : "not a member the coordinator announced"
        case .worker: return isWorker ? nil : "not a worker the coordinator announced"
        }
    }

    /// Keeps a pull from a peer not announced yet; returns the one pushed out when full.
    package mutating func park(_ pull: ParameterReplies.Pull) -> ParameterReplies.Pull? {
        parked.append(pull)
        return parked.count > Self.parkedLimit ? parked.removeFirst() : nil
    }

    /// The parked pulls whose peers are now announced (removed from the list).
    package mutating func takeAdmitted(keyed: Bool) -> [ParameterReplies.Pull] {
        let admitted = parked.filter { refusal($0.peer, role: $0.role, keyed: keyed, need: .member) == nil }
        parked = parked.filter { refusal($0.peer, role: $0.role, keyed: keyed, need: .member) != nil }
        return admitted
    }

    mutating func reset() { parked = [] }
}
