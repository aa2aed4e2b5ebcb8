import ArgumentParser

/// `--output-dir`, the one name of an output folder on every command, and `--out`, its old
/// spelling on `init`, `evaluate` and `keys generate` (hidden, kept so scripts do not break).
enum OutputDir {
    /// The folder given; nil when neither is given and none is required.
    static func resolve(_ outputDir: String?, legacy: String?, required: Bool) throws -> String? {
        if let a = outputDir, let b = legacy, a != b {
            throw ValidationError("--output-dir \(a) and --out \(b) name different folders: give --output-dir only")
        }
        guard let dir = outputDir ?? legacy else {
            if required { throw ValidationError("Missing expected argument '--output-dir <output-dir>'") }
            return nil
        }
        guard !dir.isEmpty else { throw ValidationError("--output-dir must not be empty") }
        return dir
    }
}
