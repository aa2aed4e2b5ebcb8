import Foundation
import Testing
import PrecisCore
import PrecisModels

/// Model folders in every common checkpoint format load to the same parameters as the fp32
/// safetensors fixtures they were made from (tools/golden/make_formats_golden.py).
@Suite struct CheckpointFormatTests {
    static func formats(_ name: String) -> String { Fixtures.root.appendingPathComponent("formats/\(name)").path }

    /// Every parameter and buffer of a model, as bit patterns.
    static func bits(_ m: any Seq2SeqModel) -> [UInt32] {
        m.params.array.map(\.bitPattern) + m.extraTensors.flatMap { $0.values.array.map(\.bitPattern) }
    }

    /// `x` rounded to bf16 (nearest, ties to even) and back, as torch's `.to(torch.bfloat16)` does.
    static func bf16(_ x: Float) -> Float {
        let b = x.bitPattern
        return Float(bitPattern: ((b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16) << 16)
    }

    @Test func bartFromPytorchModelBinIsBitwiseTheSafetensorsModel() throws {
        let (bin, report) = try ModelFolder.load(Self.formats("bart-bin"))
        let (ref, refReport) = try ModelFolder.load(Fixtures.bart("tiny"))
        #expect(Self.bits(bin) == Self.bits(ref))
        #expect(report.unexpected == refReport.unexpected)
        #expect(report.defaulted == refReport.defaulted)
    }

    @Test func t5FromShardedBinIsBitwiseTheSafetensorsModel() throws {
        let (bin, _) = try ModelFolder.load(Self.formats("t5-bin-sharded"))
        let (ref, _) = try ModelFolder.load(Fixtures.root.appendingPathComponent("t5/v1_0").path)
        #expect(Self.bits(bin) == Self.bits(ref))
        #expect(try WeightFiles.open(folder: Self.formats("t5-bin-sharded")).count == 2)
    }

    @Test func fp16SafetensorsConvertToFp32() throws {
        let (half, _) = try ModelFolder.load(Self.formats("bart-fp16"))
        let (ref, _) = try ModelFolder.load(Fixtures.bart("tiny"))
        #expect(half.params.array == ref.params.array.map { Float(Float16($0)) })
        #expect(half.params.array != ref.params.array)
    }

    @Test func bf16BinWithAStridedViewConvertsToFp32() throws {
        let (b, _) = try ModelFolder.load(Self.formats("pegasus-bin-bf16"))
        let (ref, _) = try ModelFolder.load(Fixtures.root.appendingPathComponent("pegasus/tiny").path)
        #expect(b.params.array.map(\.bitPattern) == ref.params.array.map { Self.bf16($0).bitPattern })
        let f = try TorchCheckpointFile(path: Self.formats("pegasus-bin-bf16") + "/pytorch_model.bin")
        let t = try #require(f.tensors["model.encoder.layers.0.fc1.weight"])
        #expect(t.strides == [1, t.shape[0]])
    }

    func tempFolder() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("precis-formats-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func safetensorsArePreferredOverBin() throws {
        let d = try tempFolder()
        defer { try? FileManager.default.removeItem(atPath: d) }
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: Fixtures.bart("tiny") + "/" + f, toPath: d + "/" + f)
        }
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: d + "/pytorch_model.bin"))
        let (m, _) = try ModelFolder.load(d)
        #expect(Self.bits(m) == Self.bits(try ModelFolder.load(Fixtures.bart("tiny")).model))
        // Without the safetensors file, the broken .bin is what is read, and refused by name.
        try FileManager.default.removeItem(atPath: d + "/model.safetensors")
        #expect(throws: TorchCheckpointError.self) { _ = try ModelFolder.load(d) }
    }

    @Test func missingWeightsAndEscapingShardNamesAreRefused() throws {
        let d = try tempFolder()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try FileManager.default.copyItem(atPath: Fixtures.bart("tiny") + "/config.json", toPath: d + "/config.json")
        do {
            _ = try ModelFolder.load(d)
            Issue.record("loaded a folder without weights")
        } catch let e as ModelError {
            #expect(e.description.contains("pytorch_model.bin.index.json"))
        }
        try Data(#"{"weight_map": {"a": "../../etc/passwd"}}"#.utf8).write(to: URL(fileURLWithPath: d + "/pytorch_model.bin.index.json"))
        #expect(throws: ModelError.invalidConfig(file: d + "/pytorch_model.bin.index.json", field: "weight_map",
                                                 reason: "'../../etc/passwd' is not a file name in this folder")) {
            _ = try ModelFolder.load(d)
        }
    }
}
