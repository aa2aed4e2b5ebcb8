import Foundation

/// What the test targets share: the repository's root, the bundled SAMSum splits, temporary folders.
/// Tests only: no product target depends on it.
public enum TestData {
    /// The repository's root (this file is Tests/PrecisTestSupport/TestData.swift).
    public static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// data/samsum/<split>.jsonl, decompressed from the bundled `.xz` here if `make data` has not done
    /// it. Tests run in parallel: each decompresses to its own temporary and renames it into place
    /// (rename replaces atomically, so a reader sees the whole file or none, and two tests that
    /// decompress at once write the same bytes).
    public static func samsum(_ split: String) throws -> String {
        let path = repo.appendingPathComponent("data/samsum/\(split).jsonl").path
        if FileManager.default.fileExists(atPath: path) { return path }
        let tmp = path + ".\(UUID().uuidString).tmp"
        _ = FileManager.default.createFile(atPath: tmp, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/xz")
        p.arguments = ["-dc", path + ".xz"]
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, rename(tmp, path) == 0 else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return path
    }

    /// The first `count` records of a SAMSum split written as JSON Lines to `path`; returns `path`.
    @discardableResult
    public static func samsumPrefix(_ split: String, count: Int, to path: String) throws -> String {
        let all = try Data(contentsOf: URL(fileURLWithPath: try samsum(split)))
        try Data(all.split(separator: 0x0A).prefix(count).joined(separator: [0x0A]) + [0x0A]).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A new, empty folder under the system's temporary folder: `precis-<tag>-<UUID>`.
    public static func tempDir(_ tag: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-\(tag)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}
