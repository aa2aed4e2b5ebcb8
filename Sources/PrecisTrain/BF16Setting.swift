import PrecisCore
import PrecisModels

/// `training.bf16` (and the `--bf16` flags of `precis evaluate` / `summarize`): whether this CPU can
/// give bf16 matrix products, and setting them on the models a run builds.
///
/// Every process that runs a model's products checks for itself: `precis config check`, `precis
/// train` (in process or launching a local cluster), each worker when it learns the config from the
/// coordinator, and the evaluation commands. The coordinator runs no products and does not check.
public enum BF16Setting {
    /// The error for a config that asks for bf16 products on a CPU without a bf16 kernel (nil when
    /// it does not ask, or a kernel runs here). `unavailableReason` names the missing CPU flags
    /// (`BF16Gemm.unavailableReason`; a parameter so tests can pose as another CPU).
    public static func problem(_ cfg: TrainingConfig,
                               unavailableReason: String? = BF16Gemm.unavailableReason) -> ConfigError? {
        guard cfg.training.bf16, let why = unavailableReason else { return nil }
        return unavailable(file: cfg.file, why: why)
    }

    /// Throws `problem`'s error.
    public static func check(_ cfg: TrainingConfig) throws {
        if let e = problem(cfg) { throw e }
    }

    /// Sets bf16 products on `model` when the config asks for them; throws `problem`'s error (naming
    /// the file, the key and the missing CPU flags) when this CPU has no bf16 kernel.
    public static func apply(_ cfg: TrainingConfig, to model: any Seq2SeqModel) throws {
        guard cfg.training.bf16 else { return }
        do {
            try model.setMatmulPrecision(.bf16)
        } catch let BF16Error.unavailable(why) {
            throw unavailable(file: cfg.file, why: why)
        }
    }

    /// What a run's log says about its products: `bf16 (AVX512-BF16 kernel)` or `fp32`.
    public static func describe(_ model: any Seq2SeqModel) -> String {
        model.matmulPrecision == .bf16 ? "bf16 operands, fp32 accumulation (\(BF16Gemm.kernel?.rawValue ?? "no") kernel)" : "fp32"
    }

    static func unavailable(file: String, why: String) -> ConfigError {
        .invalid(file: file, key: "training.bf16", reason: "true asks for bf16 matrix products, but \(why) "
                 + "(set bf16: false to train in fp32)")
    }
}
