import Foundation
import Synchronization
import Testing
import PrecisCore
import PrecisTrain
import PrecisWire
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

extension RealProcesses {
/// Found by the chaos soak (tools/chaos/chaos.sh) on a busy machine: a coordinator that stalls past
/// `heartbeat_timeout` while its members run on.
@Suite struct StallClusterTests {
    /// The members stop hearing from the coordinator, drop their work and register again while it
    /// still counts them alive. It used to log "registered again; keeping id" and answer nothing, so
    /// they waited until it declared them lost and then 10 s more; now each is a new incarnation at
    /// once. At the end every member gets the `shutdown` (with keys the ZAP thread's socket kept the
    /// context from flushing it at exit), and the parameters are bitwise those of an undisturbed run.
    @Test func membersThatLostAStalledCoordinatorRejoinAndTheRunEndsAsUndisturbed() throws {
        let dir = TestData.tempDir("stall")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 2, steps: 200, servers: 1, workers: 2,
                                         extraTraining: "save_steps: 10")
        let keysDir = dir + "/keys"
        try ClusterKeys.generate(into: keysDir)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2, keys: keysDir)
        #expect(c.waitForStep(3), "\(c.allLogs())")
        c.signal("coordinator", SIGSTOP)
        // Every member notices the silence (heartbeat_timeout 3 s) and sends `register` again.
        for n in ["ps0", "w0", "w1"] {
            #expect(c.waitForLog(n, "has not answered for", timeout: 60), "\(n): \(c.log(n))")
        }
        Thread.sleep(forTimeInterval: 0.5)   // their `register` is on its way; the coordinator reads it when it runs again
        c.signal("coordinator", SIGCONT)
        #expect(c.wait("coordinator", timeout: 300) == 0, "\(c.allLogs())")
        for n in ["ps0", "w0", "w1"] { #expect(c.wait(n, timeout: 30) == 0, "\(n) was not told the run ended: \(c.allLogs())") }
        let log = c.log("coordinator")
        #expect(log.contains("step 200/200"))
        #expect(!log.contains("keeping id"), "\(log)")
        // 200 debug-build steps on a loaded 2-core machine can take longer than the default 120 s.
        try expectBitwiseEqualToUndisturbedRun(dir: dir, config: cfg, servers: 1, workers: 2, tag: "stalled", timeout: 900)
    }

    /// A stall longer than `heartbeat_timeout` (5 s) but shorter than the members' patience (twice
    /// it, `CoordinatorLink.patience`, with 4 s to spare for a loaded machine to schedule the woken
    /// coordinator and its acknowledgements): the coordinator does not count the time it was stopped as the
    /// members' silence (the heartbeats sent meanwhile are still in the kernel's buffers when it
    /// wakes, its ZeroMQ I/O thread stopped with it), and the members wait it out — nobody is lost,
    /// nobody registers again, nothing is handed over or rolled back.
    @Test func aStallShorterThanTheMembersPatienceCostsNothing() throws {
        let dir = TestData.tempDir("pause")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 2, steps: 40, servers: 1, workers: 2,
                                         extraCluster: "heartbeat_timeout: 5.0")
        #expect(CoordinatorLink.patience(heartbeatTimeout: 5) > 6 + 3)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.waitForStep(3), "\(c.allLogs())")
        c.signal("coordinator", SIGSTOP)
        let stopped = Member.now()
        Thread.sleep(forTimeInterval: 6)
        c.signal("coordinator", SIGCONT)
        #expect(Member.now() - stopped > 5)
        let log = Self.endsWithNoMemberGivingUp(c)
        #expect(log.contains("step 40/40"), "\(log)")
        for sign in ["lost:", "registered again", "rolling back", "handed"] { #expect(!log.contains(sign), "\(sign): \(log)") }
    }

    /// The coordinator's own long steps are not stalls: here the final hub push waits 8 s on a slow
    /// hub (a real HTTP server that answers each request after 8 s, with 403) — more than twice
    /// `heartbeat_timeout` (3 s) — while the members wait for `shutdown`. A `HeartbeatStandIn`
    /// acknowledges their heartbeats meanwhile: none of them takes the coordinator for dead and
    /// registers again, and each gets the `shutdown`.
    @Test func membersWaitOutALongFinalPushWithoutRegisteringAgain() throws {
        let dir = TestData.tempDir("busy")
        let model = try TestCluster.tiny(in: dir)
        let requests = RequestLog()
        let hub = try TestHTTPServer { r in
            requests.add(r.method + " " + r.path)
            Thread.sleep(forTimeInterval: 8)
            return .json(["error": "this test's hub refuses every push"], status: 403)
        }
        defer { hub.stop() }
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 2, steps: 6, servers: 1, workers: 2, extraTraining: """
            push_to_hub: true
            hub_model_id: team/busy
            hub_strategy: end
            hub_url: \(hub.baseURL)
            hub_token: hf_test
            """)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        let log = Self.endsWithNoMemberGivingUp(c)
        #expect(log.contains("waiting for the hub upload to finish"), "\(log)")
        #expect(log.contains("failed") && log.contains("403"), "\(log)")
        #expect(!log.contains("registered again"), "\(log)")
        #expect(requests.all.count == 1, "\(requests.all)")
    }

    /// A peer that asks for the status without pause (as fast as the coordinator answers: its
    /// DEALER's queue is full all the time) does not stop the run: a turn of the loop handles at most
    /// `controlPerTurn` control messages, then does its other work (steps, heartbeats), and the
    /// members' messages come through between the flood's. Without the bound the loop never left
    /// its read and training stopped at the step the flood began.
    @Test func aPeerFloodingTheCoordinatorDoesNotStopTheRun() throws {
        let dir = TestData.tempDir("flood")
        let model = try TestCluster.tiny(in: dir)
        let cfg = try TestCluster.config(dir: dir, model: model, batch: 2, steps: 30, servers: 1, workers: 2)
        let c = try TestCluster.up(dir: dir, config: cfg, servers: 1, workers: 2)
        #expect(c.waitForStep(2), "\(c.allLogs())")
        let flood = Flood()
        let endpoint = c.endpoint
        let flooder = Thread { flood.run(endpoint) }
        flooder.start()
        defer { flood.stop() }
        #expect(flood.started.wait(timeout: .now() + 10) == .success)
        let log = Self.endsWithNoMemberGivingUp(c)
        flood.stop()
        #expect(log.contains("step 30/30"), "\(log)")
        #expect(flood.replies > 1000, "the flood was answered \(flood.replies) times: it did not last")
        #expect(!log.contains("lost:"), "\(log)")
    }

    /// The run ends well (every process exits 0: the members got the `shutdown`) and no member ever
    /// took the coordinator for dead; returns the coordinator's log.
    static func endsWithNoMemberGivingUp(_ c: TestCluster) -> String {
        #expect(c.wait("coordinator", timeout: 300) == 0, "\(c.allLogs())")
        for n in ["ps0", "w0", "w1"] {
            #expect(c.wait(n, timeout: 30) == 0, "\(n) was not told the run ended: \(c.allLogs())")
            #expect(!c.log(n).contains("has not answered for"), "\(n) took the coordinator for dead: \(c.log(n))")
        }
        return c.log("coordinator")
    }
}
}

/// What a test HTTP server was asked, from its connection threads.
final class RequestLog: Sendable {
    private let lines = Mutex<[String]>([])
    func add(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// Status requests sent to a coordinator without pause from a thread of its own, reading the replies.
final class Flood: Sendable {
    private let on = Atomic<Bool>(true)
    private let answered = Atomic<Int>(0)
    private let ended = DispatchSemaphore(value: 0)
    /// Signalled once the first request is out.
    let started = DispatchSemaphore(value: 0)
    var replies: Int { answered.load(ordering: .relaxed) }

    func run(_ endpoint: String) {
        defer { ended.signal() }
        guard let context = try? ZMQContext(), let s = try? ZMQSocket(context, .dealer) else { started.signal(); return }
        defer { s.close(); _ = context.terminate(waitingAtMost: 1) }
        _ = try? s.set(28, 100)   // ZMQ_SNDTIMEO: a full queue makes send fail after 100 ms, not block for ever
        _ = try? s.connect(endpoint)
        let request = Control.frames(.statusRequest, StatusRequest())
        var first = true
        while on.load(ordering: .relaxed) {
            _ = try? s.send(request)
            if first { started.signal(); first = false }
            while (try? s.tryReceive()) != nil { answered.add(1, ordering: .relaxed) }
        }
    }

    /// Ends the flood and waits for its thread (once; later calls return at once).
    func stop() {
        guard on.exchange(false, ordering: .relaxed) else { return }
        ended.wait()
    }
}
