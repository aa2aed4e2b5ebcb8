/// Something whose metrics can be written in Prometheus's text exposition format (version 0.0.4):
/// each role's metrics (`CoordinatorMetrics`, `ServerMetrics`, `WorkerMetrics`).
public protocol MetricsExposing: Sendable {
    /// The current values, as `# HELP`, `# TYPE` and sample lines.
    func exposition() -> [UInt8]
}
