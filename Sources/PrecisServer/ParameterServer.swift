import Foundation
import PrecisCore
import PrecisWire

/// `precis-ps`: owns a contiguous run of partitions of the flat parameter buffer, its fp32 master
/// copy and AdamW moments. Receives gradient shards, sums them (in contribution order, so the sum is
/// the same bits whatever order they arrive in), reports the sum's norm to the coordinator, applies
/// AdamW when told the clip coefficient (sync), or applies each shard as it arrives (ssp, async), and
/// serves parameters. One thread runs the event loop; AdamW uses the compute threads.
public final class ParameterServer {
    public struct Options: Sendable {
        public var coordinator: String
        public var host = "127.0.0.1"
        public var name = "ps"
        public var threads = 1
        public init(coordinator: String) { self.coordinator = coordinator }
    }

    let options: Options
    let context: ZMQContext
    let control: ZMQSocket
    let data: ZMQSocket
    let dataEndpoint: String
    var link = CoordinatorLink()
    var id = -1

    // Set by `assign`.
    var assignment: AssignMessage?
    var plan: PartitionPlan?
    /// Global partition indices owned, and each one's element range.
    var owned: [Int] = []
    var base = 0
    var params: FloatBuffer?
    var grads: FloatBuffer?
    var optimizers: [OptimizerState] = []
    var initialised: [Bool] = []

    /// Sync state: the version (optimizer steps applied) and step `version`'s contributions.
    var version = 0
    var contributions: [Int: Int] = [:]        // step → contribution count (from `plan`)
    var slots: [FloatBuffer] = []              // one per contribution, covering the owned range
    var received: [[Bool]] = []                // [contribution][local partition]
    /// Per local partition: every contribution is in and summed into `grads`, with its sum of squares.
    var summed: [Bool] = []
    var partitionSumOfSquares: [Double] = []
    var reported = false
    /// Pulls waiting for a newer version: (peer, version wanted, partitions).
    var pendingPulls: [(peer: [UInt8], step: Int, partition: UInt32, codec: Codec)] = []
    /// Encoded parameter payloads of the current version, per local partition (sent to every puller
    /// without a copy), and the buffers they live in.
    var encoded: [Int: (version: Int, header: WireHeader, buffer: WireBuffer)] = [:]
    var replyBuffers: [Int: [WireBuffer]] = [:]
    let codec = ShardCodec()
    var updates = 0
    /// The coordinator's data connection (it sends the initial values; snapshots go back to it).
    var coordinatorPeer: [UInt8]?

    public init(_ options: Options) throws {
        self.options = options
        context = try ZMQContext()
        control = try ZMQSocket(context, .dealer)
        try control.set(ZMQSocket.routingID, bytes: Array("\(options.name)/\(getpid())".utf8))
        data = try ZMQSocket(context, .router)
        try data.setUnboundedQueues()
        dataEndpoint = try data.bind("tcp://\(options.host):*")
    }

    func log(_ s: String) { Member.log(options.name, s) }

    /// Runs until the coordinator ends the run; returns the process exit status.
    public func run() -> Int32 {
        Member.installSignalHandlers()
        Compute.setThreads(options.threads)
        do {
            try control.connect(options.coordinator)
            log("serving parameters on \(dataEndpoint); registering with \(options.coordinator)")
            try register()
            return try loop()
        } catch {
            log("error: \(error)")
            return 1
        }
    }

    func register() throws {
        try control.send(Control.frames(.register, RegisterMessage(role: .server, name: options.name, host: options.host,
                                                                   pid: getpid(), endpoint: dataEndpoint, threads: options.threads)))
    }

    func loop() throws -> Int32 {
        while true {
            if Member.terminationSignal != 0 {
                log("signal \(Member.terminationSignal): stopping")
                link.stop()
                return 0
            }
            switch link.check() {
            case .lost(let seconds):
                // Keep the parameters; a restarted coordinator re-initialises them from its checkpoint.
                log("the coordinator at \(options.coordinator) has not answered for \(Int(seconds)) s: registering again")
            case .registerNow: try register()
            case .giveUp:
                log("no coordinator at \(options.coordinator) for \(Int(link.giveUpAfter)) s: stopping")
                return 3
            case .fine: break
            }
            let ready = try ZMQPoll.wait([control, data], timeoutMs: 100)
            if ready[0] {
                while let frames = try control.tryReceive() {
                    if let code = try handleControl(frames) { link.stop(); return code }
                }
            }
            if ready[1] {
                while try data.receiveInPlace({ m, identity in try handleData(m, from: interned(identity)) }) {}
            }
        }
    }

    // MARK: control (from the coordinator)

    func handleControl(_ frames: [[UInt8]]) throws -> Int32? {
        let m: DataMessage
        do { m = try DataMessage(frames: frames) } catch {
            log("dropped a message from the coordinator: \(error)")
            return nil
        }
        switch m.header.type {
        case .registered:
            let r = try Control.decode(RegisteredMessage.self, m)
            id = r.id
            link.registered(context: context, coordinator: options.coordinator, id: id, interval: r.heartbeatInterval,
                            timeout: r.heartbeatTimeout, name: options.name)
            log("registered as server \(r.name) (id \(id))")
        case .refused:
            let r = try Control.decode(RefusedMessage.self, m)
            log("the coordinator refused this server: \(r.reason)")
            return 2
        case .assign:
            try assign(try Control.decode(AssignMessage.self, m))
        case .plan:
            let p = try Control.decode(PlanMessage.self, m)
            contributions[p.step] = p.contributions
            try checkComplete()
        case .apply:
            let a = try Control.decode(ApplyMessage.self, m)
            try apply(a)
        case .snapshot:
            try sendSnapshot()
        case .shutdown:
            let s = try Control.decode(ShutdownMessage.self, m)
            log("shutting down: \(s.reason)")
            return s.exitCode
        default:
            log("ignored an unexpected \(m.header.type) message from the coordinator")
        }
        return nil
    }

    func assign(_ a: AssignMessage) throws {
        assignment = a
        plan = a.plan
        owned = a.partitions
        let range = a.plan.range(ofServer: a.server)
        base = range.lowerBound
        params = FloatBuffer(count: range.count)
        grads = FloatBuffer(count: range.count)
        let adamw = AdamW(beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weightDecay)
        let schedule = LRSchedule(kind: LRSchedule.Kind(rawValue: a.schedule) ?? .linear, baseLR: a.learningRate,
                                  warmupSteps: a.warmupSteps, totalSteps: a.totalSteps)
        let segs = a.segments.map { (range: $0.lower..<$0.upper, decay: $0.decay) }
        optimizers = owned.map { OptimizerState(range: a.plan.range($0), segments: segs, adamw: adamw, schedule: schedule) }
        for o in optimizers { o.restore(steps: a.startStep) }
        version = a.startStep
        initialised = Array(repeating: false, count: owned.count)
        slots = []; received = []; contributions = [:]; reported = false; pendingPulls = []; encoded = [:]
        summed = Array(repeating: false, count: owned.count); partitionSumOfSquares = Array(repeating: 0, count: owned.count)
        log("owns partitions \(owned.first ?? 0)...\(owned.last ?? 0) (\(range.count) values, \(range.count * 4 / 1_048_576) MiB), \(a.consistency.rawValue), version \(version)")
    }

    // MARK: data (workers and the coordinator)

    func peerName(_ id: [UInt8]) -> String {
        let s = String(decoding: id, as: UTF8.self)
        return s.allSatisfy({ $0.isASCII && !$0.isWhitespace }) && !s.isEmpty ? s : id.map { String($0, radix: 16) }.joined()
    }

    /// The routing ids of the peers seen so far: a message's id is looked up here, so the steady
    /// state keeps no copy of it per message.
    var peers: [[UInt8]] = []

    func interned(_ id: UnsafeRawBufferPointer) -> [UInt8] {
        for p in peers where p.count == id.count {
            if id.count == 0 || p.withUnsafeBytes({ memcmp($0.baseAddress!, id.baseAddress!, id.count) == 0 }) { return p }
        }
        let p = Array(id)
        peers.append(p)
        return p
    }

    /// A data message, read in place (the payload is decoded straight from ZeroMQ's buffer).
    func handleData(_ received: Result<InPlaceMessage, WireError>, from peer: [UInt8]) throws {
        let m: InPlaceMessage
        switch received {
        case .success(let x): m = x
        case .failure(let error): return log("dropped a message from \(peerName(peer)): \(error)")
        }
        guard let a = assignment, let plan, let params else {
            log("dropped a \(m.header.type) from \(peerName(peer)): no partitions assigned yet")
            return
        }
        let p = Int(m.header.partition)
        let local = owned.firstIndex(of: p)
        switch m.header.type {
        case .initParameters, .initMomentM, .initMomentV:
            coordinatorPeer = peer
            guard let local else { return log("dropped \(m.header.type) for partition \(p) from \(peerName(peer)): not mine") }
            let r = plan.range(p)
            do {
                switch m.header.type {
                case .initParameters:
                    try m.decode(into: params.pointer + (r.lowerBound - base), capacity: r.count, using: codec)
                    initialised[local] = true
                case .initMomentM: try m.decode(into: optimizers[local].m.pointer, capacity: r.count, using: codec)
                default: try m.decode(into: optimizers[local].v.pointer, capacity: r.count, using: codec)
                }
            } catch { return log("dropped \(m.header.type) for partition \(p) from \(peerName(peer)): \(error)") }
            encoded = [:]
            if m.header.type == .initParameters && initialised.allSatisfy({ $0 }) {
                try control.send(Control.frames(.initDone, InitDoneMessage(server: a.server, version: version)))
                log("initial parameters loaded")
            }
        case .pushGradient:
            if let e = a.epoch, m.header.epoch < e {
                return log("dropped a gradient for step \(m.header.step) partition \(p) from \(peerName(peer)): epoch \(m.header.epoch) is older than this server's assignment (epoch \(e))")
            }
            guard let local else { return log("dropped a gradient for partition \(p) from \(peerName(peer)): not mine") }
            try push(m, local: local, partition: p, peer: peer)
        case .pullParameters:
            let want = Int(m.header.step)
            if want > version {
                pendingPulls.append((peer, want, m.header.partition, m.header.codec))
            } else {
                try sendParameters(to: peer, partition: m.header.partition, codec: m.header.codec)
            }
        case .pullMoments:
            for (local, p) in owned.enumerated() {
                for (slot, buf) in [optimizers[local].m, optimizers[local].v].enumerated() {
                    let msg = try DataMessage.make(type: .moments, codec: .fp32, epoch: m.header.epoch, step: UInt64(optimizers[local].steps),
                                                   partition: UInt32(p), slot: UInt32(slot),
                                                   values: UnsafeBufferPointer(start: buf.pointer, count: buf.count), using: codec)
                    try data.send(to: peer, msg.frames)
                }
            }
        default:
            log("dropped an unexpected \(m.header.type) from \(peerName(peer))")
        }
    }

    func push(_ m: InPlaceMessage, local: Int, partition p: Int, peer: [UInt8]) throws {
        guard let a = assignment, let plan, let params, let grads else { return }
        let r = plan.range(p)
        if a.consistency != .sync {
            // Applied on arrival: this shard is one update of this partition (the worker clipped it).
            let g = grads.pointer + (r.lowerBound - base)
            do { try m.decode(into: g, capacity: r.count, using: codec) } catch {
                return log("dropped a gradient for partition \(p) from \(peerName(peer)): \(error)")
            }
            guard Int(m.header.count) == r.count else {
                return log("dropped a gradient for partition \(p) from \(peerName(peer)): \(m.header.count) values, the partition has \(r.count)")
            }
            optimizers[local].apply(params: params.pointer + (r.lowerBound - base), grads: g, clipCoefficient: 1, shardBase: true)
            for c in Codec.allCases { encoded[Self.cacheKey(local, c)] = nil }
            updates += 1
            version = optimizers.map(\.steps).min() ?? 0
            try answerPendingPulls()
            return
        }
        let step = Int(m.header.step)
        if step != version {
            log("dropped a gradient for \(step < version ? "stale" : "future") step \(step) partition \(p) from \(peerName(peer)) (at version \(version))")
            return
        }
        // Already complete: a copy of a contribution that was handed to a second worker.
        if reported { return }
        let c = Int(m.header.slot)
        guard c < 4096 else { return log("dropped a gradient with contribution index \(c) from \(peerName(peer))") }
        guard Int(m.header.count) == r.count else {
            return log("dropped a gradient for partition \(p) from \(peerName(peer)): \(m.header.count) values, the partition has \(r.count)")
        }
        while slots.count <= c {
            slots.append(FloatBuffer(count: params.count))
            received.append(Array(repeating: false, count: owned.count))
        }
        do { try m.decode(into: slots[c].pointer + (r.lowerBound - base), capacity: r.count, using: codec) } catch {
            received[c][local] = false
            return log("dropped a gradient for step \(step) partition \(p) from \(peerName(peer)): \(error)")
        }
        // A contribution handed to another worker after its first worker died is recomputed from
        // the same parameters and examples, so a second copy overwrites the first with the same values.
        received[c][local] = true
        Member.trace(options.name, "push p\(p) c\(c) step \(step)")
        try checkComplete()
    }

    /// Sync: each partition is summed (in contribution order, so the bits do not depend on arrival
    /// order) as soon as every contribution has it — while the workers still push the rest — and
    /// once all are, the sum of squares (added in partition order) goes to the coordinator.
    func checkComplete() throws {
        guard let a = assignment, a.consistency == .sync, !reported, let n = contributions[version], let grads, let plan else { return }
        guard slots.count >= n else { return }
        for local in owned.indices where !summed[local] && (0..<n).allSatisfy({ received[$0][local] }) {
            let r = plan.range(owned[local])
            let g = grads.pointer + (r.lowerBound - base)
            Vec.copy(g, slots[0].pointer + (r.lowerBound - base), r.count)
            for c in 1..<max(1, n) { Vec.add(g, slots[c].pointer + (r.lowerBound - base), r.count) }
            partitionSumOfSquares[local] = Vec.sumOfSquares(g, r.count)
            summed[local] = true
        }
        guard summed.allSatisfy({ $0 }) else { return }
        let ss = partitionSumOfSquares.reduce(0, +)
        reported = true
        Member.trace(options.name, "norm step \(version)")
        try control.send(Control.frames(.normReport, NormMessage(step: version, server: a.server, sumOfSquares: ss)))
    }

    func apply(_ msg: ApplyMessage) throws {
        guard let a = assignment, let plan, let params, let grads else { return }
        guard msg.step == version, reported else {
            return log("ignored apply for step \(msg.step): at version \(version)\(reported ? "" : ", gradients incomplete")")
        }
        // Pulls already waiting for the new version are answered partition by partition as AdamW
        // finishes each: the first partitions travel (and the workers decode them) while the server
        // still updates and encodes the rest.
        let next = version + 1
        Member.trace(options.name, "apply step \(msg.step)")
        let waiting = pendingPulls.filter { $0.step <= next }
        pendingPulls.removeAll { $0.step <= next }
        encoded = [:]
        for (local, p) in owned.enumerated() {
            let off = plan.range(p).lowerBound - base
            optimizers[local].apply(params: params.pointer + off, grads: grads.pointer + off, clipCoefficient: msg.clip, shardBase: true)
            Member.trace(options.name, "adamw p\(p)")
            for pull in waiting where pull.partition == UInt32.max || pull.partition == UInt32(p) {
                try sendParameters(to: pull.peer, local: local, version: next, codec: pull.codec)
            }
            Member.trace(options.name, "sent p\(p) to \(waiting.count)")
        }
        version = next
        updates += 1
        contributions[msg.step] = nil
        for c in received.indices { for i in received[c].indices { received[c][i] = false } }
        for i in summed.indices { summed[i] = false }
        reported = false
        try control.send(Control.frames(.applied, AppliedMessage(server: a.server, version: version, updates: updates)))
        if msg.snapshot == true { try sendSnapshot() }
        try answerPendingPulls()
    }

    func answerPendingPulls() throws {
        guard !pendingPulls.isEmpty else { return }
        let ready = pendingPulls.filter { $0.step <= version }
        pendingPulls.removeAll { $0.step <= version }
        for pull in ready { try sendParameters(to: pull.peer, partition: pull.partition, codec: pull.codec) }
    }

    /// Sends the parameters and AdamW moments of every owned partition, as they are now, to the
    /// coordinator, uncompressed: the event loop stops only for the copies into the messages.
    func sendSnapshot() throws {
        guard let plan, let params, let peer = coordinatorPeer else { return log("snapshot requested before the initial parameters") }
        for (local, p) in owned.enumerated() {
            let r = plan.range(p)
            let o = optimizers[local]
            let parts: [(MessageType, UInt32, UnsafeMutablePointer<Float>)] = [(.parameters, 0, params.pointer + (r.lowerBound - base)),
                                                                                (.moments, 0, o.m.pointer), (.moments, 1, o.v.pointer)]
            for (type, slot, ptr) in parts {
                let msg = try DataMessage.make(type: type, codec: .none, epoch: 0, step: UInt64(o.steps), partition: UInt32(p), slot: slot,
                                               values: UnsafeBufferPointer(start: ptr, count: r.count), using: codec)
                try data.send(to: peer, msg.frames)
            }
        }
    }

    /// Sends the owned partitions a pull asks for, in the codec it asks for (workers ask for
    /// `pull_codec`; the coordinator asks for `none`, so the model it saves is the fp32 master copy).
    func sendParameters(to peer: [UInt8], partition: UInt32, codec: Codec) throws {
        guard let a = assignment else { return }
        for (local, p) in owned.enumerated() where partition == UInt32.max || partition == UInt32(p) {
            try sendParameters(to: peer, local: local, version: a.consistency == .sync ? version : optimizers[local].steps, codec: codec)
        }
    }

    static func cacheKey(_ local: Int, _ codec: Codec) -> Int { local * 4 + Int(codec.rawValue) }

    /// Sends local partition `local` as of version `v`, encoding it once per version and codec
    /// (every puller gets the same bytes, without a copy).
    func sendParameters(to peer: [UInt8], local: Int, version v: Int, codec kind: Codec) throws {
        guard let a = assignment, let plan, let params else { return }
        let p = owned[local]
        let key = Self.cacheKey(local, kind)
        if encoded[key]?.version != v {
            let r = plan.range(p)
            var pool = replyBuffers[key] ?? []
            let buf = WireBuffer.free(in: &pool)
            replyBuffers[key] = pool
            let h = try codec.encode(UnsafeBufferPointer(start: params.pointer + (r.lowerBound - base), count: r.count), codec: kind,
                                     into: buf, type: .parameters, epoch: a.epoch ?? 0, step: UInt64(v), partition: UInt32(p))
            encoded[key] = (v, h, buf)
        }
        let e = encoded[key]!
        try data.send(to: peer, header: e.header, payload: e.buffer)
    }
}
