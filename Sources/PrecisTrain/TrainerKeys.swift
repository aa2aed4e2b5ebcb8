import Foundation

/// How Precis reads the `training:` keys of a transformers recipe that it does not act on, and the
/// transformers 4 names that transformers 5 renamed or folded into others.
///
/// A key Precis does not act on is accepted with one warning line when ignoring it cannot change
/// the result (logging, data-loader threads, device placement, what Precis already does), and
/// refused when it would (reduced precision, another optimizer, another sampler, another seed).
enum TrainerKeys {
    /// transformers 4 names (removed or renamed in transformers 5) and the key they stand for.
    static let aliases: [String: String] = [
        "warmup_ratio": "warmup_steps",                 // 5: warmup_steps < 1 is a ratio
        "group_by_length": "train_sampling_strategy",   // 5: train_sampling_strategy: group_by_length
        "evaluation_strategy": "eval_strategy",
    ]

    /// What a value of an ignored key means: nil when ignoring it is harmless (a warning is enough),
    /// else why it is refused.
    typealias Verdict = @Sendable (Any) -> String?

    private static let harmless: Verdict = { _ in nil }
    private static func refusedIfTrue(_ why: String) -> Verdict {
        { v in (v as? Bool) == true ? why : nil }
    }
    private static func refusedUnlessIn(_ allowed: Set<String>, _ why: String) -> Verdict {
        { v in
            if let s = v as? String, allowed.contains(s) { return nil }
            return why
        }
    }
    private static func refusedIfSet(_ why: String) -> Verdict {
        { v in v is NSNull ? nil : why }
    }

    /// Seq2SeqTrainingArguments keys Precis reads but does not act on.
    static let ignored: [String: Verdict] = [
        "fp16": refusedIfTrue("fp16 would train in half precision; Precis trains in fp32"),
        "fp16_full_eval": refusedIfTrue("fp16 evaluation would change the metrics; Precis evaluates in fp32"),
        "bf16_full_eval": refusedIfTrue("bf16_full_eval would evaluate a model cast to bf16 (weights, LayerNorm, softmax and loss "
                                        + "in bf16); Precis evaluates with fp32 weights: set bf16: true instead, which evaluates with "
                                        + "bf16 matrix products and fp32 accumulation"),
        "tf32": harmless,
        "optim": refusedUnlessIn(["adamw_torch", "adamw_torch_fused", "adamw_hf", "adamw"],
                                 "Precis's optimizer is AdamW (adamw_torch); another optimizer would change the result"),
        "optim_args": refusedIfSet("optimizer arguments would change the result"),
        "lr_scheduler_kwargs": { v in
            if let d = v as? [String: Any], d.isEmpty { return nil }
            return v is NSNull ? nil : "scheduler arguments would change the result"
        },
        "data_seed": { _ in "data_seed would change the data order; Precis orders data by seed" },
        "dataloader_drop_last": refusedIfTrue("dropping the last batch would change the examples trained on"),
        "dataloader_num_workers": harmless,
        "dataloader_pin_memory": harmless,
        "dataloader_persistent_workers": harmless,
        "dataloader_prefetch_factor": harmless,
        "dataloader_in_order": harmless,
        "sortish_sampler": refusedIfTrue("the sortish sampler would change the data order; use train_sampling_strategy"),
        "auto_find_batch_size": refusedIfTrue("a batch size found at run time would change the result"),
        "neftune_noise_alpha": refusedIfSet("NEFTune noise would change the result"),
        "eval_delay": { v in
            if let d = v as? Double, d == 0 { return nil }
            if let i = v as? Int, i == 0 { return nil }
            return "a delayed first evaluation would change which checkpoint is best"
        },
        "average_tokens_across_devices": { v in
            (v as? Bool) == false ? "Precis averages the loss over every worker's tokens, as transformers does by default" : nil
        },
        "gradient_checkpointing": harmless,
        "gradient_checkpointing_kwargs": harmless,
        "torch_compile": harmless,
        "torch_compile_backend": harmless,
        "torch_compile_mode": harmless,
        "use_cpu": harmless,
        "use_cache": harmless,
        "full_determinism": harmless,
        "run_name": harmless,
        "project": harmless,
        "logging_strategy": refusedUnlessIn(["steps"], "Precis logs every logging_steps steps (logging_strategy: steps)"),
        "logging_first_step": harmless,
        "logging_nan_inf_filter": harmless,
        "log_level": harmless,
        "log_level_replica": harmless,
        "log_on_each_node": harmless,
        "disable_tqdm": harmless,
        "do_train": harmless,
        "do_eval": harmless,
        "do_predict": harmless,
        "overwrite_output_dir": harmless,
        "remove_unused_columns": harmless,
        "skip_memory_metrics": harmless,
        "save_safetensors": { v in (v as? Bool) == false ? "Precis saves safetensors only" : nil },
        "save_on_each_node": harmless,
        "save_only_model": harmless,
        "prediction_loss_only": harmless,
        "eval_accumulation_steps": harmless,
        "eval_do_concat_batches": harmless,
        "eval_on_start": harmless,
        "include_num_input_tokens_seen": harmless,
        "include_for_metrics": harmless,
        "length_column_name": harmless,
        "label_names": harmless,
        "ignore_data_skip": harmless,
        "hub_always_push": harmless,
        "hub_revision": harmless,
        "restore_callback_states_from_checkpoint": harmless,
        "ddp_timeout": harmless,
        "ddp_backend": harmless,
        "local_rank": harmless,
        "batch_eval_metrics": harmless,
        "deepspeed": refusedIfSet("DeepSpeed is not used; the cluster section says how Precis distributes training"),
        "fsdp": { v in
            if v is NSNull { return nil }
            if let s = v as? String, s.isEmpty { return nil }
            return "FSDP is not used; the cluster section says how Precis distributes training"
        },
    ]

    /// The warning printed for an ignored key whose value is harmless.
    static func warning(file: String, key: String, value: Any) -> String {
        "\(file): training.\(key) (\(value)) is not used by Precis: ignored"
    }

    /// The closest of `candidates` to `key` (edit distance at most a third of the key, at least 2),
    /// for "did you mean" hints.
    static func closest(to key: String, in candidates: [String]) -> String? {
        let limit = max(2, key.count / 3)
        var best: (String, Int)?
        for c in candidates {
            let d = editDistance(key, c, limit: limit)
            if d <= limit, d < best?.1 ?? Int.max { best = (c, d) }
        }
        return best?.0
    }

    /// Levenshtein distance, stopping early above `limit` (returns limit + 1 then).
    static func editDistance(_ a: String, _ b: String, limit: Int) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if abs(x.count - y.count) > limit { return limit + 1 }
        if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
        var prev = Array(0...y.count), cur = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            cur[0] = i
            var rowMin = i
            for j in 1...y.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
                rowMin = min(rowMin, cur[j])
            }
            if rowMin > limit { return limit + 1 }
            swap(&prev, &cur)
        }
        return prev[y.count]
    }
}
