import PrecisCore
import PrecisWire

/// The server's side of `pull_codec: bf16-delta`: per owned partition one **chain**, a shadow of
/// the copy its pullers hold (`PullDelta`), its version, the last link's encoded delta (made once,
/// sent to every puller whose copy is the link's base) and the shadow's full fp32 encoding (made
/// once per version, sent to every other puller).
///
/// One shadow per partition, not per worker: in sync mode every worker pulls every version, so
/// they all hold the shadow. A puller whose copy is not the last link's base (a new or restarted
/// worker, one that missed a version, a rollback, ssp/async skew, or a base this chain never sent)
/// gets the shadow in full (fp32, lossless) and is back on the chain.
///
/// Memory: one extra fp32 copy of the owned values (the shadows) plus a scratch partition, made on
/// the first `bf16-delta` pull. Not thread-safe: the server's event loop owns it.
package final class DeltaChains {
    package enum Kind: Sendable, Equatable { case delta, full }

    struct Chain {
        var shadow: FloatBuffer
        var version: Int
        /// The last link: the shadow's previous version and the encoded delta from it.
        var link: (base: Int, header: WireHeader, buffer: WireBuffer)?
        /// The shadow at `version` encoded fp32 (nil until a full reply is asked for).
        var full: (header: WireHeader, buffer: WireBuffer)?
        var deltaBuffers: [WireBuffer] = []
        var fullBuffers: [WireBuffer] = []
    }

    private var chains: [Int: Chain] = [:]
    private var scratch: FloatBuffer?
    private let codec = ShardCodec()
    /// Replies made so far, by kind (for tests and logs).
    package private(set) var sent: [Kind: Int] = [:]

    package init() {}

    /// Forgets every chain (a new assignment, new initial values): every puller gets a full reply next.
    package func reset() { chains = [:] }

    /// The reply to a `bf16-delta` pull of local partition `local` (global `partition`, `master` its
    /// values at `version`) from a puller whose copy is at `base` (nil: none, or unknown).
    package func reply(local: Int, partition: Int, master: UnsafeBufferPointer<Float>, version: Int, base: Int?,
                       epoch: UInt32) throws -> (header: WireHeader, payload: WireBuffer, kind: Kind) {
        let n = master.count
        var chain: Chain
        if let c = chains[local], c.shadow.count == n, c.version <= version {
            chain = c
        } else {
            // The chain starts here: the shadow is the master; only full replies until the next version.
            let shadow = FloatBuffer(count: n)
            if n > 0 { shadow.pointer.update(from: master.baseAddress!, count: n) }
            chain = Chain(shadow: shadow, version: version, link: nil, full: nil)
        }
        if chain.version < version {
            if scratch == nil || scratch!.count < n { scratch = FloatBuffer(count: max(n, 1)) }
            let delta = scratch!.pointer
            PullDelta.advance(shadow: chain.shadow.pointer, toward: master.baseAddress!, delta: delta, count: n)
            let buf = WireBuffer.free(in: &chain.deltaBuffers)
            let h = try codec.encode(UnsafeBufferPointer(start: delta, count: n), codec: .bf16Delta, into: buf, type: .parameters,
                                     epoch: epoch, step: UInt64(version), partition: UInt32(partition),
                                     slot: PullDelta.slot(base: chain.version))
            PullDelta.commit(shadow: chain.shadow.pointer, delta: delta, count: n)
            chain.link = (chain.version, h, buf)
            chain.full = nil
            chain.version = version
        }
        defer { chains[local] = chain }
        if let base, let link = chain.link, link.base == base, link.header.epoch == epoch {
            sent[.delta, default: 0] += 1
            return (link.header, link.buffer, .delta)
        }
        if chain.full == nil || chain.full!.header.epoch != epoch {
            let buf = WireBuffer.free(in: &chain.fullBuffers)
            let h = try codec.encode(UnsafeBufferPointer(start: chain.shadow.pointer, count: n), codec: .fp32, into: buf,
                                     type: .parameters, epoch: epoch, step: UInt64(version), partition: UInt32(partition))
            chain.full = (h, buf)
        }
        sent[.full, default: 0] += 1
        return (chain.full!.header, chain.full!.buffer, .full)
    }
}
