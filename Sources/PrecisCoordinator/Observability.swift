import PrecisObservability
import PrecisWire

/// The coordinator's Prometheus metrics and their HTTP listener. The figures are set where the
/// coordinator already has them (its step report, `contributionDone`, the services' completions);
/// what is a count over its tables (members by role and state, open contributions, the phase) is
/// refreshed once per turn of the event loop, from plain values, when it changed.
struct ObservedState: Equatable {
    var phase: RunPhase = .waiting
    var membershipEpoch: UInt32 = 0
    var openContributions = -1
}

extension Coordinator {
    /// Starts the metrics listener when `cluster.metrics_port` (or `--metrics-port`) asks for one and
    /// logs its URL; throws `MetricsServerError` (the port in use, …) naming the port and the role.
    func startMetricsServer() throws {
        guard let port = options.metricsPort ?? cfg.cluster.metricsPort else { return }
        servePages()
        let server = try MetricsServer.start(MetricsEndpoint(bind: options.metricsBind ?? cfg.cluster.metricsBind, port: port),
                                             metrics: observed, routes: routes, role: "coordinator")
        metricsServer = server
        log("metrics on \(server.url)")
    }

    /// The live page (`GET /`) and the status it polls (`GET /status.json`) on the same listener.
    /// The closures capture only the status board (a Mutex-guarded snapshot the event loop
    /// publishes), never the coordinator.
    func servePages() {
        let board = statusBoard
        routes.set("/") { HTTPPage(contentType: LivePage.contentType, text: LivePage.html) }
        routes.set("/status.json") { HTTPPage(contentType: LivePage.statusContentType, body: [UInt8](board.statusJSON())) }
    }

    /// Refreshes the metrics that count the coordinator's tables (cheap when nothing changed).
    func observeState() {
        if observedState.phase != phase {
            observedState.phase = phase
            observed.setPhase(phase.rawValue)
        }
        if observedState.membershipEpoch != membership.epoch {
            observedState.membershipEpoch = membership.epoch
            var counts = (serversAlive: 0, serversLost: 0, workersAlive: 0, workersLost: 0)
            for m in membership.all {
                switch (m.role, m.alive) {
                case (.server, true): counts.serversAlive += 1
                case (.server, false): counts.serversLost += 1
                case (.worker, true): counts.workersAlive += 1
                case (.worker, false): counts.workersLost += 1
                default: break
                }
            }
            observed.members(serversAlive: counts.serversAlive, serversLost: counts.serversLost,
                             workersAlive: counts.workersAlive, workersLost: counts.workersLost)
        }
        let open = scheduler.openContributions
        if observedState.openContributions != open {
            observedState.openContributions = open
            observed.contributionsOpen(open)
        }
    }
}
