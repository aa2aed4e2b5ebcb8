import Foundation

/// Model configs shipped with Precis (the same JSON as `configs/<name>.json` in the repository), so
/// `--config bart-small` works from any directory.
public enum ModelPresets {
    public static let all: [String: String] = [
        "bart-tiny": #"""
        {"activation_dropout": 0.0, "activation_function": "gelu", "attention_dropout": 0.0, "bos_token_id": 0,
         "d_model": 64, "decoder_attention_heads": 2, "decoder_ffn_dim": 128, "decoder_layers": 2,
         "decoder_start_token_id": 2, "dropout": 0.1, "encoder_attention_heads": 2, "encoder_ffn_dim": 128,
         "encoder_layers": 2, "eos_token_id": 2, "forced_bos_token_id": 0, "forced_eos_token_id": 2,
         "init_std": 0.02, "is_encoder_decoder": true, "max_position_embeddings": 256, "model_type": "bart",
         "pad_token_id": 1, "scale_embedding": false, "tie_word_embeddings": true, "vocab_size": 8192}
        """#,
        "bart-small": #"""
        {"activation_dropout": 0.0, "activation_function": "gelu", "attention_dropout": 0.0, "bos_token_id": 0,
         "d_model": 256, "decoder_attention_heads": 4, "decoder_ffn_dim": 1024, "decoder_layers": 3,
         "decoder_start_token_id": 2, "dropout": 0.1, "encoder_attention_heads": 4, "encoder_ffn_dim": 1024,
         "encoder_layers": 3, "eos_token_id": 2, "forced_bos_token_id": 0, "forced_eos_token_id": 2,
         "init_std": 0.02, "is_encoder_decoder": true, "max_position_embeddings": 1024, "model_type": "bart",
         "pad_token_id": 1, "scale_embedding": false, "tie_word_embeddings": true, "vocab_size": 8192}
        """#,
        "pegasus-tiny": #"""
        {"activation_dropout": 0.0, "activation_function": "relu", "attention_dropout": 0.0, "d_model": 64,
         "decoder_attention_heads": 2, "decoder_ffn_dim": 128, "decoder_layers": 2, "decoder_start_token_id": 0,
         "dropout": 0.1, "encoder_attention_heads": 2, "encoder_ffn_dim": 128, "encoder_layers": 2, "eos_token_id": 1,
         "forced_eos_token_id": 1, "init_std": 0.02, "is_encoder_decoder": true, "max_position_embeddings": 256,
         "model_type": "pegasus", "pad_token_id": 0, "scale_embedding": true, "tie_word_embeddings": true,
         "vocab_size": 8192}
        """#,
        "pegasus-scratch-small": #"""
        {"activation_dropout": 0.0, "activation_function": "relu", "attention_dropout": 0.0, "d_model": 256,
         "decoder_attention_heads": 4, "decoder_ffn_dim": 1024, "decoder_layers": 3, "decoder_start_token_id": 0,
         "dropout": 0.1, "encoder_attention_heads": 4, "encoder_ffn_dim": 1024, "encoder_layers": 3, "eos_token_id": 1,
         "forced_eos_token_id": 1, "init_std": 0.02, "is_encoder_decoder": true, "max_position_embeddings": 1024,
         "model_type": "pegasus", "pad_token_id": 0, "scale_embedding": true, "tie_word_embeddings": true,
         "vocab_size": 8192}
        """#,
        "pegasus-xsum": #"""
        {"activation_dropout": 0.1, "activation_function": "relu", "attention_dropout": 0.1, "d_model": 1024,
         "decoder_attention_heads": 16, "decoder_ffn_dim": 4096, "decoder_layers": 16, "decoder_start_token_id": 0,
         "dropout": 0.1, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096, "encoder_layers": 16, "eos_token_id": 1,
         "forced_eos_token_id": 1, "init_std": 0.02, "is_encoder_decoder": true, "max_position_embeddings": 512,
         "model_type": "pegasus", "pad_token_id": 0, "scale_embedding": true, "tie_word_embeddings": true,
         "vocab_size": 96103}
        """#,
        "t5-tiny": #"""
        {"d_ff": 128, "d_kv": 16, "d_model": 64, "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1,
         "feed_forward_proj": "relu", "initializer_factor": 1.0, "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06,
         "model_type": "t5", "num_decoder_layers": 2, "num_heads": 4, "num_layers": 2, "pad_token_id": 0,
         "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": true,
         "vocab_size": 8192}
        """#,
        "t5-scratch-small": #"""
        {"d_ff": 1024, "d_kv": 64, "d_model": 256, "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1,
         "feed_forward_proj": "relu", "initializer_factor": 1.0, "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06,
         "model_type": "t5", "num_decoder_layers": 3, "num_heads": 4, "num_layers": 3, "pad_token_id": 0,
         "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": true,
         "vocab_size": 8192}
        """#,
        "t5-small": #"""
        {"d_ff": 2048, "d_kv": 64, "d_model": 512, "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1,
         "feed_forward_proj": "relu", "initializer_factor": 1.0, "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06,
         "model_type": "t5", "num_decoder_layers": 6, "num_heads": 8, "num_layers": 6, "pad_token_id": 0,
         "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": true,
         "vocab_size": 32128}
        """#,
        "flan-t5-small": #"""
        {"d_ff": 1024, "d_kv": 64, "d_model": 512, "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1,
         "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06,
         "model_type": "t5", "num_decoder_layers": 8, "num_heads": 6, "num_layers": 8, "pad_token_id": 0,
         "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": false,
         "vocab_size": 32128}
        """#,
    ]

    /// `nameOrPath` is a preset name or a path to a config.json; returns the bytes and a name for errors.
    public static func resolve(_ nameOrPath: String) throws -> (data: Data, file: String) {
        if FileManager.default.fileExists(atPath: nameOrPath) {
            return (try ModelError.readFile(nameOrPath), nameOrPath)
        }
        if let json = all[nameOrPath] { return (Data(json.utf8), "preset \(nameOrPath)") }
        throw ModelError.invalidConfig(file: nameOrPath, field: "(file)",
                                       reason: "no such file, and not a preset (\(all.keys.sorted().joined(separator: ", ")))")
    }

    public static func model(_ nameOrPath: String) throws -> any Seq2SeqModel {
        let (data, file) = try resolve(nameOrPath)
        return try ModelRegistry.model(config: data, file: file)
    }
}
