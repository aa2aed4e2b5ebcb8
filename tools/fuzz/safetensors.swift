// libFuzzer target: a safetensors file (header length, JSON header, data section) opened as the
// model and checkpoint loaders open it, then every tensor read as floats.
import Foundation
import PrecisCore

/// The input is written to a file (the parser maps files); tmpfs keeps that cheap.
let path = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()) + "/precis-fuzz-\(getpid()).safetensors"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size)) else { return 0 }
    guard let f = try? SafeTensorsFile(path: path) else { return 0 }
    for name in f.names { _ = try? f.floats(name) }
    return 0
}
