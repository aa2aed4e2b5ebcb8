// libFuzzer target: a training config YAML (Yams, the duplicate-key and alias-expansion checks,
// every key's type and range).
import Foundation
import PrecisTrain

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let cfg = try? TrainingConfig.parse(text, file: "train.yaml") {
        _ = try? cfg.validate()
        _ = try? TrainingConfig.redacted(text)
    }
    return 0
}
