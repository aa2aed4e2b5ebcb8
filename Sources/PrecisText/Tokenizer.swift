import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A Hugging Face-compatible tokenizer: normalizer → pre-tokenizer → model → post-processor,
/// with added/special tokens found before everything else, truncation, padding, and a
/// decoder for the way back. `encode` gives the ids `tokenizers`' `Tokenizer.encode` gives.
public struct Tokenizer: Sendable {
    public var normalizer: (any Normalizer)? {
        didSet { addedVocabulary.refreshNormalized(normalizer) }
    }
    public var preTokenizer: (any PreTokenizer)?
    public var model: any TokenizerModel
    public var postProcessor: (any PostProcessor)?
    public var decoder: (any TokenDecoder)?
    public var truncation: Truncation?
    public var padding: Padding?
    public private(set) var addedVocabulary = AddedVocabulary()

    public init(model: any TokenizerModel, normalizer: (any Normalizer)? = nil, preTokenizer: (any PreTokenizer)? = nil,
                postProcessor: (any PostProcessor)? = nil, decoder: (any TokenDecoder)? = nil,
                addedTokens: [AddedToken] = [], truncation: Truncation? = nil, padding: Padding? = nil) {
        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.truncation = truncation
        self.padding = padding
        addedVocabulary.add(addedTokens, model: model, normalizer: normalizer)
    }

    /// Adds tokens (ids after the model's vocabulary unless the model has them); returns how
    /// many were added or changed.
    @discardableResult
    public mutating func addTokens(_ tokens: [AddedToken]) -> Int {
        addedVocabulary.add(tokens, model: model, normalizer: normalizer)
    }

    /// Adds tokens as special tokens.
    @discardableResult
    public mutating func addSpecialTokens(_ tokens: [AddedToken]) -> Int {
        addTokens(tokens.map { var t = $0; t.special = true; return t })
    }

    // MARK: Vocabulary

    /// The id of a token (added tokens first, then the model).
    public func tokenToID(_ token: String) -> Int? {
        addedVocabulary.idsByContent[token] ?? model.tokenToID(token)
    }

    /// The token of an id (added tokens first, then the model).
    public func idToToken(_ id: Int) -> String? {
        addedVocabulary.tokensByID[id]?.content ?? model.idToToken(id)
    }

    /// The number of distinct tokens, added tokens included.
    public var vocabSize: Int {
        model.vocabSize + addedVocabulary.idsByContent.keys.filter { model.tokenToID($0) == nil }.count
    }

    // MARK: Encoding

    /// Encodes a text (and optionally its pair) as `tokenizers`' `Tokenizer.encode` does:
    /// special tokens are added by the post-processor unless `addSpecialTokens` is false, then
    /// the tokenizer's truncation and padding apply. Only truncation can fail.
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true) throws(TokenizerError) -> Encoding {
        var first = Encoding(ids: try ids(of: text, strict: true), typeID: 0)
        var second: Encoding? = nil
        if let pair { second = Encoding(ids: try ids(of: pair, strict: true), typeID: 1) }
        if let truncation {
            let added = postProcessor?.addedTokenCount(isPair: second != nil) ?? 0
            if addSpecialTokens && added > 0 {
                // `tokenizers` computes max_length - added in usize: a max_length below the number
                // of added tokens wraps around and disables truncation.
                if truncation.maxLength >= added {
                    try truncation.apply(&first, &second, maxLength: truncation.maxLength - added)
                }
            } else {
                try truncation.apply(&first, &second, maxLength: truncation.maxLength)
            }
        }
        let parts = second.map { [first, $0] } ?? [first]
        var encoding = Encoding.merged(postProcessor?.process(parts, addSpecialTokens: addSpecialTokens) ?? parts)
        padding?.apply(&encoding)
        return encoding
    }

    /// The ids of one sequence, before truncation and post-processing. Characters a Unigram
    /// model without `unk_id` cannot encode are left out (`encode` reports them).
    public func ids(of text: String) -> [Int] {
        (try? ids(of: text, strict: false)) ?? []
    }

    /// With `strict`, what the model cannot encode is an error; otherwise it is left out.
    func ids(of text: String, strict: Bool) throws(TokenizerError) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        var text = text
        var sink = WordSink(strict: strict)
        text.withUTF8 { appendIDs(of: $0, to: &ids, &sink) }
        if let failure = sink.failure { throw failure }
        return ids
    }

    /// Hands words to the model, keeping the first failure of a strict encoding.
    struct WordSink {
        let strict: Bool
        var failure: TokenizerError? = nil

        mutating func tokenize(_ model: any TokenizerModel, _ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, into ids: inout [Int]) {
            guard failure == nil else { return }
            guard strict else { return model.tokenize(word: word, byteLevel: byteLevel, into: &ids) }
            do {
                try model.encode(word: word, byteLevel: byteLevel, into: &ids)
            } catch {
                failure = error
            }
        }
    }

    func appendIDs(of text: UnsafeBufferPointer<UInt8>, to ids: inout [Int], _ sink: inout WordSink) {
        if let preTokenizer, preTokenizer.needsOrigins {
            return appendIDsWithOrigins(of: text, preTokenizer: preTokenizer, to: &ids, &sink)
        }
        addedVocabulary.split(text, matcher: addedVocabulary.rawMatcher) { start, end, id in
            if let id { ids.append(id); return }
            let piece = UnsafeBufferPointer(rebasing: text[start..<end])
            if let normalizer {
                var normalized = normalizer.normalize(String(decoding: piece, as: UTF8.self))
                normalized.withUTF8 { appendNormalizedIDs(of: $0, to: &ids, &sink) }
            } else {
                appendNormalizedIDs(of: piece, to: &ids, &sink)
            }
        }
    }

    func appendNormalizedIDs(of text: UnsafeBufferPointer<UInt8>, to ids: inout [Int], _ sink: inout WordSink) {
        addedVocabulary.split(text, matcher: addedVocabulary.normalizedMatcher) { start, end, id in
            if let id { ids.append(id); return }
            let piece = UnsafeBufferPointer(rebasing: text[start..<end])
            if let preTokenizer {
                let byteLevel = preTokenizer.producesByteLevelWords
                preTokenizer.forEachWord(in: piece) { word in
                    sink.tokenize(model, word, byteLevel: byteLevel, into: &ids)
                }
            } else {
                sink.tokenize(model, piece, byteLevel: false, into: &ids)
            }
        }
    }

    /// The same pipeline keeping where every character came from (`NormalizedText`), for
    /// pre-tokenizers that need it: each piece between added tokens starts where it starts in
    /// the input, the normalizer carries the origins along, and each piece between normalized
    /// added tokens starts where its first character came from.
    func appendIDsWithOrigins(of text: UnsafeBufferPointer<UInt8>, preTokenizer: any PreTokenizer,
                              to ids: inout [Int], _ sink: inout WordSink) {
        let byteLevel = preTokenizer.producesByteLevelWords
        addedVocabulary.split(text, matcher: addedVocabulary.rawMatcher) { start, end, id in
            if let id { ids.append(id); return }
            var piece = NormalizedText(utf8: UnsafeBufferPointer(rebasing: text[start..<end]), offset: start)
            normalizer?.normalize(&piece)
            let bytes = piece.utf8
            let scalarAt = piece.scalarIndexAtByte
            bytes.withUnsafeBufferPointer { buffer in
                addedVocabulary.split(buffer, matcher: addedVocabulary.normalizedMatcher) { s, e, id in
                    if let id { ids.append(id); return }
                    preTokenizer.forEachWord(in: piece.slice(scalarAt[s]..<scalarAt[e])) { word in
                        word.utf8.withUnsafeBufferPointer { sink.tokenize(model, $0, byteLevel: byteLevel, into: &ids) }
                    }
                }
            }
        }
    }

    // MARK: Decoding

    /// Decodes ids as `tokenizers`' `Tokenizer.decode`: unknown ids are dropped, special tokens
    /// too with `skipSpecialTokens`; without a decoder the tokens are joined with spaces.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = addedVocabulary.decodingString(id) ?? model.idToToken(id) else { continue }
            if skipSpecialTokens && addedVocabulary.specialContents.contains(token) { continue }
            tokens.append(token)
        }
        if let decoder { return decoder.decode(tokens) }
        return tokens.joined(separator: " ")
    }

    // MARK: tokenizer.json

    /// The `tokenizer.json` form.
    public func toJSON() -> JSONValue {
        .object([
            "version": .string("1.0"),
            "truncation": truncation?.toJSON() ?? .null,
            "padding": padding?.toJSON() ?? .null,
            "added_tokens": addedVocabulary.toJSON(),
            "normalizer": normalizer?.toJSON() ?? .null,
            "pre_tokenizer": preTokenizer?.toJSON() ?? .null,
            "post_processor": postProcessor?.toJSON() ?? .null,
            "decoder": decoder?.toJSON() ?? .null,
            "model": model.toJSON(),
        ])
    }

    /// `tokenizer.json`'s bytes (pretty-printed, as `tokenizers` saves it).
    public func jsonData(pretty: Bool = true) -> Data {
        let json = toJSON()
        return Data((pretty ? json.prettyString() : json.compactString()).utf8)
    }

    /// Writes `tokenizer.json` through a temporary file renamed over `path`, so a file already there
    /// is never left half-written (callers that must survive a power cut too write `jsonData()` with
    /// PrecisCore's `AtomicFile`, which also fsyncs).
    public func save(to path: String, pretty: Bool = true) throws(TokenizerError) {
        do {
            try jsonData(pretty: pretty).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .unwritableFile(file: path, reason: error.localizedDescription)
        }
    }

    /// The most bytes a tokenizer file may have (`init(contentsOfFile:)` refuses a larger one).
    public static var maxFileBytes: Int { FileBytes.limit }

    /// Loads a `tokenizer.json` file.
    public init(contentsOfFile path: String) throws(TokenizerError) {
        let bytes = try FileBytes.read(path)
        let json = try bytes.withUnsafeBufferPointer { (b) throws(TokenizerError) -> JSONValue in
            try JSONValue.parse(utf8: b, file: path)
        }
        try self.init(json: json, source: path)
    }

    /// Loads a `tokenizer.json` document; `source` names it in errors.
    public init(jsonString: String, source: String = "<string>") throws(TokenizerError) {
        try self.init(json: try JSONValue.parse(jsonString, file: source), source: source)
    }

    /// Builds a tokenizer from the parsed `tokenizer.json`; `source` names it in errors.
    public init(json: JSONValue, source: String) throws(TokenizerError) {
        let r = FieldReader(file: source)
        let root = try r.object(json, "the document")
        if let version = root["version"], !version.isNull {
            guard version.stringValue == "1.0" else {
                throw .unsupported(file: source, field: "version", value: version.compactString(), supported: ["\"1.0\""])
            }
        }
        guard let modelJSON = root["model"] else { throw .missingField(file: source, field: "model") }
        let model = try TokenizerComponents.model(modelJSON, r)
        let normalizer = try TokenizerComponents.normalizer(root["normalizer"] ?? .null, "normalizer", r)
        let preTokenizer = try TokenizerComponents.preTokenizer(root["pre_tokenizer"] ?? .null, "pre_tokenizer", r)
        let postProcessor = try TokenizerComponents.postProcessor(root["post_processor"] ?? .null, "post_processor", r)
        let decoder = try TokenizerComponents.decoder(root["decoder"] ?? .null, "decoder", r)
        let truncation = try TokenizerComponents.truncation(root["truncation"] ?? .null, r)
        let padding = try TokenizerComponents.padding(root["padding"] ?? .null, r)
        var added: [AddedToken] = []
        if let list = root["added_tokens"], !list.isNull {
            for (i, item) in try r.array(list, "added_tokens").enumerated() {
                added.append(try TokenizerComponents.addedToken(item, "added_tokens[\(i)]", r))
            }
        }
        self.init(model: model, normalizer: normalizer, preTokenizer: preTokenizer, postProcessor: postProcessor,
                  decoder: decoder, addedTokens: added, truncation: truncation, padding: padding)
        // Ids the file states must be the ids the tokens get, and ids the post-processor inserts
        // must exist: either would otherwise put ids the model never saw (or cannot index) into a batch.
        if let list = root["added_tokens"], !list.isNull {
            for (i, item) in try r.array(list, "added_tokens").enumerated() {
                guard case .object(let o) = item, let stated = o["id"], !stated.isNull else { continue }
                let content = try r.string(try r.object(item, "added_tokens[\(i)]"), "content", "added_tokens[\(i)]")
                let got = tokenToID(content)
                guard let want = stated.intValue, want == got else {
                    throw .invalidField(file: source, field: "added_tokens[\(i)].id",
                                        message: "\(stated.compactString()), but this vocabulary gives '\(content)' the id \(got.map(String.init) ?? "none")")
                }
            }
        }
        for (field, id) in postProcessor?.insertedIDs ?? [] where idToToken(id) == nil {
            throw .invalidField(file: source, field: "post_processor.\(field)",
                                message: "id \(id) names no token of the vocabulary (\(vocabSize) tokens)")
        }
    }

    // MARK: vocab.json + merges.txt

    /// A byte-level BPE tokenizer from the classic `vocab.json` + `merges.txt` pair: ByteLevel
    /// pre-tokenizer and decoder, the given added tokens and post-processor.
    public static func byteLevelBPE(vocabFile: String, mergesFile: String, addPrefixSpace: Bool = false,
                                    addedTokens: [AddedToken] = [], postProcessor: (any PostProcessor)? = nil) throws(TokenizerError) -> Tokenizer {
        let vocab = try ClassicFiles.readVocab(vocabFile)
        let merges = try ClassicFiles.readMerges(mergesFile)
        let model = try BPEModel(vocab: vocab, merges: merges.pairs, unkToken: nil, continuingSubwordPrefix: nil,
                                 endOfWordSuffix: nil, fuseUnk: false, byteFallback: false, ignoreMerges: false,
                                 cacheCapacity: BPEModel.defaultCacheCapacity, source: mergesFile,
                                 mergesField: { "line \(merges.lines[$0])" })
        return Tokenizer(model: model, preTokenizer: ByteLevelPreTokenizer(addPrefixSpace: addPrefixSpace),
                         postProcessor: postProcessor, decoder: ByteLevelDecoder(), addedTokens: addedTokens)
    }

    /// A RoBERTa/BART tokenizer from `vocab.json` + `merges.txt`, as transformers'
    /// `RobertaTokenizer.from_pretrained` builds it: special tokens `<s>`, `</s>`, `<unk>`,
    /// `<pad>`, `<mask>` (ids from the vocabulary, or new ids after it) and `RobertaProcessing`.
    /// `maskLStrip` makes `<mask>` take the space before it (BART's and RoBERTa's published
    /// `tokenizer.json` files do; transformers 5 building from the two files does not).
    public static func roberta(vocabFile: String, mergesFile: String, addPrefixSpace: Bool = false,
                               maskLStrip: Bool = false) throws(TokenizerError) -> Tokenizer {
        let specials = [AddedToken("<s>", special: true), AddedToken("</s>", special: true),
                        AddedToken("<unk>", special: true), AddedToken("<pad>", special: true),
                        AddedToken("<mask>", special: true, lstrip: maskLStrip)]
        var tokenizer = try byteLevelBPE(vocabFile: vocabFile, mergesFile: mergesFile, addPrefixSpace: addPrefixSpace,
                                         addedTokens: specials)
        tokenizer.postProcessor = RobertaProcessing(sep: ("</s>", tokenizer.tokenToID("</s>")!),
                                                    cls: ("<s>", tokenizer.tokenToID("<s>")!),
                                                    trimOffsets: true, addPrefixSpace: addPrefixSpace)
        return tokenizer
    }
}

// MARK: - Reading files

/// Tokenizer and SentencePiece files, read whole once checked: a regular file (opening a FIFO for
/// reading would wait for a writer for ever) of at most `limit` bytes (the largest tokenizer.json
/// published is a few tens of MB; a link to /dev/zero would otherwise fill memory). PrecisText
/// depends on no other module, so it checks here what `SmallFile` checks in PrecisCore.
enum FileBytes {
    static let limit = 512 << 20

    /// A descriptor of `path` once it is known to be a regular file, and the file's size then.
    /// Opened non-blocking, so that opening a FIFO returns at once (fstat then refuses it); reads of
    /// a regular file never block.
    static func openRegular(_ path: String) throws(TokenizerError) -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw .unreadableFile(file: path, reason: e == ENOENT || e == ENOTDIR ? "no such file" : String(cString: strerror(e)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw .unreadableFile(file: path, reason: why)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .unreadableFile(file: path, reason: "not a regular file")
        }
        return (fd, Int(st.st_size))
    }

    static func read(_ path: String) throws(TokenizerError) -> [UInt8] {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        guard size <= limit else {
            throw .unreadableFile(file: path, reason: "larger than the \(limit) bytes a tokenizer file may have")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .unreadableFile(file: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }    // shrank since fstat: what is there
            done += n
        }
        if done < bytes.count { bytes.removeLast(bytes.count - done) }
        return bytes
    }
}

enum ClassicFiles {
    /// `vocab.json`: token → id (entries whose value is not a number are ignored, as in `tokenizers`).
    static func readVocab(_ path: String) throws(TokenizerError) -> [String: Int] {
        let bytes = try FileBytes.read(path)
        let json = try bytes.withUnsafeBufferPointer { (b) throws(TokenizerError) -> JSONValue in
            try JSONValue.parse(utf8: b, file: path)
        }
        guard let object = json.objectValue else {
            throw .invalidField(file: path, field: "the document", message: "expected an object of token → id, found \(json.typeName)")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(object.count)
        for (token, value) in object {
            guard case .int = value else { continue }
            guard let id = value.intValue, id >= 0, id <= Int(UInt32.max) else {
                throw .invalidField(file: path, field: JSONPath.key(token), message: "expected a non-negative integer id")
            }
            vocab[token] = id
        }
        return vocab
    }

    /// `merges.txt`: one `left right` pair per line; `#version` lines are skipped.
    static func readMerges(_ path: String) throws(TokenizerError) -> (pairs: [(String, String)], lines: [Int]) {
        let bytes = try FileBytes.read(path)
        var pairs: [(String, String)] = []
        var lines: [Int] = []
        try bytes.withUnsafeBufferPointer { (buffer) throws(TokenizerError) in
            try LineReader.forEachLine(buffer) { (line, number) throws(TokenizerError) in
                guard UTF8Validation.isValid(line) else { throw .invalidUTF8(file: path, line: number) }
                let text = String(decoding: line, as: UTF8.self)
                if text.hasPrefix("#version") { return }
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw .invalidMerges(file: path, line: number,
                                         message: "expected two tokens separated by one space, found \(JSONValue.string(text).compactString())")
                }
                pairs.append((String(parts[0]), String(parts[1])))
                lines.append(number)
            }
        }
        return (pairs, lines)
    }
}

/// Splits a buffer into lines on LF, dropping one trailing CR per line, with 1-based numbers.
/// A final line without LF counts; an empty final line after the last LF does not.
public enum LineReader {
    public static func forEachLine<E: Error>(_ buffer: UnsafeBufferPointer<UInt8>,
                                             _ body: (UnsafeBufferPointer<UInt8>, Int) throws(E) -> Void) throws(E) {
        var start = 0
        var number = 0
        let n = buffer.count
        guard let base = buffer.baseAddress else { return }
        while start < n {
            number += 1
            var end: Int
            if let p = memchr(base + start, 0x0A, n - start) {
                end = base.distance(to: p.assumingMemoryBound(to: UInt8.self))
            } else {
                end = n
            }
            let next = end + 1
            if end > start && buffer[end - 1] == 0x0D { end -= 1 }
            try body(UnsafeBufferPointer(rebasing: buffer[start..<end]), number)
            start = next
        }
    }
}

// MARK: - Reading tokenizer.json components

enum JSONPath {
    /// `name` as a path component: plain when it is an identifier, `["..."]` otherwise.
    static func key(_ name: String) -> String {
        JSONValue.string(name).compactString()
    }
}

/// Typed access to JSON fields with errors naming the file and the field.
struct FieldReader {
    let file: String

    func object(_ v: JSONValue, _ field: String) throws(TokenizerError) -> JSONObject {
        guard let o = v.objectValue else { throw .invalidField(file: file, field: field, message: "expected an object, found \(v.typeName)") }
        return o
    }

    func array(_ v: JSONValue, _ field: String) throws(TokenizerError) -> [JSONValue] {
        guard let a = v.arrayValue else { throw .invalidField(file: file, field: field, message: "expected an array, found \(v.typeName)") }
        return a
    }

    func string(_ o: JSONObject, _ key: String, _ path: String) throws(TokenizerError) -> String {
        guard let v = o[key] else { throw .missingField(file: file, field: "\(path).\(key)") }
        guard let s = v.stringValue else { throw .invalidField(file: file, field: "\(path).\(key)", message: "expected a string, found \(v.typeName)") }
        return s
    }

    func optionalString(_ o: JSONObject, _ key: String, _ path: String) throws(TokenizerError) -> String? {
        guard let v = o[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw .invalidField(file: file, field: "\(path).\(key)", message: "expected a string or null, found \(v.typeName)") }
        return s
    }

    func int(_ o: JSONObject, _ key: String, _ path: String, default value: Int? = nil) throws(TokenizerError) -> Int {
        guard let v = o[key], !v.isNull else {
            if let value { return value }
            throw .missingField(file: file, field: "\(path).\(key)")
        }
        guard let i = v.intValue else { throw .invalidField(file: file, field: "\(path).\(key)", message: "expected an integer, found \(v.typeName)") }
        return i
    }

    func requiredBool(_ o: JSONObject, _ key: String, _ path: String) throws(TokenizerError) -> Bool {
        guard let v = o[key] else { throw .missingField(file: file, field: "\(path).\(key)") }
        guard let b = v.boolValue else { throw .invalidField(file: file, field: "\(path).\(key)", message: "expected a boolean, found \(v.typeName)") }
        return b
    }

    func bool(_ o: JSONObject, _ key: String, _ path: String, default value: Bool) throws(TokenizerError) -> Bool {
        guard let v = o[key], !v.isNull else { return value }
        guard let b = v.boolValue else { throw .invalidField(file: file, field: "\(path).\(key)", message: "expected a boolean, found \(v.typeName)") }
        return b
    }

    /// The `"type"` of a component.
    func type(_ o: JSONObject, _ path: String) throws(TokenizerError) -> String {
        try string(o, "type", path)
    }

    func unsupported(_ path: String, _ type: String, _ supported: [String]) -> TokenizerError {
        .unsupported(file: file, field: "\(path).type", value: JSONValue.string(type).compactString(), supported: supported)
    }
}

enum TokenizerComponents {
    static let modelTypes = ["BPE", "Unigram"]
    static let normalizerTypes = ["Lowercase", "NFC", "NFD", "NFKC", "NFKD", "Nmt", "Precompiled", "Prepend", "Replace",
                                  "Sequence", "Strip"]
    static let preTokenizerTypes = ["ByteLevel", "Metaspace", "Sequence", "WhitespaceSplit"]
    static let postProcessorTypes = ["RobertaProcessing", "BertProcessing", "TemplateProcessing", "ByteLevel", "Sequence"]
    static let decoderTypes = ["ByteFallback", "ByteLevel", "Fuse", "Metaspace", "Replace", "Sequence", "Strip"]

    static func model(_ v: JSONValue, _ r: FieldReader) throws(TokenizerError) -> any TokenizerModel {
        let o = try r.object(v, "model")
        let type: String
        if o["type"] == nil {
            // Old files have untagged models: BPE is recognised by its merges, Unigram by its
            // list of [piece, score] pairs.
            if o["merges"] != nil {
                type = "BPE"
            } else if o["vocab"]?.arrayValue != nil {
                type = "Unigram"
            } else {
                throw .missingField(file: r.file, field: "model.type")
            }
        } else {
            type = try r.type(o, "model")
        }
        switch type {
        case "BPE": return try bpe(o, r)
        case "Unigram": return try unigram(o, r)
        default: throw r.unsupported("model", type, modelTypes)
        }
    }

    static func unigram(_ o: JSONObject, _ r: FieldReader) throws(TokenizerError) -> UnigramModel {
        guard let vocabJSON = o["vocab"] else { throw .missingField(file: r.file, field: "model.vocab") }
        let list = try r.array(vocabJSON, "model.vocab")
        var pieces: [(piece: String, score: Double)] = []
        pieces.reserveCapacity(list.count)
        for (i, item) in list.enumerated() {
            guard let pair = item.arrayValue, pair.count == 2, let piece = pair[0].stringValue, let score = pair[1].doubleValue else {
                throw .invalidField(file: r.file, field: "model.vocab[\(i)]",
                                    message: "expected a [piece, score] pair, found \(item.compactString())")
            }
            guard let parsed = SerdeFloat.reparse(score) else {
                throw .invalidField(file: r.file, field: "model.vocab[\(i)]", message: "the score is out of range")
            }
            pieces.append((piece, parsed))
        }
        var unkID: Int? = nil
        if let u = o["unk_id"], !u.isNull {
            guard case let .int(id) = u, id >= 0 else {
                throw .invalidField(file: r.file, field: "model.unk_id", message: "expected a non-negative integer or null, found \(u.compactString())")
            }
            unkID = id
        }
        let byteFallback = try r.bool(o, "byte_fallback", "model", default: false)
        do {
            return try UnigramModel(pieces: pieces, unkID: unkID, byteFallback: byteFallback)
        } catch {
            switch error {
            case .emptyVocabulary:
                throw .invalidField(file: r.file, field: "model.vocab", message: "the vocabulary is empty but unk_id is set")
            case let .unknownIDOutOfRange(id, count):
                throw .invalidField(file: r.file, field: "model.unk_id", message: "\(id) is outside the vocabulary (\(count) pieces)")
            }
        }
    }

    static func bpe(_ o: JSONObject, _ r: FieldReader) throws(TokenizerError) -> BPEModel {
        if let dropout = o["dropout"], !dropout.isNull {
            guard let d = dropout.doubleValue else {
                throw .invalidField(file: r.file, field: "model.dropout", message: "expected a number or null, found \(dropout.typeName)")
            }
            if d != 0 {
                throw .unsupported(file: r.file, field: "model.dropout", value: dropout.compactString(), supported: ["null", "0"])
            }
        }
        guard let vocabJSON = o["vocab"] else { throw .missingField(file: r.file, field: "model.vocab") }
        let vocabObject = try r.object(vocabJSON, "model.vocab")
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = value.intValue, id >= 0, id <= Int(UInt32.max) else {
                throw .invalidField(file: r.file, field: "model.vocab[\(JSONPath.key(token))]",
                                    message: "expected a non-negative integer id, found \(value.compactString())")
            }
            vocab[token] = id
        }
        guard let mergesJSON = o["merges"] else { throw .missingField(file: r.file, field: "model.merges") }
        var merges: [(String, String)] = []
        let list = try r.array(mergesJSON, "model.merges")
        merges.reserveCapacity(list.count)
        for (i, m) in list.enumerated() {
            switch m {
            case let .string(s):
                // Legacy form "left right".
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw .invalidField(file: r.file, field: "model.merges[\(i)]",
                                        message: "expected \"left right\" (two tokens separated by one space), found \(m.compactString())")
                }
                merges.append((String(parts[0]), String(parts[1])))
            case let .array(pair):
                guard pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue else {
                    throw .invalidField(file: r.file, field: "model.merges[\(i)]",
                                        message: "expected a pair of strings, found \(m.compactString())")
                }
                merges.append((a, b))
            default:
                throw .invalidField(file: r.file, field: "model.merges[\(i)]",
                                    message: "expected \"left right\" or [\"left\", \"right\"], found \(m.typeName)")
            }
        }
        return try BPEModel(
            vocab: vocab, merges: merges,
            unkToken: try r.optionalString(o, "unk_token", "model"),
            continuingSubwordPrefix: try r.optionalString(o, "continuing_subword_prefix", "model"),
            endOfWordSuffix: try r.optionalString(o, "end_of_word_suffix", "model"),
            fuseUnk: try r.bool(o, "fuse_unk", "model", default: false),
            byteFallback: try r.bool(o, "byte_fallback", "model", default: false),
            ignoreMerges: try r.bool(o, "ignore_merges", "model", default: false),
            cacheCapacity: BPEModel.defaultCacheCapacity, source: r.file, mergesField: { "model.merges[\($0)]" })
    }

    static func normalizer(_ v: JSONValue, _ path: String, _ r: FieldReader) throws(TokenizerError) -> (any Normalizer)? {
        if v.isNull { return nil }
        let o = try r.object(v, path)
        let type = try r.type(o, path)
        switch type {
        case "Lowercase": return LowercaseNormalizer()
        case "NFC", "NFD", "NFKC", "NFKD": return UnicodeNormalizer(UnicodeNormalizer.Form(rawValue: type)!)
        case "Nmt": return NmtNormalizer()
        case "Precompiled":
            let text = try r.string(o, "precompiled_charsmap", path)
            guard let data = Data(base64Encoded: text) else {
                throw .invalidField(file: r.file, field: "\(path).precompiled_charsmap", message: "not valid base64")
            }
            do {
                return try PrecompiledNormalizer(bytes: [UInt8](data))
            } catch {
                throw .invalidField(file: r.file, field: "\(path).precompiled_charsmap", message: "corrupt charsmap: \(error.message)")
            }
        case "Strip":
            return StripNormalizer(left: try r.requiredBool(o, "strip_left", path), right: try r.requiredBool(o, "strip_right", path))
        case "Replace":
            return ReplaceNormalizer(pattern: try replacePattern(o, path, r), content: try r.string(o, "content", path))
        case "Prepend":
            return PrependNormalizer(try r.string(o, "prepend", path))
        case "Sequence":
            guard let list = o["normalizers"] else { throw .missingField(file: r.file, field: "\(path).normalizers") }
            var items: [any Normalizer] = []
            for (i, item) in try r.array(list, "\(path).normalizers").enumerated() {
                if let n = try normalizer(item, "\(path).normalizers[\(i)]", r) { items.append(n) }
            }
            return SequenceNormalizer(items)
        default:
            throw r.unsupported(path, type, normalizerTypes)
        }
    }

    static func preTokenizer(_ v: JSONValue, _ path: String, _ r: FieldReader) throws(TokenizerError) -> (any PreTokenizer)? {
        if v.isNull { return nil }
        let o = try r.object(v, path)
        let type = try r.type(o, path)
        switch type {
        case "ByteLevel":
            return ByteLevelPreTokenizer(addPrefixSpace: try r.bool(o, "add_prefix_space", path, default: true),
                                         trimOffsets: try r.bool(o, "trim_offsets", path, default: true),
                                         useRegex: try r.bool(o, "use_regex", path, default: true))
        case "Metaspace":
            let m = try metaspace(o, path, r)
            return MetaspacePreTokenizer(replacement: m.replacement, prependScheme: m.scheme, split: m.split)
        case "WhitespaceSplit":
            return WhitespaceSplitPreTokenizer()
        case "Sequence":
            guard let list = o["pretokenizers"] else { throw .missingField(file: r.file, field: "\(path).pretokenizers") }
            var items: [any PreTokenizer] = []
            for (i, item) in try r.array(list, "\(path).pretokenizers").enumerated() {
                guard let p = try preTokenizer(item, "\(path).pretokenizers[\(i)]", r) else {
                    throw .invalidField(file: r.file, field: "\(path).pretokenizers[\(i)]", message: "expected a pre-tokenizer, found null")
                }
                items.append(p)
            }
            return SequencePreTokenizer(items)
        default:
            throw r.unsupported(path, type, preTokenizerTypes)
        }
    }

    /// Metaspace's fields as `tokenizers` reads them: `prepend_scheme` defaults to "always",
    /// `split` to true; the legacy `add_prefix_space: false` means "never" and contradicts any
    /// other scheme (an absent one included), `add_prefix_space: true` is ignored.
    static func metaspace(_ o: JSONObject, _ path: String, _ r: FieldReader) throws(TokenizerError)
        -> (replacement: Unicode.Scalar, scheme: PrependScheme, split: Bool) {
        let replacement = try singleScalar(o, "replacement", path, r)
        var scheme = PrependScheme.always
        if let v = o["prepend_scheme"], !v.isNull {
            guard let name = v.stringValue, let s = PrependScheme(rawValue: name) else {
                throw .unsupported(file: r.file, field: "\(path).prepend_scheme", value: v.compactString(),
                                   supported: PrependScheme.allCases.map { "\"\($0.rawValue)\"" })
            }
            scheme = s
        }
        if let v = o["add_prefix_space"], !v.isNull {
            guard let add = v.boolValue else {
                throw .invalidField(file: r.file, field: "\(path).add_prefix_space", message: "expected a boolean, found \(v.typeName)")
            }
            if !add {
                guard scheme == .never else {
                    throw .invalidField(file: r.file, field: "\(path).add_prefix_space",
                                        message: "false does not match prepend_scheme \"\(scheme.rawValue)\"")
                }
            }
        }
        return (replacement, scheme, try r.bool(o, "split", path, default: true))
    }

    /// A field holding exactly one character (a Rust `char`).
    static func singleScalar(_ o: JSONObject, _ key: String, _ path: String, _ r: FieldReader) throws(TokenizerError) -> Unicode.Scalar {
        let text = try r.string(o, key, path)
        guard text.unicodeScalars.count == 1, let s = text.unicodeScalars.first else {
            throw .invalidField(file: r.file, field: "\(path).\(key)", message: "expected one character, found \(JSONValue.string(text).compactString())")
        }
        return s
    }

    /// `{"String": "..."}` or `{"Regex": "..."}`.
    static func replacePattern(_ o: JSONObject, _ path: String, _ r: FieldReader) throws(TokenizerError) -> ReplacePattern {
        guard let v = o["pattern"] else { throw .missingField(file: r.file, field: "\(path).pattern") }
        let p = try r.object(v, "\(path).pattern")
        if let literal = p["String"] {
            guard let s = literal.stringValue else {
                throw .invalidField(file: r.file, field: "\(path).pattern.String", message: "expected a string, found \(literal.typeName)")
            }
            return .string(s)
        }
        if let regex = p["Regex"] {
            guard let s = regex.stringValue else {
                throw .invalidField(file: r.file, field: "\(path).pattern.Regex", message: "expected a string, found \(regex.typeName)")
            }
            do {
                return .regex(try OnigRegex(s))
            } catch {
                throw .invalidField(file: r.file, field: "\(path).pattern.Regex", message: "\(JSONValue.string(s).compactString()): \(error.message)")
            }
        }
        throw .invalidField(file: r.file, field: "\(path).pattern", message: "expected {\"String\": ...} or {\"Regex\": ...}")
    }

    static func namedID(_ o: JSONObject, _ key: String, _ path: String, _ r: FieldReader) throws(TokenizerError) -> (String, Int) {
        guard let v = o[key] else { throw .missingField(file: r.file, field: "\(path).\(key)") }
        guard let a = v.arrayValue, a.count == 2, let token = a[0].stringValue, let id = a[1].intValue else {
            throw .invalidField(file: r.file, field: "\(path).\(key)", message: "expected [token, id], found \(v.compactString())")
        }
        return (token, id)
    }

    static func postProcessor(_ v: JSONValue, _ path: String, _ r: FieldReader) throws(TokenizerError) -> (any PostProcessor)? {
        if v.isNull { return nil }
        let o = try r.object(v, path)
        let type = try r.type(o, path)
        switch type {
        case "RobertaProcessing":
            return RobertaProcessing(sep: try namedID(o, "sep", path, r), cls: try namedID(o, "cls", path, r),
                                     trimOffsets: try r.bool(o, "trim_offsets", path, default: true),
                                     addPrefixSpace: try r.bool(o, "add_prefix_space", path, default: true))
        case "BertProcessing":
            return BertProcessing(sep: try namedID(o, "sep", path, r), cls: try namedID(o, "cls", path, r))
        case "ByteLevel":
            return ByteLevelPostProcessor(addPrefixSpace: try r.bool(o, "add_prefix_space", path, default: true),
                                          trimOffsets: try r.bool(o, "trim_offsets", path, default: true),
                                          useRegex: try r.bool(o, "use_regex", path, default: true))
        case "TemplateProcessing":
            return try template(o, path, r)
        case "Sequence":
            guard let list = o["processors"] else { throw .missingField(file: r.file, field: "\(path).processors") }
            var items: [any PostProcessor] = []
            for (i, item) in try r.array(list, "\(path).processors").enumerated() {
                if let p = try postProcessor(item, "\(path).processors[\(i)]", r) { items.append(p) }
            }
            return SequencePostProcessor(items)
        default:
            throw r.unsupported(path, type, postProcessorTypes)
        }
    }

    static func template(_ o: JSONObject, _ path: String, _ r: FieldReader) throws(TokenizerError) -> TemplateProcessing {
        func pieces(_ key: String) throws(TokenizerError) -> [TemplateProcessing.Piece] {
            guard let v = o[key] else { throw .missingField(file: r.file, field: "\(path).\(key)") }
            var out: [TemplateProcessing.Piece] = []
            for (i, item) in try r.array(v, "\(path).\(key)").enumerated() {
                let field = "\(path).\(key)[\(i)]"
                let wrapper = try r.object(item, field)
                if let seq = wrapper["Sequence"] {
                    let s = try r.object(seq, "\(field).Sequence")
                    let id = try r.string(s, "id", "\(field).Sequence")
                    guard id == "A" || id == "B" else {
                        throw .invalidField(file: r.file, field: "\(field).Sequence.id", message: "expected \"A\" or \"B\", found \(JSONValue.string(id).compactString())")
                    }
                    out.append(.sequence(index: id == "A" ? 0 : 1, typeID: try r.int(s, "type_id", "\(field).Sequence", default: 0)))
                } else if let special = wrapper["SpecialToken"] {
                    let s = try r.object(special, "\(field).SpecialToken")
                    out.append(.specialToken(id: try r.string(s, "id", "\(field).SpecialToken"),
                                             typeID: try r.int(s, "type_id", "\(field).SpecialToken", default: 0)))
                } else {
                    throw .invalidField(file: r.file, field: field, message: "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}")
                }
            }
            return out
        }
        let single = try pieces("single")
        let pair = try pieces("pair")
        var specials: [TemplateProcessing.SpecialToken] = []
        if let v = o["special_tokens"], !v.isNull {
            for (key, value) in try r.object(v, "\(path).special_tokens") {
                let field = "\(path).special_tokens[\(JSONPath.key(key))]"
                let s = try r.object(value, field)
                let ids = try r.array(s["ids"] ?? .array([]), "\(field).ids").map { (x) throws(TokenizerError) -> Int in
                    guard let i = x.intValue else { throw .invalidField(file: r.file, field: "\(field).ids", message: "expected integers") }
                    return i
                }
                let tokens = try r.array(s["tokens"] ?? .array([]), "\(field).tokens").map { (x) throws(TokenizerError) -> String in
                    guard let t = x.stringValue else { throw .invalidField(file: r.file, field: "\(field).tokens", message: "expected strings") }
                    return t
                }
                specials.append(.init(id: try r.string(s, "id", field), ids: ids, tokens: tokens))
            }
        }
        let known = Set(specials.map(\.id))
        for piece in single + pair {
            if case let .specialToken(id, _) = piece, !known.contains(id) {
                throw .unknownToken(file: r.file, field: "\(path).special_tokens", token: id)
            }
        }
        return TemplateProcessing(single: single, pair: pair, specialTokens: specials)
    }

    static func decoder(_ v: JSONValue, _ path: String, _ r: FieldReader) throws(TokenizerError) -> (any TokenDecoder)? {
        if v.isNull { return nil }
        let o = try r.object(v, path)
        let type = try r.type(o, path)
        switch type {
        case "ByteLevel":
            return ByteLevelDecoder(addPrefixSpace: try r.bool(o, "add_prefix_space", path, default: true),
                                    trimOffsets: try r.bool(o, "trim_offsets", path, default: true),
                                    useRegex: try r.bool(o, "use_regex", path, default: true))
        case "Metaspace":
            let m = try metaspace(o, path, r)
            return MetaspaceDecoder(replacement: m.replacement, prependScheme: m.scheme, split: m.split)
        case "ByteFallback":
            return ByteFallbackDecoder()
        case "Fuse":
            return FuseDecoder()
        case "Strip":
            let start = try r.int(o, "start", path), stop = try r.int(o, "stop", path)
            guard start >= 0, stop >= 0 else {
                throw .invalidField(file: r.file, field: path, message: "start and stop must be non-negative")
            }
            return StripDecoder(content: try singleScalar(o, "content", path, r), start: start, stop: stop)
        case "Replace":
            return ReplaceDecoder(pattern: try replacePattern(o, path, r), content: try r.string(o, "content", path))
        case "Sequence":
            guard let list = o["decoders"] else { throw .missingField(file: r.file, field: "\(path).decoders") }
            var items: [any TokenDecoder] = []
            for (i, item) in try r.array(list, "\(path).decoders").enumerated() {
                if let d = try decoder(item, "\(path).decoders[\(i)]", r) { items.append(d) }
            }
            return SequenceDecoder(items)
        default:
            throw r.unsupported(path, type, decoderTypes)
        }
    }

    static func truncation(_ v: JSONValue, _ r: FieldReader) throws(TokenizerError) -> Truncation? {
        if v.isNull { return nil }
        let o = try r.object(v, "truncation")
        let direction = try r.optionalString(o, "direction", "truncation") ?? "Right"
        guard let d = Truncation.Direction(rawValue: direction) else {
            throw .unsupported(file: r.file, field: "truncation.direction", value: JSONValue.string(direction).compactString(), supported: ["Left", "Right"])
        }
        let strategy = try r.optionalString(o, "strategy", "truncation") ?? "LongestFirst"
        guard let s = Truncation.Strategy(rawValue: strategy) else {
            throw .unsupported(file: r.file, field: "truncation.strategy", value: JSONValue.string(strategy).compactString(),
                               supported: ["LongestFirst", "OnlyFirst", "OnlySecond"])
        }
        let maxLength = try r.int(o, "max_length", "truncation")
        let stride = try r.int(o, "stride", "truncation", default: 0)
        guard maxLength >= 0, stride >= 0 else {
            throw .invalidField(file: r.file, field: "truncation", message: "max_length and stride must be non-negative")
        }
        return Truncation(maxLength: maxLength, strategy: s, direction: d, stride: stride)
    }

    static func padding(_ v: JSONValue, _ r: FieldReader) throws(TokenizerError) -> Padding? {
        if v.isNull { return nil }
        let o = try r.object(v, "padding")
        var fixed: Int? = nil
        if let strategy = o["strategy"] {
            if strategy.stringValue == "BatchLongest" {
                fixed = nil
            } else if let f = strategy["Fixed"]?.intValue {
                fixed = f
            } else {
                throw .invalidField(file: r.file, field: "padding.strategy", message: "expected \"BatchLongest\" or {\"Fixed\": n}, found \(strategy.compactString())")
            }
        }
        let direction = try r.optionalString(o, "direction", "padding") ?? "Right"
        guard let d = Padding.Direction(rawValue: direction) else {
            throw .unsupported(file: r.file, field: "padding.direction", value: JSONValue.string(direction).compactString(), supported: ["Left", "Right"])
        }
        var multiple: Int? = nil
        if let m = o["pad_to_multiple_of"], !m.isNull { multiple = try r.int(o, "pad_to_multiple_of", "padding") }
        return Padding(fixedLength: fixed, direction: d, padToMultipleOf: multiple,
                       padID: try r.int(o, "pad_id", "padding", default: 0),
                       padTypeID: try r.int(o, "pad_type_id", "padding", default: 0),
                       padToken: try r.optionalString(o, "pad_token", "padding") ?? "[PAD]")
    }

    static func addedToken(_ v: JSONValue, _ path: String, _ r: FieldReader) throws(TokenizerError) -> AddedToken {
        let o = try r.object(v, path)
        let content = try r.string(o, "content", path)
        let special = try r.bool(o, "special", path, default: false)
        return AddedToken(content, special: special,
                          singleWord: try r.bool(o, "single_word", path, default: false),
                          lstrip: try r.bool(o, "lstrip", path, default: false),
                          rstrip: try r.bool(o, "rstrip", path, default: false),
                          normalized: try r.bool(o, "normalized", path, default: !special))
    }
}
