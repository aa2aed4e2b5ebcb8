/// Which dropped messages a role logs: each of the first 100, then one in 1000, so that a peer
/// sending malformed messages without pause cannot fill the disk with the lines about them.
package struct DropLog {
    /// Messages dropped so far.
    package private(set) var count = 0

    package init() {}

    /// Counts one dropped message: the suffix its log line ends with, or nil when it goes unlogged.
    package mutating func drop() -> String? {
        count += 1
        guard count <= 100 || count % 1000 == 0 else { return nil }
        return count == 100 ? " (from now on one dropped message in 1000 is logged)" : ""
    }
}
