import Foundation
import PrecisCore
import PrecisText

/// The tokenizer a training config asks for, trained when it is missing: with
/// `training.tokenizer_model` set (`bpe` or `unigram`) and no file at `training.tokenizer`, a
/// tokenizer of that kind is trained on the `text_column` and `summary_column` of every record of
/// `train_file` (JSON Lines) with `tokenizer_vocab_size` ids — what `precis tokenizer train
/// --model KIND --fields TEXT,SUMMARY` does — and saved there. Without `tokenizer_model` nothing
/// is trained (the file must exist, as before).
public enum TokenizerPreparation {
    /// Trains and saves the tokenizer if it is wanted and missing; returns whether it did.
    @discardableResult
    public static func ensure(_ cfg: TrainingConfig, log: (String) -> Void = { _ in }) throws -> Bool {
        let a = cfg.training
        guard let name = a.tokenizerModel, !FileManager.default.fileExists(atPath: a.tokenizer) else { return false }
        guard let kind = TokenizerKind(rawValue: name) else {
            throw ConfigError.invalid(file: cfg.file, key: "training.tokenizer_model", reason: "'\(name)' is not one of bpe, unigram")
        }
        log("training a \(kind.rawValue) tokenizer (\(a.tokenizerVocabSize) ids) on \(a.trainFile) [\(a.textColumn), \(a.summaryColumn)] for \(a.tokenizer)")
        let r = try TokenizerTraining(kind: kind, vocabSize: a.tokenizerVocabSize).run(files: [a.trainFile], fields: [a.textColumn, a.summaryColumn])
        let dir = (a.tokenizer as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        // Written beside the target, fsynced, then moved into place: an interrupted run leaves no half file.
        do { try AtomicFile.write(r.tokenizer.jsonData(), to: a.tokenizer) } catch {
            throw ConfigError.invalid(file: cfg.file, key: "training.tokenizer", reason: "cannot write \(a.tokenizer): \(error)")
        }
        log(String(format: "trained %@: %d texts, %d distinct words, %d tokens (%.1fs)", a.tokenizer, r.texts, r.words,
                   r.tokenizer.vocabSize, r.countingSeconds + r.trainingSeconds))
        return true
    }
}
