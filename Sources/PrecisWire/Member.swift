@preconcurrency import Glibc
import Foundation
import Synchronization

/// Set by SIGTERM / SIGINT; the roles poll it at safe points (a store to an atomic is async-signal-safe).
let terminationRequested = Atomic<Int32>(0)

/// The process-wide pieces every role shares: signal handling, logging, and the heartbeat thread.
public enum Member {
    /// Installs SIGTERM and SIGINT handlers that only record the signal; `terminationSignal` reads it.
    public static func installSignalHandlers() {
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT] {
            signal(s) { sig in terminationRequested.store(sig, ordering: .relaxed) }
            sigaddset(&set, s)
        }
        // A parent may have started us with these blocked (the mask is inherited): unblock them.
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// The termination signal received (0 when none).
    public static var terminationSignal: Int32 { terminationRequested.load(ordering: .relaxed) }

    /// One log line on stdout, in the process's `Logging.format`: text (`2026-12-02T05:45:36.584Z
    /// NAME: MESSAGE`, UTC) or one JSON object (`ts`, `role`, `name`, `level`, `msg`, then `fields`).
    /// Line-buffered, so several processes writing to one terminal or file interleave by line.
    public static func log(_ who: String, _ message: String, fields: KeyValuePairs<String, LogField> = [:]) {
        emit(Logging.line(who, message, fields: fields))
    }

    /// One raw line on stdout, flushed.
    public static func emit(_ line: String) {
        fputs(line + "\n", stdout)
        fflush(stdout)
    }

    /// `PRECIS_TRACE=1`: roles print `@trace SECONDS NAME EVENT` lines at the points of a sync step
    /// (CLOCK_MONOTONIC, the same clock for every process on a host), to see where a step's time goes.
    public static let tracing = ProcessInfo.processInfo.environment["PRECIS_TRACE"] == "1"

    public static func trace(_ who: String, _ event: @autoclosure () -> String) {
        guard tracing else { return }
        emit(String(format: "@trace %.6f ", now()) + who + " " + event())
    }

    /// Seconds since an arbitrary fixed point (monotonic).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Sends heartbeats to the coordinator from a thread of its own (with its own DEALER socket, since
/// ZeroMQ sockets belong to one thread), so a member busy computing still counts as alive, and
/// records when the coordinator last answered, so a member can tell a dead coordinator. `stop()`
/// returns once the thread has ended and closed its socket (within one receive wait, ≤ 100 ms), so
/// no heartbeat is sent after it and the ZeroMQ context can be closed without waiting on the socket.
public final class HeartbeatThread: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let lastAckMicros = Atomic<Int64>(0)
    private let startedMicros: Int64
    /// Signalled once when the thread ends (and again by each `stop` that saw it, for the next).
    private let ended = DispatchSemaphore(value: 0)

    static func micros() -> Int64 { Int64(Member.now() * 1e6) }

    public init(context: ZMQContext, coordinator: String, id: Int, interval: Double, name: String, keys: ClusterKeys? = nil) {
        startedMicros = Self.micros()
        lastAckMicros.store(startedMicros, ordering: .relaxed)
        let thread = Thread { [self] in self.run(context: context, coordinator: coordinator, id: id, interval: interval, name: name, keys: keys) }
        thread.name = "heartbeat"
        thread.start()
    }

    /// Seconds since the coordinator last acknowledged a heartbeat.
    public var coordinatorSilence: Double { Double(Self.micros() - lastAckMicros.load(ordering: .relaxed)) / 1e6 }

    /// Tells the thread to stop and waits until it has (at most `timeout` seconds; it checks every 100 ms).
    public func stop(timeout: Double = 5) {
        stopFlag.store(true, ordering: .relaxed)
        if ended.wait(timeout: .now() + timeout) == .success { ended.signal() }
    }

    private func run(context: ZMQContext, coordinator: String, id: Int, interval: Double, name: String, keys: ClusterKeys?) {
        defer { ended.signal() }
        do {
            let s = try ZMQSocket(context, .dealer)
            try keys?.secureToCoordinator(s)
            try s.limitForControl()
            try s.connect(coordinator)
            let beat = Control.frames(.heartbeat, HeartbeatMessage(id: id))
            var next = Member.now()
            while !stopFlag.load(ordering: .relaxed) {
                let now = Member.now()
                if now >= next {
                    try s.send(beat)
                    next = now + interval
                }
                let waitMs = max(1, min(100, Int((next - Member.now()) * 1000)))
                if let frames = try? s.receive(timeoutMs: waitMs),
                   let m = try? DataMessage(frames: frames), m.header.type == .heartbeatAck {
                    lastAckMicros.store(Self.micros(), ordering: .relaxed)
                }
            }
        } catch {
            Member.log(name, "heartbeat thread stopped: \(error)")
        }
    }
}

/// Asks a running coordinator for its view of the cluster.
public enum ClusterStatus {
    /// The coordinator's status as a JSON text (`StatusReport`: `state`, `step`, `max_steps`, `epoch`, `servers`, `workers`, ...),
    /// with the training curve when `history`. With `keys` (the operator's, when the cluster has keys) the request goes over CURVE.
    public static func query(endpoint: String, timeoutMs: Int = 2000, keys: ClusterKeys? = nil, history: Bool = false) throws -> String {
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .dealer)
        try keys?.secureToCoordinator(s)
        try s.limitForControl()
        try s.connect(endpoint)
        try s.send(Control.frames(.statusRequest, StatusRequest(history: history ? true : nil)))
        let deadline = Member.now() + Double(timeoutMs) / 1000
        while true {
            let left = Int((deadline - Member.now()) * 1000)
            guard left > 0 else { throw WireError.timeout(operation: "status request to \(endpoint)", milliseconds: timeoutMs) }
            let m = try DataMessage(frames: try s.receive(timeoutMs: left))
            if m.header.type == .statusReply { return String(decoding: m.payload, as: UTF8.self) }
        }
    }
}

/// A member's hold on the coordinator: the heartbeat thread while registered; when the coordinator
/// stops acknowledging for `patience(heartbeatTimeout:)`, the registration is dropped and `register`
/// is due again every 10 s, until `giveUpAfter` seconds without a coordinator.
///
/// Before the first `registered` (a member started before its coordinator, or restarted before the
/// coordinator noticed its predecessor's death and so refused for now): `register` again every 10 s,
/// or sooner after a transient refusal (`retry(after:)`, backing off), until `connectTimeout` seconds
/// after the start; then `noCoordinator` (the member exits 1 saying so).
public struct CoordinatorLink {
    public enum Event { case fine, lost(seconds: Double), registerNow, giveUp, noCoordinator }

    public private(set) var heartbeat: HeartbeatThread?
    private var silentSince: Double
    private var nextRegister: Double
    private var timeout = 10.0
    public let giveUpAfter: Double
    /// Seconds from the start within which the first registration must succeed.
    public let connectTimeout: Double
    private let started: Double
    public private(set) var everRegistered = false
    /// Transient refusals in a row (the backoff's exponent).
    private var refusals = 0

    public init(giveUpAfter: Double = 600, connectTimeout: Double = 120) {
        let now = Member.now()
        silentSince = now; nextRegister = now + 10; started = now
        self.giveUpAfter = giveUpAfter; self.connectTimeout = connectTimeout
    }

    public var isRegistered: Bool { heartbeat != nil }
    /// Seconds since the member started.
    public var waited: Double { Member.now() - started }

    /// How long a member waits for the coordinator's acknowledgements before it takes it for dead:
    /// twice the `heartbeat_timeout` the coordinator judges its members by. The coordinator is the
    /// one that decides: when it is slow (a starved CPU, a paused VM) it does not count its own
    /// stall as its members' silence, so a pause shorter than this costs nothing, whereas a member
    /// that gave up first would register again — a worker's share handed over, a server's return rolling every
    /// server back to a checkpoint — more work for a machine already overloaded. (The coordinator's
    /// own long steps keep acknowledging anyway: `HeartbeatStandIn`.)
    public static func patience(heartbeatTimeout: Double) -> Double { 2 * heartbeatTimeout }

    /// Registered (again): heartbeats start under the new id; the coordinator is taken for dead
    /// after `patience(heartbeatTimeout:)` without an acknowledgement.
    public mutating func registered(context: ZMQContext, coordinator: String, id: Int, interval: Double, heartbeatTimeout: Double,
                                    name: String, keys: ClusterKeys? = nil) {
        heartbeat?.stop()
        self.timeout = Self.patience(heartbeatTimeout: heartbeatTimeout)
        everRegistered = true
        refusals = 0
        heartbeat = HeartbeatThread(context: context, coordinator: coordinator, id: id, interval: interval, name: name, keys: keys)
    }

    /// A refusal the coordinator says is transient, with the delay it suggests: `register` is due
    /// again after it, doubled on every refusal in a row (at most 10 s). Returns the delay, or nil
    /// when the connect timeout would pass first (the member gives up).
    public mutating func retry(after hint: Double) -> Double? {
        let delay = min(10, max(0.2, hint) * Double(1 << min(refusals, 6)))
        refusals += 1
        guard waited + delay <= connectTimeout || everRegistered else { return nil }
        nextRegister = Member.now() + delay
        return delay
    }

    /// What to do now: nothing, drop the work in hand (the coordinator is gone), send `register`, or give up.
    public mutating func check() -> Event {
        if let hb = heartbeat, hb.coordinatorSilence > timeout {
            let s = hb.coordinatorSilence
            hb.stop()
            heartbeat = nil
            silentSince = Member.now() - s
            nextRegister = 0
            return .lost(seconds: s)
        }
        guard heartbeat == nil else { return .fine }
        if !everRegistered && waited > connectTimeout { return .noCoordinator }
        if Member.now() - silentSince > giveUpAfter { return .giveUp }
        if Member.now() >= nextRegister { nextRegister = Member.now() + 10; return .registerNow }
        return .fine
    }

    public mutating func stop() { heartbeat?.stop() }
}
