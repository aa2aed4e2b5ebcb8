import Foundation
import PrecisCore
#if canImport(Glibc)
import Glibc
#endif

// Atomic checkpoint folders in Hugging Face Trainer's layout (`output_dir/checkpoint-<global_step>/`).
//
// A checkpoint is written into `output_dir/.tmp-checkpoint-<step>-<pid>/`; every file is fsynced,
// `manifest.json` (size and SHA-256 of every file) is written last, then the folder is renamed to
// `checkpoint-<step>` and `output_dir` is fsynced. A crash at any moment leaves either no
// `checkpoint-<step>` or a complete one; leftovers are `.tmp-checkpoint-*` folders, which
// `cleanTemporaries()` removes.

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missingManifest(checkpoint: String)
    case invalidManifest(path: String, reason: String)
    case missingFile(checkpoint: String, file: String)
    case sizeMismatch(checkpoint: String, file: String, expected: Int64, actual: Int64)
    case sha256Mismatch(checkpoint: String, file: String, expected: String, actual: String)
    case notACheckpoint(path: String)
    case invalidFileName(String, reason: String)
    case invalidLimit(Int)
    case io(path: String, reason: String)
    case invalidTrainerState(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missingManifest(c):
            return "checkpoint \(c): manifest.json is missing (incomplete or not written by Precis)"
        case let .invalidManifest(p, r):
            return "\(p): invalid checkpoint manifest: \(r)"
        case let .missingFile(c, f):
            return "checkpoint \(c): \(f) is listed in the manifest but missing"
        case let .sizeMismatch(c, f, e, a):
            return "checkpoint \(c): \(f) has \(a) bytes, the manifest says \(e) (truncated or overwritten)"
        case let .sha256Mismatch(c, f, e, a):
            return "checkpoint \(c): \(f) is corrupt: sha256 \(a), the manifest says \(e)"
        case let .notACheckpoint(p):
            return "\(p) is not a checkpoint folder"
        case let .invalidFileName(n, r):
            return "invalid checkpoint file name '\(n)': \(r)"
        case let .invalidLimit(l):
            return "checkpoint limit must be at least 1 (got \(l))"
        case let .io(p, r):
            return "\(p): \(r)"
        case let .invalidTrainerState(p, r):
            return "\(p): invalid trainer_state.json: \(r)"
        }
    }
}

/// The checkpoint folders of one output directory.
public struct CheckpointStore: Sendable {
    public static let manifestName = "manifest.json"
    /// The most bytes a manifest may have (a name, a size and a SHA-256 a file: ~150 bytes each).
    static let maxManifestBytes = 16 << 20
    public static let format = "precis-checkpoint-1"
    static let tempPrefix = ".tmp-checkpoint-"

    public let outputDir: String

    public init(outputDir: String) { self.outputDir = outputDir }

    /// One file of a checkpoint: bytes in memory, or a closure that writes the file at the path it
    /// is given (so large weight files can be streamed). Names are flat (no `/`).
    public enum File {
        case data(String, Data)
        case writer(String, (String) throws -> Void)

        public var name: String {
            switch self {
            case let .data(n, _), let .writer(n, _): return n
            }
        }
    }

    /// `manifest.json`: the step, when it was written, and the size and SHA-256 of every file.
    public struct Manifest: Codable, Equatable, Sendable {
        public struct Entry: Codable, Equatable, Sendable {
            public var size: Int64
            public var sha256: String
            public init(size: Int64, sha256: String) { self.size = size; self.sha256 = sha256 }
        }
        public var format: String
        public var step: Int
        public var created: String
        public var files: [String: Entry]

        public init(step: Int, created: String, files: [String: Entry]) {
            self.format = CheckpointStore.format
            self.step = step
            self.created = created
            self.files = files
        }
    }

    public func path(step: Int) -> String { FS.join(outputDir, "checkpoint-\(step)") }

    // MARK: Saving

    /// Writes a checkpoint atomically and returns its path (`outputDir/checkpoint-<step>`). An
    /// existing checkpoint of the same step is replaced (moved aside, the new one renamed in, the old
    /// one deleted).
    @discardableResult
    public func save(step: Int, files: [File]) throws -> String {
        try Self.validate(names: files.map(\.name))
        try FS.makeDirectory(outputDir)
        let pid = getpid()
        let tmp = FS.join(outputDir, "\(Self.tempPrefix)\(step)-\(pid)")
        CheckpointsInFlight.shared.insert(tmp)
        defer { CheckpointsInFlight.shared.remove(tmp) }
        if FileManager.default.fileExists(atPath: tmp) { try FS.remove(tmp) }
        try FS.makeDirectory(tmp)
        do {
            var entries: [String: Manifest.Entry] = [:]
            for file in files {
                let path = FS.join(tmp, file.name)
                switch file {
                case let .data(_, data):
                    try writeFile(data, to: path)
                    entries[file.name] = Manifest.Entry(size: Int64(data.count), sha256: Hashing.sha256Hex(data))
                case let .writer(_, body):
                    try body(path)
                    guard let size = FS.fileSize(path) else { throw CheckpointError.missingFile(checkpoint: tmp, file: file.name) }
                    try FS.fsyncPath(path)
                    entries[file.name] = Manifest.Entry(size: size, sha256: try FS.wrapIO { try Hashing.sha256Hex(fileAt: path) })
                }
            }
            let manifest = Manifest(step: step, created: Date().ISO8601Format(), files: entries)
            try writeFile(try Self.encoder().encode(manifest), to: FS.join(tmp, Self.manifestName))
            try FS.fsyncPath(tmp)

            let final = path(step: step)
            if FileManager.default.fileExists(atPath: final) {
                let aside = FS.join(outputDir, "\(Self.tempPrefix)\(step)-\(pid)-old")
                CheckpointsInFlight.shared.insert(aside)
                defer { CheckpointsInFlight.shared.remove(aside) }
                if FileManager.default.fileExists(atPath: aside) { try FS.remove(aside) }
                try FS.renameItem(final, aside)
                try FS.renameItem(tmp, final)
                try FS.fsyncPath(outputDir)
                try FS.remove(aside)
            } else {
                try FS.renameItem(tmp, final)
                try FS.fsyncPath(outputDir)
            }
            return final
        } catch {
            try? FS.remove(tmp)
            throw error
        }
    }

    static func validate(names: [String]) throws {
        var seen = Set<String>()
        for n in names {
            if n.isEmpty || n == "." || n == ".." { throw CheckpointError.invalidFileName(n, reason: "not a file name") }
            if n.contains("/") || n.contains("\0") {
                throw CheckpointError.invalidFileName(n, reason: "checkpoint files are flat: no '/' in names")
            }
            if n == manifestName { throw CheckpointError.invalidFileName(n, reason: "reserved for the manifest") }
            if !seen.insert(n).inserted { throw CheckpointError.invalidFileName(n, reason: "listed twice") }
        }
    }

    // MARK: Reading

    public static func readManifest(_ dir: String) throws -> Manifest {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError.notACheckpoint(path: dir)
        }
        let path = FS.join(dir, manifestName)
        let data: Data
        do { data = try SmallFile.read(path, limit: maxManifestBytes) } catch .missing {
            throw CheckpointError.missingManifest(checkpoint: dir)
        } catch {
            throw CheckpointError.io(path: path, reason: error.description)
        }
        let m: Manifest
        do { m = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw CheckpointError.invalidManifest(path: path, reason: FS.describe(error))
        }
        guard m.format == format else {
            throw CheckpointError.invalidManifest(path: path, reason: "format '\(m.format)', expected '\(format)'")
        }
        for name in m.files.keys {
            do { try validate(names: [name]) } catch {
                throw CheckpointError.invalidManifest(path: path, reason: "\(error)")
            }
        }
        return m
    }

    /// Checks the manifest and every listed file's size and SHA-256; the error names the file. A
    /// folder named `checkpoint-N` must hold step N (a copy of step 100 named checkpoint-900 would
    /// be taken for the newest, and a rollback would go back to step 100 silently).
    public func verify(_ dir: String) throws {
        let m = try Self.readManifest(dir)
        let name = (dir as NSString).lastPathComponent
        if name.hasPrefix("checkpoint-"), let n = Int(name.dropFirst("checkpoint-".count)), n != m.step {
            throw CheckpointError.invalidManifest(path: FS.join(dir, Self.manifestName), reason: "step \(m.step), but the folder is named for step \(n)")
        }
        for (name, entry) in m.files.sorted(by: { $0.key < $1.key }) {
            let path = FS.join(dir, name)
            guard let size = FS.fileSize(path) else { throw CheckpointError.missingFile(checkpoint: dir, file: name) }
            if size != entry.size {
                throw CheckpointError.sizeMismatch(checkpoint: dir, file: name, expected: entry.size, actual: size)
            }
            let sha = try FS.wrapIO { try Hashing.sha256Hex(fileAt: path) }
            if sha != entry.sha256 {
                throw CheckpointError.sha256Mismatch(checkpoint: dir, file: name, expected: entry.sha256, actual: sha)
            }
        }
    }

    /// Folders named `checkpoint-<integer>`, oldest step first (whatever their state).
    public func list() -> [(step: Int, path: String)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: outputDir) else { return [] }
        var out: [(step: Int, path: String)] = []
        for name in names where name.hasPrefix("checkpoint-") {
            let digits = name.dropFirst("checkpoint-".count)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let step = Int(digits) else { continue }
            var isDir: ObjCBool = false
            let p = FS.join(outputDir, name)
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue { out.append((step, p)) }
        }
        return out.sorted { $0.step < $1.step }
    }

    /// The newest checkpoint that has a manifest (not verified).
    public func latest() -> (step: Int, path: String)? {
        list().last { FileManager.default.fileExists(atPath: FS.join($0.path, Self.manifestName)) }
    }

    /// The newest checkpoint that verifies; `onSkip` hears about each newer one that did not, and why.
    public func latestValid(onSkip: ((String, CheckpointError) -> Void)? = nil) -> (step: Int, path: String)? {
        for c in list().reversed() {
            do {
                try verify(c.path)
                return c
            } catch let e as CheckpointError {
                onSkip?(c.path, e)
            } catch {
                onSkip?(c.path, .io(path: c.path, reason: "\(error)"))
            }
        }
        return nil
    }

    // MARK: Housekeeping

    /// Deletes the oldest checkpoints so that at most `limit` remain, never deleting a path in
    /// `keep` (the best checkpoint, the one just written). Returns the deleted paths. A checkpoint is
    /// first renamed to a temporary name, so a crash mid-delete never leaves a half-deleted
    /// `checkpoint-<step>`.
    @discardableResult
    public func rotate(limit: Int, keep: Set<String> = []) throws -> [String] {
        guard limit >= 1 else { throw CheckpointError.invalidLimit(limit) }
        let kept = Set(keep.map(Self.normalize))
        let all = list()
        var excess = all.count - limit
        var deleted: [String] = []
        for c in all where excess > 0 && !kept.contains(Self.normalize(c.path)) {
            let doomed = FS.join(outputDir, "\(Self.tempPrefix)\(c.step)-\(getpid())-deleting")
            if FileManager.default.fileExists(atPath: doomed) { try FS.remove(doomed) }
            try FS.renameItem(c.path, doomed)
            try? FS.fsyncPath(outputDir)
            try FS.remove(doomed)
            deleted.append(c.path)
            excess -= 1
        }
        return deleted
    }

    /// Removes `.tmp-checkpoint-*` folders left by a crashed save. Folders that a save in flight in
    /// this process, or in another live process, is writing are left alone.
    @discardableResult
    public func cleanTemporaries() throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: outputDir) else { return [] }
        var removed: [String] = []
        for name in names.sorted() where name.hasPrefix(Self.tempPrefix) {
            let p = FS.join(outputDir, name)
            if CheckpointsInFlight.shared.contains(p) { continue }
            // .tmp-checkpoint-<step>-<pid>[-suffix]
            let parts = name.dropFirst(Self.tempPrefix.count).split(separator: "-")
            if parts.count >= 2, let pid = Int32(parts[1]), pid != getpid(), pid > 0, kill(pid, 0) == 0 || errno == EPERM {
                continue  // another live process may be writing it
            }
            try FS.remove(p)
            removed.append(p)
        }
        return removed
    }

    // MARK: Helpers

    static func normalize(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    func writeFile(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw CheckpointError.io(path: path, reason: "open failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try FS.wrapIO { try data.withUnsafeBytes { try AtomicFile.writeAll(fd, $0, path: path) } }
        if fsync(fd) != 0 { throw CheckpointError.io(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))") }
    }
}

/// The temporary folders saves in this process are writing (so `cleanTemporaries` leaves them).
fileprivate final class CheckpointsInFlight: @unchecked Sendable {
    static let shared = CheckpointsInFlight()
    private let lock = NSLock()
    private var paths = Set<String>()
    func insert(_ p: String) { lock.withLock { _ = paths.insert(CheckpointStore.normalize(p)) } }
    func remove(_ p: String) { lock.withLock { _ = paths.remove(CheckpointStore.normalize(p)) } }
    func contains(_ p: String) -> Bool { lock.withLock { paths.contains(CheckpointStore.normalize(p)) } }
}

/// Hugging Face's `trainer_state.json` (snake_case keys, the names `TrainerState` uses in
/// transformers). Missing keys take transformers' defaults; unknown keys are ignored.
public struct TrainerState: Codable, Equatable, Sendable {
    public var globalStep: Int = 0
    public var epoch: Double = 0
    public var maxSteps: Int = 0
    public var numTrainEpochs: Int = 0
    public var loggingSteps: Int = 500
    public var evalSteps: Int = 500
    public var saveSteps: Int = 500
    public var trainBatchSize: Int? = nil
    public var bestMetric: Double? = nil
    public var bestModelCheckpoint: String? = nil
    public var bestGlobalStep: Int? = nil
    public var isLocalProcessZero: Bool = true
    public var isWorldProcessZero: Bool = true
    public var isHyperParamSearch: Bool = false
    public var totalFlos: Double = 0
    /// One flat map of numbers per logged event (`loss`, `learning_rate`, `eval_rouge1`, `step`, …).
    public var logHistory: [[String: Double]] = []

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case globalStep = "global_step", epoch, maxSteps = "max_steps", numTrainEpochs = "num_train_epochs"
        case loggingSteps = "logging_steps", evalSteps = "eval_steps", saveSteps = "save_steps"
        case trainBatchSize = "train_batch_size", bestMetric = "best_metric"
        case bestModelCheckpoint = "best_model_checkpoint", bestGlobalStep = "best_global_step"
        case isLocalProcessZero = "is_local_process_zero", isWorldProcessZero = "is_world_process_zero"
        case isHyperParamSearch = "is_hyper_param_search", totalFlos = "total_flos", logHistory = "log_history"
    }

    /// The JSON keys, as transformers names them.
    public static var jsonKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainerState()
        globalStep = try c.decodeIfPresent(Int.self, forKey: .globalStep) ?? d.globalStep
        epoch = try c.decodeIfPresent(Double.self, forKey: .epoch) ?? d.epoch
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps) ?? d.maxSteps
        numTrainEpochs = try c.decodeIfPresent(Int.self, forKey: .numTrainEpochs) ?? d.numTrainEpochs
        loggingSteps = try c.decodeIfPresent(Int.self, forKey: .loggingSteps) ?? d.loggingSteps
        evalSteps = try c.decodeIfPresent(Int.self, forKey: .evalSteps) ?? d.evalSteps
        saveSteps = try c.decodeIfPresent(Int.self, forKey: .saveSteps) ?? d.saveSteps
        trainBatchSize = try c.decodeIfPresent(Int.self, forKey: .trainBatchSize)
        bestMetric = try c.decodeIfPresent(Double.self, forKey: .bestMetric)
        bestModelCheckpoint = try c.decodeIfPresent(String.self, forKey: .bestModelCheckpoint)
        bestGlobalStep = try c.decodeIfPresent(Int.self, forKey: .bestGlobalStep)
        isLocalProcessZero = try c.decodeIfPresent(Bool.self, forKey: .isLocalProcessZero) ?? d.isLocalProcessZero
        isWorldProcessZero = try c.decodeIfPresent(Bool.self, forKey: .isWorldProcessZero) ?? d.isWorldProcessZero
        isHyperParamSearch = try c.decodeIfPresent(Bool.self, forKey: .isHyperParamSearch) ?? d.isHyperParamSearch
        totalFlos = try c.decodeIfPresent(Double.self, forKey: .totalFlos) ?? d.totalFlos
        logHistory = try c.decodeIfPresent([[String: Double]].self, forKey: .logHistory) ?? d.logHistory
    }

    /// Writes every key, `null` for absent optionals (as transformers does).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(globalStep, forKey: .globalStep)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(maxSteps, forKey: .maxSteps)
        try c.encode(numTrainEpochs, forKey: .numTrainEpochs)
        try c.encode(loggingSteps, forKey: .loggingSteps)
        try c.encode(evalSteps, forKey: .evalSteps)
        try c.encode(saveSteps, forKey: .saveSteps)
        try c.encode(trainBatchSize, forKey: .trainBatchSize)
        try c.encode(bestMetric, forKey: .bestMetric)
        try c.encode(bestModelCheckpoint, forKey: .bestModelCheckpoint)
        try c.encode(bestGlobalStep, forKey: .bestGlobalStep)
        try c.encode(isLocalProcessZero, forKey: .isLocalProcessZero)
        try c.encode(isWorldProcessZero, forKey: .isWorldProcessZero)
        try c.encode(isHyperParamSearch, forKey: .isHyperParamSearch)
        try c.encode(totalFlos, forKey: .totalFlos)
        try c.encode(logHistory, forKey: .logHistory)
    }

    /// Pretty JSON with sorted keys; non-finite numbers (a NaN loss) as the strings "NaN", "Infinity".
    public func jsonData() throws -> Data {
        let e = CheckpointStore.encoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try e.encode(self)
    }

    /// Writes atomically (temporary file, fsync, rename, fsync of the folder).
    public func write(to path: String) throws {
        let data = try jsonData()
        try FS.wrapIO { try AtomicFile.write(data, to: path) }
    }

    /// The most bytes a trainer_state.json may have: ~150 bytes a logged step, so a million of them.
    public static let maxBytes = 256 << 20

    public static func read(path: String) throws -> TrainerState {
        let data: Data
        do { data = try SmallFile.read(path, limit: maxBytes) } catch {
            throw CheckpointError.io(path: path, reason: error.description)
        }
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do { return try d.decode(TrainerState.self, from: data) } catch {
            throw CheckpointError.invalidTrainerState(path: path, reason: FS.describe(error))
        }
    }
}

// MARK: File-system helpers

fileprivate enum FS {

    static func join(_ a: String, _ b: String) -> String { (a as NSString).appendingPathComponent(b) }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw CheckpointError.io(path: path, reason: "cannot create directory: \(error.localizedDescription)")
        }
    }

    static func remove(_ path: String) throws {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            if !FileManager.default.fileExists(atPath: path) { return }
            throw CheckpointError.io(path: path, reason: "cannot remove: \(error.localizedDescription)")
        }
    }

    static func renameItem(_ from: String, _ to: String) throws {
        if rename(from, to) != 0 {
            throw CheckpointError.io(path: from, reason: "rename to \(to) failed: \(String(cString: strerror(errno)))")
        }
    }

    /// fsync a file or directory by path.
    static func fsyncPath(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw CheckpointError.io(path: path, reason: "open for fsync failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw CheckpointError.io(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))") }
    }

    /// Turns PrecisCore's file errors into `CheckpointError.io`.
    static func wrapIO<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as FileIOError {
            if case let .io(path, op, errno) = e {
                throw CheckpointError.io(path: path, reason: "\(op) failed: \(String(cString: strerror(errno)))")
            }
            throw e
        }
    }

    /// A readable one-line account of a decoding error: the key path and what was wrong.
    static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case let DecodingError.typeMismatch(type, ctx):
            return "\(path(ctx.codingPath)): expected \(type)"
        case let DecodingError.valueNotFound(type, ctx):
            return "\(path(ctx.codingPath)): expected \(type), found null"
        case let DecodingError.keyNotFound(key, ctx):
            return "\(path(ctx.codingPath + [key])): missing"
        case let DecodingError.dataCorrupted(ctx):
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
