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
