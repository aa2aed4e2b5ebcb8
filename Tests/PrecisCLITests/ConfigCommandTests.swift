import Foundation
import Testing
import PrecisTestSupport

/// `precis config check` and `precis train --set`, as a user runs them.
@Suite struct ConfigCommandTests {
    @Test func checkPrintsTheResolvedConfigAndWarnings() throws {
        let dir = TestData.tempDir("cli")
        let file = dir + "/c.yaml"
        try "training:\n  warmup_ratio: 0.1\n  group_by_length: true\n  run_name: demo\n  report_to: [tensorboard, wandb]\n".write(toFile: file, atomically: true, encoding: .utf8)
        let r = try CLI.run(["config", "check", file])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("  warmup_steps: 0.1\n") && r.stdout.contains("  train_sampling_strategy: \"group_by_length\"\n")
                && r.stdout.contains("  learning_rate: 5e-05\n") && r.stdout.contains("cluster:\n  coordinator: "), "\(r.stdout)")
        #expect(r.stderr.contains("training.run_name (demo) is not used by Precis: ignored"), "\(r.stderr)")
        #expect(r.stdout.contains("  report_to: [\"tensorboard\", \"wandb\"]\n") && r.stdout.contains("  logging_dir: null\n"), "\(r.stdout)")
        #expect(r.stderr.contains("training.report_to: 'wandb' is not supported by Precis"), "\(r.stderr)")
    }

    @Test func checkNamesEveryUnknownKeyAndExitsOne() throws {
        let dir = TestData.tempDir("cli")
        let file = dir + "/c.yaml"
        try "training:\n  learnig_rate: 0.1\n  fp16: true\ncluster:\n  wrokers: 3\n".write(toFile: file, atomically: true, encoding: .utf8)
        let r = try CLI.run(["config", "check", file])
        #expect(r.status == 1)
        #expect(r.stderr.contains("'training.learnig_rate' (did you mean 'learning_rate'?)")
                && r.stderr.contains("'cluster.wrokers' (did you mean 'workers'?)"), "\(r.stderr)")
        try "training:\n  fp16: true\n".write(toFile: file, atomically: true, encoding: .utf8)
        let f = try CLI.run(["config", "check", file])
        #expect(f.status == 1 && f.stderr.contains("training.fp16") && f.stderr.contains("half precision"), "\(f.stderr)")
    }

    @Test func trainRefusesAnUnknownSetting() throws {
        let dir = TestData.tempDir("cli")
        let file = dir + "/c.yaml"
        try "training:\n  output_dir: \(dir)/out\n".write(toFile: file, atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--config", file, "--set", "learnig_rate=0.1"])
        #expect(r.status == 1 && r.stderr.contains("--set: unknown key 'learnig_rate' (did you mean 'learning_rate'?)"), "\(r.stderr)")
        let bad = try CLI.run(["train", "--config", file, "--set", "cluster.workers=0"])
        #expect(bad.status == 1 && bad.stderr.contains("cluster.workers"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }
}
