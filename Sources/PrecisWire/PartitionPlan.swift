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
