// libFuzzer target: a SentencePiece model (spiece.model protobuf) read by the hand-written reader,
// then converted to the T5 and Pegasus pipelines and used on a short text.
import PrecisText

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let m = try? SentencePieceModel(bytes: Array(UnsafeBufferPointer(start: data, count: size)), file: "fuzz.model") else { return 0 }
    if let t = try? SentencePieceTokenizers.t5(m, extraIds: 3, file: "fuzz.model") { _ = try? t.encode("Hello  wörld <extra_id_0>!") }
    if let t = try? SentencePieceTokenizers.pegasus(m, offset: 5, file: "fuzz.model") { _ = try? t.encode("Hello\nwörld <mask_1>") }
    return 0
}
