import Foundation

/// Pushes folders in the background, one at a time, in submission order (Trainer's asynchronous
/// `push_to_hub`). Network errors, HTTP 5xx and 429 are retried with exponential backoff; other
/// errors (401, 403, 404, bad folders) end the push at once. Nothing is ever thrown into the
/// caller: every submission ends as a `Result` in `results` and in the `onResult` callback.
public final class HubUploader: @unchecked Sendable {
    /// What `submit` does while a push is queued or running.
    public enum BusyPolicy: Sendable {
        /// Queue it behind the others (`hub_strategy: end`, the final push).
        case queue
        /// Drop it (`hub_strategy: every_save`: a save while a push runs is not pushed).
        case skip
    }

    public struct RetryPolicy: Sendable {
        /// Attempts in all (1 = no retry).
        public var attempts: Int
        /// Delay before the second attempt; doubles for each further one, up to `maxDelay`.
        public var baseDelay: TimeInterval
        public var maxDelay: TimeInterval

        public init(attempts: Int = 5, baseDelay: TimeInterval = 2, maxDelay: TimeInterval = 120) {
            self.attempts = max(1, attempts); self.baseDelay = baseDelay; self.maxDelay = maxDelay
        }

        /// The wait after failed attempt `n` (1-based).
        public func delay(after n: Int) -> TimeInterval {
            min(maxDelay, baseDelay * pow(2, Double(max(0, n - 1))))
        }
    }

    public struct Result: Sendable {
        public enum Outcome: Sendable {
            case pushed(CommitResult)
            case failed(HubError)
            /// Not pushed because another push was running (`BusyPolicy.skip`).
            case skipped
        }
        public let id: Int
        public let folder: String
        public let message: String
        public let outcome: Outcome
        public let attempts: Int
        public let seconds: Double

        public var succeeded: Bool { if case .pushed = outcome { return true } else { return false } }
        public var error: HubError? { if case let .failed(e) = outcome { return e } else { return nil } }
        public var commit: CommitResult? { if case let .pushed(c) = outcome { return c } else { return nil } }
    }

    private struct Job { let id: Int; let folder: String; let message: String }

    /// Shared with the worker thread (which must not keep the uploader alive).
    private final class State: @unchecked Sendable {
        let cond = NSCondition()
        var queue: [Job] = []
        var running = false
        var stopping = false
        var nextID = 1
        var results: [Result] = []
    }

    public let pusher: any HubPusher
    public let busyPolicy: BusyPolicy
    public let retry: RetryPolicy
    private let state = State()
    private let log: (@Sendable (String) -> Void)?
    private let onResult: (@Sendable (Result) -> Void)?

    public init(pusher: any HubPusher, busyPolicy: BusyPolicy = .queue, retry: RetryPolicy = RetryPolicy(),
                log: (@Sendable (String) -> Void)? = nil, onResult: (@Sendable (Result) -> Void)? = nil) {
        self.pusher = pusher
        self.busyPolicy = busyPolicy
        self.retry = retry
        self.log = log
        self.onResult = onResult
        let state = self.state, pusher = self.pusher, retry = self.retry
        let thread = Thread {
            Self.run(state: state, pusher: pusher, retry: retry, log: log, onResult: onResult)
        }
        thread.name = "precis-hub-upload"
        thread.start()
    }

    /// An uploader for `hub_url` and a repository id; the token is the configured one or `HF_TOKEN`.
    public convenience init(hubURL: String, repo: String, token: String?, private isPrivate: Bool = false,
                            revision: String = "main", busyPolicy: BusyPolicy = .queue, retry: RetryPolicy = RetryPolicy(),
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            log: (@Sendable (String) -> Void)? = nil, onResult: (@Sendable (Result) -> Void)? = nil) throws {
        let destination = try HubDestination(parsing: hubURL)
        let pusher = try HubRepository(destination: destination, repo: repo,
                                       token: HubToken.resolve(configured: token, environment: environment),
                                       private: isPrivate, revision: revision)
        self.init(pusher: pusher, busyPolicy: busyPolicy, retry: retry, log: log, onResult: onResult)
    }

    deinit {
        state.cond.lock()
        state.stopping = true
        state.cond.broadcast()
        state.cond.unlock()
    }

    /// Queues a push of `folder`. Returns false when it was skipped because a push is queued or
    /// running and the policy (`ifBusy`, else the uploader's) is `.skip`; the skip is recorded.
    @discardableResult
    public func submit(folder: String, message: String, ifBusy: BusyPolicy? = nil) -> Bool {
        state.cond.lock()
        let id = state.nextID
        state.nextID += 1
        if (ifBusy ?? busyPolicy) == .skip && (state.running || !state.queue.isEmpty) {
            let r = Result(id: id, folder: folder, message: message, outcome: .skipped, attempts: 0, seconds: 0)
            state.results.append(r)
            state.cond.unlock()
            log?("hub: push of \(folder) skipped: the previous push is still running")
            onResult?(r)
            return false
        }
        state.queue.append(Job(id: id, folder: folder, message: message))
        state.cond.broadcast()
        state.cond.unlock()
        return true
    }

    /// Blocks until nothing is queued or running; false if `timeout` passed first.
    @discardableResult
    public func waitUntilIdle(timeout: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        state.cond.lock()
        defer { state.cond.unlock() }
        while state.running || !state.queue.isEmpty {
            if !state.cond.wait(until: deadline) { return !(state.running || !state.queue.isEmpty) }
        }
        return true
    }

    /// Whether a push is queued or running.
    public var isBusy: Bool {
        state.cond.lock(); defer { state.cond.unlock() }
        return state.running || !state.queue.isEmpty
    }

    /// Every finished (or skipped) submission, in the order they finished.
    public var results: [Result] {
        state.cond.lock(); defer { state.cond.unlock() }
        return state.results
    }

    private static func run(state: State, pusher: any HubPusher, retry: RetryPolicy,
                            log: (@Sendable (String) -> Void)?, onResult: (@Sendable (Result) -> Void)?) {
        while true {
            state.cond.lock()
            while state.queue.isEmpty && !state.stopping { state.cond.wait() }
            if state.queue.isEmpty { state.cond.unlock(); return }  // stopping, and nothing left to push
            let job = state.queue.removeFirst()
            state.running = true
            state.cond.unlock()

            let t0 = Date()
            var attempt = 0
            var outcome: Result.Outcome
            while true {
                attempt += 1
                do {
                    let commit = try pusher.push(folder: job.folder, message: job.message)
                    outcome = .pushed(commit)
                    let what = commit.commitOid.map { "commit \($0)" } ?? "no changes"
                    log?("hub: pushed \(job.folder) (\(what), \(commit.uploaded.count) files sent, \(commit.unchanged.count) unchanged)")
                    break
                } catch {
                    let e = HubError.wrap(error)
                    if e.isRetryable && attempt < retry.attempts {
                        let wait = retry.delay(after: attempt)
                        log?("hub: push of \(job.folder) failed (attempt \(attempt)/\(retry.attempts)): \(e); retrying in \(String(format: "%.1f", wait)) s")
                        Thread.sleep(forTimeInterval: wait)
                        continue
                    }
                    log?("hub: push of \(job.folder) failed: \(e)")
                    outcome = .failed(e)
                    break
                }
            }
            let result = Result(id: job.id, folder: job.folder, message: job.message, outcome: outcome,
                                attempts: attempt, seconds: Date().timeIntervalSince(t0))
            onResult?(result)
            state.cond.lock()
            state.results.append(result)
            state.running = false
            state.cond.broadcast()
            state.cond.unlock()
        }
    }
}
