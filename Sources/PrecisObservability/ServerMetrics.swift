import Prometheus

/// A parameter server's metrics: gradient pushes taken and optimizer updates applied, bytes in and
/// out of its data socket, the time spent decoding pushes and in the optimizer, the partitions it
/// holds and its version. Labelled with the server's name (`member`). Every update is an atomic add
/// or store; the server calls them where it already handles each message.
public final class ServerMetrics: MetricsExposing {
    public let registry: PrometheusCollectorRegistry

    let pushes: Counter
    let updates: Counter
    let pulls: Counter
    let receivedBytes: Counter
    let sentBytes: Counter
    /// Parameter reply bytes by the reply's codec (`none`, `fp32`, `bf16`, `bf16-delta`; a
    /// `bf16-delta` pull's full reply is `fp32`).
    let replyBytes: [String: Counter]
    let decodeSeconds: Counter
    let optimizerSeconds: Counter
    let partitions: Gauge
    let version: Gauge

    public init(name: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let r = registry, l = [("member", name)]
        r.gauge("precis_role_info", labels: [("role", "server"), ("member", name)], help: "1 for the role this process plays").set(to: 1)
        pushes = r.counter("precis_server_pushes_total", labels: l, help: "Gradient partitions taken from workers (summed in sync, applied on arrival in ssp/async)")
        updates = r.counter("precis_server_updates_total", labels: l, help: "Optimizer updates applied (sync: steps; ssp/async: partition updates)")
        pulls = r.counter("precis_server_parameter_replies_total", labels: l, help: "Parameter partitions sent to workers")
        receivedBytes = r.counter("precis_server_received_bytes_total", labels: l, help: "Bytes of data messages received (header and payload)")
        sentBytes = r.counter("precis_server_sent_bytes_total", labels: l, help: "Bytes of data messages sent (header and payload)")
        var byCodec: [String: Counter] = [:]
        for c in Self.replyCodecs {
            byCodec[c] = r.counter("precis_server_parameter_reply_bytes_total", labels: l + [("codec", c)],
                                   help: "Bytes of parameter replies sent (header and payload), by the reply's codec")
        }
        replyBytes = byCodec
        decodeSeconds = r.counter("precis_server_decode_seconds_total", labels: l, help: "Seconds spent decoding gradient pushes")
        optimizerSeconds = r.counter("precis_server_optimizer_seconds_total", labels: l, help: "Seconds spent in the optimizer (AdamW)")
        partitions = r.gauge("precis_server_partitions", labels: l, help: "Partitions this server holds")
        version = r.gauge("precis_server_version", labels: l, help: "Optimizer steps applied (sync: all partitions; ssp/async: the fewest any partition has had)")
    }

    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// A data message received (`bytes`: header and payload), whatever becomes of it.
    public func received(bytes: Int) { receivedBytes.increment(by: Int64(max(0, bytes))) }

    /// A gradient partition taken, decoded in `decodeSeconds`.
    public func pushed(decodeSeconds s: Double) { pushes.increment(); decodeSeconds.increment(by: max(0, s)) }

    /// The codecs a parameter reply can be in (the `codec` label of `precis_server_parameter_reply_bytes_total`).
    public static let replyCodecs = ["none", "fp32", "bf16", "bf16-delta"]

    /// A parameter partition sent (`bytes`: its message; `codec`: the reply's codec name).
    public func sentParameters(bytes: Int, codec: String? = nil) {
        pulls.increment(); sentBytes.increment(by: Int64(max(0, bytes)))
        if let codec { replyBytes[codec]?.increment(by: Int64(max(0, bytes))) }
    }

    /// Any other data message sent (moments, snapshots).
    public func sent(bytes: Int) { sentBytes.increment(by: Int64(max(0, bytes))) }

    /// `count` optimizer updates applied in `seconds`; the server's version is now `version`.
    public func applied(count: Int = 1, seconds: Double, version v: Int) {
        updates.increment(by: Int64(max(0, count))); optimizerSeconds.increment(by: max(0, seconds)); version.set(Int64(v))
    }

    /// A new assignment: `count` partitions at version `version`.
    public func assigned(partitions count: Int, version v: Int) { partitions.set(Int64(count)); version.set(Int64(v)) }
}
