import ArgumentParser
import Foundation
import PrecisCore
import PrecisTrain

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Training config files.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate a training config and print it resolved: every key with the value Precis uses, defaults included.",
            discussion: """
            Keys are transformers 5's Seq2SeqTrainingArguments names; transformers 4's `warmup_ratio`, \
            `group_by_length` and `evaluation_strategy` are read as `warmup_steps` (a ratio below 1), \
            `train_sampling_strategy` and `eval_strategy`. Keys Precis does not act on are listed as \
            warnings when ignoring them is harmless and refused when it would change the result. \
            Exit status 1 when the file is not a valid config (every unknown key is named), or when it \
            sets bf16: true and this CPU has no bf16 kernel (the missing CPU flags are named).
            """)

        @Argument(help: "The YAML config file.")
        var file: String

        func run() throws {
            do {
                let cfg = try TrainingConfig.load(file)
                try BF16Setting.check(cfg)
                for w in cfg.warnings { Stdio.writeStderr("precis: warning: \(w)\n") }
                print(cfg.resolvedYAML(), terminator: "")
            } catch { throw fail(error) }
        }
    }
}
