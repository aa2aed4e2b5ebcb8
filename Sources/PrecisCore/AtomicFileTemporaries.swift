import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The temporary files `AtomicFile.write` leaves behind when its process is killed between creating
/// `NAME.tmp-PID` and renaming it over `NAME` (a `kill -9` of the coordinator while it writes
/// `trainer_state.json`, a checkpoint's `manifest.json`, an evaluation's `predictions.jsonl`).
///
/// A file is one of them only when all of this holds: a regular file (not a link, not a folder),
/// named `BASE.tmp-PID` with a non-empty `BASE` and `PID` a decimal process id (1…2³¹−1, no sign, no
/// leading zero); and it is stale only when no process with that id is alive (`kill(PID, 0)` fails
/// with ESRCH) and the id is not this process's. Anything else in the folder is never touched.
extension AtomicFile {
    /// The process id in an `AtomicFile` temporary's name (`BASE.tmp-PID`), or nil for any other name.
    public static func temporaryOwner(ofName name: String) -> Int32? {
        guard let r = name.range(of: ".tmp-", options: .backwards), r.lowerBound > name.startIndex else { return nil }
        let digits = name[r.upperBound...]
        guard (1...10).contains(digits.count), digits.first != "0", digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        guard let pid = Int32(digits), pid > 0 else { return nil }
        return pid
    }

    /// Whether a process with `pid` exists (one of another user counts: EPERM).
    static func processAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno != ESRCH }

    /// The stale temporaries directly in `dir` (not in its subfolders), as paths, sorted.
    public static func staleTemporaries(in dir: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        let me = getpid()
        return names.sorted().compactMap { name -> String? in
            guard let pid = temporaryOwner(ofName: name), pid != me, !processAlive(pid) else { return nil }
            let path = (dir as NSString).appendingPathComponent(name)
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            return path
        }
    }

    /// Removes the stale temporaries directly in `dir`; returns the paths removed. A file that cannot
    /// be removed (permissions, gone meanwhile) is left and not returned.
    @discardableResult
    public static func removeStaleTemporaries(in dir: String) -> [String] {
        staleTemporaries(in: dir).filter { unlink($0) == 0 }
    }
}
