import Foundation
import Testing
import PrecisCore
import PrecisModels
import PrecisTrain

/// `training.bf16`: read as Trainer's key, printed by `config check`, refused on a CPU without a bf16
/// kernel with the key and the CPU's missing flags named; `bf16_full_eval` and `fp16` stay refused.
@Suite struct BF16SettingTests {
    func parse(_ training: String) throws -> TrainingConfig {
        try TrainingConfig.parse("training:\n" + training, file: "c.yaml")
    }

    @Test func bf16IsReadPrintedAndReadBack() throws {
        #expect(try parse("  learning_rate: 0.001\n").training.bf16 == false)
        let c = try parse("  bf16: true\n")
        #expect(c.training.bf16 && c.warnings.isEmpty)
        let yaml = c.resolvedYAML()
        #expect(yaml.contains("  bf16: true\n"), "\(yaml)")
        #expect(try TrainingConfig.parse(yaml, file: "resolved.yaml").training.bf16)
        #expect(try parse("  bf16: false\n").training.bf16 == false)
        #expect(throws: ConfigError.wrongType(file: "c.yaml", key: "training.bf16", expected: "true or false")) {
            try parse("  bf16: maybe\n")
        }
        // --set reaches it as any other key.
        let set = try TrainingConfig.applying(["bf16=true"], to: "training:\n  seed: 3\n", file: "c.yaml")
        #expect(try TrainingConfig.parse(set, file: "c.yaml").training.bf16)
    }

    @Test func bf16FullEvalAndFp16StayRefusedWithWhatToDoInstead() throws {
        for (yaml, key, words) in [("  bf16_full_eval: true\n", "training.bf16_full_eval", "set bf16: true instead"),
                                   ("  fp16: true\n", "training.fp16", "half precision"),
                                   ("  fp16_full_eval: true\n", "training.fp16_full_eval", "fp32")] {
            do {
                _ = try parse(yaml)
                Issue.record("\(yaml) was accepted")
            } catch let ConfigError.invalid(file, k, reason) {
                #expect(file == "c.yaml" && k == key && reason.contains(words), "\(reason)")
            }
        }
        // Set to false they are harmless: one warning each.
        #expect(try parse("  bf16_full_eval: false\n").warnings.count == 1)
    }

    @Test func aCPUWithoutABF16KernelIsRefusedNamingTheKeyAndTheFlags() throws {
        let on = try parse("  bf16: true\n")
        let why = "bf16 matrix products need a CPU with avx512_bf16 (AVX-512-BF16) or amx_tile + amx_bf16 (AMX); this one lacks avx512f, avx512_bf16 and amx_tile/amx_bf16"
        let e = BF16Setting.problem(on, unavailableReason: why)
        guard case let .invalid(file, key, reason)? = e else { Issue.record("not refused: \(String(describing: e))"); return }
        #expect(file == "c.yaml" && key == "training.bf16")
        #expect(reason.contains("avx512_bf16") && reason.contains("amx_bf16") && reason.contains("bf16: false"), "\(reason)")
        #expect("\(e!)".hasPrefix("c.yaml: key 'training.bf16': "), "\(e!)")
        #expect(BF16Setting.problem(on, unavailableReason: nil) == nil)
        #expect(BF16Setting.problem(try parse("  bf16: false\n"), unavailableReason: why) == nil)
    }

    /// On this process's CPU: a model gets bf16 products exactly when a kernel runs here, and the
    /// refusal otherwise is `problem`'s.
    @Test func applySetsBF16ProductsOrThrowsTheConfigError() throws {
        let on = try parse("  bf16: true\n")
        let model = try ModelPresets.model("bart-tiny")
        if BF16Gemm.kernel != nil {
            try BF16Setting.apply(on, to: model)
            #expect(model.matmulPrecision == .bf16)
            #expect(BF16Setting.describe(model).contains("bf16"))
        } else {
            #expect(throws: BF16Setting.problem(on)!) { try BF16Setting.apply(on, to: model) }
            #expect(model.matmulPrecision == .fp32)
        }
        let off = try ModelPresets.model("bart-tiny")
        try BF16Setting.apply(try parse("  seed: 1\n"), to: off)
        #expect(off.matmulPrecision == .fp32 && BF16Setting.describe(off) == "fp32")
    }
}
