// libFuzzer target: a model folder's config.json through the registry (model_type → architecture,
// then the architecture's Codable config and its validation). A model is built only when the
// config describes a small one: a valid config may rightly describe a model larger than the
// fuzzer's memory limit (and building one in a debug build takes seconds).
import Foundation
import PrecisModels

/// The most parameters a config built here may describe (a rough count from its sizes).
let maxValues = 4_000_000

func describedValues(_ c: BartConfig) -> Int? {
    let layers = c.encoderLayers + c.decoderLayers, ffn = max(c.encoderFfnDim, c.decoderFfnDim)
    var total = 0
    for (a, b) in [(c.vocabSize, c.dModel), (c.maxPositionEmbeddings, c.dModel), (layers, 4 * c.dModel * c.dModel), (layers, 2 * c.dModel * ffn)] {
        let (p, o1) = a.multipliedReportingOverflow(by: b)
        let (s, o2) = total.addingReportingOverflow(p)
        if o1 || o2 { return nil }
        total = s
    }
    return total
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // The architecture's own parser and validation, whatever the size.
    let bart = try? BartConfig.parse(bytes, file: "config.json")
    let type = ((try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any])?["model_type"] as? String
    if let type, ModelRegistry.builders[type] != nil {
        // Known architectures are built only when small (BART's size is known from its config).
        guard type == "bart", let bart, let n = describedValues(bart), n <= maxValues else { return 0 }
    }
    // Unknown or missing model types, unparseable JSON: the registry's own errors.
    _ = try? ModelRegistry.model(config: bytes, file: "config.json")
    return 0
}
