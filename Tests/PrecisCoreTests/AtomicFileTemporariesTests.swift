import Foundation
import Testing
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

/// The temporaries a killed `AtomicFile.write` leaves (`NAME.tmp-PID`): only regular files of that
/// name whose process is gone are stale; everything else in the folder is left alone. Real files,
/// real processes.
@Suite struct AtomicFileTemporariesTests {
    /// The id of a process that has exited (a `/bin/true` started and waited for).
    static func deadPid() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let pid = p.processIdentifier
        // Reaped: nothing answers to it (unless the id was reused at once, which the caller checks).
        return pid
    }

    @Test func namesParseOnlyAsAtomicFileTemporaries() {
        #expect(AtomicFile.temporaryOwner(ofName: "trainer_state.json.tmp-1234") == 1234)
        #expect(AtomicFile.temporaryOwner(ofName: "a.tmp-2147483647") == 2147483647)
        for name in ["trainer_state.json", ".tmp-1234", "x.tmp-", "x.tmp-0", "x.tmp-0123", "x.tmp-12a", "x.tmp--5",
                     "x.tmp-+5", "x.tmp-2147483648", "x.tmp-99999999999", "x.tmp-12.json", "x.TMP-12"] {
            #expect(AtomicFile.temporaryOwner(ofName: name) == nil, "\(name)")
        }
    }

    @Test func removesOnlyStaleRegularTemporaries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-temps-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = try Self.deadPid()
        try #require(kill(dead, 0) != 0 && errno == ESRCH, "pid \(dead) was reused at once")
        let live = getppid()   // our parent: alive while we run
        func file(_ name: String, _ text: String = "partial") throws -> String {
            let p = dir + "/" + name
            try Data(text.utf8).write(to: URL(fileURLWithPath: p))
            return p
        }
        let stale = try file("trainer_state.json.tmp-\(dead)")
        let staleManifest = try file("manifest.json.tmp-\(dead)")
        let kept = [
            try file("trainer_state.json", "{}"),
            try file("trainer_state.json.tmp-\(live)"),          // a live writer's
            try file("trainer_state.json.tmp-\(getpid())"),      // this process's own
            try file("notes.tmp-\(dead)x"),                      // not a pid
            try file(".tmp-\(dead)"),                            // no base name
            try file("model.safetensors"),
        ]
        let folder = dir + "/checkpoint.tmp-\(dead)"             // a folder of that name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let target = try file("target.json", "precious")
        let link = dir + "/link.json.tmp-\(dead)"                // a link of that name
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)

        #expect(AtomicFile.staleTemporaries(in: dir) == [staleManifest, stale].sorted())
        let removed = AtomicFile.removeStaleTemporaries(in: dir)
        #expect(removed == [staleManifest, stale].sorted())
        #expect(!FileManager.default.fileExists(atPath: stale) && !FileManager.default.fileExists(atPath: staleManifest))
        for p in kept + [folder, target] { #expect(FileManager.default.fileExists(atPath: p), "\(p) was removed") }
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == target, "the link was removed")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious")
        #expect(AtomicFile.removeStaleTemporaries(in: dir).isEmpty)
        #expect(AtomicFile.removeStaleTemporaries(in: dir + "/missing").isEmpty)
    }
}
