import Foundation
import PrecisCore

/// A download's progress on stderr: file, bytes done of total, percent, rate and ETA, redrawn in
/// place on a terminal (at most 5 times a second) and printed once per file otherwise.
/// `@unchecked Sendable`: the downloader reports from URLSession's queue; fields are under `lock`.
public final class DownloadProgressLine: @unchecked Sendable {
    private let lock = NSLock()
    private var file = ""
    private var start = Date()
    private var lastDraw = Date.distantPast
    private let tty: Bool
    private let write: @Sendable (String) -> Void

    public init(tty: Bool = isatty(2) != 0,
                write: @escaping @Sendable (String) -> Void = { Stdio.writeStderr($0) }) {
        self.tty = tty
        self.write = write
    }

    public func report(file: String, done: Int64, total: Int64) {
        let text: String? = lock.withLock {
            let now = Date()
            if file != self.file { self.file = file; start = now; lastDraw = .distantPast }
            let finished = done >= total
            guard finished || (tty && now.timeIntervalSince(lastDraw) >= 0.2) else { return nil }
            lastDraw = now
            return Self.line(file: file, done: done, total: total, seconds: now.timeIntervalSince(start))
                .map { (tty ? "\r\u{1B}[K" : "") + $0 + (finished ? "\n" : "") }
        }
        if let text { write(text) }
    }

    /// `downloading org/name/model.safetensors  12.3 MB / 45.6 MB  27%  3.4 MB/s  ETA 0:12`
    static func line(file: String, done: Int64, total: Int64, seconds: Double) -> String? {
        let pct = total > 0 ? 100 * Double(done) / Double(total) : 100
        let rate = seconds > 0 ? Double(done) / seconds : 0
        let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
        return String(format: "downloading %@  %@ / %@  %3.0f%%  %@/s  ETA %@", file, bytes(done), bytes(total), pct,
                      bytes(Int64(min(rate, 1e18))), clock(eta))
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var v = Double(n), u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }

    static func clock(_ s: Double) -> String {
        let t = Int(min(s, 359_999).rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
