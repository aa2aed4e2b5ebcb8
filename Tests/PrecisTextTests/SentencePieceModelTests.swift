import Foundation
import Testing
import PrecisText

/// The hand-written SentencePiece `ModelProto` reader: the committed models parse to what
/// sentencepiece trained, and malformed protobuf is refused (never a crash or a hang).
@Suite struct SentencePieceModelTests {
    static let formats = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/formats")

    /// Protobuf encoders for hand-made models.
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        repeat { out.append(UInt8(v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7 } while v > 0
        return out
    }
    static func field(_ n: Int, _ wire: Int) -> [UInt8] { varint(UInt64(n << 3 | wire)) }
    static func bytes(_ n: Int, _ b: [UInt8]) -> [UInt8] { field(n, 2) + varint(UInt64(b.count)) + b }
    static func piece(_ s: String, _ score: Float, _ type: Int) -> [UInt8] {
        bytes(1, bytes(1, Array(s.utf8)) + field(2, 5) + withUnsafeBytes(of: score.bitPattern.littleEndian) { Array($0) } + field(3, 0) + varint(UInt64(type)))
    }
    /// `<pad>`, `</s>`, `<unk>`, `▁a`, `b`; trainer_spec unk_id 2 (and an int32 −1 pad_id), no charsmap.
    static func tiny(modelType: UInt64 = 1) -> [UInt8] {
        piece("<pad>", 0, 3) + piece("</s>", 0, 3) + piece("<unk>", 0, 2) + piece("\u{2581}a", -1, 1) + piece("b", -2, 1)
            + bytes(2, field(3, 0) + varint(modelType) + field(40, 0) + varint(2) + field(43, 0) + varint(UInt64(bitPattern: -1)))
            + bytes(3, field(3, 0) + varint(1)) + field(99, 1) + [UInt8](repeating: 7, count: 8)
    }

    @Test func readsTheTrainedModels() throws {
        let t5 = try SentencePieceModel(contentsOfFile: Self.formats.appendingPathComponent("t5-spiece/spiece.model").path)
        #expect(t5.pieces.count == 800)
        #expect(t5.pieces[0] == .init(piece: "<pad>", score: 0, type: .control))
        #expect(t5.pieces[2].type == .unknown)
        #expect((t5.unkID, t5.eosID, t5.padID, t5.bosID) == (2, 1, 0, -1))
        #expect(t5.modelType == .unigram && !t5.precompiledCharsmap.isEmpty)
        let peg = try SentencePieceModel(contentsOfFile: Self.formats.appendingPathComponent("pegasus-spiece/spiece.model").path)
        #expect(peg.precompiledCharsmap.isEmpty && peg.pieces.count == 800)
    }

    @Test func readsAHandMadeModelAndBuildsBothPipelines() throws {
        let m = try SentencePieceModel(bytes: Self.tiny(), file: "tiny.model")
        #expect(m.pieces.map(\.piece) == ["<pad>", "</s>", "<unk>", "\u{2581}a", "b"])
        #expect(m.pieces[4].score == -2 && m.unkID == 2 && m.padID == -1)
        let t5 = try SentencePieceTokenizers.t5(m, extraIds: 2, file: "tiny.model")
        #expect(try t5.encode("a b").ids == [3, 2, 4, 1]) // ▁a, ▁ (unknown), b, </s>: as Python tokenizers gives
        #expect(t5.tokenToID("<extra_id_1>") == 5 && t5.tokenToID("<extra_id_0>") == 6)
        let peg = try SentencePieceTokenizers.pegasus(m, offset: 4, file: "tiny.model")
        // <pad> </s> <mask_1> <mask_2> <unk_2> <unk_3> then pieces[2...]: <unk>=6, ▁a=7, b=8
        #expect(try peg.encode("a").ids == [7, 1])
        #expect(peg.tokenToID("<unk>") == 6)
    }

    @Test func refusesMalformedProtobuf() throws {
        let good = Self.tiny()
        for cut in 1..<good.count {
            // Every strict prefix either parses (a cut between fields) or is refused; never a crash.
            _ = try? SentencePieceModel(bytes: Array(good[..<cut]), file: "cut.model")
        }
        func refusal(_ b: [UInt8]) -> String? {
            do { _ = try SentencePieceModel(bytes: b, file: "bad.model"); return nil } catch { return "\(error)" }
        }
        #expect(refusal(Self.field(1, 2) + Self.varint(1000) + [1, 2])?.contains("runs past the end") == true)
        #expect(refusal(Self.field(7, 3))?.contains("wire type 3") == true)
        #expect(refusal([0x08] + [UInt8](repeating: 0xff, count: 11))?.contains("varint longer than 10 bytes") == true)
        #expect(refusal(Self.bytes(1, Self.bytes(1, [0xff, 0xfe])))?.contains("not valid UTF-8") == true)
        #expect(refusal(Self.bytes(1, Self.field(3, 0) + Self.varint(9)))?.contains("piece type") == true)
        #expect(refusal([])?.contains("no pieces") == true)
        #expect(refusal(Self.piece("x", 0, 1) + Self.bytes(2, Self.field(40, 0) + Self.varint(5)))?.contains("unk_id") == true)
        let bpe = try SentencePieceModel(bytes: Self.tiny(modelType: 2), file: "bpe.model")
        #expect(throws: TokenizerError.self) { _ = try SentencePieceTokenizers.t5(bpe, file: "bpe.model") }
    }
}
