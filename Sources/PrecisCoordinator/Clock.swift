import PrecisWire

/// Where the coordinator's parts read the time: seconds on a monotonic scale (only differences mean
/// anything). `MonotonicClock` is the real one; tests drive `Membership` with a clock they move.
package protocol Clock {
    func now() -> Double
}

/// The process's monotonic clock (`Member.now()`).
package struct MonotonicClock: Clock {
    package func now() -> Double { Member.now() }
}
