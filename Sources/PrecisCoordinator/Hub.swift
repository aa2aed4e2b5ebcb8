import Foundation
import PrecisCore
import PrecisHub
import PrecisTrain
import PrecisWire

/// The coordinator's hub pushes: `push_to_hub` with Trainer's `hub_strategy`. Each push is a folder
/// staged beside the checkpoints (hard links, so nothing is copied) and handed to the background
/// uploader, so training never waits on the network; the staged folder is removed once pushed.
struct HubState {
    let uploader: HubUploader
    let repo: String
    /// The checkpoint most recently handed to the uploader (rotation keeps it while it may be uploading).
    var pushedCheckpoint: String?
}

extension Coordinator {
    func makeHub() throws -> HubState? {
        let a = cfg.training
        guard a.pushToHub, let repo = a.hubModelId else { return nil }
        let observed = self.observed
        let pushes = pushLog
        let uploader = try HubUploader(hubURL: a.hubURL, repo: repo, token: a.hubToken, private: a.hubPrivateRepo,
                                       busyPolicy: a.hubStrategy == "every_save" ? .skip : .queue,
                                       log: { Member.log("hub", $0.hasPrefix("hub: ") ? String($0.dropFirst(5)) : $0) },
                                       onResult: { r in
                                           switch r.outcome {
                                           case .pushed(let c):
                                               observed.hubPushed(seconds: r.seconds)
                                               Member.log("hub", "pushed \(r.folder) to \(repo)\(c.commitURL.map { " (\($0))" } ?? "") after \(r.attempts) attempt(s)")
                                           case .failed(let e):
                                               observed.hubPushFailed(seconds: r.seconds)
                                               Member.log("hub", "push of \(r.folder) failed: \(e)")
                                           case .skipped: break
                                           }
                                           pushes.finished(folder: r.folder, outcome: r.succeeded ? "pushed" : r.error != nil ? "failed" : "skipped",
                                                           attempts: r.attempts, commitURL: r.commit?.commitURL, error: r.error.map { "\($0)" })
                                           if r.folder.contains("/.hub-staging-") { try? FileManager.default.removeItem(atPath: r.folder) }
                                       })
        log("pushing to \(a.hubURL) repo \(repo) (hub_strategy \(a.hubStrategy))")
        return HubState(uploader: uploader, repo: repo)
    }

    /// The files of a model folder that go to the hub (weights, configs, tokenizer, state, the run's
    /// results and config) plus the model card of the model at `step`.
    func stage(modelFrom dir: String, tag: String, step: Int, extraFolder: (name: String, path: String)? = nil) throws -> String {
        let fm = FileManager.default
        let staging = (cfg.training.outputDir as NSString).appendingPathComponent(".hub-staging-\(tag)")
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        func place(_ src: String, _ dst: String) throws {
            do { try fm.linkItem(atPath: src, toPath: dst) } catch { try fm.copyItem(atPath: src, toPath: dst) }
        }
        for f in ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "trainer_state.json",
                  "train_results.json", "eval_results.json", "all_results.json", RunArtifacts.configFileName] {
            let src = (dir as NSString).appendingPathComponent(f)
            if fm.fileExists(atPath: src) { try place(src, (staging as NSString).appendingPathComponent(f)) }
        }
        if let extra = extraFolder {
            let target = (staging as NSString).appendingPathComponent(extra.name)
            try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
            for f in try fm.contentsOfDirectory(atPath: extra.path) {
                try place((extra.path as NSString).appendingPathComponent(f), (target as NSString).appendingPathComponent(f))
            }
        }
        try AtomicFile.write(Data(modelCard(step: step).utf8), to: (staging as NSString).appendingPathComponent("README.md"))
        return staging
    }

    /// The card of the model at `step`: its evaluation (if it had one), the run's settings.
    func modelCard(step: Int) -> String {
        let o = runOutcome(globalStep: scheduler.stepsDone, seconds: metrics.elapsed(now: Member.now()), savedStep: step)
        return RunArtifacts.modelCard(o, config: cfg, step: step, baseModel: LocalTrainer.baseModel(cfg.training.model))
    }

    /// After a checkpoint is saved: what `hub_strategy` pushes then.
    func hubAfterSave(checkpoint path: String, step: Int) {
        guard let uploader = hub?.uploader else { return }
        let strategy = cfg.training.hubStrategy
        guard strategy != "end" else { return }
        do {
            let folder: String
            switch strategy {
            case "checkpoint": folder = try stage(modelFrom: path, tag: "\(step)", step: step, extraFolder: ("last-checkpoint", path))
            case "all_checkpoints": folder = try stage(modelFrom: path, tag: "\(step)", step: step, extraFolder: ("checkpoint-\(step)", path))
            default: folder = try stage(modelFrom: path, tag: "\(step)", step: step)
            }
            hub?.pushedCheckpoint = path
            pushLog.queued(folder: folder, message: "Training in progress, step \(step)")
            if !uploader.submit(folder: folder, message: "Training in progress, step \(step)") {
                try? FileManager.default.removeItem(atPath: folder)
            }
        } catch {
            log("could not stage checkpoint-\(step) for the hub: \(error)")
        }
    }

    /// At the end: the final model, always (queued behind a running push), and wait for the uploads.
    func hubAtEnd(savedStep: Int) {
        guard let hub else { return }
        do {
            let folder = try stage(modelFrom: cfg.training.outputDir, tag: "final", step: savedStep)
            pushLog.queued(folder: folder, message: "End of training")
            hub.uploader.submit(folder: folder, message: "End of training", ifBusy: .queue)
            log("waiting for the hub upload to finish (up to 30 min)")
            if !hub.uploader.waitUntilIdle(timeout: 1800) { log("the hub upload is still running after 30 min; giving up on it") }
        } catch {
            log("could not stage the final model for the hub: \(error)")
        }
    }
}
