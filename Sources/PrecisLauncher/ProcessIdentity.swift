import Foundation
import PrecisCore

/// Which process a pid names, across pid reuse: the boot's id and the process's start time in clock
/// ticks since boot (field 22 of /proc/PID/stat), written `BOOT_ID:TICKS`. A pid is reused only by a
/// process started later (or in another boot), so a process whose identity differs from the one
/// recorded when it was started is another process.
package enum ProcessIdentity {
    /// The identity of `pid` on this machine, nil when it is gone or /proc does not say.
    package static func of(_ pid: Int32) -> String? {
        guard let boot = bootID, let stat = try? SmallFile.read("/proc/\(pid)/stat", limit: 64 << 10) else { return nil }
        return make(boot: boot, stat: String(decoding: stat, as: UTF8.self))
    }

    /// This boot's id (/proc/sys/kernel/random/boot_id), nil where there is none.
    package static var bootID: String? {
        (try? SmallFile.read("/proc/sys/kernel/random/boot_id", limit: 4096))
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// `BOOT_ID:TICKS` from the boot id file's text and a /proc/PID/stat line (whose second field,
    /// the command in parentheses, may hold blanks and parentheses: the fields after it start
    /// after the last ')'); nil when either is not what Linux writes.
    package static func make(boot: String, stat: String) -> String? {
        let id = boot.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !id.isEmpty, id.allSatisfy({ $0.isHexDigit || $0 == "-" }), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (the state), so field 22 (the start time) is fields[19].
        guard fields.count > 19, let ticks = UInt64(fields[19]) else { return nil }
        return "\(id):\(ticks)"
    }

    /// A shell function, `pid_identity PID`, that prints the same text on a remote host (or only
    /// ':' and what it could read, which matches no recorded identity).
    package static let shellFunction = "pid_identity() { printf '%s:%s\\n' \"$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)\" "
        + "\"$(sed 's/^.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f20)\"; }"

    /// A recorded identity as it came from a remote host's `pid_identity` (nil unless complete).
    package static func parse(_ text: String) -> String? {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isHexDigit || $0 == "-" }), UInt64(parts[1]) != nil else { return nil }
        return parts.joined(separator: ":")
    }
}
