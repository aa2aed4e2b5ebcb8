// libFuzzer target: a data message's two frames as a receiver gets them (the 40-byte header, then
// the payload), the shard decoders (none / fp32 / bf16 with LZ4), a gradient push's contribution
// figures and every control message's JSON, then, for what decodes, the checks its receiver runs
// before acting on it (`ControlChecks`: each message's `dropReason`, a partition plan's).
// Input: 40 header bytes, then the payload. Each input is tried as it is and with its payload
// length and CRC-32C made right, so the fuzzer gets past the checksum to what lies behind it.
import Foundation
import PrecisWire

/// The largest shard decoded here (a receiver's capacity is its partition's size).
let capacity = 1 << 16
let output = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
let codec = ShardCodec()

func control(_ m: DataMessage) {
    func decode<T: Decodable>(_ t: T.Type) { _ = try? Control.decode(t, m) }
    func checked<T: Decodable>(_ t: T.Type, _ check: (T) -> String?) { if let v = try? Control.decode(t, m) { _ = check(v) } }
    switch m.header.type {
    case .register: checked(RegisterMessage.self) { $0.dropReason }
    case .registered: checked(RegisteredMessage.self) { $0.dropReason }
    case .refused: decode(RefusedMessage.self)
    case .heartbeat, .heartbeatAck: decode(HeartbeatMessage.self)
    case .assign: checked(AssignMessage.self) { $0.dropReason }
    case .view: checked(ViewMessage.self) { $0.dropReason(parameters: 1 << 20) }
    case .plan: decode(PlanMessage.self)
    case .task: checked(TaskMessage.self) { $0.dropReason(examples: 14_732, perDevice: 16, microPerStep: 4) }
    case .contributionDone: checked(DoneMessage.self) { $0.dropReason(totalSteps: 6_000) }
    case .normReport: checked(NormMessage.self) { $0.dropReason(senderSlot: 0) }
    case .apply: checked(ApplyMessage.self) { $0.dropReason }
    case .applied: decode(AppliedMessage.self)
    case .leave: decode(LeaveMessage.self)
    case .shutdown: decode(ShutdownMessage.self)
    case .statusReply: decode(StatusReport.self)
    case .initDone: checked(InitDoneMessage.self) { $0.dropReason(senderSlot: 1) }
    case .snapshot: decode(SnapshotMessage.self)
    case .evalTask: checked(EvalTaskMessage.self) { $0.dropReason(examples: 818) }
    case .evalResult: checked(EvalResultMessage.self) { $0.dropReason }
    case .evaluateRequest: decode(EvaluateRequest.self)
    case .evaluateReply: decode(EvaluateReply.self)
    default: decode(Empty.self)
    }
}

func receive(_ header: [UInt8], _ payload: [UInt8]) {
    guard let m = try? DataMessage(frames: [header, payload]) else { return }
    if m.header.type.isControl {
        control(m)
    } else {
        try? m.decode(into: output, capacity: capacity, using: codec)
        if m.header.type == .pushGradient { _ = try? m.figures() }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let header = Array(bytes.prefix(WireHeader.size)), payload = Array(bytes.dropFirst(WireHeader.size))
    receive(header, payload)
    guard header.count == WireHeader.size else { return 0 }
    var fixed = header
    fixed.withUnsafeMutableBytes { h in
        h.storeBytes(of: UInt32(payload.count).littleEndian, toByteOffset: 32, as: UInt32.self)
        h.storeBytes(of: CRC32C.checksum(payload).littleEndian, toByteOffset: 36, as: UInt32.self)
    }
    receive(fixed, payload)
    return 0
}
