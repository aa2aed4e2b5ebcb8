import Foundation
import Testing

/// docs/architecture.md's module table is checked against the package itself: every target of
/// Package.swift (as `swift package dump-package` reports it) has its row, each row's "depends on"
/// column names exactly that target's dependencies, every `import` in a target's sources is a declared
/// dependency (or the toolchain's), and no role module depends on another role.
@Suite struct ModuleGraphTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct DumpFailed: Error { var status: Int32 }

    struct Target: Sendable { var name: String; var type: String; var dependencies: Set<String>; var path: String? }

    /// The package's targets from `swift package dump-package` (its own scratch folder, so it never
    /// waits for the lock of the build that runs these tests; it reads Package.swift, nothing is resolved).
    static func targets() throws -> [String: Target] { try dumped.get() }

    /// Read once for the whole suite.
    static let dumped = Result { try dumpPackage() }

    static func dumpPackage() throws -> [String: Target] {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("precis-dump-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["swift", "package", "--package-path", repo.path, "--scratch-path", scratch.path, "dump-package"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw DumpFailed(status: p.terminationStatus) }
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        guard let list = json?["targets"] as? [[String: Any]] else { throw DumpFailed(status: 0) }
        var result: [String: Target] = [:]
        for t in list {
            guard let name = t["name"] as? String else { throw DumpFailed(status: 0) }
            var deps = Set<String>()
            for d in t["dependencies"] as? [[String: Any]] ?? [] {
                // {"byName": [name, null]}, {"target": [name, null]} or {"product": [name, package, ...]}
                for (_, v) in d { if let a = v as? [Any], let n = a.first as? String { deps.insert(n) } }
            }
            result[name] = Target(name: name, type: t["type"] as? String ?? "", dependencies: deps, path: t["path"] as? String)
        }
        return result
    }

    /// The rows of the "## Modules" table: first column's backticked names → last column's backticked names.
    static func documentedModules() throws -> [String: Set<String>] {
        let text = try String(contentsOf: repo.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "\n## Modules").dropFirst().first, "docs/architecture.md has no '## Modules' section")
        let table = section.components(separatedBy: "\n## ").first ?? section
        var rows: [String: Set<String>] = [:]
        for line in table.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4 else { continue }
            let deps = Set(backticked(cells[cells.count - 2]))
            for name in backticked(cells[1]) { rows[name] = deps }
        }
        return rows
    }

    static func backticked(_ s: String) -> [String] {
        s.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    @Test func everyTargetIsDocumentedWithItsExactDependencies() throws {
        let targets = try Self.targets().values.filter { $0.type != "test" && $0.type != "plugin" }
        let documented = try Self.documentedModules()
        #expect(!targets.isEmpty)
        for t in targets.sorted(by: { $0.name < $1.name }) {
            guard let deps = documented[t.name] else {
                Issue.record("docs/architecture.md's module table has no row for `\(t.name)`")
                continue
            }
            #expect(deps == t.dependencies,
                    "`\(t.name)`: docs/architecture.md says it depends on \(deps.sorted()), Package.swift says \(t.dependencies.sorted())")
        }
        for name in documented.keys where !targets.contains(where: { $0.name == name }) {
            Issue.record("docs/architecture.md documents `\(name)`, which Package.swift does not have")
        }
    }

    @Test func noRoleDependsOnAnotherRole() throws {
        let targets = try Self.targets()
        let roles: Set = ["PrecisCoordinator", "PrecisServer", "PrecisWorker"]
        for r in roles {
            let t = try #require(targets[r], "no target \(r)")
            #expect(t.dependencies.isDisjoint(with: roles), "\(r) depends on another role: \(t.dependencies.intersection(roles).sorted())")
            #expect(t.dependencies.contains("PrecisWire"), "\(r) does not depend on the wire protocol")
        }
    }

    /// Swift may let a target import a module it reaches only through another dependency; the graph
    /// would then hide a real edge. Every import must be declared.
    @Test func everyImportIsADeclaredDependency() throws {
        let toolchain: Set = ["Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Dispatch", "Synchronization", "Darwin", "Testing",
                              "XCTest", "Musl", "os", "_Concurrency"]
        let targets = try Self.targets()
        for t in targets.values where t.type != "system" && t.type != "plugin" {
            let dir = Self.repo.appendingPathComponent(t.path ?? (t.type == "test" ? "Tests/\(t.name)" : "Sources/\(t.name)"))
            guard let files = FileManager.default.enumerator(atPath: dir.path) else { continue }
            for case let f as String in files where f.hasSuffix(".swift") {
                let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ")
                    guard let i = words.firstIndex(of: "import"), words[..<i].allSatisfy({ $0.hasPrefix("@") || $0 == "public" || $0 == "internal" || $0 == "package" }),
                          i + 1 < words.count else { continue }
                    // `import struct Foundation.Date` names its kind first.
                    let kinds: Set<Substring> = ["struct", "class", "enum", "protocol", "typealias", "func", "var", "let"]
                    let j = kinds.contains(words[i + 1]) && i + 2 < words.count ? i + 2 : i + 1
                    let module = String(words[j].split(separator: ".").first ?? "")
                    guard !toolchain.contains(module) else { continue }
                    #expect(t.dependencies.contains(module), "\(t.name)/\(f) imports \(module), which is not among its dependencies in Package.swift")
                }
            }
        }
    }
}
