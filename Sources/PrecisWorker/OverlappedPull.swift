import Synchronization

/// One contribution's pull overlapped with its first forward (`cluster.overlap_pull`): how long
/// forward waited for partitions, and whether the contribution was abandoned (the parameters it
/// needed will not come: the worker was reset, the servers moved past its step, or it must stop).
///
/// `@unchecked Sendable` because `waited` and `error` are written only inside
/// `Seq2SeqModel.onParametersNeeded`, whose calls never overlap (`ParameterGate`'s lock), and read
/// by the worker's thread after the step returned; `abandoned` is atomic, since the gradient
/// pusher's wrapper reads it on any compute thread during backward.
final class OverlappedPull: @unchecked Sendable {
    /// Seconds forward spent waiting for partitions.
    var waited = 0.0
    /// What stopped the wait, when it was an error the worker must act on (a shutdown, a signal).
    var error: (any Error)?
    private let abandonedFlag = Atomic<Bool>(false)

    var abandoned: Bool { abandonedFlag.load(ordering: .acquiring) }
    func abandon() { abandonedFlag.store(true, ordering: .releasing) }
}
