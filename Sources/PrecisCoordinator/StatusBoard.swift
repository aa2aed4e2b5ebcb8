import Foundation
import Synchronization
import PrecisWire

/// The coordinator's latest status, for readers on other threads (an HTTP listener serving the
/// live page's `status.json`): the event loop publishes a snapshot (`StatusReport` with its
/// training curve) a few times a second, and `statusJSON()` encodes the latest one on the caller's
/// thread. The coordinator itself is not thread-safe; this is the only part of it another thread
/// may touch, through `Coordinator.statusBoard`.
public final class StatusBoard: Sendable {
    private let latest = Mutex<StatusReport?>(nil)

    public init() {}

    /// The event loop's latest view (nil until the coordinator's loop first publishes).
    public var report: StatusReport? { latest.withLock { $0 } }

    package func publish(_ r: StatusReport) { latest.withLock { $0 = r } }

    /// The live page's `status.json`: the latest `StatusReport` with `history`, as JSON (sorted
    /// keys). Before the first snapshot: `{"state":"waiting", …}` with no members.
    public func statusJSON() -> Data {
        (report ?? StatusReport(state: .waiting, step: 0, maxSteps: 0, epoch: 0, consistency: "", endpoint: "", servers: [], workers: [])).json()
    }
}
