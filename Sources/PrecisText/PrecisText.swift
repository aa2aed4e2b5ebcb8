/// Tokenizers for Precis: Hugging Face `tokenizer.json` (byte-level BPE) loading, encoding,
/// decoding and training.
public enum PrecisText {}
