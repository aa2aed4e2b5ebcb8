import Foundation
import PrecisCore

/// Where a model or tokenizer the user names comes from: an existing local path is used as it is;
/// `owner/name[@revision]` that is not a local path is fetched from the Hub (HF_ENDPOINT) into the
/// shared Hugging Face cache and the cached snapshot folder is used. Anything else is returned
/// unchanged for the caller to read as a preset name or report as a missing path.
///
/// Every command and the coordinator call this before loading; in a cluster only the process that
/// resolves (`precis train`, or `precis-coordinator`) downloads, and members are handed the
/// resolved local path in the config they receive.
public enum ModelSource {
    /// The model folder `spec` names (a local path, or the snapshot folder of a Hub reference).
    public static func modelFolder(_ spec: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                                   log: @escaping @Sendable (String) -> Void = ModelSource.stderrLog) throws -> String {
        try resolve(spec, purpose: .model, environment: environment, log: log)?.folder ?? spec
    }

    /// The tokenizer `spec` names: a local path (a tokenizer.json file or a folder) as it is, or the
    /// `tokenizer.json` of a Hub reference's snapshot (its folder when the repository has no
    /// tokenizer.json: vocab.json + merges.txt or spiece.model, read by PrecisData's TokenizerFolder).
    public static func tokenizerFile(_ spec: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                                     log: @escaping @Sendable (String) -> Void = ModelSource.stderrLog) throws -> String {
        guard let s = try resolve(spec, purpose: .tokenizer, environment: environment, log: log) else { return spec }
        return s.files.contains("tokenizer.json") ? s.folder + "/tokenizer.json" : s.folder
    }

    /// Whether `spec` would be fetched from the Hub (not a local path, shaped like a repository id).
    public static func isHubReference(_ spec: String) -> Bool {
        !FileManager.default.fileExists(atPath: spec) && HubReference.looksLikeReference(spec)
    }

    /// The snapshot for a Hub reference, or nil when `spec` is a local path or not a reference.
    public static func resolve(_ spec: String, purpose: HubFilePlan.Purpose, environment: [String: String],
                               log: @escaping @Sendable (String) -> Void) throws -> HubDownloader.Snapshot? {
        guard isHubReference(spec) else { return nil }
        let ref = try HubReference(parsing: spec)
        let settings = try HubSettings(environment: environment)
        let bar = DownloadProgressLine()
        let d = HubDownloader(settings: settings, progress: { bar.report(file: $0, done: $1, total: $2) }, log: log)
        let s: HubDownloader.Snapshot
        do { s = try d.snapshot(ref, purpose: purpose) } catch let e as HubError {
            throw HubDownloadError.unreachable(reference: spec, reason: "\(e)")
        }
        let source = settings.offline ? "the cache (HF_HUB_OFFLINE)" : Redact.url(settings.endpoint)
        log("\(ref) → \(s.folder) (commit \(s.commit) from \(source); \(s.downloaded.count) of \(s.files.count) file(s) downloaded)")
        return s
    }

    /// For a training config: `--set` style overrides (`training.model=…`, `training.tokenizer=…`)
    /// pointing the config at the local copies of what it names on the Hub; empty when it names
    /// only local paths and presets. The tokenizer is left alone when it is to be trained
    /// (`tokenizer_model` set). Applied to the config text before it is parsed and handed to the
    /// cluster's members, so they read local paths and never download.
    public static func trainingOverrides(model: String, tokenizer: String, trainsTokenizer: Bool,
                                         environment: [String: String] = ProcessInfo.processInfo.environment,
                                         log: @escaping @Sendable (String) -> Void = ModelSource.stderrLog) throws -> [String] {
        var out: [String] = []
        let m = try modelFolder(model, environment: environment, log: log)
        if m != model { out.append("training.model=" + yamlString(m)) }
        if !trainsTokenizer {
            let t = try tokenizerFile(tokenizer, environment: environment, log: log)
            if t != tokenizer { out.append("training.tokenizer=" + yamlString(t)) }
        }
        return out
    }

    /// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
    static func yamlString(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    public static let stderrLog: @Sendable (String) -> Void = { Stdio.writeStderr("precis: \($0)\n") }
}
