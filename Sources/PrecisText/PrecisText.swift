/// Tokenizers for Precis: Hugging Face `tokenizer.json` (byte-level BPE and SentencePiece
/// Unigram) loading, encoding, decoding, and BPE training.
///
/// - `Tokenizer`: the pipeline (normalizer → pre-tokenizer → model → post-processor, decoder),
///   loaded from `tokenizer.json` (`Tokenizer(contentsOfFile:)`) or from `vocab.json` +
///   `merges.txt` (`Tokenizer.roberta(vocabFile:mergesFile:)`, `Tokenizer.byteLevelBPE`).
/// - `BPEModel`, `ByteLevelPreTokenizer`, `GPT2Split`, `RobertaProcessing`,
///   `TemplateProcessing`, `ByteLevelDecoder`, ...: the byte-level BPE stages.
/// - `UnigramModel`, `PrecompiledNormalizer` (SentencePiece's charsmap), `StripNormalizer`,
///   `ReplaceNormalizer` (with `OnigRegex`), `NmtNormalizer`, `UnicodeNormalizer`,
///   `MetaspacePreTokenizer`, `WhitespaceSplitPreTokenizer`, `SequencePreTokenizer`,
///   `MetaspaceDecoder`, `ByteFallbackDecoder`, ...: the SentencePiece (T5, Pegasus) stages.
///   `NormalizedText` carries each character's origin in the input where a pre-tokenizer needs it.
/// - `BPETrainer`, `WordCounts`, `Tokenizer.trainBARTByteLevelBPE`: training as `tokenizers`'
///   `BpeTrainer` does.
/// - `JSONValue`: the JSON reader/writer the files go through; `TokenizerError`: every failure.
public enum PrecisText {}
