import Foundation
import Testing
import PrecisTestSupport
import PrecisData
import PrecisText

/// A `tokenizer` setting naming a file or a folder (TokenizerFolder.load(path:), tokenizerJSON(path:),
/// TokenizerEncoder(file:)): real fixture files, the repo's SAMSum dialogues when unpacked.
@Suite struct TokenizerPathTests {
    static let tok = TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer").path
    static let formats = TokenizerFolderTests.formats.path

    static func texts() -> [String] {
        let fixed = ["Amanda: I baked cookies. Do you want some?\nJerry: Sure!", "Anna: Café at 12:30? 😀\nBen: Ja — gern.",
                     "  two  spaces ", "ﬁne Ｔｅｓｔ ① ｶﾀｶﾅ", ""]
        return fixed + (TokenizerFolderTests.validationDialogues()?.prefix(200) ?? [])
    }

    static func ids(_ e: TokenizerEncoder, _ texts: [String]) throws -> [[Int32]] {
        try texts.map { try e.encode($0, maxLength: nil) }
    }

    /// `data` written to a temporary tokenizer.json and loaded from there.
    static func reload(_ data: Data) throws -> TokenizerEncoder {
        let f = FileManager.default.temporaryDirectory.appendingPathComponent("precis-saved-\(UUID().uuidString).json").path
        try data.write(to: URL(fileURLWithPath: f))
        defer { try? FileManager.default.removeItem(atPath: f) }
        return try TokenizerEncoder(file: f)
    }

    @Test func aFileIsReadAsItIsAndSavedByteForByte() throws {
        let file = Self.tok + "/samsum-bpe-8192.json"
        let loaded = try TokenizerFolder.load(path: file)
        #expect(loaded.files == [file])
        #expect(try TokenizerFolder.tokenizerJSON(path: file) == Data(contentsOf: URL(fileURLWithPath: file)))
        let e = try TokenizerEncoder(file: file)
        let fromLoaded = TokenizerEncoder(tokenizer: loaded.tokenizer, fingerprint: "")
        #expect(try Self.ids(e, Self.texts()) == Self.ids(fromLoaded, Self.texts()))
    }

    @Test func aFolderWithTokenizerJSONIsSavedByteForByte() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-tokjson-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let file = Self.tok + "/samsum-bpe-8192.json"
        try FileManager.default.copyItem(atPath: file, toPath: d + "/tokenizer.json")
        #expect(try TokenizerFolder.tokenizerJSON(path: d) == Data(contentsOf: URL(fileURLWithPath: file)))
        #expect(try TokenizerEncoder(file: d).fingerprint == TokenizerEncoder(file: file).fingerprint)
    }

    /// vocab.json + merges.txt: the folder tokenizes as the same BPE's tokenizer.json, and the
    /// tokenizer.json it is saved as reloads to the same ids.
    @Test func vocabAndMergesSaveAsAnEquivalentTokenizerJSON() throws {
        let folder = try TokenizerFolderTests.bartFolder()
        let reference = try TokenizerEncoder(file: Self.tok + "/samsum-bpe-8192.json")
        let texts = Self.texts()
        let want = try Self.ids(reference, texts)
        let encoder = try TokenizerEncoder(file: folder)
        #expect(try Self.ids(encoder, texts) == want)
        let reloaded = try Self.reload(TokenizerFolder.tokenizerJSON(path: folder))
        #expect(try Self.ids(reloaded, texts) == want)
        #expect(reloaded.decode(want[0]) == reference.decode(want[0]))
    }

    /// spiece.model (T5, from config.json's model_type): the saved tokenizer.json reloads to the same ids.
    @Test func spieceSavesAsAnEquivalentTokenizerJSON() throws {
        let folder = Self.formats + "/t5-spiece"
        let loaded = try TokenizerFolder.load(path: folder)
        #expect(loaded.files == [folder + "/spiece.model"])
        let texts = Self.texts()
        let want = try Self.ids(TokenizerEncoder(tokenizer: loaded.tokenizer, fingerprint: ""), texts)
        let reloaded = try Self.reload(TokenizerFolder.tokenizerJSON(path: folder))
        #expect(try Self.ids(reloaded, texts) == want)
        #expect(reloaded.tokenizer.vocabSize == loaded.tokenizer.vocabSize)
    }

    @Test func missingAndEmptyPathsAreErrorsNamingThem() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-tokempty-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        #expect(throws: TokenizerFolder.Failure.noTokenizer(folder: d)) { try TokenizerFolder.tokenizerJSON(path: d) }
        #expect(throws: (any Error).self) { try TokenizerEncoder(file: d + "/absent.json") }
        do { _ = try TokenizerFolder.load(path: d + "/absent.json"); Issue.record("no error") } catch {
            #expect("\(error)".contains("absent.json"))
        }
    }

    /// A tokenizer may give ids up to UInt32.max; one past Int32.max cannot go into a batch and is an
    /// encoding error naming the token (it trapped in a conversion before).
    @Test func anIdPastInt32MaxIsAnEncodingErrorNamingTheToken() throws {
        let json = #"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}, "post_processor": null, "decoder": null, "model": {"type": "BPE", "vocab": {"a": 5, "b": 3000000000, "ab": 7}, "merges": [["a", "b"]]}}"#
        let e = TokenizerEncoder(tokenizer: try Tokenizer(jsonString: json), fingerprint: "")
        #expect(try e.encode("abab", maxLength: nil) == [7, 7])
        #expect(throws: TokenizerError.encoding(message: #"token "b" has id 3000000000, past the largest id a model takes (2147483647)"#)) {
            try e.encode("ba", maxLength: nil)
        }
    }
}
