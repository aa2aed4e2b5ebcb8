import Foundation
import Yams

/// YAML texts (configs, cluster files) composed into a node tree only after they are known to be
/// harmless. Two properties of the parser underneath make a small hostile text costly:
/// - Yams composes recursively, a chain of stack frames for every level of nesting (about 1.7 KB a
///   level): `- - - - … x` or `[[[[…]]]]` a few thousand levels deep overflows an 8 MiB stack, and
///   a few hundred a secondary thread's, before anything could look at the tree. So a text is
///   composed on a thread whose stack holds the deepest text `maxBytes` can spell (`- ` per level),
///   and the tree is checked (and, when refused, released: releasing it recurses too) on that
///   thread.
/// - libyaml's time grows with the square of the flow nesting (`[`, `{`): 100,000 levels take half
///   a minute. A text with more than `maxFlowOpeners` of those characters in all (quoted or not:
///   an upper bound on the flow nesting, found without parsing) is refused before it is parsed.
/// What leaves `compose` is at most `maxDepth` deep and `maxNodes` large, shallow enough for every
/// later recursive walk (`Node.any`, `serialize`, the tree's release) on any thread.
package enum YAMLTree {
    /// The largest text read: a config is a few kilobytes, a cluster file about 100 bytes a host.
    package static let maxBytes = 128 << 10
    /// The most `[` and `{` characters a text may hold: far more than a config or a cluster file
    /// of a thousand hosts written in flow style has; few enough that parsing them nested is quick.
    package static let maxFlowOpeners = 4_096
    /// The deepest nesting accepted (a config nests three or four levels).
    package static let maxDepth = 64
    /// The most nodes a text may expand to, aliases counted each time they are used: this stops an
    /// alias bomb from growing memory.
    package static let maxNodes = 10_000
    /// The composing thread's stack: `maxBytes` of `- ` nest `maxBytes / 2` levels, about 1.7 KB a
    /// level in a release build (110 MB at most), with room for a debug build's larger frames.
    /// Reserved, not used: only the pages a text's nesting reaches are ever touched.
    static let stackBytes = 512 << 20

    /// The tree of `text` (nil when it holds no document), checked: at most `maxBytes` and
    /// `maxFlowOpeners`, `maxDepth` levels and `maxNodes` nodes once aliases are expanded, no key
    /// twice in a mapping, every key a scalar. Errors name `file`.
    static func compose(_ text: String, file: String) throws -> Node? {
        guard text.utf8.count <= maxBytes else {
            throw ConfigError.unreadable(file: file, reason: "\(text.utf8.count) bytes: more than the \(maxBytes) a YAML file may have here")
        }
        let openers = text.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "[") || $1 == UInt8(ascii: "{") ? 1 : 0) }
        guard openers <= maxFlowOpeners else {
            throw ConfigError.unreadable(file: file, reason: "\(openers) '[' and '{' characters: more than the \(maxFlowOpeners) a YAML file may have here")
        }
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            do {
                var tree = try Yams.compose(yaml: text)
                if let node = tree {
                    var budget = maxNodes
                    do { try check(node, path: "", depth: 0, budget: &budget, file: file) } catch {
                        tree = nil   // the refused tree is released here, on the deep stack
                        throw error
                    }
                }
                box.result = .success(tree)
            } catch let e as ConfigError {
                box.result = .failure(e)
            } catch {
                box.result = .failure(ConfigError.unreadable(file: file, reason: "not valid YAML: \(error)"))
            }
        }
        thread.stackSize = stackBytes
        thread.name = "yaml-compose"
        thread.start()
        done.wait()
        return try box.take()
    }

    /// Refuses trees deeper than `maxDepth` or larger than `maxNodes` (aliases expanded), duplicate
    /// keys in any mapping (YAML forbids them; a parser that keeps the last one silently drops a
    /// setting) and keys that are not scalars.
    private static func check(_ node: Node, path: String, depth: Int, budget: inout Int, file: String) throws {
        budget -= 1
        guard budget >= 0 else {
            throw ConfigError.unreadable(file: file, reason: "more than \(maxNodes) YAML nodes once aliases are expanded (an alias bomb?)")
        }
        guard depth <= maxDepth else {
            let at = node.mark.map { " (line \($0.line), column \($0.column))" } ?? ""
            throw ConfigError.unreadable(file: file, reason: "nested more than \(maxDepth) levels deep\(at)")
        }
        switch node {
        case .scalar: return
        case .sequence(let items):
            for (i, item) in items.enumerated() {
                try check(item, path: "\(path)[\(i)]", depth: depth + 1, budget: &budget, file: file)
            }
        case .mapping(let pairs):
            var seen = Set<String>()
            for (key, value) in pairs {
                let line = key.mark.map { " (line \($0.line))" } ?? ""
                // Yams turns every key into a string and traps on one that is not a scalar.
                guard case .scalar = key, let name = key.string else {
                    throw ConfigError.invalid(file: file, key: path.isEmpty ? "(top level)" : path,
                                              reason: "a key must be a plain name, not a list or mapping\(line)")
                }
                let full = path.isEmpty ? name : "\(path).\(name)"
                guard seen.insert(name).inserted else {
                    throw ConfigError.invalid(file: file, key: full, reason: "appears twice in the same mapping\(line)")
                }
                try check(value, path: full, depth: depth + 1, budget: &budget, file: file)
            }
        }
    }

    /// The composing thread's outcome. `@unchecked Sendable` because it is written only by that
    /// thread, before it signals the semaphore, and read only by the caller after its wait returns
    /// (the semaphore orders the two).
    private final class ResultBox: @unchecked Sendable {
        var result: Result<Node?, ConfigError> = .success(nil)
        func take() throws(ConfigError) -> Node? { try result.get() }
    }
}
