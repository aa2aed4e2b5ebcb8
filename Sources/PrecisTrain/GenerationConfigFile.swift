import Foundation
import PrecisCore
import PrecisModels

/// Seq2SeqTrainingArguments' `generation_config`: a generation_config.json (or a folder holding one)
/// whose values replace the model's generation defaults — for the evaluations during training and
/// in every model folder and checkpoint the run writes, so `precis evaluate`, `precis summarize`
/// and transformers' `generate` decode with them without flags.
public enum GenerationConfigFile {
    /// The file `value` names: itself, or `generation_config.json` inside a folder.
    static func path(_ value: String) -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: value, isDirectory: &isDir), isDir.boolValue {
            return (value as NSString).appendingPathComponent("generation_config.json")
        }
        return value
    }

    /// `model`'s generation defaults with `overrides` (what `load` read) laid over them.
    public static func defaults(for model: any Seq2SeqModel, overrides: [String: Any]) -> [String: Any] {
        var merged = model.generationDefaults
        for (k, v) in overrides { merged[k] = v }
        return merged
    }

    /// The values of the config's `generation_config` file ([:] without one). The file must be a JSON
    /// object of at most 1 MiB whose values `GenerationSettings` accepts; an error names
    /// `training.generation_config` and the file. Every process's `TrainingPlan` reads it, so a bad
    /// file stops the run before its first step.
    public static func load(_ cfg: TrainingConfig) throws -> [String: Any] {
        guard let value = cfg.training.generationConfig else { return [:] }
        let file = path(value)
        func refuse(_ why: String) -> ConfigError {
            .invalid(file: cfg.file, key: "training.generation_config", reason: "\(file): \(why)")
        }
        let data: Data
        do { data = try SmallFile.read(file, limit: 1 << 20) } catch .tooLarge {
            throw refuse("larger than 1 MiB, the most a generation config may have")
        } catch {
            throw refuse(error.description)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw refuse("not a JSON object")
        }
        do {
            try GenerationSettings(json: object, file: file).validate(file: file)
        } catch {
            throw refuse("\(error)")
        }
        return object
    }
}
