import Dispatch

/// Wall-clock time per named region of a training step, for `precis bench step --profile`. Off by
/// default; when off, `measure` is a plain call.
public final class Profiler {
    public var enabled = false
    public private(set) var totals: [String: Double] = [:]
    public private(set) var order: [String] = []

    public init() {}

    @inline(__always)
    public func measure<T>(_ name: StaticString, _ body: () throws -> T) rethrows -> T {
        if !enabled { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            let key = "\(name)"
            if totals[key] == nil { order.append(key) }
            totals[key, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        return try body()
    }

    public func reset() { totals = [:]; order = [] }
}
