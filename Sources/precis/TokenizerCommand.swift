import ArgumentParser
import Foundation
import PrecisCore
import PrecisData
import PrecisHub
import PrecisText

/// `precis tokenizer train|encode|decode`: byte-level BPE tokenizers in Hugging Face's
/// `tokenizer.json` format (PrecisText).
extension TokenizerKind: ExpressibleByArgument {}

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train, encode and decode with Hugging Face-compatible tokenizers (byte-level BPE, SentencePiece Unigram).",
        subcommands: [Train.self, Encode.self, Decode.self, Bench.self])

    /// Prints `error: ...` on standard error and exits with status 1.
    static func failure(_ error: Error) -> ExitCode {
        Stdio.writeStderr("error: \(error)\n")
        return ExitCode(1)
    }

    /// Buffered standard output; a failed write (a full disk, a closed reader) is an error naming
    /// standard output, not output silently cut short.
    struct Output {
        var buffer: [UInt8] = []

        init() { buffer.reserveCapacity(1 << 17) }

        mutating func flushIfFull() throws(TokenizerError) {
            if buffer.count >= 1 << 16 { try flush() }
        }

        mutating func flush() throws(TokenizerError) {
            guard !buffer.isEmpty else { return }
            let failure: Int32? = buffer.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(1, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return n < 0 ? errno : EIO }
                    offset += n
                }
                return nil
            }
            if let failure { throw .unwritableFile(file: "<stdout>", reason: String(cString: strerror(failure))) }
            buffer.removeAll(keepingCapacity: true)
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train",
            abstract: "Train a byte-level BPE tokenizer (BART) or a SentencePiece Unigram tokenizer (T5).",
            discussion: """
            Every listed field of every JSON Lines record is one training sequence. \
            --model bpe (the default), like tokenizers' ByteLevelBPETokenizer: the vocabulary \
            gets <s>=0, <pad>=1, </s>=2, <unk>=3, the 256 byte-level characters, the merges, and \
            <mask> as the last id; the output has a RobertaProcessing post-processor and a \
            ByteLevel decoder. --model unigram, like tokenizers' SentencePieceUnigramTokenizer \
            with UnigramTrainer: Nmt + NFKC + runs of spaces collapsed, Metaspace (▁), \
            <pad>=0, </s>=1, <unk>=2 (the unknown token), then the pieces by score, and a \
            post-processor appending </s> as T5's tokenizer does. --vocab-size counts every \
            token. The output loads in Python tokenizers and transformers' \
            PreTrainedTokenizerFast.
            """)

        @Option(name: .customLong("data"), help: "JSON Lines training file (repeatable).")
        var data: [String]
        @Option(help: "Comma-separated string fields of each record to train on.")
        var fields: String = "text"
        @Option(help: "Vocabulary size, special tokens and <mask> included.")
        var vocabSize: Int = 8192
        @Option(help: "The kind of model: bpe (byte-level BPE, BART) or unigram (SentencePiece Unigram, T5).")
        var model: TokenizerKind = .bpe
        @Option(help: "Minimum count of a pair to be merged, bpe only (tokenizers' ByteLevelBPETokenizer default).")
        var minFrequency: Int = 2
        @Option(help: "Output tokenizer.json.")
        var out: String

        func run() throws {
            do {
                let fieldNames = fields.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                guard !fieldNames.isEmpty, !fieldNames.contains("") else {
                    throw TokenizerError.training(message: "--fields needs at least one field name")
                }
                guard !data.isEmpty else { throw TokenizerError.training(message: "--data is required") }
                let r = try TokenizerTraining(kind: model, vocabSize: vocabSize, minFrequency: minFrequency).run(files: data, fields: fieldNames)
                try AtomicFile.write(r.tokenizer.jsonData(), to: out)
                let detail = model == .bpe ? "\((r.tokenizer.model as? BPEModel)?.merges.count ?? 0) merges" : "Unigram"
                let message = String(format: "trained %@: %d texts, %d distinct words, %d tokens, %@ (%.1fs counting, %.1fs training)\n",
                                     out, r.texts, r.words, r.tokenizer.vocabSize, detail, r.countingSeconds, r.trainingSeconds)
                Stdio.writeStderr(message)
            } catch { throw TokenizerCommand.failure(error) }
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "encode",
            abstract: "Encode JSON Lines {\"text\": ...} (or plain lines) into {\"ids\": [...]}, one output line per input line.",
            discussion: """
            Special tokens are added by the tokenizer's post-processor as tokenizers' \
            Tokenizer.encode does by default, and the tokenizer's truncation applies. With --plain \
            every line (without its LF, and without a CR before it) is one text.
            """)

        @Option(help: "tokenizer.json, a folder (tokenizer.json, vocab.json + merges.txt or spiece.model), or a Hub repository org/name[@revision].")
        var tokenizer: String
        @Option(help: "Input file (default: standard input).")
        var input: String = "-"
        @Option(help: "The string field to encode in each JSON record.")
        var field: String = "text"
        @Flag(help: "Read plain text lines instead of JSON Lines.")
        var plain = false
        @Flag(help: "Do not add the post-processor's special tokens.")
        var noSpecialTokens = false

        func run() throws {
            do {
                let tok = try TokenizerFolder.load(path: ModelSource.tokenizerFile(tokenizer)).tokenizer
                let name = input == "-" ? "<stdin>" : input
                var out = Output()
                let add = !noSpecialTokens
                if plain {
                    try JSONLines.forEachTextLine(path: input) { (text, _) throws(TokenizerError) in
                        JSONLines.appendIDsLine(try tok.encode(text, addSpecialTokens: add).ids, to: &out.buffer)
                        try out.flushIfFull()
                    }
                } else {
                    try JSONLines.forEachRecord(path: input) { (record, line) throws(TokenizerError) in
                        let text = try JSONLines.string(record, field, file: name, line: line)
                        JSONLines.appendIDsLine(try tok.encode(text, addSpecialTokens: add).ids, to: &out.buffer)
                        try out.flushIfFull()
                    }
                }
                try out.flush()
            } catch { throw TokenizerCommand.failure(error) }
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decode",
            abstract: "Decode JSON Lines {\"ids\": [...]} into {\"text\": ...}, one output line per input line.")

        @Option(help: "tokenizer.json, a folder (tokenizer.json, vocab.json + merges.txt or spiece.model), or a Hub repository org/name[@revision].")
        var tokenizer: String
        @Option(help: "Input file (default: standard input).")
        var input: String = "-"
        @Flag(help: "Leave out special tokens (<s>, </s>, <pad>, ...).")
        var skipSpecialTokens = false

        func run() throws {
            do {
                let tok = try TokenizerFolder.load(path: ModelSource.tokenizerFile(tokenizer)).tokenizer
                let name = input == "-" ? "<stdin>" : input
                var out = Output()
                try JSONLines.forEachRecord(path: input) { (record, line) throws(TokenizerError) in
                    let ids = try JSONLines.ids(record, "ids", file: name, line: line)
                    JSONLines.appendTextLine(tok.decode(ids, skipSpecialTokens: skipSpecialTokens), to: &out.buffer)
                    try out.flushIfFull()
                }
                try out.flush()
            } catch { throw TokenizerCommand.failure(error) }
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench",
            abstract: "Single-threaded encoding throughput over the texts of JSON Lines files.",
            discussion: """
            Loads every listed field of every record, then encodes all texts --repeat times on one \
            thread (special tokens added). The first pass starts with an empty word cache.
            """)

        @Option(help: "tokenizer.json, a folder (tokenizer.json, vocab.json + merges.txt or spiece.model), or a Hub repository org/name[@revision].")
        var tokenizer: String
        @Option(name: .customLong("data"), help: "JSON Lines file (repeatable).")
        var data: [String]
        @Option(help: "Comma-separated string fields of each record.")
        var fields: String = "text"
        @Option(help: "Passes over the texts.")
        var `repeat`: Int = 3

        func run() throws {
            do {
                let tok = try TokenizerFolder.load(path: ModelSource.tokenizerFile(tokenizer)).tokenizer
                let fieldNames = fields.split(separator: ",").map(String.init)
                var texts: [String] = []
                for file in data {
                    try JSONLines.forEachRecord(path: file) { (record, line) throws(TokenizerError) in
                        for f in fieldNames { texts.append(try JSONLines.string(record, f, file: file, line: line)) }
                    }
                }
                let megabytes = Double(texts.reduce(0) { $0 + $1.utf8.count }) / 1e6
                for pass in 1...max(1, `repeat`) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    var tokens = 0
                    for t in texts { tokens += try tok.encode(t).ids.count }
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    print(String(format: "pass %d: %d texts, %.2f MB, %d tokens in %.3f s: %.2f MB/s, %.0f texts/s, %.2f M tokens/s",
                                 pass, texts.count, megabytes, tokens, seconds, megabytes / seconds,
                                 Double(texts.count) / seconds, Double(tokens) / seconds / 1e6))
                }
            } catch { throw TokenizerCommand.failure(error) }
        }
    }
}
