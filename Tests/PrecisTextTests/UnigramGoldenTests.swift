import Foundation
import PrecisText
import Testing

@Suite("Unigram tokenizers: golden ids from Python tokenizers 0.23.3")
struct UnigramGoldenTests {
    @Test("every fixture tokenizer loads with the components it names")
    func fixturesLoad() throws {
        let t5 = try #require(UnigramFixtures.tokenizers["t5.json"])
        #expect(t5.model is UnigramModel)
        #expect(t5.vocabSize == 4100)
        #expect(t5.normalizer is PrecompiledNormalizer)
        #expect(t5.preTokenizer is SequencePreTokenizer)
        #expect(t5.decoder is MetaspaceDecoder)
        #expect(t5.tokenToID("<extra_id_0>") == 4099)
        let converter = try #require(UnigramFixtures.tokenizers["t5-converter.json"])
        #expect((converter.preTokenizer as? MetaspacePreTokenizer)?.prependScheme == .first)
        #expect(converter.preTokenizer?.needsOrigins == true)
        let pegasus = try #require(UnigramFixtures.tokenizers["pegasus.json"])
        #expect((pegasus.model as? UnigramModel)?.unkID == 105)
        #expect((pegasus.preTokenizer as? MetaspacePreTokenizer)?.prependScheme == .always)
        let bytes = try #require(UnigramFixtures.tokenizers["spm-byte-fallback.json"])
        #expect((bytes.model as? UnigramModel)?.byteFallback == true)
        #expect(bytes.decoder is SequenceDecoder)
        #expect(bytes.postProcessor == nil)
        for name in UnigramFixtures.names {
            #expect(UnigramFixtures.tokenizers[name] != nil, "\(name)")
        }
    }

    @Test("SAMSum texts and Unicode edge cases: identical ids, without special tokens too, and decodes")
    func cases() throws {
        let rows = try UnigramFixtures.lines("cases.jsonl", as: UnigramCase.self)
        #expect(rows.filter { $0.kind == "dialogue" }.count == 24)
        #expect(rows.filter { $0.kind == "summary" }.count == 60)
        #expect(rows.filter { $0.kind == "edge" }.count > 120)
        var failures: [String] = []
        var checked = 0
        for row in rows {
            for name in UnigramFixtures.names {
                let tok = try #require(UnigramFixtures.tokenizers[name])
                let want = try #require(row.ids[name])
                let got = try tok.encode(row.text).ids
                checked += 1
                if got != want { failures.append("\(name) \(row.name) \(row.text.preview): ids \(got.prefix(40)) want \(want.prefix(40))") }
                if let plain = row.plain[name], try tok.encode(row.text, addSpecialTokens: false).ids != plain {
                    failures.append("\(name) \(row.name): ids without special tokens differ")
                }
                let decoded = tok.decode(want, skipSpecialTokens: true)
                let wantDecoded = row.decoded[name] ?? row.text
                if !decoded.sameScalars(wantDecoded) {
                    failures.append("\(name) \(row.name): decode \(decoded.preview) want \(wantDecoded.preview)")
                }
                if row.kind == "edge" {
                    let all = tok.decode(want)
                    let wantAll = row.decoded_all[name] ?? wantDecoded
                    if !all.sameScalars(wantAll) { failures.append("\(name) \(row.name): decode with specials \(all.preview) want \(wantAll.preview)") }
                }
            }
        }
        #expect(checked == rows.count * UnigramFixtures.names.count)
        #expect(failures.isEmpty, "\(failures.count) failures:\n\(failures.prefix(25).joined(separator: "\n"))")
    }

    @Test("pairs, truncation, and decoding of byte tokens, unknown ids and metaspace runs")
    func extraCases() throws {
        let cases = try UnigramFixtures.lines("extra-cases.jsonl", as: GoldenCase.self)  // the BPE golden cases' form (extra-cases.jsonl)
        #expect(cases.count > 200)
        var failures: [String] = []
        for (n, c) in cases.enumerated() {
            var tok = try #require(UnigramFixtures.tokenizers[c.tokenizer])
            switch c.op {
            case "encode":
                if let t = c.truncation { tok.truncation = Truncation(maxLength: t.max_length) }
                let ids = try tok.encode(c.text!, pair: c.pair, addSpecialTokens: c.add_special_tokens ?? true).ids
                if ids != c.ids! { failures.append("case \(n) \(c.tokenizer) \(c.text!.preview) pair \(c.pair?.preview ?? "-"): \(ids) want \(c.ids!)") }
            case "decode":
                let text = tok.decode(c.decode_ids!, skipSpecialTokens: c.skip_special_tokens!)
                if !text.sameScalars(c.text!) { failures.append("case \(n) \(c.tokenizer) decode \(c.decode_ids!): \(text.preview) want \(c.text!.preview)") }
            default:
                Issue.record("unknown op \(c.op)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures:\n\(failures.prefix(25).joined(separator: "\n"))")
    }

    @Test("NFKC and NFD give tokenizers' result on every scalar (its Unicode 11.0 tables)")
    func unicodeFormsOnEveryScalar() throws {
        let table = try UnigramFixtures.scalarTable("nfkc-scalars.txt")
        #expect(table.filter { $0.tag == "NFKC" }.count > 4000)
        for form in [UnicodeForms.Form.nfkc, .nfd] {
            var expected: [UInt32: [Unicode.Scalar]] = [:]
            for row in table where row.tag == form.rawValue { expected[row.scalar] = row.mapped }
            // Every scalar, each followed by U+0001 (a starter that composes with nothing), in
            // one call; Hangul syllables decompose algorithmically and are left out of the NFD table.
            var input: [Unicode.Scalar] = []
            var scalars: [Unicode.Scalar] = []
            for v in UInt32(0)..<0x110000 {
                guard let s = Unicode.Scalar(v), v != 1 else { continue }
                if form == .nfd && (0xAC00...0xD7A3).contains(v) { continue }
                scalars.append(s)
                input.append(s)
                input.append("\u{01}")
            }
            let output = UnicodeForms.normalize(input, form: form).map(\.0)
            let pieces = output.split(separator: "\u{01}", omittingEmptySubsequences: false)
            #expect(pieces.count == scalars.count + 1)
            var mismatches: [String] = []
            for (s, piece) in zip(scalars, pieces) {
                let want = expected[s.value] ?? [s]
                if Array(piece) != want {
                    mismatches.append("\(form.rawValue) U+\(String(s.value, radix: 16, uppercase: true)): \(Array(piece).hex) want \(want.hex)")
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(20).joined(separator: "\n"))")
        }
    }

    @Test("the Precompiled charsmap of t5.json maps every scalar as tokenizers does")
    func charsmapOnEveryScalar() throws {
        let tok = try #require(UnigramFixtures.tokenizers["t5.json"])
        let normalizer = try #require(tok.normalizer as? PrecompiledNormalizer)
        var expected: [UInt32: [Unicode.Scalar]] = [:]
        for row in try UnigramFixtures.scalarTable("precompiled-scalars.txt") { expected[row.scalar] = row.mapped }
        #expect(expected.count > 3000)
        var mismatches: [String] = []
        for v in UInt32(0)..<0x110000 {
            guard let s = Unicode.Scalar(v) else { continue }
            let got = normalizer.charsmap.lookup(UTF8.encode(s)!) ?? [s]
            let want = expected[v] ?? [s]
            if got != want { mismatches.append("U+\(String(v, radix: 16, uppercase: true)): \(got.hex) want \(want.hex)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches:\n\(mismatches.prefix(20).joined(separator: "\n"))")
    }
}
