// libFuzzer target: a dataset file as the data loaders read it. The first byte picks the format
// (JSON Lines, JSON, CSV) and whether bad records are skipped; the rest is the file.
import Foundation
import PrecisData

let formats: [DatasetLoader.Format] = [.jsonl, .json, .csv]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let format = formats[Int(data[0]) % formats.count]
    let options = DatasetOptions(textColumn: "dialogue", summaryColumn: "summary", skipBadRecords: data[0] & 0x80 != 0)
    _ = try? DatasetLoader.load(data: Data(bytes: data + 1, count: size - 1), file: "train.\(format.rawValue)", format: format, options: options)
    return 0
}
