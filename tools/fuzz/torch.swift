// libFuzzer target: a PyTorch checkpoint (pytorch_model.bin: stored zip + data.pkl pickle) read by
// the restricted unpickler as model loading reads it, then every tensor read as floats.
import PrecisCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let f = try? TorchCheckpointFile(bytes: UnsafeRawBufferPointer(start: data, count: size), path: "fuzz.bin") else { return 0 }
    for name in f.names {
        // Bounded: a hostile archive may describe a huge (valid) view of a small storage.
        guard let shape = f.shape(of: name), shape.reduce(1, { $0 &* $1 }) <= 1 << 20 else { continue }
        _ = try? f.floats(name)
    }
    return 0
}
