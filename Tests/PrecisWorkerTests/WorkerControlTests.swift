import Foundation
import Testing
import PrecisWire
import PrecisWorker

/// What the worker does with each control message from the coordinator (`WorkerControl.read`):
/// sound ones are used; a payload that does not decode or fails its check against the worker's
/// model and data is dropped, or stops the worker (exit status 1) where it cannot go on without it.
@Suite struct WorkerControlTests {
    let facts = WorkerFacts(parameters: 40_000, examples: 100, perDevice: 2, microPerStep: 4)
    let plan = PartitionPlan(total: 40_000, servers: 2, partitionFloats: 3_000, cuts: [9_001])

    func message<T: Encodable>(_ type: MessageType, _ value: T) throws -> DataMessage { try DataMessage(frames: Control.frames(type, value)) }
    func message(_ type: MessageType, json: String) throws -> DataMessage { try DataMessage(frames: Control.frames(type, json: Array(json.utf8))) }

    func view(_ plan: PartitionPlan) -> ViewMessage {
        let servers = (0..<2).map { ServerInfo(id: $0, name: "ps\($0)", endpoint: "tcp://127.0.0.1:\(7000 + $0)", partitions: plan.partitions(of: $0)) }
        return ViewMessage(epoch: 2, servers: servers, plan: plan, workers: ["w"], consistency: .sync, codec: .fp32, pullCodec: .fp32)
    }
    func task(micro: [[Int]] = [[1, 2]], step: Int = 0) -> TaskMessage {
        TaskMessage(step: step, contribution: 0, micro: micro, firstMicro: 0, normalizer: 12, exactVersion: true, minVersion: step, clipNorm: 0)
    }

    func dropped(_ m: DataMessage, facts: WorkerFacts?) -> String? {
        if case .drop(let why) = WorkerControl.read(m, facts: facts) { return why }
        return nil
    }

    @Test func soundMessagesAreUsed() throws {
        guard case .view(let v) = WorkerControl.read(try message(.view, view(plan)), facts: facts) else { Issue.record("view"); return }
        #expect(v.plan == plan)
        guard case .task(let t) = WorkerControl.read(try message(.task, task()), facts: facts) else { Issue.record("task"); return }
        #expect(t.micro == [[1, 2]])
        let e = EvalTaskMessage(id: 1, version: 0, exactVersion: true, indices: [4, 1_000], generate: true)
        guard case .evalTask = WorkerControl.read(try message(.evalTask, e), facts: nil) else { Issue.record("evalTask"); return }
    }

    /// Found by review: a view whose plan cut more values than the model made the worker decode
    /// parameters beyond its buffer (Worker.handleData) and push gradients read from beyond it.
    @Test func aViewThatDoesNotCutTheModelIsDropped() throws {
        let bigger = PartitionPlan(total: 50_000, servers: 2, partitionFloats: 3_000)
        #expect(dropped(try message(.view, view(bigger)), facts: facts) == "bad view message: plan total 50000 is not the model's 40000 parameters")
        var odd = plan
        odd.bounds[1] = 39_000
        #expect(dropped(try message(.view, view(odd)), facts: facts)?.hasPrefix("bad view message: plan partition 1 is 39000..<") == true)
        #expect(dropped(try message(.view, view(plan)), facts: nil)?.hasPrefix("this worker is not registered yet") == true)
    }

    /// Found by review: an index beyond the data set was read by the collator; a negative step
    /// trapped in the dropout seed's UInt64.
    @Test func aBadTaskIsDropped() throws {
        #expect(dropped(try message(.task, task(micro: [[1, 100]])), facts: facts) == "bad task message: micro-batch 0 names example 100, outside 0..<100")
        #expect(dropped(try message(.task, task(step: -1)), facts: facts) == "bad task message: step -1 is outside 0...1099511627776")
        #expect(dropped(try message(.task, task()), facts: nil)?.hasPrefix("this worker is not registered yet") == true)
    }

    @Test func anEvalTaskWithANegativeIndexIsDropped() throws {
        let e = EvalTaskMessage(id: 1, version: 0, exactVersion: true, indices: [4, -1], generate: true)
        #expect(dropped(try message(.evalTask, e), facts: facts) == "bad evalTask message: index -1 is outside 0..<the data set")
    }

    /// Found by review: an undecodable payload was thrown from the control handler and ended the worker.
    @Test func anUndecodablePayloadIsDroppedUnlessTheWorkerNeedsIt() throws {
        for type: MessageType in [.view, .task, .evalTask, .refused] {
            let why = dropped(try message(type, json: #"{"step": "x"}"#), facts: facts)
            #expect(why?.hasPrefix("bad \(type) message: ") == true, "\(type): \(why ?? "not dropped")")
        }
        for type: MessageType in [.registered, .shutdown] {
            guard case .stop(let why) = WorkerControl.read(try message(type, json: "[]"), facts: facts) else { Issue.record("\(type) not stopped"); continue }
            #expect(why.hasPrefix("bad \(type) message: "))
        }
        let r = RegisteredMessage(id: 1, name: "w", config: "", configFile: "", modelConfig: "", heartbeatInterval: .nan, heartbeatTimeout: 10,
                                  dataDigest: "", outputDir: "/tmp")
        guard case .stop(let why) = WorkerControl.read(try message(.registered, r), facts: nil) else { Issue.record("registered not stopped"); return }
        #expect(why == "bad registered message: heartbeatInterval nan is outside (0, 86400.0] seconds")
    }
}
