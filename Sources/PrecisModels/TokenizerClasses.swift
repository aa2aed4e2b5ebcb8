extension ModelRegistry {
    /// The transformers tokenizer class each architecture's folders use when they carry no
    /// `tokenizer.json` (nor a `tokenizer_class` in `tokenizer_config.json`): which classic files
    /// (vocab.json + merges.txt, spiece.model) the folder holds and how they become a tokenizer.
    public static let tokenizerClasses: [String: String] = [
        BartModel.modelType: "BartTokenizer",
        PegasusModel.modelType: "PegasusTokenizer",
        T5Model.modelType: "T5Tokenizer",
    ]
}
