import Foundation
import PrecisText
import Testing

@Suite("golden ids from Python tokenizers 0.23.3")
struct GoldenTests {
    @Test("SAMSum sample and edge cases: identical ids, with and without special tokens, and decodes")
    func goldenSample() throws {
        let rows = try TokenizerFixtures.lines("golden-sample.jsonl", as: GoldenText.self)
        #expect(rows.filter { $0.kind == "dialogue" }.count == 300)
        #expect(rows.filter { $0.kind == "summary" }.count == 300)
        #expect(rows.filter { $0.kind == "edge" }.count >= 80)
        let tok = TokenizerFixtures.samsum
        var failures: [String] = []
        for row in rows {
            let ids = try tok.encode(row.text).ids
            if ids != row.ids { failures.append("\(row.label) \(row.text.preview): ids differ") }
            if let plain = row.ids_plain, try tok.encode(row.text, addSpecialTokens: false).ids != plain {
                failures.append("\(row.label): ids without special tokens differ")
            }
            let decoded = tok.decode(row.ids, skipSpecialTokens: true)
            if let want = row.decoded {
                if decoded != want { failures.append("\(row.label): decode(skip_special_tokens) differs") }
            } else if decoded != row.text {
                failures.append("\(row.label): does not round-trip")
            }
            if let want = row.decoded_all, tok.decode(row.ids) != want {
                failures.append("\(row.label): decode differs")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures:\n\(failures.prefix(20).joined(separator: "\n"))")
    }

    @Test("encode and decode cases: truncation, pairs, template and normalizer variants, classic files")
    func goldenCases() throws {
        let cases = try TokenizerFixtures.lines("golden-cases.jsonl", as: GoldenCase.self)
        #expect(cases.count > 700)
        var tokenizers: [String: Tokenizer] = [:]
        var failures: [String] = []
        var kinds: Set<String> = []
        for (n, c) in cases.enumerated() {
            if tokenizers[c.tokenizer] == nil { tokenizers[c.tokenizer] = try TokenizerFixtures.tokenizer(c.tokenizer) }
            var tok = tokenizers[c.tokenizer]!
            kinds.insert("\(c.op) \(c.tokenizer)\(c.truncation == nil ? "" : " truncation")\(c.pair == nil ? "" : " pair")")
            switch c.op {
            case "encode":
                if let t = c.truncation {
                    tok.truncation = Truncation(
                        maxLength: t.max_length,
                        strategy: t.strategy.map { ["longest_first": .longestFirst, "only_first": .onlyFirst, "only_second": .onlySecond][$0]! } ?? .longestFirst,
                        direction: t.direction == "left" ? .left : .right)
                }
                let result = Result { () throws(TokenizerError) in
                    try tok.encode(c.text!, pair: c.pair, addSpecialTokens: c.add_special_tokens ?? true).ids
                }
                switch (result, c.ids) {
                case let (.success(ids), want?) where ids == want: break
                case (.failure, nil): break
                case let (got, want):
                    failures.append("case \(n) \(c.tokenizer) \(c.text!.preview) pair=\(c.pair?.preview ?? "-"): want \(String(describing: want)), got \(got)")
                }
            case "decode":
                let text = tok.decode(c.decode_ids!, skipSpecialTokens: c.skip_special_tokens!)
                if text != c.text! { failures.append("case \(n) decode \(c.decode_ids!): want \(c.text!.preview), got \(text.preview)") }
            default:
                Issue.record("unknown op \(c.op)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures:\n\(failures.prefix(20).joined(separator: "\n"))")
        #expect(kinds.count >= 12, "\(kinds.sorted())")
    }

    @Test("the GPT-2 split classifies every Unicode scalar as tokenizers' Oniguruma does")
    func splitClasses() throws {
        let text = try String(contentsOfFile: TokenizerFixtures.path("gpt2-split-classes.txt"), encoding: .utf8)
        var runs: [(start: UInt32, cls: Character)] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            runs.append((UInt32(parts[0], radix: 16)!, parts[1].first!))
        }
        #expect(runs.count > 1000)
        let classes: [GPT2Split.CharacterClass: Character] = [.letter: "L", .number: "N", .whitespace: "S", .other: "O"]
        var mismatches: [String] = []
        var checked = 0
        for (k, run) in runs.enumerated() {
            let end = k + 1 < runs.count ? runs[k + 1].start : 0x110000
            for v in run.start..<end {
                guard let s = Unicode.Scalar(v) else { continue }
                checked += 1
                let got = classes[GPT2Split.characterClass(of: s)]!
                if got != run.cls {
                    mismatches.append("U+\(String(v, radix: 16, uppercase: true)): want \(run.cls), got \(got)")
                }
            }
        }
        #expect(checked == 0x110000 - 0x800)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches: \(mismatches.prefix(20))")
    }

    @Test("the GPT-2 split on hand-picked texts")
    func splitExamples() {
        #expect(GPT2Split.split("Hello my friend, how is your day going?") ==
                ["Hello", " my", " friend", ",", " how", " is", " your", " day", " going", "?"])
        #expect(GPT2Split.split("I'm don't we'll 'S ?'s") == ["I", "'m", " don", "'t", " we", "'ll", " '", "S", " ?'", "s"])
        #expect(GPT2Split.split("a  b   \n\nc  ") == ["a", " ", " b", "   \n", "\n", "c", "  "])
        // `\s+(?!\S)` leaves the last whitespace scalar before a letter: CRLF splits in two.
        #expect(GPT2Split.split("x\r\ny") == ["x", "\r", "\n", "y"])
        #expect(GPT2Split.split("x\r\n") == ["x", "\r\n"])
        #expect(GPT2Split.split("abc123 45,6") == ["abc", "123", " 45", ",", "6"])
        #expect(GPT2Split.split("e\u{301}t\u{e9}") == ["e", "\u{301}", "t\u{e9}"])
        #expect(GPT2Split.split("日本語 テキスト😀!") == ["日本語", " テキスト", "😀!"])
        #expect(GPT2Split.split("") == [])
        #expect(ByteLevelPreTokenizer(addPrefixSpace: true).preTokenize("Hello world") == ["ĠHello", "Ġworld"])
        #expect(ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: false).preTokenize("a b\n") == ["aĠbĊ"])
    }
}
