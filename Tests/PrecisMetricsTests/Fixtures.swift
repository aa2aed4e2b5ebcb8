import Foundation

/// Locates files under Tests/Fixtures/rouge from this source file's path, so
/// the tests work from any working directory and in any build configuration.
enum RougeFixtures {
    static var directory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // PrecisMetricsTests
            .deletingLastPathComponent()  // Tests
            .appendingPathComponent("Fixtures")
            .appendingPathComponent("rouge")
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    /// Non-empty lines of a fixture file (split on LF only).
    static func lines(_ name: String) throws -> [Substring] {
        try text(name).split(separator: "\n", omittingEmptySubsequences: true)
    }
}
