import Foundation
import Testing
import PrecisWire

/// The checks a server and a worker make of what the coordinator sends them (`dropReason` of
/// `registered`, `assign`, `view`, `task`, `evalTask`, `apply`, and of a `PartitionPlan`): every
/// message the coordinator builds passes; each field out of its range is named.
@Suite struct RoleControlChecksTests {
    // MARK: plans

    /// What the coordinator cuts (Startup.swift: with the model's gradient cuts), and the uniform plan.
    @Test(arguments: [1, 2, 3, 7])
    func everyPlanTheCoordinatorCutsIsSound(servers: Int) {
        for total in [1_000, 40_000, 1_234_567] {
            for pf in [256, 3_000, WireLimits.largestPartition(partitionBytes: WireLimits.maxPartitionBytes)] {
                let cut = PartitionPlan(total: total, servers: servers, partitionFloats: pf, cuts: [total / 3, total / 3 + 17, total - 1])
                let uniform = PartitionPlan(total: total, servers: servers, partitionFloats: pf)
                for p in [cut, uniform] {
                    #expect(p.dropReason(expectedTotal: total, servers: servers) == nil, "\(total) \(pf) \(servers)")
                    #expect(p.dropReason(expectedTotal: nil, servers: p.count) == nil)
                }
            }
        }
    }

    func plan(total: Int = 1_000, bounds: [Int] = [0, 400, 1_000], owner: [Int] = [0, 1]) -> PartitionPlan {
        var p = PartitionPlan(total: 1_000, servers: 2, partitionFloats: 500)
        p.total = total; p.bounds = bounds; p.owner = owner
        return p
    }

    /// Found by review: a plan's bounds were used as offsets into the model buffer unchecked.
    @Test func anUnsoundPlanIsNamed() {
        #expect(plan().dropReason(expectedTotal: 1_000, servers: 2) == nil)
        let cases: [(PartitionPlan, Int?, String)] = [
            (plan(), 999, "plan total 1000 is not the model's 999 parameters"),
            (plan(total: 0, bounds: [0, 0, 0]), nil, "plan total 0 is outside 1..."),
            (plan(total: (1 << 34) + 1, bounds: [0, 1, (1 << 34) + 1]), nil, "is outside 1...17179869184"),
            (plan(bounds: [0, 1_000]), 1_000, "plan has 2 bounds for 2 partitions"),
            (plan(bounds: [0, 400, 1_000], owner: []), 1_000, "plan has 0 partitions"),
            (plan(bounds: [-5, 400, 1_000]), 1_000, "plan bounds start at -5, not 0"),
            (plan(bounds: [0, 400, 2_000]), 1_000, "plan bounds end at 2000, not its total 1000"),
            (plan(bounds: [0, 1_200, 1_000]), 1_000, "plan partition 1 is 1200..<1000"),
            (plan(bounds: [0, 0, 1_000]), 1_000, "plan partition 0 is 0..<0"),
            (plan(bounds: [0, Int.max, 1_000]), 1_000, "plan partition 0 is 0..<9223372036854775807"),
            (plan(owner: [0, 2]), 1_000, "plan partition 1 belongs to server 2, outside the 2 server(s)"),
            (plan(owner: [-1, 0]), 1_000, "plan partition 0 belongs to server -1"),
        ]
        for (p, total, want) in cases {
            let why = p.dropReason(expectedTotal: total, servers: 2)
            #expect(why?.contains(want) == true, "\(why ?? "nil") should say \(want)")
        }
        // A partition larger than any partition_bytes makes: its frame would not fit a data socket.
        let big = PartitionPlan.maxPartitionValues + 2
        #expect(plan(total: big - 1, bounds: [0, 1, big - 1]).dropReason(expectedTotal: big - 1, servers: 2) == nil)
        #expect(plan(total: big, bounds: [0, 1, big]).dropReason(expectedTotal: big, servers: 2)?.hasPrefix("plan partition 1 is 1..<") == true)
    }

    // MARK: registered

    func registered(interval: Double = 1, timeout: Double = 10, partitionBytes: Int? = 4_096_000) -> RegisteredMessage {
        RegisteredMessage(id: 7, name: "w", config: "", configFile: "", modelConfig: "", heartbeatInterval: interval,
                          heartbeatTimeout: timeout, dataDigest: "", outputDir: "/tmp", partitionBytes: partitionBytes)
    }

    /// Found by review: partitionBytes 2³¹ trapped in `Int32(n)` sizing the server's frames; a NaN
    /// interval trapped converting the heartbeat wait to milliseconds.
    @Test func registeredFiguresAreBounded() {
        #expect(registered().dropReason == nil)
        #expect(registered(interval: 0.2, timeout: 600, partitionBytes: nil).dropReason == nil)
        #expect(registered(partitionBytes: WireLimits.maxPartitionBytes).dropReason == nil)
        for b in [0, -1, WireLimits.maxPartitionBytes + 1, 1 << 31, Int.max] {
            #expect(registered(partitionBytes: b).dropReason?.hasPrefix("partitionBytes \(b) is outside 1...") == true)
        }
        for s in [0, -1, Double.nan, .infinity, 1e300, 86_401] {
            #expect(registered(interval: s).dropReason?.hasPrefix("heartbeatInterval") == true, "\(s)")
            #expect(registered(timeout: s).dropReason?.hasPrefix("heartbeatTimeout") == true, "\(s)")
        }
    }

    // MARK: assign

    static let plan3 = PartitionPlan(total: 40_000, servers: 3, partitionFloats: 3_000, cuts: [9_001, 26_000])
    static let segments = [DecaySegment(lower: 0, upper: 5_000, decay: true), DecaySegment(lower: 5_000, upper: 5_100, decay: false),
                           DecaySegment(lower: 5_100, upper: 40_000, decay: true)]

    func assign(server: Int = 1, partitions: [Int]? = nil, plan: PartitionPlan = plan3, segments: [DecaySegment] = segments,
                startStep: Int = 3, totalSteps: Int = 10, edit: (inout AssignMessage) -> Void = { _ in }) -> AssignMessage {
        var a = AssignMessage(server: server, partitions: partitions ?? plan.partitions(of: server), plan: plan, segments: segments,
                              beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, schedule: "linear", learningRate: 1e-3,
                              warmupSteps: 2, totalSteps: totalSteps, consistency: .sync, pullCodec: .fp32, startStep: startStep)
        a.epoch = 4
        a.maxContributions = 8
        edit(&a)
        return a
    }

    @Test(arguments: [0, 1, 2])
    func theCoordinatorsAssignmentPasses(server: Int) {
        #expect(assign(server: server).dropReason == nil)
        #expect(assign(server: server, startStep: 10).dropReason == nil)
        #expect(assign(server: server, edit: { $0.maxContributions = nil }).dropReason == nil)
        // A single decay segment over everything (RegistrationClusterTests' own coordinator).
        #expect(assign(segments: [DecaySegment(lower: 0, upper: 40_000, decay: true)]).dropReason == nil)
    }

    /// Found by review: partitions outside the server's run addressed its buffers at negative
    /// offsets; a segment with lower > upper formed an invalid Range (-Ounchecked).
    @Test func anAssignmentsPartitionsMustBeTheServersOwn() {
        let own = Self.plan3.partitions(of: 1)
        #expect(assign(server: 1, partitions: own + [own.last! + 1]).dropReason?.contains("are not the plan's \(own.count) partition(s) of server 1") == true)
        #expect(assign(server: 1, partitions: [own[0], own[0]] + own.dropFirst(1)).dropReason?.contains("are not the plan's") == true)
        #expect(assign(server: 1, partitions: Array(own.dropFirst())).dropReason?.contains("are not the plan's") == true)
        #expect(assign(server: 3).dropReason == "server 3 owns no partition of the plan")
        #expect(assign(server: -1).dropReason == "server -1 is negative")
        var bad = Self.plan3
        bad.bounds[1] = 50_000
        #expect(assign(plan: bad).dropReason?.hasPrefix("plan partition 1 is 50000..<") == true)
    }

    @Test func segmentsMustCoverTheBufferInOrder() {
        let cases: [([DecaySegment], String)] = [
            ([], "segments cover 0..<0, not 0..<40000"),
            ([DecaySegment(lower: 0, upper: 39_999, decay: true)], "segments cover 0..<39999"),
            ([DecaySegment(lower: 1, upper: 40_000, decay: true)], "segment 0 is 1..<40000"),
            ([DecaySegment(lower: 0, upper: 5_000, decay: true), DecaySegment(lower: 4_000, upper: 40_000, decay: false)], "segment 1 is 4000..<40000"),
            ([DecaySegment(lower: 0, upper: 5_000, decay: true), DecaySegment(lower: 5_000, upper: 5_000, decay: false),
              DecaySegment(lower: 5_000, upper: 40_000, decay: false)], "segment 1 is 5000..<5000"),
            ([DecaySegment(lower: 0, upper: 50_000, decay: true)], "segment 0 is 0..<50000"),
            ([DecaySegment(lower: 0, upper: -5, decay: true)], "segment 0 is 0..<-5"),
        ]
        for (s, want) in cases {
            let why = assign(segments: s).dropReason
            #expect(why?.hasPrefix(want) == true, "\(why ?? "nil") should start with \(want)")
        }
    }

    @Test func adamWsFiguresAndTheStepsAreChecked() {
        let cases: [((inout AssignMessage) -> Void, String)] = [
            ({ $0.beta1 = 1 }, "beta1 1.0 is outside [0, 1)"), ({ $0.beta2 = .nan }, "beta2 nan is outside [0, 1)"),
            ({ $0.beta1 = -0.1 }, "beta1 -0.1"), ({ $0.eps = 0 }, "eps 0.0 is not"), ({ $0.eps = .infinity }, "eps inf"),
            ({ $0.eps = 1e-50 }, "eps 1e-50"), ({ $0.weightDecay = -1 }, "weightDecay -1.0"), ({ $0.weightDecay = .nan }, "weightDecay nan"),
            ({ $0.learningRate = .infinity }, "learningRate inf"), ({ $0.learningRate = -1e-3 }, "learningRate -0.001"),
            ({ $0.totalSteps = -1 }, "totalSteps -1 is outside"), ({ $0.totalSteps = Int.max }, "totalSteps 9223372036854775807"),
            ({ $0.warmupSteps = -1 }, "warmupSteps -1"), ({ $0.startStep = -1 }, "startStep -1 is outside 0...10"),
            ({ $0.startStep = 11 }, "startStep 11 is outside 0...10"),
            ({ $0.maxContributions = 0 }, "maxContributions 0 is outside 1...4294967295"),
            ({ $0.maxContributions = Int.max }, "maxContributions 9223372036854775807"),
        ]
        for (edit, want) in cases {
            let why = assign(edit: edit).dropReason
            #expect(why?.hasPrefix(want) == true, "\(why ?? "nil") should start with \(want)")
        }
    }

    // MARK: view

    func view(plan: PartitionPlan = plan3, servers n: Int = 3) -> ViewMessage {
        let servers = (0..<n).map { ServerInfo(id: $0, name: "ps\($0)", endpoint: "tcp://127.0.0.1:\(5000 + $0)", partitions: plan.partitions(of: $0)) }
        return ViewMessage(epoch: 3, servers: servers, plan: plan, workers: ["w0"], consistency: .sync, codec: .fp32, pullCodec: .fp32)
    }

    /// Found by review: a view's plan larger than the model made the worker decode parameters
    /// beyond its buffer and push gradients read from beyond it.
    @Test func aViewsPlanMustCutTheWorkersModel() {
        #expect(view().dropReason(parameters: 40_000) == nil)
        #expect(view().dropReason(parameters: 39_999) == "plan total 40000 is not the model's 39999 parameters")
        #expect(view(servers: 2).dropReason(parameters: 40_000)?.contains("belongs to server 2, outside the 2 server(s)") == true)
        var v = view()
        v.servers[1].id = 5
        #expect(v.dropReason(parameters: 40_000) == "server 1 of the list has id 5")
        v = view()
        v.servers[0].endpoint = String(repeating: "x", count: 2_000)
        #expect(v.dropReason(parameters: 40_000)?.hasPrefix("server 0's endpoint is 2000 bytes long") == true)
        #expect(view(servers: 1_025).dropReason(parameters: 40_000) == "it lists 1025 servers (at most 1024)")
    }

    // MARK: task

    func task(step: Int = 4, contribution: Int = 1, micro: [[Int]] = [[3, 9], [0, 99]], firstMicro: Int = 2, normalizer: Int = 57,
              minVersion: Int = 4) -> TaskMessage {
        TaskMessage(step: step, contribution: contribution, micro: micro, firstMicro: firstMicro, normalizer: normalizer,
                    exactVersion: true, minVersion: minVersion, clipNorm: 0)
    }
    func why(_ t: TaskMessage) -> String? { t.dropReason(examples: 100, perDevice: 2, microPerStep: 4) }

    @Test func aSoundTaskPasses() {
        #expect(why(task()) == nil)
        #expect(why(task(contribution: Int(UInt32.max), micro: [[0]], firstMicro: 3, normalizer: 0, minVersion: 0)) == nil)
        #expect(why(task(step: 0, micro: [[1, 2], [3, 4], [5, 6], [7]], firstMicro: 0)) == nil)
    }

    /// Found by review: an index beyond the data set was read by the collator (-Ounchecked); a
    /// negative step or version trapped converting to UInt64; firstMicro + i overflowed.
    @Test func aTasksFieldsAreChecked() {
        let cases: [(TaskMessage, String)] = [
            (task(micro: [[3, 100]]), "micro-batch 0 names example 100, outside 0..<100"),
            (task(micro: [[1], [-1]]), "micro-batch 1 names example -1, outside 0..<100"),
            (task(step: -1), "step -1 is outside 0...1099511627776"), (task(minVersion: -3), "minVersion -3 is outside 0..."),
            (task(step: Int.max), "step 9223372036854775807 is outside"), (task(minVersion: (1 << 40) + 1), "minVersion 1099511627777"),
            (task(contribution: -1), "contribution -1 is outside 0...4294967295"),
            (task(contribution: Int(UInt32.max) + 1), "contribution 4294967296 is outside"),
            (task(firstMicro: Int.max), "firstMicro 9223372036854775807 with 2 micro-batches runs outside the step's 4"),
            (task(firstMicro: -1), "firstMicro -1"), (task(firstMicro: 3), "firstMicro 3 with 2 micro-batches"),
            (task(micro: []), "0 micro-batches, a step has 1...4"),
            (task(micro: [[1], [2], [3], [4], [5]], firstMicro: 0), "5 micro-batches, a step has 1...4"),
            (task(micro: [[1], []]), "micro-batch 1 has 0 examples, not 1...2"),
            (task(micro: [[1, 2, 3]]), "micro-batch 0 has 3 examples, not 1...2"),
            (task(normalizer: -1), "normalizer -1 is negative"),
        ]
        for (t, want) in cases {
            let got = why(t)
            #expect(got?.hasPrefix(want) == true, "\(got ?? "nil") should start with \(want)")
        }
    }

    // MARK: evalTask, apply

    /// Found by review: a negative index passed the `< count` check and crashed the worker.
    @Test func anEvalTasksIndicesAndVersionAreChecked() {
        let t = EvalTaskMessage(id: 1, version: 3, exactVersion: true, indices: [0, 5, 9], generate: false)
        #expect(t.dropReason(examples: 10) == nil && t.dropReason(examples: nil) == nil)
        #expect(t.dropReason(examples: 9) == "index 9 is outside 0..<9")
        var bad = t
        bad.indices = [2, -1]
        #expect(bad.dropReason(examples: nil) == "index -1 is outside 0..<the data set")
        #expect(bad.dropReason(examples: 10) == "index -1 is outside 0..<10")
        bad = t
        bad.version = -2
        #expect(bad.dropReason(examples: 10) == "version -2 is outside 0...1099511627776")
    }

    @Test func anApplysClipIsACoefficient() {
        // What the coordinator sends: min(1, max_grad_norm / norm), 0 for an infinite norm, 1 without clipping.
        for clip: Float in [1, 0.5, 1e-30, 0] { #expect(ApplyMessage(step: 2, clip: clip).dropReason == nil) }
        for clip: Float in [.nan, .infinity, -.infinity, -0.5, 1.5] {
            #expect(ApplyMessage(step: 2, clip: clip).dropReason == "clip \(clip) is outside [0, 1]")
        }
        #expect(ApplyMessage(step: -1, clip: 1).dropReason == "step -1 is negative")
    }
}
