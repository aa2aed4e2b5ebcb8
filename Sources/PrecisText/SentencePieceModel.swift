/// The parts of a SentencePiece model file (`spiece.model`: a serialized `ModelProto` of
/// sentencepiece_model.proto) that building a `tokenizers` pipeline from it needs: the pieces with
/// their scores and types, the trainer's model type and special ids, and the normalizer spec
/// (precompiled charsmap and flags). The protobuf is read by the small reader below rather than
/// swift-protobuf (not a dependency of this package; five message fields do not warrant one):
/// every length and varint is bounds-checked, unknown fields are skipped by wire type, groups and
/// malformed input are refused with the file and field named.
public struct SentencePieceModel: Sendable, Equatable {
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public struct Piece: Sendable, Equatable {
        public var piece: String
        public var score: Float
        public var type: PieceType
        public init(piece: String, score: Float, type: PieceType) { self.piece = piece; self.score = score; self.type = type }
    }

    /// TrainerSpec.ModelType: 1 Unigram, 2 BPE, 3 word, 4 char.
    public enum ModelType: Int, Sendable { case unigram = 1, bpe = 2, word = 3, char = 4 }

    public var pieces: [Piece] = []
    public var modelType: ModelType = .unigram
    public var unkID = 0, bosID = 1, eosID = 2, padID = -1
    public var byteFallback = false
    public var unkPiece = "<unk>"
    public var precompiledCharsmap: [UInt8] = []
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    static let maxPieces = 4_000_000

    public init(contentsOfFile path: String) throws(TokenizerError) {
        try self.init(bytes: try FileBytes.read(path), file: path)
    }

    public init(bytes: [UInt8], file: String) throws(TokenizerError) {
        var top = ProtoReader(bytes: bytes, range: 0..<bytes.count, file: file, path: "ModelProto")
        while let (field, wire) = try top.nextField() {
            switch (field, wire) {
            case (1, 2):
                guard pieces.count < Self.maxPieces else { throw top.fail("more than \(Self.maxPieces) pieces") }
                var m = try top.message("pieces[\(pieces.count)]")
                var p = Piece(piece: "", score: 0, type: .normal)
                while let (f, w) = try m.nextField() {
                    switch (f, w) {
                    case (1, 2): p.piece = try m.string()
                    case (2, 5): p.score = Float(bitPattern: try m.fixed32())
                    case (3, 0):
                        let t = try m.varint()
                        guard let type = PieceType(rawValue: Int(truncatingIfNeeded: t)), t <= 6 else { throw m.fail("type \(t) is not a SentencePiece piece type") }
                        p.type = type
                    default: try m.skip(w)
                    }
                }
                pieces.append(p)
            case (2, 2):
                var m = try top.message("trainer_spec")
                while let (f, w) = try m.nextField() {
                    switch (f, w) {
                    case (3, 0):
                        let t = try m.varint()
                        guard let type = ModelType(rawValue: Int(truncatingIfNeeded: t)), t <= 4 else { throw m.fail("model_type \(t) is unknown") }
                        modelType = type
                    case (35, 0): byteFallback = try m.varint() != 0
                    case (40, 0): unkID = try m.int32()
                    case (41, 0): bosID = try m.int32()
                    case (42, 0): eosID = try m.int32()
                    case (43, 0): padID = try m.int32()
                    case (45, 2): unkPiece = try m.string()
                    default: try m.skip(w)
                    }
                }
            case (3, 2):
                var m = try top.message("normalizer_spec")
                while let (f, w) = try m.nextField() {
                    switch (f, w) {
                    case (2, 2): precompiledCharsmap = try m.byteString()
                    case (3, 0): addDummyPrefix = try m.varint() != 0
                    case (4, 0): removeExtraWhitespaces = try m.varint() != 0
                    case (5, 0): escapeWhitespaces = try m.varint() != 0
                    default: try m.skip(w)
                    }
                }
            default: try top.skip(wire)
            }
        }
        guard !pieces.isEmpty else { throw .invalidField(file: file, field: "ModelProto.pieces", message: "the model has no pieces") }
        guard unkID >= 0, unkID < pieces.count else {
            throw .invalidField(file: file, field: "ModelProto.trainer_spec.unk_id", message: "\(unkID) is not a piece id (\(pieces.count) pieces)")
        }
    }
}

/// Reads protobuf wire format from a byte range: field keys, varints, fixed32, length-delimited.
struct ProtoReader {
    let bytes: [UInt8]
    var pos: Int
    let end: Int
    let file: String
    let path: String

    init(bytes: [UInt8], range: Range<Int>, file: String, path: String) {
        self.bytes = bytes; pos = range.lowerBound; end = range.upperBound; self.file = file; self.path = path
    }

    func fail(_ message: String) -> TokenizerError {
        .invalidField(file: file, field: path, message: "\(message) (byte \(pos))")
    }

    mutating func varint() throws(TokenizerError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end else { throw fail("truncated varint") }
            let b = bytes[pos]
            pos += 1
            guard shift < 64 else { throw fail("varint longer than 10 bytes") }
            v |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    /// An int32 field (negative values are sign-extended to 10 bytes on the wire).
    mutating func int32() throws(TokenizerError) -> Int { Int(Int32(truncatingIfNeeded: try varint())) }

    mutating func fixed32() throws(TokenizerError) -> UInt32 {
        guard end - pos >= 4 else { throw fail("truncated fixed32") }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[pos + i]) << (8 * UInt32(i)) }
        pos += 4
        return v
    }

    /// The next field number and wire type, or nil at the end of this message.
    mutating func nextField() throws(TokenizerError) -> (Int, Int)? {
        guard pos < end else { return nil }
        let key = try varint()
        let field = key >> 3
        guard field > 0, field < (1 << 29) else { throw fail("invalid field number \(field)") }
        return (Int(field), Int(key & 7))
    }

    mutating func lengthDelimited() throws(TokenizerError) -> Range<Int> {
        let n = try varint()
        guard n <= UInt64(end - pos) else { throw fail("length \(n) runs past the end of the message") }
        let r = pos..<(pos + Int(n))
        pos += Int(n)
        return r
    }

    mutating func byteString() throws(TokenizerError) -> [UInt8] { Array(bytes[try lengthDelimited()]) }

    mutating func string() throws(TokenizerError) -> String {
        let r = try lengthDelimited()
        guard let s = String(validating: bytes[r], as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }

    mutating func message(_ name: String) throws(TokenizerError) -> ProtoReader {
        let r = try lengthDelimited()
        return ProtoReader(bytes: bytes, range: r, file: file, path: path + "." + name)
    }

    mutating func skip(_ wire: Int) throws(TokenizerError) {
        switch wire {
        case 0: _ = try varint()
        case 1:
            guard end - pos >= 8 else { throw fail("truncated fixed64") }
            pos += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw fail("wire type \(wire) (groups) is not supported")
        }
    }
}
