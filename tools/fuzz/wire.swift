// libFuzzer target: a data message's two frames as a receiver gets them (the 40-byte header, then
// the payload), the shard decoders (none / fp32 / bf16 with LZ4), a gradient push's contribution
// figures and every control message's JSON.
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
    switch m.header.type {
    case .register: decode(RegisterMessage.self)
    case .registered: decode(RegisteredMessage.self)
    case .refused: decode(RefusedMessage.self)
    case .heartbeat, .heartbeatAck: decode(HeartbeatMessage.self)
    case .assign: decode(AssignMessage.self)
    case .view: decode(ViewMessage.self)
    case .plan: decode(PlanMessage.self)
    case .task: decode(TaskMessage.self)
    case .contributionDone: decode(DoneMessage.self)
    case .normReport: decode(NormMessage.self)
    case .apply: decode(ApplyMessage.self)
    case .applied: decode(AppliedMessage.self)
    case .leave: decode(LeaveMessage.self)
    case .shutdown: decode(ShutdownMessage.self)
    case .statusReply: decode(StatusReport.self)
    case .initDone: decode(InitDoneMessage.self)
    case .snapshot: decode(SnapshotMessage.self)
    case .evalTask: decode(EvalTaskMessage.self)
    case .evalResult: decode(EvalResultMessage.self)
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
