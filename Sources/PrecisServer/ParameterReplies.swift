import PrecisWire

/// What a server keeps for answering pulls: each owned partition encoded once per version and
/// codec (every puller gets the same bytes, without a copy), and the pulls waiting for a version
/// the server does not hold yet. `bf16-delta` pulls are answered from `DeltaChains` (a delta against
/// the copy the puller holds, or the chain's shadow in full).
///
/// Not thread-safe: the server's event loop owns it.
package final class ParameterReplies {
    /// A pull: `peer` wants `partition` (0xFFFFFFFF: all it owns) at version ≥ `version`, in `codec`.
    package struct Pull {
        package var peer: [UInt8]
        package var version: Int
        package var partition: UInt32
        package var codec: Codec
        /// The role the puller authenticated as (nil without keys).
        package var role: KeyRole? = nil
        /// `bf16-delta`: the version of the copy the puller holds of every partition it pulls from
        /// this server (the header's slot − 1; nil: none or not one version).
        package var base: Int? = nil

        package init(peer: [UInt8], version: Int, partition: UInt32, codec: Codec, role: KeyRole? = nil, base: Int? = nil) {
            self.peer = peer; self.version = version; self.partition = partition; self.codec = codec; self.role = role
            self.base = base
        }
    }

    /// The most pulls that may wait at once (a few per worker and partition in a real run); beyond
    /// it a pull is refused, so no peer can grow the list without bound.
    static let waitingLimit = 4096

    /// Pulls waiting for a newer version, in arrival order.
    private(set) var waiting: [Pull] = []
    /// Per (local partition, codec): the version encoded, its header and the buffer holding it.
    private var encoded: [Int: (version: Int, header: WireHeader, buffer: WireBuffer)] = [:]
    /// The buffers each (partition, codec) has used: one whose last send has left is reused.
    private var buffers: [Int: [WireBuffer]] = [:]
    private let codec = ShardCodec()
    /// The `bf16-delta` chains (shadows), one per owned partition.
    package let chains = DeltaChains()

    private static func key(_ local: Int, _ codec: Codec) -> Int { local * 4 + Int(codec.rawValue) }

    /// Keeps a pull until its version exists; false when too many already wait.
    func wait(_ pull: Pull) -> Bool {
        guard waiting.count < Self.waitingLimit else { return false }
        waiting.append(pull)
        return true
    }

    /// Removes and returns the waiting pulls that version `version` answers.
    func takeAnswered(by version: Int) -> [Pull] {
        guard !waiting.isEmpty else { return [] }
        let ready = waiting.filter { $0.version <= version }
        waiting.removeAll { $0.version <= version }
        return ready
    }

    /// Forgets the pulls `peer` has waiting.
    func drop(peer: [UInt8]) { waiting.removeAll { $0.peer == peer } }

    /// Forgets every encoded payload (the parameters changed).
    func invalidate() { encoded = [:] }

    /// Forgets local partition `local`'s encoded payloads.
    func invalidate(local: Int) {
        for c in Codec.allCases { encoded[Self.key(local, c)] = nil }
    }

    /// Forgets everything (a new assignment).
    func reset() { waiting = []; encoded = [:]; chains.reset() }

    /// The parameters were replaced without a new version (initial values): encoded payloads and
    /// the `bf16-delta` shadows no longer describe them.
    func replaced() { encoded = [:]; chains.reset() }

    /// Local partition `local` (global index `partition`, `values` its parameters) encoded as of
    /// version `version` in `codec`: encoded on the first request, the same bytes afterwards.
    /// A `bf16-delta` pull (`base`: the version of the puller's copy) gets a delta or the full shadow.
    func reply(local: Int, partition: Int, values: UnsafeBufferPointer<Float>, version: Int, codec kind: Codec, base: Int? = nil,
               epoch: UInt32) throws -> (header: WireHeader, payload: WireBuffer) {
        if kind == .bf16Delta {
            let r = try chains.reply(local: local, partition: partition, master: values, version: version, base: base, epoch: epoch)
            return (r.header, r.payload)
        }
        let key = Self.key(local, kind)
        if let e = encoded[key], e.version == version { return (e.header, e.buffer) }
        let buf = WireBuffer.free(in: &buffers[key, default: []])
        let h = try codec.encode(values, codec: kind, into: buf, type: .parameters, epoch: epoch, step: UInt64(version),
                                 partition: UInt32(partition))
        encoded[key] = (version, h, buf)
        return (h, buf)
    }
}
