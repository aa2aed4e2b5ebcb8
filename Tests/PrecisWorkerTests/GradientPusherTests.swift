import Dispatch
import Foundation
import Testing
import PrecisCore
import PrecisWire
import PrecisWorker

/// The worker's gradient path against real ZeroMQ ROUTER sockets (a server's data socket): every
/// partition arrives once, at its owner, and decodes to the gradient.
@Suite struct GradientPusherTests {
    /// Two "servers": a ROUTER each, bound to a free port, and the worker's own DEALER to each.
    final class Servers {
        let context: ZMQContext
        let routers: [ZMQSocket]
        let endpoints: [Int: String]
        let dealers: [Int: ZMQSocket]
        let identity = Array("test-worker/\(UUID().uuidString.prefix(8))".utf8)

        init() throws {
            context = try ZMQContext()
            var routers: [ZMQSocket] = [], endpoints: [Int: String] = [:], dealers: [Int: ZMQSocket] = [:]
            for s in 0..<2 {
                let r = try ZMQSocket(context, .router)
                try r.setUnboundedQueues()
                endpoints[s] = try r.bind("tcp://127.0.0.1:*")
                routers.append(r)
                let d = try ZMQSocket(context, .dealer)
                try d.set(ZMQSocket.routingID, bytes: identity)
                try d.setUnboundedQueues()
                try d.connect(endpoints[s]!)
                dealers[s] = d
            }
            self.routers = routers; self.endpoints = endpoints; self.dealers = dealers
        }

        typealias Push = (server: Int, sender: String, message: DataMessage)

        /// Receives pushes until `count` have arrived and no other comes within 300 ms, or until none
        /// has come for 20 s.
        func receive(_ count: Int) throws -> [Push] { try receive(until: { $0.count >= count }) }

        /// Receives pushes until those received are `enough` and no other comes within 300 ms, or
        /// until none has come for 20 s.
        func receive(until enough: ([Push]) -> Bool) throws -> [Push] {
            var got: [Push] = []
            while true {
                let ready = try ZMQPoll.wait(routers, timeoutMs: enough(got) ? 300 : 20_000)
                if !ready.contains(true) { break }
                for (s, r) in routers.enumerated() where ready[s] {
                    while let frames = try r.tryReceive() {
                        got.append((s, String(decoding: frames[0], as: UTF8.self), try DataMessage(frames: Array(frames.dropFirst()))))
                    }
                }
            }
            return got
        }
    }

    let plan = PartitionPlan(total: 50_000, servers: 2, partitionFloats: 4_000, cuts: [7_777, 20_000, 31_111])

    func gradient(seed: UInt64) -> FloatBuffer {
        var rng = SeededRNG(seed: seed)
        return FloatBuffer((0..<plan.total).map { i in i % 997 == 0 ? 0 : Float(rng.normal() * 1e-3) })
    }

    /// Backward's reports: about the first half of the buffer's runs (decoder first), in several
    /// threads at once, as a model's lanes report them; then what backward's end leaves. Every
    /// report carries the contribution's figures, as the worker makes them from the model's loss.
    func runBackward(_ pusher: GradientPusher, figures: ContributionFigures) {
        let runs = stride(from: plan.total, to: plan.total / 2, by: -3_001).map { max(plan.total / 2, $0 - 3_001)..<$0 }
        let report = pusher.onGradientsFinal
        DispatchQueue.concurrentPerform(iterations: 4) { lane in
            for (i, r) in runs.enumerated() where i % 4 == lane { report(r, figures) }
        }
        pusher.pushRemaining(figures: figures)
    }

    let figures = ContributionFigures(lossSum: 1234.5678, tokens: 321, examples: 8)

    @Test(arguments: [Codec.fp32, .bf16])
    func everyPartitionArrivesOnceAndDecodesToTheGradient(codec: Codec) throws {
        let servers = try Servers()
        let pusher = GradientPusher(context: servers.context, identity: servers.identity, name: "test")
        let feedback: FloatBuffer? = codec == .bf16 ? FloatBuffer((0..<plan.total).map { Float($0 % 7) * 1e-7 }) : nil
        for round in 0..<2 {   // twice: buffers and sockets are reused
            let g = gradient(seed: UInt64(10 + round))
            let feedbackBefore = feedback.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
            let steps = [UInt64](repeating: UInt64(40 + round), count: plan.count)
            let earlier = pusher.begin(GradientContribution(plan: plan, gradients: g.pointer, errorFeedback: feedback?.pointer,
                                                            endpoints: servers.endpoints, codec: codec, epoch: 3, steps: steps, slot: 5))
            #expect(earlier.error == nil && earlier.wireBytes == 0)
            let figures = ContributionFigures(lossSum: 1234.5678 + Double(round), tokens: 321 + round, examples: 8)
            runBackward(pusher, figures: figures)
            let totals = pusher.finish { servers.dealers[$0] }
            #expect(totals.error == nil)
            #expect(totals.rawBytes == plan.total * 4)

            let got = try servers.receive(plan.count)
            #expect(got.map { Int($0.message.header.partition) }.sorted() == Array(0..<plan.count), "each partition once")
            #expect(totals.wireBytes == got.reduce(0) { $0 + WireHeader.size + $1.message.payload.count })
            let me = String(decoding: servers.identity, as: UTF8.self)
            for (server, sender, m) in got {
                let p = Int(m.header.partition), r = plan.range(p)
                #expect(server == plan.owner[p], "partition \(p) went to its owner")
                #expect(sender == me || sender == me + "/push")
                #expect(m.header.type == .pushGradient && m.header.codec == codec && m.header.epoch == 3)
                #expect(m.header.step == UInt64(40 + round) && m.header.slot == 5 && Int(m.header.count) == r.count)
                #expect(try m.figures() == figures, "partition \(p) carries the contribution's figures")
                var out = [Float](repeating: .nan, count: r.count)
                try out.withUnsafeMutableBufferPointer { try m.decode(into: $0.baseAddress!, capacity: r.count, using: ShardCodec()) }
                if codec == .fp32 {
                    #expect(out.map(\.bitPattern) == (r.lowerBound..<r.upperBound).map { g.pointer[$0].bitPattern }, "partition \(p)")
                    continue
                }
                // bf16 with error feedback: what travels is round(g + e) and e becomes what rounding lost.
                var ok = true
                for (j, i) in r.enumerated() {
                    let v = g.pointer[i] + feedbackBefore![i]
                    let lost = feedback!.pointer[i]
                    ok = ok && out[j].bitPattern == ShardCodec.fromBF16(ShardCodec.toBF16(v)).bitPattern
                    ok = ok && abs(out[j] - v) <= abs(v) * 0x1p-8 && lost == v - out[j] && out[j] + lost == v
                }
                #expect(ok, "partition \(p)")
            }
        }
    }

    /// A partition the worker's own thread cannot send (no connection to its server) is reported,
    /// not lost silently; the push thread's still arrive, and the error is handed out once.
    /// A partition whose server is missing from the view is an error of the contribution, and the
    /// other servers' partitions still go out (before, it was skipped silently and the step hung).
    @Test func aPartitionWhoseServerIsNotInTheViewIsAnError() throws {
        let servers = try Servers()
        let pusher = GradientPusher(context: servers.context, identity: servers.identity, name: "test")
        let g = gradient(seed: 5)
        var endpoints = servers.endpoints
        let missing = try #require(endpoints.keys.max())
        endpoints[missing] = nil
        let contribution = GradientContribution(plan: plan, gradients: g.pointer, errorFeedback: nil, endpoints: endpoints,
                                                codec: .fp32, epoch: 1, steps: Array(repeating: 7, count: plan.count), slot: 0)
        _ = pusher.begin(contribution)
        pusher.pushRemaining(figures: figures)
        let totals = pusher.finish { servers.dealers[$0] }
        let expected = (0..<plan.count).filter { plan.owner[$0] != missing }
        let got = try servers.receive(expected.count)
        #expect(got.map { Int($0.message.header.partition) }.sorted() == expected)
        let error = try #require(totals.error)
        #expect(error.contains("belongs to server \(missing), which is not in this worker's view"), "\(error)")
    }

    @Test func aPushWithNoConnectionIsReported() throws {
        let servers = try Servers()
        let pusher = GradientPusher(context: servers.context, identity: servers.identity, name: "test")
        let g = gradient(seed: 3)
        let contribution = GradientContribution(plan: plan, gradients: g.pointer, errorFeedback: nil, endpoints: servers.endpoints,
                                                codec: .fp32, epoch: 1, steps: Array(repeating: 7, count: plan.count), slot: 0)
        _ = pusher.begin(contribution)
        pusher.pushRemaining(figures: figures)
        let totals = pusher.finish { _ in nil }
        // The push thread's partitions went out (their connections are new: a handshake first); the
        // worker thread's could not. Wait for as many bytes as the totals say were sent.
        let got = try servers.receive(until: { $0.reduce(0) { $0 + Int($1.message.header.count) * 4 } >= totals.rawBytes })
        #expect(Set(got.map { $0.message.header.partition }).count == got.count)
        if got.count < plan.count {
            #expect(totals.error?.contains("no connection to the server of partition") == true, "\(totals.error ?? "no error")")
            #expect(totals.rawBytes == got.reduce(0) { $0 + Int($1.message.header.count) * 4 })
        } else {
            #expect(totals.error == nil)
        }
        #expect(pusher.begin(contribution).error == nil, "an error is handed out once")
    }
}
