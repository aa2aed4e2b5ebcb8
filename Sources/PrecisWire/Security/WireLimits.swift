import CZMQ

/// The most a peer can make a role hold: `ZMQ_MAXMSGSIZE` on every socket (libzmq drops the
/// connection of a peer that sends a larger frame, before allocating it) and finite high-water
/// marks (messages queued per peer and direction; past it libzmq stops reading from that peer, or a
/// ROUTER drops what it would send to it).
public enum WireLimits {
    /// Control messages are small JSON objects: the largest (the `registered` reply with the config,
    /// a `view` or `assign` listing every partition of a very large model) stays far below this.
    public static let controlMessageBytes = 16 << 20
    /// The largest `cluster.partition_bytes`: its frames (LZ4's worst case included) fit the bound
    /// every data socket starts with, so no socket ever needs a larger one.
    public static let maxPartitionBytes = 8 << 20
    /// The largest frame of a data message for partitions of at most `partitionFloats` values: the
    /// encoding's bound in any codec (LZ4's worst case included) with a gradient push's contribution
    /// figures after it, or the 40-byte header.
    public static func dataMessageBytes(partitionFloats: Int) -> Int {
        let shard = Codec.allCases.map { ShardCodec.bound(count: max(1, partitionFloats), codec: $0) }.max() ?? 0
        return max(WireHeader.size, shard + ContributionFigures.size) + 64
    }
    /// The largest partition of a plan.
    public static func largestPartition(_ plan: PartitionPlan) -> Int {
        (0..<plan.count).map { plan.range($0).count }.max() ?? 1
    }
    /// The largest partition any plan cut with `partitionBytes` can have (PartitionPlan never makes
    /// one larger than its partition size).
    public static func largestPartition(partitionBytes: Int) -> Int { max(256, partitionBytes / 4) }

    /// Messages queued per peer on control sockets and on data sockets.
    public static let controlHighWaterMark: Int32 = 10_000
    public static let dataHighWaterMark: Int32 = 100_000
}

extension ZMQSocket {
    static let maxMessageSize: Int32 = 22

    /// Frames larger than `bytes` end the sender's connection (set before bind or connect: a
    /// listener keeps the value it was bound with).
    public func setMaxMessageSize(_ bytes: Int) throws {
        var v = Int64(bytes)
        if zmq_setsockopt(handle, Self.maxMessageSize, &v, MemoryLayout<Int64>.size) != 0 { throw WireError.lastZMQ("zmq_setsockopt(ZMQ_MAXMSGSIZE)") }
    }

    /// A control socket's limits.
    public func limitForControl() throws {
        try setMaxMessageSize(WireLimits.controlMessageBytes)
        try set(Self.sendHighWaterMark, WireLimits.controlHighWaterMark)
        try set(Self.receiveHighWaterMark, WireLimits.controlHighWaterMark)
    }

    /// A data socket's limits, for partitions of at most `partitionFloats` values.
    public func limitForData(partitionFloats: Int) throws {
        try setMaxMessageSize(WireLimits.dataMessageBytes(partitionFloats: partitionFloats))
        try set(Self.sendHighWaterMark, WireLimits.dataHighWaterMark)
        try set(Self.receiveHighWaterMark, WireLimits.dataHighWaterMark)
    }

    /// A sending-only socket (a worker's push connections): nothing larger than a control message
    /// comes back; the data high-water mark for what goes out.
    public func limitForSending() throws {
        try setMaxMessageSize(WireLimits.controlMessageBytes)
        try set(Self.sendHighWaterMark, WireLimits.dataHighWaterMark)
        try set(Self.receiveHighWaterMark, WireLimits.controlHighWaterMark)
    }

    /// Stops listening on `endpoint` (a bound one).
    public func unbind(_ endpoint: String) throws {
        if zmq_unbind(handle, endpoint) != 0 { throw WireError.lastZMQ("zmq_unbind(\(endpoint))") }
    }
}
