import Foundation
import PrecisCore

/// RUN_DIR/NAME.pid: one process's pid as a line of text, written atomically.
public enum PidFile {
    public static func write(_ pid: Int32, to path: String) throws {
        try AtomicFile.write(Data("\(pid)\n".utf8), to: path)
    }

    /// The pid in `path`, or nil (no file, not a regular file of a few bytes, or not a number).
    public static func read(_ path: String) -> Int32? {
        guard let d = try? SmallFile.read(path, limit: 64) else { return nil }
        return Int32(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The processes of the pid files in `runDir` (this machine's), by name: what `down` and
    /// `status` fall back on when cluster.json is missing.
    public static func records(in runDir: String) -> [ProcessRecord] {
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: runDir) else { return [] }
        return files.filter { $0.hasSuffix(".pid") }.sorted().compactMap { f in
            let name = String(f.dropLast(4))
            guard let pid = read("\(runDir)/\(f)") else { return nil }
            return ProcessRecord(name: name, role: Role(processName: name), host: "(this machine)", pid: pid,
                                 log: "\(runDir)/\(name).log", pidFile: "\(runDir)/\(f)")
        }
    }
}
