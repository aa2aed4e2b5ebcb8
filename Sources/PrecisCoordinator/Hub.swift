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
                                           if r.folder.contains("/.hub-staging-") { try? FileManager.default.removeItem(atPath: r.folder) }
                                       })
        log("pushing to \(a.hubURL) repo \(repo) (hub_strategy \(a.hubStrategy))")
        return HubState(uploader: uploader, repo: repo)
    }

    /// The files of a model folder that go to the hub (weights, configs, tokenizer, state) plus a model card.
    func stage(modelFrom dir: String, tag: String, extraFolder: (name: String, path: String)? = nil) throws -> String {
        let fm = FileManager.default
        let staging = (cfg.training.outputDir as NSString).appendingPathComponent(".hub-staging-\(tag)")
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        func place(_ src: String, _ dst: String) throws {
            do { try fm.linkItem(atPath: src, toPath: dst) } catch { try fm.copyItem(atPath: src, toPath: dst) }
        }
        for f in ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "trainer_state.json"] {
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
        try AtomicFile.write(Data(modelCard().utf8), to: (staging as NSString).appendingPathComponent("README.md"))
        return staging
    }

    func modelCard() -> String {
        let a = cfg.training
        let evals = metrics.history.filter { $0["eval_loss"] != nil || $0["eval_rouge1"] != nil }
        var metrics: ModelCard.Metrics?
        if let last = evals.last(where: { $0["eval_rouge1"] != nil }) {
            metrics = ModelCard.Metrics(rouge1: last["eval_rouge1"] ?? 0, rouge2: last["eval_rouge2"] ?? 0, rougeL: last["eval_rougeL"] ?? 0,
                                        rougeLsum: last["eval_rougeLsum"] ?? 0, genLen: last["eval_gen_len"])
        }
        let hp: [(String, String)] = [
            ("model", a.model), ("learning_rate", "\(a.learningRate)"), ("train_batch_size (per worker)", "\(a.perDeviceTrainBatchSize)"),
            ("gradient_accumulation_steps", "\(a.gradientAccumulationSteps)"), ("planned workers", "\(cfg.cluster.workers)"),
            ("total_train_batch_size", "\(a.perDeviceTrainBatchSize * a.gradientAccumulationSteps * cfg.cluster.workers)"),
            ("optimizer", "AdamW (betas \(a.adamBeta1), \(a.adamBeta2); eps \(a.adamEpsilon); weight_decay \(a.weightDecay))"),
            ("lr_scheduler_type", a.lrSchedulerType), ("warmup_steps", "\(plan.warmupSteps)"), ("training_steps", "\(plan.totalSteps)"),
            ("label_smoothing_factor", "\(a.labelSmoothingFactor)"), ("max_grad_norm", "\(a.maxGradNorm)"), ("seed", "\(a.seed)"),
            ("consistency", cfg.cluster.consistency), ("servers", "\(cfg.cluster.servers)"), ("gradient codec", cfg.cluster.codec),
        ]
        let name = cfg.training.hubModelId.map { String($0.split(separator: "/").last ?? Substring($0)) } ?? "precis-model"
        let base = FileManager.default.fileExists(atPath: (a.model as NSString).appendingPathComponent("config.json")) ? a.model : nil
        return ModelCard.render(modelName: name, repoID: cfg.training.hubModelId, baseModel: base,
                                dataset: ModelCard.DatasetInfo(name: "samsum", type: "samsum", split: "validation"),
                                metrics: metrics, hyperparameters: hp, evalHistory: evals,
                                trainingSummary: "Trained with Precis (a Swift parameter-server cluster) on \(a.trainFile).")
    }

    /// After a checkpoint is saved: what `hub_strategy` pushes then.
    func hubAfterSave(checkpoint path: String, step: Int) {
        guard let uploader = hub?.uploader else { return }
        let strategy = cfg.training.hubStrategy
        guard strategy != "end" else { return }
        do {
            let folder: String
            switch strategy {
            case "checkpoint": folder = try stage(modelFrom: path, tag: "\(step)", extraFolder: ("last-checkpoint", path))
            case "all_checkpoints": folder = try stage(modelFrom: path, tag: "\(step)", extraFolder: ("checkpoint-\(step)", path))
            default: folder = try stage(modelFrom: path, tag: "\(step)")
            }
            hub?.pushedCheckpoint = path
            if !uploader.submit(folder: folder, message: "Training in progress, step \(step)") {
                try? FileManager.default.removeItem(atPath: folder)
            }
        } catch {
            log("could not stage checkpoint-\(step) for the hub: \(error)")
        }
    }

    /// At the end: the final model, always (queued behind a running push), and wait for the uploads.
    func hubAtEnd() {
        guard let hub else { return }
        do {
            let folder = try stage(modelFrom: cfg.training.outputDir, tag: "final")
            hub.uploader.submit(folder: folder, message: "End of training", ifBusy: .queue)
            log("waiting for the hub upload to finish (up to 30 min)")
            if !hub.uploader.waitUntilIdle(timeout: 1800) { log("the hub upload is still running after 30 min; giving up on it") }
        } catch {
            log("could not stage the final model for the hub: \(error)")
        }
    }
}
