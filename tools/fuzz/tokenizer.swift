// libFuzzer target: a tokenizer.json document (Precis's own JSON parser, then every component
// built from it), and, when it loads, a few texts encoded with it and decoded back.
import Foundation
import PrecisText

let texts = ["Hello world! <s> It's 3.14 €, isn't it?", "  a\tb\nc  ", ""]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let json: JSONValue
    do { json = try JSONValue.parse(utf8: UnsafeBufferPointer(start: data, count: size), file: "tokenizer.json") } catch { return 0 }
    guard let tokenizer = try? Tokenizer(json: json, source: "tokenizer.json") else { return 0 }
    for text in texts {
        guard let e = try? tokenizer.encode(text, pair: text.isEmpty ? nil : "pair") else { continue }
        _ = tokenizer.decode(e.ids, skipSpecialTokens: false)
        _ = tokenizer.decode(e.ids, skipSpecialTokens: true)
    }
    return 0
}
