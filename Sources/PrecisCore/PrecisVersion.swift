/// The version every Precis executable prints for `--version` (one source of truth).
///
/// The commit is not embedded: SwiftPM has no way to stamp it without a build plugin that runs
/// git at every build, and a source tarball has no git. Bump `number` with each release.
public enum PrecisVersion {
    public static let number = "0.1.0"
    /// What `--version` prints.
    public static var string: String { "precis \(number)" }
}
