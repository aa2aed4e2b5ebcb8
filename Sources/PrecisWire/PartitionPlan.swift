/// How the flat parameter buffer is cut into partitions and which server owns each. Partitions are
/// about `partitionFloats` values (4 MB by default, as BytePS found best), nearly equal in size,
/// and each server owns a contiguous run of them, balanced to within one partition.
public struct PartitionPlan: Codable, Sendable, Equatable {
    /// Values in the flat buffer.
    public var total: Int
    /// Partition p is bounds[p]..<bounds[p+1].
    public var bounds: [Int]
    /// owner[p] is the server index owning partition p.
    public var owner: [Int]

    public static let defaultPartitionBytes = 4_096_000

    public init(total: Int, servers: Int, partitionFloats: Int = defaultPartitionBytes / 4) {
        precondition(total > 0 && servers > 0 && partitionFloats > 0)
        let parts = max(servers, (total + partitionFloats - 1) / partitionFloats)
        self.total = total
        bounds = (0...parts).map { Int((Double($0) * Double(total) / Double(parts)).rounded(.down)) }
        bounds[parts] = total
        owner = (0..<parts).map { $0 * servers / parts }
    }

    /// Partitions that never straddle a cut: each stretch between consecutive `cuts` (sorted offsets;
    /// 0 and `total` implied) is split into near-equal partitions of at most `partitionFloats`, and
    /// servers own contiguous runs of about equal size (by each partition's midpoint). Falls back
    /// to the uniform plan when that would leave a server without a partition.
    public init(total: Int, servers: Int, partitionFloats: Int = defaultPartitionBytes / 4, cuts: [Int]) {
        precondition(total > 0 && servers > 0 && partitionFloats > 0)
        let points = Array(Set(cuts.filter { $0 > 0 && $0 < total } + [0, total])).sorted()
        var bounds = [0]
        for (lo, hi) in zip(points, points.dropFirst()) {
            let pieces = (hi - lo + partitionFloats - 1) / partitionFloats
            for k in 1...pieces { bounds.append(lo + Int((Double(k) * Double(hi - lo) / Double(pieces)).rounded(.down))) }
            bounds[bounds.count - 1] = hi
        }
        let parts = bounds.count - 1
        let owner = (0..<parts).map { p in min(servers - 1, Int(Double(bounds[p] + bounds[p + 1]) / 2 / Double(total) * Double(servers))) }
        guard parts >= servers, Set(owner).count == servers else {
            self = PartitionPlan(total: total, servers: servers, partitionFloats: partitionFloats)
            return
        }
        self.total = total
        self.bounds = bounds
        self.owner = owner
    }

    public var count: Int { owner.count }
    public func range(_ p: Int) -> Range<Int> { bounds[p]..<bounds[p + 1] }
    public func partitions(of server: Int) -> [Int] { owner.indices.filter { owner[$0] == server } }
    /// The contiguous element range a server owns.
    public func range(ofServer s: Int) -> Range<Int> {
        let ps = partitions(of: s)
        guard let first = ps.first, let last = ps.last else { return 0..<0 }
        return bounds[first]..<bounds[last + 1]
    }
}

extension PartitionPlan {
    /// The most values a partition may have: the largest `PartitionPlan` cuts with the largest
    /// `cluster.partition_bytes` (every plan the coordinator makes keeps each partition within
    /// `max(256, partition_bytes / 4)` values), so its frame always fits a data socket's bound.
    public static let maxPartitionValues = WireLimits.largestPartition(partitionBytes: WireLimits.maxPartitionBytes)

    /// Why this plan cannot address a flat buffer (nil: it is sound): `total` must be `expectedTotal`
    /// (a worker's model) or, with none, within 1...`maxTotal` (a server, which has no model); one bound
    /// more than owners; bounds from 0 up to `total`, strictly increasing, no partition larger than
    /// `maxPartitionValues`; every owner a server index below `servers`. A plan that passes keeps
    /// `range(p)` inside 0..<total for every p.
    public func dropReason(expectedTotal: Int?, maxTotal: Int = ControlChecks.maxParameters, servers: Int) -> String? {
        if let expectedTotal {
            guard total == expectedTotal else { return "plan total \(total) is not the model's \(expectedTotal) parameters" }
        }
        guard total > 0, total <= maxTotal else { return "plan total \(total) is outside 1...\(maxTotal)" }
        // Partition indices travel as UInt32 (UInt32.max: every partition).
        guard !owner.isEmpty, owner.count < Int(UInt32.max) else { return "plan has \(owner.count) partitions" }
        guard bounds.count == owner.count + 1 else { return "plan has \(bounds.count) bounds for \(owner.count) partitions" }
        guard bounds[0] == 0 else { return "plan bounds start at \(bounds[0]), not 0" }
        guard bounds[bounds.count - 1] == total else { return "plan bounds end at \(bounds[bounds.count - 1]), not its total \(total)" }
        for p in 0..<owner.count {
            // bounds[p] is within 0..<total here (the previous pass), so the subtraction cannot overflow.
            let lo = bounds[p], hi = bounds[p + 1]
            guard hi > lo, hi - lo <= Self.maxPartitionValues else {
                return "plan partition \(p) is \(lo)..<\(hi) (bounds must increase by 1...\(Self.maxPartitionValues))"
            }
        }
        if let bad = owner.firstIndex(where: { $0 < 0 || $0 >= servers }) {
            return "plan partition \(bad) belongs to server \(owner[bad]), outside the \(servers) server(s)"
        }
        return nil
    }
}
