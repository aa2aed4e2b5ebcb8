import Prometheus

/// A worker's metrics: contributions done, where each one's time went (waiting for parameters,
/// forward + backward, the encoding left after backward), bytes pushed and pulled, and tokens per
/// second. Labelled with the worker's name (`member`). Every update is an atomic add or store; the
/// worker calls them once per contribution, with the figures it reports to the coordinator.
public final class WorkerMetrics: MetricsExposing {
    public let registry: PrometheusCollectorRegistry

    let contributions: Counter
    let computeSeconds: Counter
    let waitSeconds: Counter
    let encodeSeconds: Counter
    let lastCompute: Gauge
    let lastWait: Gauge
    let lastEncode: Gauge
    let pushedBytes: Counter
    let pulledBytes: Counter
    let tokens: Counter
    let tokensPerSecond: Gauge
    let examples: Counter

    public init(name: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let r = registry, l = [("member", name)]
        r.gauge("precis_role_info", labels: [("role", "worker"), ("member", name)], help: "1 for the role this process plays").set(to: 1)
        contributions = r.counter("precis_worker_contributions_total", labels: l, help: "Contributions (sync) or tasks (ssp/async) computed and pushed")
        computeSeconds = r.counter("precis_worker_compute_seconds_total", labels: l, help: "Seconds of forward + backward")
        waitSeconds = r.counter("precis_worker_wait_seconds_total", labels: l, help: "Seconds waiting for parameters")
        encodeSeconds = r.counter("precis_worker_encode_seconds_total", labels: l, help: "Seconds encoding and pushing gradients after backward")
        lastCompute = r.gauge("precis_worker_step_compute_seconds", labels: l, help: "Forward + backward seconds of the latest contribution")
        lastWait = r.gauge("precis_worker_step_wait_seconds", labels: l, help: "Seconds the latest contribution waited for parameters")
        lastEncode = r.gauge("precis_worker_step_encode_seconds", labels: l, help: "Encoding seconds after backward of the latest contribution")
        pushedBytes = r.counter("precis_worker_pushed_bytes_total", labels: l, help: "Gradient bytes sent to the servers (encoded)")
        pulledBytes = r.counter("precis_worker_pulled_bytes_total", labels: l, help: "Parameter bytes received from the servers (encoded)")
        tokens = r.counter("precis_worker_tokens_total", labels: l, help: "Tokens computed (source + target, padding included)")
        tokensPerSecond = r.gauge("precis_worker_tokens_per_second", labels: l, help: "Tokens per second of the latest contribution (wait included)")
        examples = r.counter("precis_worker_examples_total", labels: l, help: "Training examples computed")
    }

    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// A contribution pushed and reported.
    public func contributionDone(computeSeconds c: Double, waitSeconds w: Double, encodeSeconds e: Double, pushedBytes pushed: Int,
                                 pulledBytes pulled: Int, tokens t: Int, examples x: Int) {
        contributions.increment()
        computeSeconds.increment(by: max(0, c)); waitSeconds.increment(by: max(0, w)); encodeSeconds.increment(by: max(0, e))
        lastCompute.set(c); lastWait.set(w); lastEncode.set(e)
        pushedBytes.increment(by: Int64(max(0, pushed))); pulledBytes.increment(by: Int64(max(0, pulled)))
        tokens.increment(by: Int64(max(0, t))); examples.increment(by: Int64(max(0, x)))
        let wall = c + w + e
        if wall > 0 { tokensPerSecond.set(Double(t) / wall) }
    }
}
