import Foundation

/// The regular expressions of `tokenizer.json` (`{"Regex": "..."}` patterns of `Replace` and
/// `Split`), which `tokenizers` runs with Oniguruma: the common subset of its syntax, matched
/// over Unicode scalars with Oniguruma's semantics (leftmost match, alternatives and quantifiers
/// tried in Perl order, `.` not matching a newline, `^` and `$` at line boundaries, Unicode `\s`,
/// `\d`, `\w`), run by a Pike VM, so matching takes time linear in the text whatever the pattern.
///
/// Supported: literals and escapes (`\t \n \r \f \v \a \e \xHH \x{H…} \uHHHH`, escaped
/// punctuation), `.`, classes `[...]` (ranges, negation, escapes), `\s \S \d \D \w \W \h \H`,
/// `\p{…}` / `\P{…}` / `\p{^…}` for general categories, anchors `^ $ \A \z \Z \b \B`, groups
/// `(…)`, `(?:…)`, `(?<name>…)`, alternation, and the quantifiers `* + ? {n} {n,} {n,m} {,m}`,
/// greedy or lazy. Anything else (backreferences, lookaround, atomic groups, possessive
/// quantifiers, options, POSIX brackets, set operations) is refused with a `SyntaxError`.
public struct OnigRegex: Sendable {
    public let pattern: String
    let program: [Instruction]

    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// The largest compiled program (counted repetitions are expanded).
    static let maxProgramSize = 20_000

    public init(_ pattern: String) throws(SyntaxError) {
        self.pattern = pattern
        var parser = Parser(Array(pattern.unicodeScalars))
        let node = try parser.parseAll()
        var compiler = Compiler()
        try compiler.emit(node)
        compiler.append(.match)
        program = compiler.program
    }

    /// A pattern that matches `literal` exactly (a `{"String": ...}` pattern, which `tokenizers`
    /// compiles as an escaped regex: an empty one matches at every position).
    public init(literal: String) {
        pattern = literal
        program = literal.unicodeScalars.map { Instruction.scalar($0) } + [.match]
    }

    // MARK: Matching

    /// The matches `tokenizers` finds (Oniguruma's `find_iter`): leftmost, non-overlapping, and an
    /// empty match right where the previous match ended is skipped.
    public func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var from = 0
        var lastMatchEnd: Int? = nil
        var vm = VM(program: program, text: text)
        while from <= text.count, let m = vm.search(from: from) {
            if m.isEmpty && lastMatchEnd == m.upperBound {
                from = m.upperBound + 1
                continue
            }
            out.append(m)
            lastMatchEnd = m.upperBound
            from = m.upperBound
        }
        return out
    }

    /// Whether the pattern matches somewhere in `text`.
    public func firstMatch(in text: [Unicode.Scalar]) -> Range<Int>? {
        var vm = VM(program: program, text: text)
        return vm.search(from: 0)
    }

    // MARK: Program

    enum Assertion: Sendable {
        case textStart, textEnd, textEndOrFinalNewline, lineStart, lineEnd, wordBoundary, notWordBoundary
    }

    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case set(ScalarClass)
        case anyButNewline
        case assert(Assertion)
        /// Try `x` first, then `y`.
        case split(Int, Int)
        case jump(Int)
        case match
    }

    /// A bracketed or escaped class of scalars.
    struct ScalarClass: Sendable {
        enum Item: Sendable {
            case range(UInt32, UInt32)
            case digit(Bool), word(Bool), space(Bool), hex(Bool)
            case categories([Unicode.GeneralCategory], Bool)
            case nested(ScalarClass)
        }
        var items: [Item] = []
        var negated = false

        func contains(_ s: Unicode.Scalar) -> Bool {
            var found = false
            for item in items {
                let hit: Bool
                switch item {
                case let .range(lo, hi): hit = s.value >= lo && s.value <= hi
                case let .digit(positive): hit = (s.properties.generalCategory == .decimalNumber) == positive
                case let .word(positive): hit = UnicodeText.isWordScalar(s) == positive
                case let .space(positive): hit = s.properties.isWhitespace == positive
                case let .hex(positive): hit = (s.properties.isASCIIHexDigit) == positive
                case let .categories(cats, positive): hit = cats.contains(s.properties.generalCategory) == positive
                case let .nested(set): hit = set.contains(s)
                }
                if hit { found = true; break }
            }
            return found != negated
        }
    }

    // MARK: Parsing

    indirect enum Node {
        case empty
        case scalar(Unicode.Scalar)
        case set(ScalarClass)
        case any
        case assert(Assertion)
        case concat([Node])
        case alternation([Node])
        case repeated(Node, min: Int, max: Int?, greedy: Bool)
    }

    struct Parser {
        let s: [Unicode.Scalar]
        var i = 0
        init(_ s: [Unicode.Scalar]) { self.s = s }

        func error(_ message: String) -> SyntaxError { SyntaxError(message: "\(message) at offset \(i)") }

        var atEnd: Bool { i >= s.count }
        func peek(_ k: Int = 0) -> Unicode.Scalar? { i + k < s.count ? s[i + k] : nil }

        mutating func parseAll() throws(SyntaxError) -> Node {
            let node = try parseAlternation(depth: 0)
            if !atEnd { throw error("unbalanced ')'") }
            return node
        }

        mutating func parseAlternation(depth: Int) throws(SyntaxError) -> Node {
            guard depth < 100 else { throw error("groups nested too deeply") }
            var branches = [try parseConcat(depth: depth)]
            while peek() == "|" {
                i += 1
                branches.append(try parseConcat(depth: depth))
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseConcat(depth: Int) throws(SyntaxError) -> Node {
            var items: [Node] = []
            while let c = peek(), c != "|", c != ")" {
                var atom = try parseAtom(depth: depth)
                atom = try parseQuantifiers(atom)
                items.append(atom)
            }
            return items.isEmpty ? .empty : (items.count == 1 ? items[0] : .concat(items))
        }

        mutating func parseQuantifiers(_ atom: Node) throws(SyntaxError) -> Node {
            var node = atom
            while let c = peek() {
                var minimum = 0, maximum: Int? = nil
                if c == "*" { i += 1 }
                else if c == "+" { i += 1; minimum = 1 }
                else if c == "?" { i += 1; maximum = 1 }
                else if c == "{", let (lo, hi, length) = interval() { i += length; minimum = lo; maximum = hi }
                else { break }
                if case .assert = node { throw error("quantifier after an anchor") }
                var greedy = true
                if peek() == "?" { i += 1; greedy = false }
                else if peek() == "+" { throw error("possessive quantifiers are not supported") }
                if let maximum, maximum < minimum { throw error("bad repetition {\(minimum),\(maximum)}") }
                if minimum > 1000 || (maximum ?? 0) > 1000 { throw error("repetition counts above 1000 are not supported") }
                node = .repeated(node, min: minimum, max: maximum, greedy: greedy)
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}`, `{,m}` at `i`: (min, max, length); nil if it is a literal `{`.
        func interval() -> (Int, Int?, Int)? {
            var k = i + 1
            func number() -> Int? {
                var v: Int? = nil
                while k < s.count, s[k].isASCII, let d = Int(String(s[k])) {
                    v = min((v ?? 0) * 10 + d, 1_000_000)
                    k += 1
                }
                return v
            }
            let lo = number()
            if k < s.count && s[k] == "}" {
                guard let lo else { return nil }
                return (lo, lo, k - i + 1)
            }
            guard k < s.count && s[k] == "," else { return nil }
            k += 1
            let hi = number()
            guard k < s.count && s[k] == "}", lo != nil || hi != nil else { return nil }
            return (lo ?? 0, hi, k - i + 1)
        }

        mutating func parseAtom(depth: Int) throws(SyntaxError) -> Node {
            let c = s[i]
            i += 1
            switch c {
            case "(":
                if peek() == "?" {
                    if peek(1) == ":" {
                        i += 2
                    } else if peek(1) == "<", let n = peek(2), n != "=", n != "!" {
                        i += 2
                        while let x = peek(), x != ">" { i += 1 }
                        guard peek() == ">" else { throw error("unterminated group name") }
                        i += 1
                    } else {
                        throw error("group kind (?\(peek(1).map { String($0) } ?? "") is not supported")
                    }
                }
                let inner = try parseAlternation(depth: depth + 1)
                guard peek() == ")" else { throw error("missing ')'") }
                i += 1
                return inner
            case "[":
                return .set(try parseClass(depth: depth))
            case ".":
                return .any
            case "^":
                return .assert(.lineStart)
            case "$":
                return .assert(.lineEnd)
            case "\\":
                return try parseEscape(inClass: false)
            case "*", "+", "?":
                throw error("nothing to repeat")
            default:
                return .scalar(c)
            }
        }

        mutating func parseClass(depth: Int) throws(SyntaxError) -> ScalarClass {
            guard depth < 100 else { throw error("classes nested too deeply") }
            var set = ScalarClass()
            if peek() == "^" { set.negated = true; i += 1 }
            var first = true
            while true {
                guard let c = peek() else { throw error("missing ']'") }
                if c == "]" && !first { i += 1; break }
                first = false
                if c == "[" {
                    if peek(1) == ":" { throw error("POSIX bracket classes are not supported") }
                    i += 1
                    set.items.append(.nested(try parseClass(depth: depth + 1)))
                    continue
                }
                if c == "&" && peek(1) == "&" { throw error("class intersections are not supported") }
                i += 1
                var low: Unicode.Scalar
                if c == "\\" {
                    let e = try parseEscape(inClass: true)
                    switch e {
                    case let .scalar(x): low = x
                    case let .set(inner): set.items.append(.nested(inner)); continue
                    default: throw error("escape not allowed in a class")
                    }
                } else {
                    low = c
                }
                if peek() == "-", let next = peek(1), next != "]" {
                    i += 1
                    var high: Unicode.Scalar
                    if next == "\\" {
                        i += 1
                        guard case let .scalar(x) = try parseEscape(inClass: true) else { throw error("bad class range") }
                        high = x
                    } else {
                        i += 1
                        high = next
                    }
                    guard low.value <= high.value else { throw error("empty class range") }
                    set.items.append(.range(low.value, high.value))
                } else {
                    set.items.append(.range(low.value, low.value))
                }
            }
            return set
        }

        mutating func hexNumber(maxDigits: Int, braced: Bool) throws(SyntaxError) -> Unicode.Scalar {
            var v: UInt32 = 0
            var n = 0
            if braced {
                guard peek() == "{" else { throw error("expected '{'") }
                i += 1
            }
            while n < maxDigits, let c = peek(), c.properties.isASCIIHexDigit {
                v = v * 16 + UInt32(Int(String(c), radix: 16)!)
                n += 1
                i += 1
            }
            if braced {
                guard peek() == "}" else { throw error("expected '}'") }
                i += 1
            }
            guard n > 0, let scalar = Unicode.Scalar(v) else { throw error("bad hexadecimal escape") }
            return scalar
        }

        mutating func parseEscape(inClass: Bool) throws(SyntaxError) -> Node {
            guard let c = peek() else { throw error("trailing backslash") }
            i += 1
            func set(_ item: ScalarClass.Item) -> Node { .set(ScalarClass(items: [item])) }
            switch c {
            case "t": return .scalar("\t")
            case "n": return .scalar("\n")
            case "r": return .scalar("\r")
            case "f": return .scalar("\u{0C}")
            case "v": return .scalar("\u{0B}")
            case "a": return .scalar("\u{07}")
            case "e": return .scalar("\u{1B}")
            case "x": return .scalar(peek() == "{" ? try hexNumber(maxDigits: 8, braced: true) : try hexNumber(maxDigits: 2, braced: false))
            case "u": return .scalar(try hexNumber(maxDigits: 4, braced: false))
            case "d": return set(.digit(true))
            case "D": return set(.digit(false))
            case "w": return set(.word(true))
            case "W": return set(.word(false))
            case "s": return set(.space(true))
            case "S": return set(.space(false))
            case "h": return set(.hex(true))
            case "H": return set(.hex(false))
            case "p", "P":
                guard peek() == "{" else { throw error("expected '{' after \\\(c)") }
                i += 1
                var name = ""
                var positive = c == "p"
                if peek() == "^" { positive.toggle(); i += 1 }
                while let x = peek(), x != "}" { name.unicodeScalars.append(x); i += 1 }
                guard peek() == "}" else { throw error("unterminated \\p{") }
                i += 1
                guard let cats = Parser.categories[name.lowercased().replacingOccurrences(of: "_", with: "")] else {
                    throw error("property \\p{\(name)} is not supported")
                }
                return set(.categories(cats, positive))
            case "A", "z", "Z", "b", "B":
                if inClass {
                    if c == "b" { return .scalar("\u{08}") }
                    throw error("\\\(c) inside a class")
                }
                switch c {
                case "A": return .assert(.textStart)
                case "z": return .assert(.textEnd)
                case "Z": return .assert(.textEndOrFinalNewline)
                case "b": return .assert(.wordBoundary)
                default: return .assert(.notWordBoundary)
                }
            default:
                if c.properties.isAlphabetic || c.properties.numericType != nil {
                    throw error("escape \\\(c) is not supported")
                }
                return .scalar(c)
            }
        }

        static let categories: [String: [Unicode.GeneralCategory]] = {
            let groups: [(String, String, [Unicode.GeneralCategory])] = [
                ("l", "letter", [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter]),
                ("lu", "uppercaseletter", [.uppercaseLetter]), ("ll", "lowercaseletter", [.lowercaseLetter]),
                ("lt", "titlecaseletter", [.titlecaseLetter]), ("lm", "modifierletter", [.modifierLetter]),
                ("lo", "otherletter", [.otherLetter]),
                ("m", "mark", [.nonspacingMark, .spacingMark, .enclosingMark]),
                ("mn", "nonspacingmark", [.nonspacingMark]), ("mc", "spacingmark", [.spacingMark]),
                ("me", "enclosingmark", [.enclosingMark]),
                ("n", "number", [.decimalNumber, .letterNumber, .otherNumber]),
                ("nd", "decimalnumber", [.decimalNumber]), ("nl", "letternumber", [.letterNumber]),
                ("no", "othernumber", [.otherNumber]),
                ("p", "punctuation", [.connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                                      .initialPunctuation, .finalPunctuation, .otherPunctuation]),
                ("pc", "connectorpunctuation", [.connectorPunctuation]), ("pd", "dashpunctuation", [.dashPunctuation]),
                ("ps", "openpunctuation", [.openPunctuation]), ("pe", "closepunctuation", [.closePunctuation]),
                ("pi", "initialpunctuation", [.initialPunctuation]), ("pf", "finalpunctuation", [.finalPunctuation]),
                ("po", "otherpunctuation", [.otherPunctuation]),
                ("s", "symbol", [.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol]),
                ("sm", "mathsymbol", [.mathSymbol]), ("sc", "currencysymbol", [.currencySymbol]),
                ("sk", "modifiersymbol", [.modifierSymbol]), ("so", "othersymbol", [.otherSymbol]),
                ("z", "separator", [.spaceSeparator, .lineSeparator, .paragraphSeparator]),
                ("zs", "spaceseparator", [.spaceSeparator]), ("zl", "lineseparator", [.lineSeparator]),
                ("zp", "paragraphseparator", [.paragraphSeparator]),
                ("c", "other", [.control, .format, .surrogate, .privateUse, .unassigned]),
                ("cc", "control", [.control]), ("cf", "format", [.format]), ("co", "privateuse", [.privateUse]),
                ("cn", "unassigned", [.unassigned]), ("cs", "surrogate", [.surrogate]),
            ]
            var table: [String: [Unicode.GeneralCategory]] = [:]
            for (short, long, cats) in groups {
                table[short] = cats
                table[long] = cats
            }
            return table
        }()
    }

    // MARK: Compiling

    struct Compiler {
        var program: [Instruction] = []

        mutating func append(_ instruction: Instruction) { program.append(instruction) }

        mutating func emit(_ node: Node) throws(SyntaxError) {
            guard program.count < OnigRegex.maxProgramSize else {
                throw SyntaxError(message: "the pattern is too large once its repetitions are expanded")
            }
            switch node {
            case .empty: break
            case let .scalar(s): append(.scalar(s))
            case let .set(set): append(.set(set))
            case .any: append(.anyButNewline)
            case let .assert(a): append(.assert(a))
            case let .concat(items): for item in items { try emit(item) }
            case let .alternation(branches):
                var jumps: [Int] = []
                for (k, branch) in branches.enumerated() {
                    if k < branches.count - 1 {
                        let split = program.count
                        append(.split(split + 1, -1))
                        try emit(branch)
                        jumps.append(program.count)
                        append(.jump(-1))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for j in jumps { program[j] = .jump(program.count) }
            case let .repeated(body, minimum, maximum, greedy):
                for _ in 0..<minimum { try emit(body) }
                if let maximum {
                    var splits: [Int] = []
                    for _ in minimum..<maximum {
                        splits.append(program.count)
                        append(.split(-1, -1))
                        try emit(body)
                    }
                    for s in splits {
                        program[s] = greedy ? .split(s + 1, program.count) : .split(program.count, s + 1)
                    }
                } else {
                    let loop = program.count
                    append(.split(-1, -1))
                    try emit(body)
                    append(.jump(loop))
                    program[loop] = greedy ? .split(loop + 1, program.count) : .split(program.count, loop + 1)
                }
            }
        }
    }

    // MARK: The VM

    /// A Pike VM: all threads advance together, one scalar at a time, in priority order.
    struct VM {
        let program: [Instruction]
        let text: [Unicode.Scalar]
        var current: [(pc: Int, start: Int)] = []
        var next: [(pc: Int, start: Int)] = []
        var seen: [Int]
        var generation = 0
        var stack: [Int] = []

        init(program: [Instruction], text: [Unicode.Scalar]) {
            self.program = program
            self.text = text
            seen = [Int](repeating: -1, count: program.count)
        }

        func isWord(_ i: Int) -> Bool { i >= 0 && i < text.count && UnicodeText.isWordScalar(text[i]) }

        func holds(_ a: Assertion, at pos: Int) -> Bool {
            let n = text.count
            switch a {
            case .textStart: return pos == 0
            case .textEnd: return pos == n
            case .textEndOrFinalNewline: return pos == n || (pos == n - 1 && text[pos] == "\n")
            case .lineStart: return pos == 0 || text[pos - 1] == "\n"
            case .lineEnd: return pos == n || text[pos] == "\n"
            case .wordBoundary: return isWord(pos - 1) != isWord(pos)
            case .notWordBoundary: return isWord(pos - 1) == isWord(pos)
            }
        }

        /// Adds the thread at `pc` and everything reachable from it without consuming a scalar,
        /// in priority order.
        mutating func add(_ list: inout [(pc: Int, start: Int)], _ pc: Int, start: Int, at pos: Int) {
            stack.removeAll(keepingCapacity: true)
            stack.append(pc)
            while let p = stack.popLast() {
                if seen[p] == generation { continue }
                seen[p] = generation
                switch program[p] {
                case let .jump(t): stack.append(t)
                case let .split(x, y):
                    stack.append(y)
                    stack.append(x)
                case let .assert(a):
                    if holds(a, at: pos) { stack.append(p + 1) }
                default:
                    list.append((p, start))
                }
            }
        }

        /// The leftmost match starting at or after `from`.
        mutating func search(from: Int) -> Range<Int>? {
            var found: Range<Int>? = nil
            current.removeAll(keepingCapacity: true)
            generation += 1
            var pos = from
            while true {
                if found == nil {
                    var list = current
                    add(&list, 0, start: pos, at: pos)
                    current = list
                }
                if current.isEmpty {
                    if found != nil || pos >= text.count { break }
                    pos += 1
                    generation += 1
                    continue
                }
                generation += 1
                next.removeAll(keepingCapacity: true)
                var list = next
                for (pc, start) in current {
                    switch program[pc] {
                    case .match:
                        found = start..<pos
                    case let .scalar(s):
                        if pos < text.count && text[pos] == s { add(&list, pc + 1, start: start, at: pos + 1) }
                    case let .set(set):
                        if pos < text.count && set.contains(text[pos]) { add(&list, pc + 1, start: start, at: pos + 1) }
                    case .anyButNewline:
                        if pos < text.count && text[pos] != "\n" { add(&list, pc + 1, start: start, at: pos + 1) }
                    default:
                        break
                    }
                    if case .match = program[pc] { break }
                }
                next = list
                swap(&current, &next)
                if pos >= text.count { break }
                pos += 1
            }
            return found
        }
    }
}
