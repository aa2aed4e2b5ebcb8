import Foundation

/// What can go wrong fetching a repository from the Hub (or finding it in the cache). Messages
/// name the repository, the file and the URL (without query strings), never the token.
public enum HubDownloadError: Error, CustomStringConvertible, Equatable, Sendable {
    /// HTTP 401/403 from the hub: a gated or private repository, or a wrong token.
    case gated(repo: String, status: Int, tokenSent: Bool)
    /// HTTP 404 for the repository or revision.
    case notFound(repo: String, revision: String, localPath: String)
    /// HTTP 404 for one file the revision's listing named.
    case fileMissing(repo: String, file: String, url: String)
    /// HF_HUB_OFFLINE is set and the cache cannot answer.
    case offlineMiss(repo: String, revision: String, cache: String, reason: String)
    /// The repository does not hold what a model (or tokenizer) folder needs.
    case unusableRepo(repo: String, revision: String, reason: String)
    /// The server's answer is malformed or contradicts itself.
    case badAnswer(url: String, reason: String)
    /// Redirect loop or chain longer than the limit.
    case tooManyRedirects(url: String, limit: Int)
    /// Size announced or received exceeds the limit or the announced size.
    case tooLarge(file: String, bytes: Int64, limit: Int64)
    case sizeMismatch(file: String, expected: Int64, received: Int64)
    case checksumMismatch(file: String, expected: String, actual: String)
    case noSpace(path: String, needed: Int64, available: Int64)
    case invalidReference(String, reason: String)
    case cache(path: String, reason: String)
    /// The Hub did not answer (or answered with a server error) for a reference that is not a local path.
    case unreachable(reference: String, reason: String)

    public var description: String {
        switch self {
        case let .gated(repo, status, sent):
            return sent
                ? "access to \(repo) was refused (HTTP \(status)) with the token from HF_TOKEN: check that it is valid and that you accepted the repository's conditions on the Hub"
                : "\(repo) needs authentication (HTTP \(status)): it is gated or private; set HF_TOKEN to a Hugging Face access token that may read it"
        case let .notFound(repo, revision, local):
            return "no local folder '\(local)', and the Hub has no repository \(repo) at revision '\(revision)' (HTTP 404; a private repository needs HF_TOKEN)"
        case let .fileMissing(repo, file, url):
            return "\(repo): \(file) is listed by the Hub but not served (HTTP 404 from \(url))"
        case let .offlineMiss(repo, revision, cache, reason):
            return "HF_HUB_OFFLINE is set and \(repo)@\(revision) is not usable from the cache \(cache): \(reason); download it once without HF_HUB_OFFLINE"
        case let .unusableRepo(repo, revision, reason):
            return "\(repo)@\(revision) cannot be used: \(reason)"
        case let .badAnswer(url, reason):
            return "unexpected answer from \(url): \(reason)"
        case let .tooManyRedirects(url, limit):
            return "more than \(limit) redirects fetching \(url)"
        case let .tooLarge(file, bytes, limit):
            return "\(file): \(bytes) bytes is over the limit of \(limit) bytes (HF_HUB_MAX_FILE_BYTES)"
        case let .sizeMismatch(file, expected, received):
            return "\(file): expected \(expected) bytes but received \(received)"
        case let .checksumMismatch(file, expected, actual):
            // A 64-hex ETag is a sha256 (LFS), a 40-hex one a git blob id (regular files).
            let what = expected.utf8.count == 40 ? "git blob id" : "sha256"
            return "\(file): \(what) \(actual) does not match the Hub's \(expected); the partial download was removed, try again"
        case let .noSpace(path, needed, available):
            return "\(path): \(needed) bytes to download but only \(available) free"
        case let .invalidReference(text, reason):
            return "invalid Hub reference '\(text)': \(reason)"
        case let .cache(path, reason):
            return "Hub cache \(path): \(reason)"
        case let .unreachable(reference, reason):
            return "no local folder '\(reference)', and fetching it from the Hub failed: \(reason) (HF_HUB_OFFLINE=1 uses the cache only)"
        }
    }
}
