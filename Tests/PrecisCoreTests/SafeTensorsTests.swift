import Foundation
import Testing
import PrecisCore

@Suite struct SafeTensorsTests {
    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-st-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    @Test func roundTripsFloatsIntsAndMetadata() throws {
        var w = SafeTensorsWriter()
        w.metadata = ["format": "pt"]
        w.add("a", floats: [1, -2.5, 3, 4, 5, 6], shape: [2, 3])
        w.add("ids", int64s: [0, -100, 7], shape: [3])
        w.add("scalar", floats: [0.25], shape: [])
        let path = tempPath("x.safetensors")
        try w.write(to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(try f.floats("a") == [1, -2.5, 3, 4, 5, 6])
        #expect(try f.tensor("a").shape == [2, 3])
        #expect(try f.int64s("ids") == [0, -100, 7])
        #expect(try f.floats("scalar") == [0.25])
        #expect(f.metadata["format"] == "pt")
        #expect(f.names == ["a", "ids", "scalar"])
    }

    /// Writes a file with a hand-made header.
    func raw(_ header: String, data: [UInt8]) throws -> String {
        var d = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8)); d.append(contentsOf: data)
        let p = tempPath("raw.safetensors")
        try d.write(to: URL(fileURLWithPath: p))
        return p
    }

    @Test func readsF16AndBF16() throws {
        // 1.5 in f16 = 0x3E00; -2 in bf16 = 0xC000.
        let p = try raw(#"{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[2,4]}}"#,
                        data: [0x00, 0x3E, 0x00, 0xC0])
        let f = try SafeTensorsFile(path: p)
        #expect(try f.floats("h") == [1.5])
        #expect(try f.floats("b") == [-2])
    }

    @Test func clearErrorsForBadFiles() throws {
        let short = tempPath("short.safetensors")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: short) }

        let truncated = try raw(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0])
        do { _ = try SafeTensorsFile(path: truncated); Issue.record("no error") } catch let e as SafeTensorsError {
            guard case .truncated(let path, let detail) = e else { Issue.record("\(e)"); return }
            #expect(path == truncated && detail.contains("'a'"))
        }

        let badJSON = try raw("{not json", data: [])
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: badJSON) }

        let dtype = try raw(#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, data: [0])
        #expect(throws: SafeTensorsError.unknownDType(path: dtype, tensor: "a", dtype: "Q4")) { try SafeTensorsFile(path: dtype) }

        let span = try raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: span) }

        let hugeHeader = tempPath("huge.safetensors")
        var d = Data(); withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { d.append(contentsOf: $0) }
        try d.write(to: URL(fileURLWithPath: hugeHeader))
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: hugeHeader) }

        let ok = try raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 128, 63])
        let f = try SafeTensorsFile(path: ok)
        #expect(try f.floats("a") == [1])
        #expect(throws: SafeTensorsError.shapeMismatch(path: ok, tensor: "a", expected: [2], found: [1])) {
            var x: [Float] = [0, 0]
            try f.readFloats("a", into: &x, expectShape: [2])
        }
        #expect(throws: SafeTensorsError.missingTensor(path: ok, tensor: "b")) { try f.floats("b") }
        #expect(throws: SafeTensorsError.self) { try f.int64s("a") }
        #expect(throws: SafeTensorsError.cannotOpen(path: "/nonexistent/x", reason: "No such file or directory")) {
            try SafeTensorsFile(path: "/nonexistent/x")
        }
    }

    func badHeaderDetail(_ path: String) -> String? {
        do { _ = try SafeTensorsFile(path: path); return nil } catch let SafeTensorsError.badHeader(p, detail) {
            #expect(p == path)
            return detail
        } catch { return "\(error)" }
    }

    /// Crafted headers: sizes that overflow, lengths past Int, tensors that overlap, leave gaps or
    /// leave the data section partly unused are errors naming the tensor, never a trap or a wrong read.
    @Test func craftedHeadersAreErrors() throws {
        for claimed: UInt64 in [1 << 63, UInt64.max] {
            var d = Data(); withUnsafeBytes(of: claimed.littleEndian) { d.append(contentsOf: $0) }
            d.append(Data("{}".utf8))
            let p = tempPath("long.safetensors")
            try d.write(to: URL(fileURLWithPath: p))
            #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: p) }
        }
        let huge = try raw(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#, data: Array(repeating: 0, count: 16))
        #expect(badHeaderDetail(huge)?.contains("larger than any file") == true, "\(badHeaderDetail(huge) ?? "accepted")")
        // a and b share bytes 4..<8.
        let overlap = try raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                              data: Array(repeating: 0, count: 12))
        #expect(badHeaderDetail(overlap)?.contains("'b'") == true && badHeaderDetail(overlap)?.contains("overlaps") == true,
                "\(badHeaderDetail(overlap) ?? "accepted")")
        let gap = try raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                          data: Array(repeating: 0, count: 12))
        #expect(badHeaderDetail(gap)?.contains("unused") == true, "\(badHeaderDetail(gap) ?? "accepted")")
        let tail = try raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 8))
        #expect(badHeaderDetail(tail)?.contains("end at byte 4 of a 8-byte data section") == true, "\(badHeaderDetail(tail) ?? "accepted")")
        // Unaligned but contiguous offsets are valid safetensors, read correctly.
        let odd = try raw(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}"#,
                          data: [7, 0, 0, 128, 63])
        #expect(try SafeTensorsFile(path: odd).floats("b") == [1])
    }

    @Test func atomicWriteReplacesWholeFileAndLeavesNoTemporaries() throws {
        let p = tempPath("f.bin")
        try AtomicFile.write(Data("old".utf8), to: p)
        try AtomicFile.write(Data("new contents".utf8), to: p)
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: p)), as: UTF8.self) == "new contents")
        let dir = (p as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["f.bin"])
    }
}
