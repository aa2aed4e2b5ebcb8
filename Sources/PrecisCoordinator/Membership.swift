import PrecisWire

/// A server or worker as the coordinator knows it. Clients (`precis cluster status`) never become members.
package struct ClusterMember: Equatable {
    package let id: Int
    package let role: RegisterMessage.Role
    /// The name it asked for, made unique among the living members (`w1`, then `w1-2`, …).
    package let name: String
    package let host: String
    package let pid: Int32
    /// Its DEALER's routing id: the address the coordinator's ROUTER replies to.
    package let identity: [UInt8]
    /// A server's data endpoint; nil for workers.
    package let endpoint: String?
    package let threads: Int
    /// When anything was last heard from it (its own clock's seconds).
    package var lastSeen: Double
    package var alive = true
    /// Contributions (sync) or tasks (ssp/async) it reported.
    package var contributions = 0
    /// It left (`leave`) rather than being lost.
    package var left = false
    /// The public key (Z85) it registered with, when the cluster has keys: its heartbeats, reports
    /// and `leave` count only when they come with the same key (nil without keys).
    package var key: String? = nil

    /// "server" or "worker", as log lines say it.
    package var roleName: String { role == .server ? "server" : "worker" }
}

/// The member table: who registered, under which id and unique name, which server slot each server
/// holds, when each was last heard, and the membership epoch that grows on every join and loss.
/// No sockets: every operation returns what happened, and the coordinator does the sending and logging.
///
/// Server slots: the run has `plannedServers` of them. While the run waits to start, servers fill
/// them in order (a server lost then gives its slot up: `removeServer`); afterwards a server may join
/// only into the slot of a dead one. A server's index (what `assign` and `view` call it) is its slot.
package struct Membership {
    /// What `register` decided.
    package enum Registration: Equatable {
        /// The same peer is already a living member (it registered again before hearing back).
        case alreadyMember(ClusterMember)
        /// A status client: answered, never a member.
        case client
        /// Not admitted, and why (sent to the peer in `refused`); `transient`: it may be admitted
        /// later (a server while every slot still counts as alive: a dead one's is noticed within
        /// `heartbeatTimeout`), so the refusal tells it to try again.
        case refused(String, transient: Bool = false)
        /// A new member, with the number of living members of its role now.
        case joined(ClusterMember, count: Int)
    }

    package let plannedServers: Int
    /// Silence after which a member counts as lost.
    package let heartbeatTimeout: Double
    package let clock: any Clock
    package private(set) var members: [Int: ClusterMember] = [:]
    /// Member ids by server index (dead servers keep their slot until one registers in their place).
    package private(set) var servers: [Int] = []
    /// Grows on every join, leave and loss.
    package private(set) var epoch: UInt32 = 1
    private var nextId: Int

    /// Member ids start at a random base (a multiple of 1000 between 10⁶ and 10¹²), so a restarted
    /// coordinator never mistakes a heartbeat that carries an id from its predecessor for one of its
    /// own members (which would keep that member from registering again).
    package init(plannedServers: Int, heartbeatTimeout: Double, clock: any Clock = MonotonicClock(),
         firstId: Int = Int.random(in: 1_000...1_000_000_000) * 1_000) {
        self.plannedServers = plannedServers
        self.heartbeatTimeout = heartbeatTimeout
        self.clock = clock
        self.nextId = firstId
    }

    // MARK: joining and leaving

    /// Admits a member (or says why not). `phase` decides the rules: servers fill free slots only while
    /// the run waits to start, later only a dead server's slot; no worker joins a finishing run.
    package mutating func register(_ r: RegisterMessage, identity: [UInt8], key: String? = nil, phase: RunPhase) -> Registration {
        if let existing = members.values.first(where: { $0.identity == identity && $0.alive }) { return .alreadyMember(existing) }
        // A status client is never kept: the bounds below are for those that are.
        if r.role != .client {
            if let why = r.dropReason { return .refused(why) }
            guard members.values.lazy.filter(\.alive).count < Self.livingLimit else {
                return .refused("the cluster already has \(Self.livingLimit) living members")
            }
        }
        switch r.role {
        case .client: return .client
        case .server:
            guard r.endpoint != nil else { return .refused("a server must give its data endpoint") }
            guard (phase == .waiting && servers.count < plannedServers) || deadServerSlot != nil else {
                return .refused("the cluster already has its \(servers.count) server(s)", transient: phase != .finishing)
            }
        case .worker:
            guard phase != .finishing else { return .refused("the run is finishing") }
        }
        let id = nextId
        nextId += 1
        let member = ClusterMember(id: id, role: r.role, name: uniqueName(r.name), host: r.host, pid: r.pid, identity: identity,
                                   endpoint: r.endpoint, threads: r.threads, lastSeen: clock.now(), key: key)
        if r.role == .server {
            if let slot = deadServerSlot { servers[slot] = id } else { servers.append(id) }
        }
        members[id] = member
        epoch += 1
        return .joined(member, count: members.values.filter { $0.role == r.role && $0.alive }.count)
    }

    /// Marks a living member dead (left, or silent too long); nil when it was not alive.
    package mutating func lose(_ id: Int) -> ClusterMember? {
        guard var m = members[id], m.alive else { return nil }
        m.alive = false
        members[id] = m
        epoch += 1
        forgetOldDead()
        return m
    }

    /// Living members at most: a `register` beyond it is refused (every member is in each status
    /// reply and `view`; a peer may register under any number of routing ids).
    package static let livingLimit = 4096
    /// Dead members kept (the latest by id), for the status and the logs; older ones are forgotten.
    /// A dead server that still holds a slot is always kept.
    package static let deadKept = 256

    /// Forgets the dead members beyond the latest `deadKept` (ids are never reused, nothing looks
    /// members up by position: a forgotten id is simply unknown, as one never admitted).
    private mutating func forgetOldDead() {
        let slots = Set(servers)
        let dead = members.values.filter { !$0.alive && !slots.contains($0.id) }
        guard dead.count > Self.deadKept else { return }
        for m in dead.sorted(by: { $0.id < $1.id }).prefix(dead.count - Self.deadKept) { members[m.id] = nil }
    }

    /// A `leave` from `identity` for member `id`: only a living member may leave, and only for itself.
    package mutating func leave(_ id: Int, identity: [UInt8], key: String? = nil) -> ClusterMember? {
        guard let m = members[id], m.alive, m.identity == identity, m.key == key else { return nil }
        members[id]?.left = true
        return lose(id)
    }

    /// Gives up a server's slot (a server lost before the run started, or resharding over the
    /// survivors): the servers after it move down one index.
    package mutating func removeServer(_ id: Int) { servers.removeAll { $0 == id } }

    // MARK: heartbeats

    /// Anything from `identity` shows its member is there; returns that member's id.
    /// With keys, only when `key` is the one it registered with: a holder of another valid key that
    /// takes over a routing id is nobody.
    package mutating func heard(from identity: [UInt8], key: String? = nil) -> Int? {
        guard let m = member(identity: identity), m.key == key else { return nil }
        let id = m.id
        let now = clock.now()
        members[id]?.lastSeen = now
        return id
    }

    /// A heartbeat for member `id`: true when it should be acknowledged. Only living members are: one
    /// that was declared dead, or that registered with a coordinator before a restart, hears nothing
    /// and registers again.
    ///
    /// With keys, a heartbeat counts only when it comes with the key the member registered with
    /// (`holdsKey`): the holder of one valid key cannot keep another member alive.
    package mutating func heartbeat(_ id: Int, key: String? = nil) -> Bool {
        guard members[id]?.alive == true, holdsKey(id, key) else { return false }
        let now = clock.now()
        members[id]?.lastSeen = now
        return true
    }

    /// The living members (by id) and the key each registered with (nil without keys).
    package var livingKeys: [Int: String?] {
        var keys: [Int: String?] = [:]
        for m in members.values where m.alive { keys[m.id] = .some(m.key) }
        return keys
    }

    /// The coordinator's loop is about to judge the members (once a turn). A loop that did not turn
    /// for a while — the process stopped (SIGSTOP, a paused VM) or starved of CPU, or busy in one
    /// long step — heard nothing meanwhile, and neither may have ZeroMQ's I/O thread, which stalls
    /// with it: the heartbeats sent then may still be in the kernel's buffers when the loop runs
    /// again, so reading what is waiting is not enough. The part of the gap since the last turn
    /// beyond `turnAllowance` is therefore excused (`excuse`). Only beyond it: a loop whose every
    /// turn is slow still sees a dead member's silence grow, by `turnAllowance` a turn, and loses it
    /// in the end.
    package mutating func loopTurned() {
        let now = clock.now()
        if let last = lastTurn, now - last > Self.turnAllowance { excuse(seconds: now - last - Self.turnAllowance) }
        lastTurn = now
    }

    /// The longest a turn of the coordinator's loop may take, in seconds (a turn waits at most 50 ms
    /// for messages).
    package static let turnAllowance = 0.5
    private var lastTurn: Double?

    /// The coordinator itself was not running (or not listening) for `seconds`: that time does not
    /// count as any living member's silence (but moves no one's last message past now).
    package mutating func excuse(seconds: Double) {
        guard seconds > 0 else { return }
        let now = clock.now()
        for (id, m) in members where m.alive { members[id]?.lastSeen = min(now, m.lastSeen + seconds) }
    }

    /// Living members silent for longer than `heartbeatTimeout`, with their silence in seconds (by id).
    package func overdue() -> [(id: Int, silence: Double)] {
        let now = clock.now()
        return members.values.filter { $0.alive && now - $0.lastSeen > heartbeatTimeout }.sorted { $0.id < $1.id }
            .map { ($0.id, now - $0.lastSeen) }
    }

    package mutating func countContribution(of id: Int) { members[id]?.contributions += 1 }

    /// Whether `key` (the public key a message came with; nil without keys) is the one member `id`
    /// registered with.
    package func holdsKey(_ id: Int, _ key: String?) -> Bool { members[id].map { $0.key == key } ?? false }

    /// Messages dropped because they came for a member with another key than its own (the log's rate limit).
    package private(set) var foreignKeyMessages = 0
    package mutating func countForeignKey() -> Int { foreignKeyMessages += 1; return foreignKeyMessages }

    // MARK: who is there

    package subscript(id: Int) -> ClusterMember? { members[id] }

    /// The member a routing id belongs to: the living one when the same process registered again
    /// after being declared dead, else the latest.
    package func member(identity: [UInt8]) -> ClusterMember? {
        let all = members.values.filter { $0.identity == identity }
        return all.first(where: \.alive) ?? all.max { $0.id < $1.id }
    }

    /// Ids of the living workers, in rank order (ascending id: the order contributions are split in).
    package var aliveWorkers: [Int] { members.values.filter { $0.role == .worker && $0.alive }.map(\.id).sorted() }
    package var aliveServerCount: Int { servers.filter { members[$0]?.alive == true }.count }
    package var allServersAlive: Bool { servers.allSatisfy { members[$0]?.alive == true } }
    /// The slot of the first dead server, if any.
    package var deadServerSlot: Int? { servers.firstIndex { members[$0]?.alive != true } }
    /// Every member ever admitted, by id.
    package var all: [ClusterMember] { members.values.sorted { $0.id < $1.id } }

    package func serverIndex(of id: Int) -> Int? { servers.firstIndex(of: id) }

    /// `name`, or `name-2`, `name-3`, … when a living member has it.
    package func uniqueName(_ name: String) -> String {
        let names = Set(members.values.filter(\.alive).map(\.name))
        if !names.contains(name) { return name }
        var i = 2
        while names.contains("\(name)-\(i)") { i += 1 }
        return "\(name)-\(i)"
    }
}
