import Foundation
import PrecisObservability
import Testing

/// The metric names the Grafana dashboard and docs/operations.md use are the ones the roles export,
/// and every exported family is documented.
@Suite struct NamesTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every family the three roles export, with its type.
    static func exported() throws -> [String: String] {
        var types: [String: String] = [:]
        for m in [CoordinatorMetrics(), ServerMetrics(name: "ps0"), WorkerMetrics(name: "w0")] as [any MetricsExposing] {
            types.merge(try PrometheusText.parse(String(decoding: m.exposition(), as: UTF8.self)).types) { a, _ in a }
        }
        return types
    }

    /// `precis_…` words in `text`, a histogram's `_bucket`/`_sum`/`_count` series named by their family.
    static func names(in text: String, families: [String: String]) -> Set<String> {
        var out = Set<String>()
        var word = ""
        for c in text + " " {
            if c.isLetter || c.isNumber || c == "_" { word.append(c); continue }
            if word.hasPrefix("precis_") && word.count > "precis_".count {
                var name = word
                for s in ["_bucket", "_sum", "_count"] where name.hasSuffix(s) && families[String(name.dropLast(s.count))] == "histogram" {
                    name = String(name.dropLast(s.count))
                }
                out.insert(name)
            }
            word = ""
        }
        return out
    }

    @Test func theDashboardUsesExportedNames() throws {
        let families = try Self.exported()
        let text = try String(contentsOf: Self.repo.appendingPathComponent("ops/grafana/precis-dashboard.json"), encoding: .utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect((json["panels"] as? [Any])?.isEmpty == false)
        let used = Self.names(in: text, families: families)
        #expect(used.count >= 20)
        for name in used.sorted() { #expect(families[name] != nil, "the dashboard uses \(name), which no role exports") }
    }

    @Test func everyExportedNameIsDocumented() throws {
        let families = try Self.exported()
        let text = try String(contentsOf: Self.repo.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "### Watching a run: Prometheus").dropFirst().first)
        let body = section.components(separatedBy: "\n### ").first ?? section
        // The worker's `_step_wait_seconds` / `_step_encode_seconds` are documented as suffixes of the compute gauge.
        let documented = Self.names(in: body.replacingOccurrences(of: "` / `_step_", with: "` / `precis_worker_step_"), families: families)
        for name in families.keys.sorted() { #expect(documented.contains(name), "docs/operations.md does not document \(name)") }
        for name in documented.sorted() { #expect(families[name] != nil, "docs/operations.md documents \(name), which no role exports") }
    }
}
