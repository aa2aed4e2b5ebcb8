import Testing
import PrecisCoordinator
import PrecisWire

@Suite struct MembershipTests {
    let clock = FakeClock()

    func membership(servers: Int = 2, timeout: Double = 10) -> Membership {
        Membership(plannedServers: servers, heartbeatTimeout: timeout, clock: clock, firstId: 7_000)
    }

    /// Registers and returns the new member (the test fails if it was not admitted).
    func join(_ m: inout Membership, _ role: RegisterMessage.Role, _ name: String, as id: String, phase: RunPhase = .waiting) -> ClusterMember? {
        guard case .joined(let member, _) = m.register(registration(role, name), identity: identity(id), phase: phase) else {
            Issue.record("\(name) was not admitted")
            return nil
        }
        return member
    }

    @Test func joiningGivesIdsNamesAndBumpsTheEpoch() throws {
        var m = membership()
        #expect(m.epoch == 1)
        let r = m.register(registration(.worker, "w0"), identity: identity("w0/1"), phase: .waiting)
        guard case .joined(let w0, let count) = r else { Issue.record("\(r)"); return }
        #expect(w0.id == 7_000 && w0.name == "w0" && w0.role == .worker && w0.alive && w0.lastSeen == clock.seconds)
        #expect(count == 1)
        #expect(m.epoch == 2)
        let w1 = try #require(join(&m, .worker, "w1", as: "w1/2"))
        #expect(w1.id == 7_001)
        #expect(m.epoch == 3)
        #expect(m.aliveWorkers == [7_000, 7_001])
        #expect(m.member(identity: identity("w1/2"))?.id == 7_001)
    }

    /// With keys a member is bound to the key it registered with: heartbeats, anything heard from
    /// its routing id and `leave` count only with that key.
    @Test func aMemberIsBoundToTheKeyItRegisteredWith() throws {
        var m = membership(timeout: 5)
        let keyA = String(repeating: "A", count: 40), keyB = String(repeating: "B", count: 40)
        guard case .joined(let w0, _) = m.register(registration(.worker, "w0"), identity: identity("w0/1"), key: keyA, phase: .waiting) else {
            Issue.record("w0 was not admitted"); return
        }
        #expect(w0.key == keyA && m.holdsKey(w0.id, keyA) && !m.holdsKey(w0.id, keyB) && !m.holdsKey(w0.id, nil))
        clock.seconds += 4
        let foreign = m.heartbeat(w0.id, key: keyB), keyless = m.heartbeat(w0.id)
        #expect(!foreign, "a heartbeat with another key counted")
        #expect(!keyless, "a heartbeat without a key counted")
        let heardForeign = m.heard(from: identity("w0/1"), key: keyB)
        #expect(heardForeign == nil)
        clock.seconds += 2
        #expect(m.overdue().map(\.id) == [w0.id], "the foreign heartbeats kept w0 alive")
        let own = m.heartbeat(w0.id, key: keyA)
        #expect(own)
        let heardOwn = m.heard(from: identity("w0/1"), key: keyA)
        #expect(heardOwn == w0.id)
        #expect(m.overdue().isEmpty)
        let leftForeign = m.leave(w0.id, identity: identity("w0/1"), key: keyB)
        #expect(leftForeign == nil)
        #expect(m[w0.id]?.alive == true)
        let leftOwn = m.leave(w0.id, identity: identity("w0/1"), key: keyA)
        #expect(leftOwn?.id == w0.id)
    }

    @Test func theSamePeerRegisteringAgainKeepsItsId() throws {
        var m = membership()
        let w = try #require(join(&m, .worker, "w0", as: "w0/1"))
        #expect(m.register(registration(.worker, "w0"), identity: identity("w0/1"), phase: .training) == .alreadyMember(w))
        #expect(m.epoch == 2)
        #expect(m.all.count == 1)
    }

    @Test func clientsAreAnsweredButNeverMembers() {
        var m = membership()
        #expect(m.register(registration(.client, "status"), identity: identity("cli"), phase: .training) == .client)
        #expect(m.all.isEmpty)
        #expect(m.epoch == 1)
    }

    @Test func duplicateNamesGetASuffixAmongTheLiving() throws {
        var m = membership()
        let a = try #require(join(&m, .worker, "w", as: "a"))
        let b = try #require(join(&m, .worker, "w", as: "b"))
        let c = try #require(join(&m, .worker, "w", as: "c"))
        #expect([a.name, b.name, c.name] == ["w", "w-2", "w-3"])
        _ = m.lose(a.id)
        // The first name is free again once its holder is dead.
        let d = try #require(join(&m, .worker, "w", as: "d"))
        #expect(d.name == "w")
    }

    @Test func serversFillThePlannedSlotsThenAreRefused() throws {
        var m = membership(servers: 2)
        let s0 = try #require(join(&m, .server, "ps0", as: "ps0/1"))
        let s1 = try #require(join(&m, .server, "ps1", as: "ps1/1"))
        #expect(m.servers == [s0.id, s1.id])
        #expect(m.serverIndex(of: s1.id) == 1)
        let epoch = m.epoch
        #expect(m.register(registration(.server, "ps2"), identity: identity("ps2/1"), phase: .waiting)
                == .refused("the cluster already has its 2 server(s)", transient: true))
        #expect(m.register(registration(.server, "ps2"), identity: identity("ps2/1"), phase: .training)
                == .refused("the cluster already has its 2 server(s)", transient: true))
        #expect(m.epoch == epoch, "a refusal changes nothing")
        #expect(m.aliveServerCount == 2 && m.allServersAlive)
    }

    @Test func aServerMustGiveItsDataEndpoint() {
        var m = membership()
        let r = RegisterMessage(role: .server, name: "ps0", host: "h", pid: 1, endpoint: nil, threads: 1)
        #expect(m.register(r, identity: identity("ps0/1"), phase: .waiting) == .refused("a server must give its data endpoint"))
    }

    @Test func noWorkerJoinsAFinishingRun() {
        var m = membership()
        #expect(m.register(registration(.worker, "late"), identity: identity("late/1"), phase: .finishing) == .refused("the run is finishing"))
    }

    @Test func aDeadServersSlotIsTakenByTheNextServer() throws {
        var m = membership(servers: 2)
        let s0 = try #require(join(&m, .server, "ps0", as: "ps0/1"))
        let s1 = try #require(join(&m, .server, "ps1", as: "ps1/1"))
        #expect(m.lose(s0.id)?.name == "ps0")
        #expect(m.deadServerSlot == 0 && !m.allServersAlive)
        // Training, recovering: only into a dead server's slot, which keeps its index.
        let s2 = try #require(join(&m, .server, "ps2", as: "ps2/1", phase: .recovering))
        #expect(m.servers == [s2.id, s1.id])
        #expect(m.serverIndex(of: s2.id) == 0)
        #expect(m.allServersAlive)
    }

    @Test func aServerLostBeforeTheStartGivesUpItsSlot() throws {
        var m = membership(servers: 2)
        let s0 = try #require(join(&m, .server, "ps0", as: "ps0/1"))
        let s1 = try #require(join(&m, .server, "ps1", as: "ps1/1"))
        _ = m.lose(s0.id)
        m.removeServer(s0.id)
        #expect(m.servers == [s1.id])
        #expect(m.serverIndex(of: s1.id) == 0, "the servers after it move down one index")
        let s2 = try #require(join(&m, .server, "ps2", as: "ps2/1"))
        #expect(m.servers == [s1.id, s2.id])
    }

    @Test func silenceLongerThanTheTimeoutIsALossOnTheFakeClock() throws {
        var m = membership(timeout: 10)
        let w0 = try #require(join(&m, .worker, "w0", as: "w0/1"))
        let w1 = try #require(join(&m, .worker, "w1", as: "w1/1"))
        clock.advance(6)
        let acknowledged = m.heartbeat(w0.id)   // w0's heartbeat thread
        #expect(acknowledged)
        #expect(m.heard(from: identity("w1/1")) == w1.id)   // any message counts for w1
        clock.advance(9)
        #expect(m.overdue().isEmpty, "9 s of silence, the timeout is 10")
        clock.advance(2)
        let overdue = m.overdue()
        #expect(overdue.map(\.id) == [w0.id, w1.id])
        #expect(overdue.map(\.silence) == [11, 11])
        let w1Acknowledged = m.heartbeat(w1.id)
        #expect(w1Acknowledged)
        #expect(m.overdue().map(\.id) == [w0.id])
        let epoch = m.epoch
        #expect(m.lose(w0.id)?.id == w0.id)
        #expect(m.epoch == epoch + 1)
        #expect(m.lose(w0.id) == nil, "a dead member is lost once")
        #expect(m.epoch == epoch + 1)
        let deadAcknowledged = m.heartbeat(w0.id)
        #expect(!deadAcknowledged, "a dead member's heartbeats are not acknowledged: it registers again")
        #expect(m.overdue().isEmpty)
        #expect(m.aliveWorkers == [w1.id])
    }

    /// The coordinator's own stall is excused: the time its loop did not turn, beyond a turn's
    /// allowance, is not the members' silence, but moves no one's last message past now; a loop
    /// whose every turn is slow still loses the silent members in the end; the dead stay dead.
    @Test func theCoordinatorsOwnStallIsNotTheMembersSilence() throws {
        var m = membership(timeout: 10)
        let w0 = try #require(join(&m, .worker, "w0", as: "w0/1"))
        let w1 = try #require(join(&m, .worker, "w1", as: "w1/1"))
        let w2 = try #require(join(&m, .worker, "w2", as: "w2/1"))
        #expect(m.lose(w2.id) != nil)
        #expect(Membership.turnAllowance == 0.5)
        clock.advance(2)
        _ = m.heartbeat(w0.id)                   // w0 last heard at 2 s, w1 at 0 s
        clock.advance(1)
        m.loopTurned()                           // the loop's last turn before it stops: 3 s
        clock.advance(12)                        // stopped for 12 s
        _ = m.heartbeat(w1.id)                   // the first turn after it reads w1's heartbeat (15 s)
        m.loopTurned()                           // 11.5 s excused
        #expect(m.overdue().isEmpty, "w0 would be 13 s silent without the excuse")
        // From now on every turn takes 1 s and nothing is heard: 0.5 s of each is excused, so the
        // silences (w0 1.5 s, w1 0 s: heard at 15 s, not moved past it) grow by 0.5 s a turn.
        for _ in 0..<17 { clock.advance(1); m.loopTurned() }
        #expect(m.overdue().isEmpty, "w0: 10 s of silence counted, the timeout is 10")
        clock.advance(1); m.loopTurned()
        #expect(m.overdue().map(\.id) == [w0.id])
        #expect(m.overdue().map(\.silence) == [10.5])
        for _ in 0..<3 { clock.advance(1); m.loopTurned() }
        #expect(m.overdue().map(\.id) == [w0.id, w1.id])
        #expect(m.overdue().map(\.silence) == [12, 10.5])
        m.excuse(seconds: -3)
        #expect(m.overdue().map(\.silence) == [12, 10.5], "nothing to excuse")
        #expect(m.aliveWorkers == [w0.id, w1.id].sorted(), "the dead stay dead")
    }

    @Test func leaveIsOnlyForTheMemberItself() throws {
        var m = membership()
        let w0 = try #require(join(&m, .worker, "w0", as: "w0/1"))
        let epoch = m.epoch
        #expect(m.leave(w0.id, identity: identity("someone-else")) == nil)
        #expect(m.epoch == epoch)
        #expect(m.leave(w0.id, identity: identity("w0/1"))?.id == w0.id)
        #expect(m.epoch == epoch + 1)
        #expect(m[w0.id]?.alive == false)
        #expect(m.leave(w0.id, identity: identity("w0/1")) == nil)
    }

    @Test func aProcessRegisteringAgainAfterItsLossIsFoundByItsRoutingId() throws {
        var m = membership()
        let old = try #require(join(&m, .worker, "w0", as: "w0/1"))
        _ = m.lose(old.id)
        let again = try #require(join(&m, .worker, "w0", as: "w0/1"))
        #expect(again.id != old.id)
        #expect(m.member(identity: identity("w0/1"))?.id == again.id)
        #expect(m.heard(from: identity("w0/1")) == again.id)
        m.countContribution(of: again.id)
        #expect(m[again.id]?.contributions == 1 && m[old.id]?.contributions == 0)
    }
}

/// Found by review: a register's name and host could be megabytes, and members were never forgotten,
/// every one of them in each status reply.
@Suite struct MembershipBoundsTests {
    let clock = FakeClock()

    @Test func aHugeNameOrHostIsRefused() {
        var m = Membership(plannedServers: 1, heartbeatTimeout: 10, clock: clock, firstId: 7_000)
        let long = String(repeating: "w", count: 1 << 20)
        var r = registration(.worker, long)
        #expect(m.register(r, identity: identity("w/1"), phase: .waiting) == .refused("its name is 1048576 bytes long (at most 256)"))
        r = registration(.worker, "w0")
        r.host = long
        #expect(m.register(r, identity: identity("w/1"), phase: .waiting) == .refused("its host is 1048576 bytes long (at most 256)"))
        #expect(m.all.isEmpty && m.epoch == 1)
        r = registration(.worker, String(repeating: "w", count: 256))
        r.host = String(repeating: "h", count: 256)
        guard case .joined = m.register(r, identity: identity("w/1"), phase: .waiting) else {
            Issue.record("a 256-byte name is refused"); return
        }
    }

    /// The living and the latest `deadKept` dead are kept; a dead server that holds a slot always is.
    @Test func onlyTheLatestDeadAreKept() throws {
        var m = Membership(plannedServers: 1, heartbeatTimeout: 10, clock: clock, firstId: 7_000)
        guard case .joined(let server, _) = m.register(registration(.server, "ps0"), identity: identity("ps0/1"), phase: .waiting) else {
            Issue.record("no server"); return
        }
        #expect(m.lose(server.id) != nil)
        guard case .joined(let survivor, _) = m.register(registration(.worker, "keep"), identity: identity("keep/1"), phase: .training) else {
            Issue.record("no worker"); return
        }
        var ids: [Int] = []
        for i in 0..<(Membership.deadKept + 40) {
            guard case .joined(let w, _) = m.register(registration(.worker, "w\(i)"), identity: identity("w\(i)/1"), phase: .training) else {
                Issue.record("worker \(i) refused"); return
            }
            ids.append(w.id)
            #expect(m.lose(w.id) != nil)
        }
        let dead = m.all.filter { !$0.alive }
        #expect(dead.count == Membership.deadKept + 1, "the latest dead workers and the dead server in its slot")
        #expect(m[server.id] != nil && m.deadServerSlot == 0)
        #expect(m[ids[39]] == nil && m[ids[40]] != nil && m[ids.last!] != nil)
        #expect(m[survivor.id]?.alive == true && m.aliveWorkers == [survivor.id])
        // A forgotten member's routing id is nobody's now.
        let forgotten = m.heard(from: identity("w0/1"))
        #expect(forgotten == nil)
        let kept = m.heard(from: identity("keep/1"))
        #expect(kept == survivor.id)
        let acknowledged = m.heartbeat(ids[0])
        #expect(!acknowledged)
    }

    @Test func livingMembersAreBounded() {
        var m = Membership(plannedServers: 1, heartbeatTimeout: 10, clock: clock, firstId: 7_000)
        for i in 0..<Membership.livingLimit {
            guard case .joined = m.register(registration(.worker, "w\(i)"), identity: identity("w/\(i)"), phase: .waiting) else {
                Issue.record("worker \(i) refused"); return
            }
        }
        #expect(m.register(registration(.worker, "w"), identity: identity("w/x"), phase: .waiting)
                == .refused("the cluster already has \(Membership.livingLimit) living members"))
        #expect(m.register(registration(.client, "cli"), identity: identity("cli/1"), phase: .waiting) == .client)
    }
}
