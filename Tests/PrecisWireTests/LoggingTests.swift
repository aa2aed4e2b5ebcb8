import Foundation
import Testing
import PrecisWire

/// Log lines: the text format's ISO 8601 timestamp, the JSON format's objects.
@Suite struct LoggingTests {
    @Test func timestampsAreISO8601WithTheDateInUTC() {
        #expect(Logging.timestamp(seconds: 1_796_190_336, milliseconds: 584) == "2026-12-02T05:45:36.584Z")
        #expect(Logging.timestamp(seconds: 0, milliseconds: 7) == "1970-01-01T00:00:00.007Z")
        #expect(Logging.now().range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression) != nil)
    }

    @Test func theTextFormatKeepsTheMessageAfterTheName() {
        #expect(Logging.render("coordinator", "step 3/9 loss 2.1", fields: ["step": .int(3)], ts: "2026-12-02T05:45:36.584Z", format: .text, role: "")
                == "2026-12-02T05:45:36.584Z coordinator: step 3/9 loss 2.1")
    }

    @Test func theJSONFormatIsOneObjectPerLineWithFields() throws {
        let line = Logging.render("w0", "warning: \"odd\"\tinput\n\u{1}é", fields: ["step": .int(4), "loss": .double(2.5), "bad": .double(.nan),
                                                                                  "host": .string("h"), "ok": .bool(true), "msg": .string("shadow")],
                                  ts: "2026-12-02T05:45:36.584Z", format: .json, role: "worker")
        #expect(!line.contains("\n"))
        let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(o["ts"] as? String == "2026-12-02T05:45:36.584Z" && o["role"] as? String == "worker" && o["name"] as? String == "w0")
        #expect(o["level"] as? String == "warning" && o["msg"] as? String == "warning: \"odd\"\tinput\n\u{1}é")
        #expect(o["step"] as? Int == 4 && o["loss"] as? Double == 2.5 && o["bad"] is NSNull && o["host"] as? String == "h" && o["ok"] as? Bool == true)
        #expect(line.hasPrefix(#"{"ts":"2026-12-02T05:45:36.584Z","role":"worker","name":"w0","level":"warning","msg":"#))
        #expect(Logging.level(of: "error: boom") == "error" && Logging.level(of: "step 1") == "info")
    }

    @Test func anUnknownFormatIsRefusedWithTheChoices() {
        #expect(throws: LogFormatError.self) { try LogFormat.parse("xml") }
        #expect((try? LogFormat.parse("json")) == .json)
        do { _ = try LogFormat.parse("xml") } catch { #expect("\(error)" == "--log-format must be one of text, json, not \"xml\"") }
    }
}
