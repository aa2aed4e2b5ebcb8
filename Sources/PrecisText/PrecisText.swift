/// Tokenizers for Precis: Hugging Face `tokenizer.json` (byte-level BPE) loading, encoding,
/// decoding and training.
///
/// - `Tokenizer`: the pipeline (normalizer → pre-tokenizer → model → post-processor, decoder),
///   loaded from `tokenizer.json` (`Tokenizer(contentsOfFile:)`) or from `vocab.json` +
///   `merges.txt` (`Tokenizer.roberta(vocabFile:mergesFile:)`, `Tokenizer.byteLevelBPE`).
/// - `BPEModel`, `ByteLevelPreTokenizer`, `GPT2Split`, `RobertaProcessing`,
///   `TemplateProcessing`, `ByteLevelDecoder`, ...: the stages.
/// - `BPETrainer`, `WordCounts`, `Tokenizer.trainBARTByteLevelBPE`: training as `tokenizers`'
///   `BpeTrainer` does.
/// - `JSONValue`: the JSON reader/writer the files go through; `TokenizerError`: every failure.
public enum PrecisText {}
