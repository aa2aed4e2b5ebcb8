// libFuzzer target: a model folder's config.json as the model loaders read it, for every family in
// the registry (bart, t5, pegasus):
//   1. every registered architecture's own parser (Codable decoding, then its validation), whatever
//      `model_type` says: a T5 config's fields also go through the BART and Pegasus decoders;
//   2. the generation keys of the same object (`GenerationSettings`, read from config.json when a
//      folder has no generation_config.json);
//   3. the registry (`ModelRegistry.model`: model_type → architecture), building the model when the
//      config describes a small one (a valid config may rightly describe a model larger than the
//      fuzzer's memory limit, and building one in a debug build takes seconds); unknown or missing
//      model types and unparseable JSON get the registry's own errors;
//   4. a model built here writes its config.json back (`configJSON`, as a checkpoint does) and that is
//      read again to the same model (facts, parameter layout, bytes): a config Precis accepts must
//      survive its own checkpoints. A difference is a crash (fatalError), kept as a regression input.
import Foundation
import PrecisModels

/// The most values a config built here may describe (a rough count from its sizes).
let maxValues = 4_000_000

/// a·b + c·d + …, nil on overflow.
func sumOfProducts(_ pairs: [(Int, Int)]) -> Int? {
    var total = 0
    for (a, b) in pairs {
        let (p, o1) = a.multipliedReportingOverflow(by: b)
        let (s, o2) = total.addingReportingOverflow(p)
        if o1 || o2 { return nil }
        total = s
    }
    return total
}

func describedValues(_ c: BartConfig) -> Int? {
    let layers = c.encoderLayers + c.decoderLayers, ffn = max(c.encoderFfnDim, c.decoderFfnDim)
    return sumOfProducts([(c.vocabSize, c.dModel), (c.maxPositionEmbeddings, c.dModel), (layers, 4 * c.dModel * c.dModel),
                          (layers, 2 * c.dModel * ffn)])
}

/// Pegasus: the weights, plus the two sinusoidal tables rebuilt from the config (not in the weights).
func describedValues(_ c: PegasusConfig) -> Int? {
    let layers = c.encoderLayers + c.decoderLayers, ffn = max(c.encoderFfnDim, c.decoderFfnDim)
    return sumOfProducts([(c.vocabSize, c.dModel), (2 * c.maxPositionEmbeddings, c.dModel), (layers, 4 * c.dModel * c.dModel),
                          (layers, 2 * c.dModel * ffn)])
}

/// T5: its own count (embedding, blocks, position biases, an untied head).
func describedValues(_ c: T5Config) -> Int? { c.parameterCount }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // 1. Each architecture's parser and validation, whatever the size; the size of what it accepted.
    var described: [String: Int?] = [:]
    if let c = try? BartConfig.parse(bytes, file: "config.json") { described[c.modelType] = describedValues(c) }
    if let c = try? T5Config.parse(bytes, file: "config.json") { described[c.modelType] = describedValues(c) }
    if let c = try? PegasusConfig.parse(bytes, file: "config.json") { described[c.modelType] = describedValues(c) }
    let object = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any]
    // 2. The generation keys of the same object.
    if let object { _ = try? GenerationSettings(json: object, file: "config.json") }
    let type = object?["model_type"] as? String
    if let type, ModelRegistry.builders[type] != nil {
        // A known architecture is built only when its own parser accepted it and it is small (else the
        // registry would throw that parser's error, already exercised above).
        guard let n = described[type], let n, n <= maxValues else { return 0 }
    }
    // 3. The registry.
    guard let model = try? ModelRegistry.model(config: bytes, file: "config.json") else { return 0 }
    // 4. Its config.json, written as a checkpoint writes it, reads back to the same model.
    let written: Data
    do { written = try model.configJSON() } catch { fatalError("\(model.facts.modelType): an accepted config cannot be written: \(error)") }
    let again: any PrecisModels.Seq2SeqModel
    do { again = try ModelRegistry.model(config: written, file: "written config.json") } catch {
        fatalError("\(model.facts.modelType): the config.json Precis writes is refused on reading: \(error)\n"
                   + (String(data: written, encoding: .utf8) ?? ""))
    }
    guard again.facts == model.facts, again.table == model.table else {
        fatalError("\(model.facts.modelType): the written config.json reads back to another model: \(again.facts) vs \(model.facts)")
    }
    guard let rewritten = try? again.configJSON(), rewritten == written else {
        fatalError("\(model.facts.modelType): writing the config again gives other bytes")
    }
    return 0
}
