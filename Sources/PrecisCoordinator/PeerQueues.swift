import PrecisWire

/// Messages the coordinator's ROUTER could not hand to a member (`ZMQSocket.reportUndeliverable`):
/// each peer is logged once, with how many were dropped and why. A member whose queue is full
/// (10 000 control messages it has not read: it is stuck, or the network to it is) is treated as
/// lost, as a member silent past `heartbeat_timeout` is; a member that is not connected is left to
/// the heartbeats (it exited, or its connection is being made again).
extension Coordinator {
    func checkUndelivered() throws {
        guard let drops = router.drops else { return }
        for r in drops.takeNew() {
            log(PeerDrops.line(r, peerName: peerName(r.peer)))
            guard case .queueFull = r.reason, let m = membership.member(identity: r.peer), m.alive,
                  let gone = membership.lose(m.id) else { continue }
            drops.forget(r.peer)
            try memberGone(gone, because: "lost: \(r.reason)")
        }
    }
}
