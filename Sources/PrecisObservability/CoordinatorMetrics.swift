import Prometheus

/// The coordinator's metrics: the run's progress (step, epoch, loss, learning rate, gradient norm,
/// throughput), who is in the cluster, the services (checkpoints, evaluations, hub pushes) and the
/// bytes the workers report on the wire. Every update is an atomic store or add on a metric made
/// once here; the coordinator calls them where it already has the figures (its step report,
/// `contributionDone`, the services' completions). Names and meanings: docs/operations.md, "Watching
/// a run: Prometheus".
public final class CoordinatorMetrics: MetricsExposing {
    public let registry: PrometheusCollectorRegistry

    let step: Gauge
    let totalSteps: Gauge
    let epoch: Gauge
    let loss: Gauge
    let learningRate: Gauge
    let gradNorm: Gauge
    let examplesPerSecond: Gauge
    let stepsCompleted: Counter
    let contributions: Counter
    let contributionsOpen: Gauge
    /// By role (`server`, `worker`) and state (`alive`, `lost`).
    let members: [String: Gauge]
    /// One gauge per phase; the current one is 1.
    let phases: [String: Gauge]
    let gradientWireBytes: Counter
    let gradientRawBytes: Counter
    let parameterWireBytes: Counter
    let parameterRawBytes: Counter
    let checkpointSeconds: ValueHistogram
    let checkpointFailures: Counter
    let evaluationSeconds: ValueHistogram
    let evaluationFailures: Counter
    let hubPushSeconds: ValueHistogram
    let hubPushFailures: Counter

    /// The phases `precis_run_phase` has a series for (`RunPhase`'s raw values).
    public static let phaseNames = ["waiting", "initializing", "training", "recovering", "finishing"]
    /// Seconds buckets of the service durations: a quick save to a long evaluation with generation.
    static let serviceBuckets: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let r = registry
        r.gauge("precis_role_info", labels: [("role", "coordinator")], help: "1 for the role this process plays").set(to: 1)
        step = r.gauge("precis_step", help: "Optimizer steps done (sync: global steps; ssp/async: tasks)")
        totalSteps = r.gauge("precis_total_steps", help: "Steps the run is planned for")
        epoch = r.gauge("precis_epoch", help: "Epochs done, fractional (step / steps per epoch)")
        loss = r.gauge("precis_loss", help: "Mean token loss of the latest contribution")
        learningRate = r.gauge("precis_learning_rate", help: "Learning rate of the latest step")
        gradNorm = r.gauge("precis_grad_norm", help: "Gradient norm of the latest step (before clipping)")
        examplesPerSecond = r.gauge("precis_examples_per_second", help: "Training examples per second since training started")
        stepsCompleted = r.counter("precis_steps_completed_total", help: "Steps this coordinator process closed")
        contributions = r.counter("precis_contributions_total", help: "Worker contributions counted (sync) or tasks (ssp/async)")
        contributionsOpen = r.gauge("precis_contributions_open", help: "Contributions (sync) or tasks (ssp/async) handed out and not reported yet")
        var m: [String: Gauge] = [:]
        for role in ["server", "worker"] {
            for state in ["alive", "lost"] {
                m[role + "/" + state] = r.gauge("precis_members", labels: [("role", role), ("state", state)],
                                                    help: "Cluster members by role and state (lost: left or missed its heartbeats)")
            }
        }
        members = m
        var p: [String: Gauge] = [:]
        for name in Self.phaseNames {
            p[name] = r.gauge("precis_run_phase", labels: [("phase", name)], help: "1 for the phase the run is in, 0 for the others")
        }
        phases = p
        gradientWireBytes = r.counter("precis_gradient_wire_bytes_total", help: "Gradient bytes the workers pushed, as sent (encoded)")
        gradientRawBytes = r.counter("precis_gradient_raw_bytes_total", help: "Gradient bytes the workers pushed, as fp32 before encoding")
        parameterWireBytes = r.counter("precis_parameter_wire_bytes_total", help: "Parameter bytes the workers pulled, as sent (encoded)")
        parameterRawBytes = r.counter("precis_parameter_raw_bytes_total", help: "Parameter bytes the workers pulled, as fp32")
        checkpointSeconds = r.histogram("precis_checkpoint_seconds", buckets: Self.serviceBuckets,
                                                 help: "Seconds from a checkpoint's step to its folder saved")
        checkpointFailures = r.counter("precis_checkpoint_failures_total", help: "Checkpoints that could not be prepared or saved")
        evaluationSeconds = r.histogram("precis_evaluation_seconds", buckets: Self.serviceBuckets,
                                                 help: "Seconds an evaluation took (loss, generation, ROUGE)")
        evaluationFailures = r.counter("precis_evaluation_failures_total", help: "Evaluations that failed or were skipped")
        hubPushSeconds = r.histogram("precis_hub_push_seconds", buckets: Self.serviceBuckets,
                                              help: "Seconds a hub push took, retries included")
        hubPushFailures = r.counter("precis_hub_push_failures_total", help: "Hub pushes that failed after their retries")
        setPhase("waiting")
    }

    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// The run's plan (and, resuming, where it starts).
    public func planned(totalSteps n: Int, step s: Int) {
        totalSteps.set(Int64(n)); step.set(Int64(s))
    }

    /// A step closed, with the figures of its report.
    public func stepCompleted(step s: Int, epoch e: Double, loss l: Double, learningRate lr: Double, gradNorm g: Double,
                              examplesPerSecond eps: Double) {
        step.set(Int64(s)); epoch.set(e); loss.set(l); learningRate.set(lr); gradNorm.set(g); examplesPerSecond.set(eps)
        stepsCompleted.increment()
    }

    /// A contribution's bytes on the wire, as its worker reported them.
    public func contribution(gradientWireBytes gw: Int, gradientRawBytes gr: Int, parameterWireBytes pw: Int, parameterRawBytes pr: Int) {
        contributions.increment()
        gradientWireBytes.increment(by: Int64(max(0, gw))); gradientRawBytes.increment(by: Int64(max(0, gr)))
        parameterWireBytes.increment(by: Int64(max(0, pw))); parameterRawBytes.increment(by: Int64(max(0, pr)))
    }

    /// The member table's counts.
    public func members(serversAlive: Int, serversLost: Int, workersAlive: Int, workersLost: Int) {
        members["server/alive"]?.set(Int64(serversAlive)); members["server/lost"]?.set(Int64(serversLost))
        members["worker/alive"]?.set(Int64(workersAlive)); members["worker/lost"]?.set(Int64(workersLost))
    }

    public func contributionsOpen(_ n: Int) { contributionsOpen.set(Int64(n)) }

    /// The run's phase (one of `phaseNames`; others are ignored).
    public func setPhase(_ name: String) {
        guard phases[name] != nil else { return }
        for (n, g) in phases { g.set(to: n == name ? 1 : 0) }
    }

    public func checkpointSaved(seconds: Double) { checkpointSeconds.record(max(0, seconds)) }
    public func checkpointFailed() { checkpointFailures.increment() }
    public func evaluationFinished(seconds: Double) { evaluationSeconds.record(max(0, seconds)) }
    public func evaluationFailed() { evaluationFailures.increment() }
    /// Thread-safe like every update here: the hub's uploader calls it from its own thread.
    public func hubPushed(seconds: Double) { hubPushSeconds.record(max(0, seconds)) }
    public func hubPushFailed(seconds: Double) { hubPushFailures.increment(); hubPushSeconds.record(max(0, seconds)) }
}
