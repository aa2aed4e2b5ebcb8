import Foundation

// The stages of a Hugging Face tokenizer, in order:
//   normalizer → pre-tokenizer → model → post-processor, and the decoder for the way back.
// Each stage is a small protocol with value-type implementations that read and write their
// `tokenizer.json` form.

/// Rewrites text before it is split (lowercasing, Unicode normalization, ...).
public protocol Normalizer: Sendable {
    func normalize(_ text: String) -> String
    /// Normalizes `text` in place, giving every new scalar the origin `tokenizers` gives it
    /// (see `NormalizedText`). The default normalizes the string and, if it changed, gives every
    /// scalar the origin of the first one.
    func normalize(_ text: inout NormalizedText)
    /// The `tokenizer.json` form (`{"type": ...}`).
    func toJSON() -> JSONValue
}

extension Normalizer {
    public func normalize(_ text: inout NormalizedText) {
        let before = text.string
        let after = normalize(before)
        guard after != before else { return }
        let origin = text.origins.first ?? text.shift
        let scalars = Array(after.unicodeScalars)
        text = NormalizedText(scalars: scalars, origins: Array(repeating: origin, count: scalars.count), shift: text.shift)
    }
}

/// A normalizer written over `NormalizedText` (it tracks each scalar's origin itself); its plain
/// string form is that one, run on a text of its own.
public protocol OriginTrackingNormalizer: Normalizer {}

extension OriginTrackingNormalizer {
    public func normalize(_ text: String) -> String {
        var t = NormalizedText(text)
        normalize(&t)
        return t.string
    }
}

/// Splits text into words, each of which the model tokenizes on its own.
public protocol PreTokenizer: Sendable {
    /// Whether the words are byte-level: every UTF-8 byte of a word is one symbol, written in the
    /// model's vocabulary as its `ByteLevelAlphabet` character. Otherwise every Unicode scalar
    /// of a word is one symbol.
    var producesByteLevelWords: Bool { get }
    /// Calls `body` with the UTF-8 bytes of each word of `text` (valid UTF-8), in order.
    func forEachWord(in text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void)
    /// Whether the words depend on where each piece of text was in the original input (Metaspace
    /// with `prepend_scheme: "first"`): then the tokenizer calls `forEachWord(in: NormalizedText)`.
    var needsOrigins: Bool { get }
    /// Calls `body` with each word of `text`, with origins. The default splits the UTF-8 bytes
    /// with `forEachWord(in:_:)` and gives each word the origins of its scalars when the word
    /// lies in `text`, the origin of the text's start otherwise.
    func forEachWord(in text: NormalizedText, _ body: (NormalizedText) -> Void)
    func toJSON() -> JSONValue
}

extension PreTokenizer {
    public var needsOrigins: Bool { false }

    public func forEachWord(in text: NormalizedText, _ body: (NormalizedText) -> Void) {
        let bytes = text.utf8
        let scalarAt = text.scalarIndexAtByte
        bytes.withUnsafeBufferPointer { buffer in
            forEachWord(in: buffer) { word in
                var scalars: [Unicode.Scalar] = []
                var iterator = word.makeIterator()
                var decoder = UTF8()
                while case let .scalarValue(s) = decoder.decode(&iterator) { scalars.append(s) }
                if let base = buffer.baseAddress, let start = word.baseAddress,
                   start >= base, start + word.count <= base + buffer.count {
                    let from = start - base
                    if scalarAt[from] >= 0 && scalarAt[from + word.count] >= 0 {
                        body(text.slice(scalarAt[from]..<scalarAt[from + word.count]))
                        return
                    }
                }
                let origin = text.origins.first ?? text.shift
                body(NormalizedText(scalars: scalars, origins: Array(repeating: origin, count: scalars.count), shift: origin))
            }
        }
    }
}

extension PreTokenizer {
    /// The words of `text` as the model sees them (byte-level strings such as `"Ġworld"` for
    /// byte-level pre-tokenizers).
    public func preTokenize(_ text: String) -> [String] {
        var text = text
        var words: [String] = []
        let byteLevel = producesByteLevelWords
        text.withUTF8 { buffer in
            forEachWord(in: buffer) { word in
                words.append(byteLevel ? ByteLevelAlphabet.encode(word) : String(decoding: word, as: UTF8.self))
            }
        }
        return words
    }
}

/// Turns one pre-tokenized word into token ids.
public protocol TokenizerModel: Sendable {
    /// The number of tokens in the model's vocabulary.
    var vocabSize: Int { get }
    func tokenToID(_ token: String) -> Int?
    func idToToken(_ id: Int) -> String?
    /// Appends the ids of `word` to `ids`. With `byteLevel`, each byte of `word` is one symbol
    /// (see `PreTokenizer.producesByteLevelWords`).
    func tokenize(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int])
    /// Like `tokenize`, but fails where the model cannot encode the word (a Unigram model without
    /// `unk_id` meeting a character it has no piece for), as `tokenizers` does. The default
    /// calls `tokenize`.
    func encode(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int]) throws(TokenizerError)
    func toJSON() -> JSONValue
}

extension TokenizerModel {
    public func encode(word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int]) throws(TokenizerError) {
        tokenize(word: word, byteLevel: byteLevel, into: &ids)
    }

    /// The ids of one word given as a string (byte-level words are given as raw text, e.g. `" world"`).
    public func tokenize(_ word: String, byteLevel: Bool) -> [Int] {
        var word = word
        var ids: [Int] = []
        word.withUTF8 { tokenize(word: $0, byteLevel: byteLevel, into: &ids) }
        return ids
    }
}

/// Adds special tokens around encoded sequences (`<s> … </s>`).
public protocol PostProcessor: Sendable {
    /// How many tokens `process` adds to one sequence (or a pair) when adding special tokens.
    func addedTokenCount(isPair: Bool) -> Int
    /// The ids it inserts, each with the JSON field that gives it (checked against the vocabulary
    /// when a tokenizer is loaded: an id outside it would reach the model).
    var insertedIDs: [(field: String, id: Int)] { get }
    /// Processes the encodings of a sequence (and its pair); the results are concatenated.
    func process(_ encodings: [Encoding], addSpecialTokens: Bool) -> [Encoding]
    func toJSON() -> JSONValue
}

/// Turns tokens back into text.
public protocol TokenDecoder: Sendable {
    /// One decoding step over the token strings (the results are concatenated by `decode`).
    func decodeChain(_ tokens: [String]) -> [String]
    func toJSON() -> JSONValue
}

extension TokenDecoder {
    public func decode(_ tokens: [String]) -> String { decodeChain(tokens).joined() }
}

// MARK: - Encoding

/// The result of encoding: ids, and per id its type id, whether a post-processor added it,
/// and its attention mask (0 for padding).
public struct Encoding: Sendable, Equatable {
    public var ids: [Int]
    public var typeIDs: [Int]
    public var specialTokensMask: [Bool]
    public var attentionMask: [Int]

    public init(ids: [Int], typeID: Int = 0, special: Bool = false) {
        self.ids = ids
        typeIDs = Array(repeating: typeID, count: ids.count)
        specialTokensMask = Array(repeating: special, count: ids.count)
        attentionMask = Array(repeating: 1, count: ids.count)
    }

    public var count: Int { ids.count }

    /// Keeps `maxLength` ids: the first ones (`.right`, cutting on the right) or the last ones (`.left`).
    public mutating func truncate(to maxLength: Int, direction: Truncation.Direction) {
        guard maxLength < ids.count else { return }
        let range = direction == .right ? 0..<maxLength : (ids.count - maxLength)..<ids.count
        ids = Array(ids[range])
        typeIDs = Array(typeIDs[range])
        specialTokensMask = Array(specialTokensMask[range])
        attentionMask = Array(attentionMask[range])
    }

    public mutating func append(_ other: Encoding) {
        ids += other.ids
        typeIDs += other.typeIDs
        specialTokensMask += other.specialTokensMask
        attentionMask += other.attentionMask
    }

    public static func merged(_ encodings: [Encoding]) -> Encoding {
        guard var first = encodings.first else { return Encoding(ids: []) }
        for e in encodings.dropFirst() { first.append(e) }
        return first
    }

    mutating func setTypeIDs(_ typeID: Int) { typeIDs = Array(repeating: typeID, count: ids.count) }
}

// MARK: - Normalizers

/// `{"type": "Lowercase"}`: every scalar replaced by its full Unicode lowercase mapping, one
/// scalar at a time as `tokenizers`' `NormalizedString::lowercase` does (`char::to_lowercase`,
/// so no context-dependent final sigma: "ΣΑΣ" becomes "σασ").
public struct LowercaseNormalizer: Normalizer {
    public init() {}

    public func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.properties.changesWhenLowercased {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(s)
            }
        }
        return String(out)
    }

    /// Every scalar of a lowercase mapping takes the origin of the scalar it maps.
    public func normalize(_ text: inout NormalizedText) {
        var scalars: [Unicode.Scalar] = []
        var origins: [Int] = []
        scalars.reserveCapacity(text.count)
        origins.reserveCapacity(text.count)
        for (s, o) in zip(text.scalars, text.origins) {
            if s.properties.changesWhenLowercased {
                for l in s.properties.lowercaseMapping.unicodeScalars {
                    scalars.append(l)
                    origins.append(o)
                }
            } else {
                scalars.append(s)
                origins.append(o)
            }
        }
        text.scalars = scalars
        text.origins = origins
    }

    public func toJSON() -> JSONValue { .object(["type": .string("Lowercase")]) }
}

/// `{"type": "NFC" | "NFD" | "NFKC" | "NFKD"}`: Unicode normalization as `tokenizers` does it
/// (`UnicodeForms`: its Unicode 11.0 tables, its alignments).
public struct UnicodeNormalizer: Normalizer {
    public typealias Form = UnicodeForms.Form
    public var form: Form

    public init(_ form: Form) { self.form = form }

    public func normalize(_ text: String) -> String {
        UnicodeForms.normalize(text, form: form)
    }

    public func normalize(_ text: inout NormalizedText) {
        if text.scalars.allSatisfy({ $0.isASCII }) { return }
        text.transform(UnicodeForms.normalize(text.scalars, form: form))
    }

    public func toJSON() -> JSONValue { .object(["type": .string(form.rawValue)]) }
}

/// `{"type": "Sequence", "normalizers": [...]}`.
public struct SequenceNormalizer: Normalizer {
    public var normalizers: [any Normalizer]

    public init(_ normalizers: [any Normalizer]) { self.normalizers = normalizers }

    /// With origin-tracking members the text is converted to a `NormalizedText` once, not once
    /// per member (each member gives the same scalars either way).
    public func normalize(_ text: String) -> String {
        guard normalizers.contains(where: { $0 is any OriginTrackingNormalizer }) else {
            return normalizers.reduce(text) { $1.normalize($0) }
        }
        var t = NormalizedText(text)
        normalize(&t)
        return t.string
    }

    public func normalize(_ text: inout NormalizedText) {
        for n in normalizers { n.normalize(&text) }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Sequence"), "normalizers": .array(normalizers.map { $0.toJSON() })])
    }
}

// MARK: - Pre-tokenizers

/// `{"type": "ByteLevel"}`: optionally prepends a space, splits with the GPT-2 regex
/// (`use_regex`), and makes every byte a symbol of the byte-level alphabet. `trim_offsets` only
/// concerns offsets, which PrecisText does not compute; it is kept for the JSON form.
public struct ByteLevelPreTokenizer: PreTokenizer {
    public var addPrefixSpace: Bool
    public var trimOffsets: Bool
    public var useRegex: Bool

    public init(addPrefixSpace: Bool = false, trimOffsets: Bool = true, useRegex: Bool = true) {
        self.addPrefixSpace = addPrefixSpace
        self.trimOffsets = trimOffsets
        self.useRegex = useRegex
    }

    public var producesByteLevelWords: Bool { true }

    @inline(__always)
    public func forEachWord(in text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard !text.isEmpty else { return }
        if addPrefixSpace && text[0] != 0x20 {
            var spaced = [UInt8](repeating: 0x20, count: text.count + 1)
            spaced.withUnsafeMutableBufferPointer { dst in
                _ = UnsafeMutableBufferPointer(rebasing: dst[1...]).initialize(from: text)
            }
            spaced.withUnsafeBufferPointer { split($0, body) }
        } else {
            split(text, body)
        }
    }

    @inline(__always)
    func split(_ text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        if useRegex {
            GPT2Split.forEachPiece(text) { start, end in
                body(UnsafeBufferPointer(rebasing: text[start..<end]))
            }
        } else {
            body(text)
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(addPrefixSpace),
                 "trim_offsets": .bool(trimOffsets), "use_regex": .bool(useRegex)])
    }
}

// MARK: - Post-processors

/// `{"type": "RobertaProcessing"}`: `<s> A </s>` and `<s> A </s> </s> B </s>`, every type id 0.
public struct RobertaProcessing: PostProcessor {
    public var sep: (token: String, id: Int)
    public var cls: (token: String, id: Int)
    public var insertedIDs: [(field: String, id: Int)] { [("sep", sep.id), ("cls", cls.id)] }
    public var trimOffsets: Bool
    public var addPrefixSpace: Bool

    public init(sep: (String, Int) = ("</s>", 2), cls: (String, Int) = ("<s>", 0),
                trimOffsets: Bool = true, addPrefixSpace: Bool = true) {
        self.sep = (sep.0, sep.1)
        self.cls = (cls.0, cls.1)
        self.trimOffsets = trimOffsets
        self.addPrefixSpace = addPrefixSpace
    }

    public func addedTokenCount(isPair: Bool) -> Int { isPair ? 4 : 2 }

    public func process(_ encodings: [Encoding], addSpecialTokens: Bool) -> [Encoding] {
        var encodings = encodings
        for i in encodings.indices { encodings[i].setTypeIDs(0) }
        guard addSpecialTokens else { return encodings }
        return encodings.enumerated().map { i, e in
            var out = Encoding(ids: [i == 0 ? cls.id : sep.id], special: true)
            out.append(e)
            out.append(Encoding(ids: [sep.id], special: true))
            return out
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("RobertaProcessing"),
                 "sep": .array([.string(sep.token), .int(sep.id)]),
                 "cls": .array([.string(cls.token), .int(cls.id)]),
                 "trim_offsets": .bool(trimOffsets), "add_prefix_space": .bool(addPrefixSpace)])
    }
}

/// `{"type": "BertProcessing"}`: `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` (B with type id 1).
public struct BertProcessing: PostProcessor {
    public var sep: (token: String, id: Int)
    public var cls: (token: String, id: Int)
    public var insertedIDs: [(field: String, id: Int)] { [("sep", sep.id), ("cls", cls.id)] }

    public init(sep: (String, Int) = ("[SEP]", 102), cls: (String, Int) = ("[CLS]", 101)) {
        self.sep = (sep.0, sep.1)
        self.cls = (cls.0, cls.1)
    }

    public func addedTokenCount(isPair: Bool) -> Int { isPair ? 3 : 2 }

    public func process(_ encodings: [Encoding], addSpecialTokens: Bool) -> [Encoding] {
        guard addSpecialTokens else { return encodings }
        return encodings.enumerated().map { i, e in
            if i == 0 {
                var out = Encoding(ids: [cls.id], typeID: 0, special: true)
                out.append(e)
                out.append(Encoding(ids: [sep.id], typeID: 0, special: true))
                return out
            }
            var out = e
            out.append(Encoding(ids: [sep.id], typeID: 1, special: true))
            return out
        }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("BertProcessing"),
                 "sep": .array([.string(sep.token), .int(sep.id)]),
                 "cls": .array([.string(cls.token), .int(cls.id)])])
    }
}

/// `{"type": "TemplateProcessing"}`: templates such as `<s> $A </s>` and `<s> $A </s> $B:1 </s>:1`.
public struct TemplateProcessing: PostProcessor {
    public var insertedIDs: [(field: String, id: Int)] {
        specialTokens.values.sorted { $0.id < $1.id }.flatMap { t in t.ids.map { ("special_tokens[\"\(t.id)\"].ids", $0) } }
    }
    public enum Piece: Sendable, Equatable {
        /// `$A` (0) or `$B` (1) with a type id.
        case sequence(index: Int, typeID: Int)
        /// A special token (a key of `specialTokens`) with a type id.
        case specialToken(id: String, typeID: Int)
    }

    public struct SpecialToken: Sendable, Equatable {
        public var id: String
        public var ids: [Int]
        public var tokens: [String]
        public init(id: String, ids: [Int], tokens: [String]) {
            self.id = id
            self.ids = ids
            self.tokens = tokens
        }
    }

    public var single: [Piece]
    public var pair: [Piece]
    public var specialTokens: [String: SpecialToken]

    public init(single: [Piece], pair: [Piece], specialTokens: [SpecialToken]) {
        self.single = single
        self.pair = pair
        self.specialTokens = Dictionary(specialTokens.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
    }

    public func addedTokenCount(isPair: Bool) -> Int {
        (isPair ? pair : single).reduce(0) { n, piece in
            if case let .specialToken(id, _) = piece { return n + (specialTokens[id]?.ids.count ?? 0) }
            return n
        }
    }

    public func process(_ encodings: [Encoding], addSpecialTokens: Bool) -> [Encoding] {
        let template = encodings.count > 1 ? pair : single
        var out: [Encoding] = []
        for piece in template {
            switch piece {
            case let .sequence(index, typeID):
                guard index < encodings.count else { continue }
                var e = encodings[index]
                e.setTypeIDs(typeID)
                out.append(e)
            case let .specialToken(id, typeID):
                if addSpecialTokens, let tok = specialTokens[id] {
                    out.append(Encoding(ids: tok.ids, typeID: typeID, special: true))
                }
            }
        }
        return out
    }

    static func pieceJSON(_ piece: Piece) -> JSONValue {
        switch piece {
        case let .sequence(index, typeID):
            return .object(["Sequence": .object(["id": .string(index == 0 ? "A" : "B"), "type_id": .int(typeID)])])
        case let .specialToken(id, typeID):
            return .object(["SpecialToken": .object(["id": .string(id), "type_id": .int(typeID)])])
        }
    }

    public func toJSON() -> JSONValue {
        let specials = specialTokens.keys.sorted().map { key -> (key: String, value: JSONValue) in
            let t = specialTokens[key]!
            return (key: key, value: .object(["id": .string(t.id), "ids": .array(t.ids.map { .int($0) }),
                                              "tokens": .array(t.tokens.map { .string($0) })]))
        }
        return .object(["type": .string("TemplateProcessing"),
                        "single": .array(single.map(Self.pieceJSON)),
                        "pair": .array(pair.map(Self.pieceJSON)),
                        "special_tokens": .object(JSONObject(specials))])
    }
}

/// `{"type": "ByteLevel"}` as a post-processor: only trims offsets, so ids pass through.
public struct ByteLevelPostProcessor: PostProcessor {
    public var insertedIDs: [(field: String, id: Int)] { [] }
    public var addPrefixSpace: Bool
    public var trimOffsets: Bool
    public var useRegex: Bool

    public init(addPrefixSpace: Bool = true, trimOffsets: Bool = true, useRegex: Bool = true) {
        self.addPrefixSpace = addPrefixSpace
        self.trimOffsets = trimOffsets
        self.useRegex = useRegex
    }

    public func addedTokenCount(isPair: Bool) -> Int { 0 }
    public func process(_ encodings: [Encoding], addSpecialTokens: Bool) -> [Encoding] { encodings }

    public func toJSON() -> JSONValue {
        .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(addPrefixSpace),
                 "trim_offsets": .bool(trimOffsets), "use_regex": .bool(useRegex)])
    }
}

/// `{"type": "Sequence", "processors": [...]}`.
public struct SequencePostProcessor: PostProcessor {
    public var processors: [any PostProcessor]
    public var insertedIDs: [(field: String, id: Int)] {
        processors.enumerated().flatMap { i, p in p.insertedIDs.map { ("processors[\(i)].\($0.field)", $0.id) } }
    }

    public init(_ processors: [any PostProcessor]) { self.processors = processors }

    public func addedTokenCount(isPair: Bool) -> Int {
        processors.reduce(0) { $0 + $1.addedTokenCount(isPair: isPair) }
    }

    public func process(_ encodings: [Encoding], addSpecialTokens: Bool) -> [Encoding] {
        processors.reduce(encodings) { $1.process($0, addSpecialTokens: addSpecialTokens) }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Sequence"), "processors": .array(processors.map { $0.toJSON() })])
    }
}

// MARK: - Decoders

/// `{"type": "ByteLevel"}` as a decoder: maps every byte-level character back to its byte
/// (a token with any other character contributes its UTF-8 bytes as they are) and decodes the
/// bytes as UTF-8, replacing invalid sequences with U+FFFD.
public struct ByteLevelDecoder: TokenDecoder {
    public var addPrefixSpace: Bool
    public var trimOffsets: Bool
    public var useRegex: Bool

    public init(addPrefixSpace: Bool = true, trimOffsets: Bool = true, useRegex: Bool = true) {
        self.addPrefixSpace = addPrefixSpace
        self.trimOffsets = trimOffsets
        self.useRegex = useRegex
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for token in tokens where !ByteLevelAlphabet.appendDecoded(token, to: &bytes) {
            bytes.append(contentsOf: token.utf8)
        }
        return [String(decoding: bytes, as: UTF8.self)]
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(addPrefixSpace),
                 "trim_offsets": .bool(trimOffsets), "use_regex": .bool(useRegex)])
    }
}

/// `{"type": "Sequence", "decoders": [...]}`.
public struct SequenceDecoder: TokenDecoder {
    public var decoders: [any TokenDecoder]

    public init(_ decoders: [any TokenDecoder]) { self.decoders = decoders }

    public func decodeChain(_ tokens: [String]) -> [String] {
        decoders.reduce(tokens) { $1.decodeChain($0) }
    }

    public func toJSON() -> JSONValue {
        .object(["type": .string("Sequence"), "decoders": .array(decoders.map { $0.toJSON() })])
    }
}

// MARK: - Truncation and padding

/// `"truncation"` of `tokenizer.json`: applied by `Tokenizer.encode` before the post-processor,
/// leaving room for the special tokens it adds.
public struct Truncation: Sendable, Equatable {
    public enum Direction: String, Sendable { case left = "Left", right = "Right" }
    public enum Strategy: String, Sendable { case longestFirst = "LongestFirst", onlyFirst = "OnlyFirst", onlySecond = "OnlySecond" }

    public var maxLength: Int
    public var strategy: Strategy
    public var direction: Direction
    /// Kept for the JSON form; overflowing windows are not produced.
    public var stride: Int

    public init(maxLength: Int, strategy: Strategy = .longestFirst, direction: Direction = .right, stride: Int = 0) {
        self.maxLength = maxLength
        self.strategy = strategy
        self.direction = direction
        self.stride = stride
    }

    public func toJSON() -> JSONValue {
        .object(["direction": .string(direction.rawValue), "max_length": .int(maxLength),
                 "strategy": .string(strategy.rawValue), "stride": .int(stride)])
    }

    /// Truncates a sequence (and its pair) to `maxLength` ids in total, as `tokenizers` does.
    func apply(_ first: inout Encoding, _ second: inout Encoding?, maxLength: Int) throws(TokenizerError) {
        if maxLength == 0 {
            first.truncate(to: 0, direction: direction)
            second?.truncate(to: 0, direction: direction)
            return
        }
        let total = first.count + (second?.count ?? 0)
        guard total > maxLength else { return }
        let toRemove = total - maxLength
        switch strategy {
        case .longestFirst:
            if var other = second {
                var n1 = first.count, n2 = other.count
                let swap = n1 > n2
                if swap { (n1, n2) = (n2, n1) }
                n2 = n1 > maxLength ? n1 : max(n1, maxLength - n1)
                if n1 + n2 > maxLength {
                    n1 = maxLength / 2
                    n2 = n1 + maxLength % 2
                }
                if swap { (n1, n2) = (n2, n1) }
                first.truncate(to: n1, direction: direction)
                other.truncate(to: n2, direction: direction)
                second = other
            } else {
                first.truncate(to: total - toRemove, direction: direction)
            }
        case .onlyFirst, .onlySecond:
            if strategy == .onlyFirst {
                guard first.count > toRemove else {
                    throw .truncation(message: "sequence to truncate too short to respect max_length \(maxLength)")
                }
                first.truncate(to: first.count - toRemove, direction: direction)
            } else {
                guard var other = second else { throw .truncation(message: "second sequence not provided") }
                guard other.count > toRemove else {
                    throw .truncation(message: "sequence to truncate too short to respect max_length \(maxLength)")
                }
                other.truncate(to: other.count - toRemove, direction: direction)
                second = other
            }
        }
    }
}

/// `"padding"` of `tokenizer.json`: pads a single encoding to a fixed length (batch-longest
/// padding leaves a single sequence as it is) and/or to a multiple of `padToMultipleOf`.
public struct Padding: Sendable, Equatable {
    public enum Direction: String, Sendable { case left = "Left", right = "Right" }

    /// A fixed length, or `nil` for "BatchLongest".
    public var fixedLength: Int?
    public var direction: Direction
    public var padToMultipleOf: Int?
    public var padID: Int
    public var padTypeID: Int
    public var padToken: String

    public init(fixedLength: Int? = nil, direction: Direction = .right, padToMultipleOf: Int? = nil,
                padID: Int = 0, padTypeID: Int = 0, padToken: String = "[PAD]") {
        self.fixedLength = fixedLength
        self.direction = direction
        self.padToMultipleOf = padToMultipleOf
        self.padID = padID
        self.padTypeID = padTypeID
        self.padToken = padToken
    }

    func apply(_ e: inout Encoding) {
        var target = fixedLength ?? e.count
        if let m = padToMultipleOf, m > 0, target % m != 0 { target += m - target % m }
        guard target > e.count else { return }
        let n = target - e.count
        var pad = Encoding(ids: Array(repeating: padID, count: n), typeID: padTypeID, special: true)
        pad.attentionMask = Array(repeating: 0, count: n)
        if direction == .right {
            e.append(pad)
        } else {
            pad.append(e)
            e = pad
        }
    }

    public func toJSON() -> JSONValue {
        .object(["strategy": fixedLength.map { .object(["Fixed": .int($0)]) } ?? .string("BatchLongest"),
                 "direction": .string(direction.rawValue),
                 "pad_to_multiple_of": padToMultipleOf.map { .int($0) } ?? .null,
                 "pad_id": .int(padID), "pad_type_id": .int(padTypeID), "pad_token": .string(padToken)])
    }
}
