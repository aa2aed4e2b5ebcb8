import Foundation
import Testing
import PrecisTestSupport

/// `make train-best`'s driver, `tools/recipes/train_best.sh`, run as `make` runs it but with two
/// bart-tiny configs of a few steps (its PRETRAIN / FINETUNE / TEST overrides): stage 1 denoises,
/// stage 2 fine-tunes from stage 1's folder, the test file is scored with the decoding the folder
/// carries, and the scores land in the model card beside both stages' recipes and the data's licence.
@Suite struct RecipeScriptTests {
    @Test func trainBestRunsBothStagesAndRecordsTheTestScoresInTheCard() throws {
        let dir = TestData.tempDir("cli")
        let validation = try TestData.samsum("validation")
        try TestData.samsumPrefix("validation", count: 8, to: dir + "/test.jsonl")   // scored as the recipe scores test
        let repo = TestData.repo.path
        let common = """
              tokenizer: \(repo)/Tests/Fixtures/tokenizer/samsum-bpe-8192.json
              train_file: \(validation)
              max_train_samples: 8
              max_source_length: 32
              max_target_length: 8
              per_device_train_batch_size: 4
              max_steps: 2
              seed: 3
              save_strategy: "no"
              eval_strategy: "no"
              report_to: none
            """
        try """
            training:
              output_dir: \(dir)/pre
              model: bart-tiny
              objective: denoising
              denoising_columns: [dialogue, summary]
              mask_ratio: 0.15
              permute_sentence_ratio: 0.0
            \(common)

            """.write(toFile: dir + "/pre.yaml", atomically: true, encoding: .utf8)
        try """
            training:
              output_dir: \(dir)/best
              model: \(dir)/pre
              generation_config: \(repo)/configs/generation-samsum.json
            \(common)

            """.write(toFile: dir + "/best.yaml", atomically: true, encoding: .utf8)

        let r = try CLI.run([TestData.repo.appendingPathComponent("tools/recipes/train_best.sh").path], executable: "/bin/bash",
                            environment: ["BIN": URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().path,
                                          "PRETRAIN": dir + "/pre.yaml", "FINETUNE": dir + "/best.yaml", "TEST": dir + "/test.jsonl"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("== stage 1: denoising pre-training") && r.stdout.contains("== stage 2: fine-tuning"), "\(r.stdout)")
        let wall = try #require(r.stdout.split(separator: "\n").last { $0.hasPrefix("wall time: pre-training ") }, "\(r.stdout)")
        #expect(wall.contains(", fine-tuning ") && wall.contains(", test ") && wall.contains(", total "), "\(wall)")

        // Stage 2 started from stage 1's folder and scored the test file with the folder's decoding.
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/best/eval-test/metrics.json"))) as? [String: Any])
        #expect(metrics["eval_samples"] as? Int == 8)
        let r1 = try #require(metrics["eval_rouge1"] as? Double)
        let generation = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/best/generation_config.json"))) as? [String: Any])
        #expect(generation["length_penalty"] as? Double == 1.2 && generation["num_beams"] as? Int == 4)

        // The card: the scores (as the metrics file has them), the fine-tuning's and the base model's recipes, and
        // the data's licence (read from the notes beside the bundled SAMSum, as for the real recipe).
        let card = try String(contentsOfFile: dir + "/best/README.md", encoding: .utf8)
        #expect(card.contains("## Results on test.jsonl"), "\(card)")
        // The row under "| Loss | ROUGE-1 | …" and its separator: the card writes 4 decimals.
        let lines = card.split(separator: "\n")
        let header = try #require(lines.firstIndex { $0.hasPrefix("| Loss | ROUGE-1 |") }, "\(card)")
        try #require(header + 2 < lines.count, "\(card)")
        let cells = lines[header + 2].split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let shown = try #require(Double(cells[1]), "\(lines[header + 2])")
        #expect(abs(shown - r1) <= 5e-5, "the card's R1 \(shown), the metrics' \(r1)")
        #expect(card.contains("### How the base model was trained") && card.contains("denoising"), "\(card)")
        #expect(card.contains("license: cc-by-nc-nd-4.0") && card.contains("datasets:\n- samsum"), "\(card)")
    }
}
