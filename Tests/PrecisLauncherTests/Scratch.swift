import Foundation

/// Temporary folders and the shell scripts the tests run as real processes. Every folder name
/// contains "precis" (the launcher counts a pid as ours only when its command line does) and is
/// unique, so tests run in parallel without sharing anything.
enum Scratch {
    static func directory(_ tag: String) -> String {
        let d = FileManager.default.temporaryDirectory
            .appendingPathComponent("precis-launcher-\(tag)-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Writes an executable `#!/bin/sh` script and returns its path.
    @discardableResult
    static func script(_ path: String, _ body: String) throws -> String {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    static func touch(_ path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data())
    }

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Polls `ok` every 20 ms for up to `timeout` seconds.
    static func eventually(timeout: Double = 30, _ ok: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ok() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return ok()
    }

    /// A stand-in for a role executable: prints its command line (and, given `--endpoint-file`,
    /// writes `tcp://*:7000` there, as a coordinator bound to a wildcard address would), then runs
    /// until SIGTERM, when it appends its process name (`--name`, else "coordinator") to `order` and
    /// exits 0 (`ignoreTerm`: it ignores SIGTERM and runs until killed).
    static func fakeRole(at path: String, order: String, ignoreTerm: Bool = false) throws {
        try script(path, """
            name=coordinator; prev=; ep=
            for a in "$@"; do
                if [ "$prev" = --name ]; then name=$a; fi
                if [ "$prev" = --endpoint-file ]; then ep=$a; fi
                prev=$a
            done
            \(ignoreTerm ? "trap '' TERM" : "trap 'echo \"$name\" >> \(order); exit 0' TERM")
            echo "started $*"
            if [ -n "$ep" ]; then echo 'tcp://*:7000' > "$ep"; fi
            while :; do sleep 0.05; done

            """)
    }
}
