import Foundation

/// Trains a SentencePiece Unigram model the way `tokenizers`' `UnigramTrainer` does
/// (`tokenizers/src/models/unigram/trainer.rs`):
///
/// 1. seeds: every character of the words (scored by its count, words weighted by their counts),
///    then the frequent substrings — every internal node of the suffix tree of the distinct words
///    joined by NUL (a substring of 2…`maxPieceLength` characters, without NUL, that occurs at
///    least twice and is followed by at least two different characters), scored by
///    occurrences × length — best first (ties: the larger string), `seedSize` in all, scores
///    turned into log probabilities;
/// 2. EM: `nSubIterations` rounds of an E step (expected piece counts by forward–backward over
///    each word's lattice, weighted by the word's count) and the Bayesian M step (pieces expected
///    fewer than 0.5 times are dropped; score = digamma(count) − digamma(total)); then, until at
///    most 1.1 × `vocabSize` pieces remain, pruning: every piece whose removal loses least
///    likelihood (its words re-segmented by its second-best segmentation) goes, keeping
///    max(1.1 × `vocabSize`, `shrinkingFactor` × size) pieces;
/// 3. finalizing: the special tokens (score 0) first, then every required character (seen in the
///    data or in `initialAlphabet`; one the model lost gets the lowest score plus 0.0001 steps)
///    and the model's pieces in its order until the vocabulary is full, sorted by score.
///
/// Where `tokenizers` is not deterministic (hash-map iteration order of the words and of the
/// required characters), this uses the words in the order they were first counted and the
/// characters in code-point order. The training-time unknown piece is kept out of the trie (in
/// `tokenizers` a word containing the literal text `<UNK>` would meet its NaN score).
public struct UnigramTrainer: Sendable {
    public var vocabSize: Int
    public var nSubIterations: Int
    public var shrinkingFactor: Double
    public var specialTokens: [AddedToken]
    public var initialAlphabet: [Unicode.Scalar]
    public var unkToken: String?
    public var maxPieceLength: Int
    public var seedSize: Int

    public init(vocabSize: Int = 8000, nSubIterations: Int = 2, shrinkingFactor: Double = 0.75,
                specialTokens: [AddedToken] = [], initialAlphabet: [Unicode.Scalar] = [], unkToken: String? = nil,
                maxPieceLength: Int = 16, seedSize: Int = 1_000_000) {
        self.vocabSize = vocabSize
        self.nSubIterations = nSubIterations
        self.shrinkingFactor = shrinkingFactor
        self.specialTokens = specialTokens
        self.initialAlphabet = initialAlphabet
        self.unkToken = unkToken
        self.maxPieceLength = maxPieceLength
        self.seedSize = seedSize
    }

    /// The most characters the joined words may have (the suffix positions are 32-bit).
    public static let maxCorpusCharacters = Int(Int32.max) - 1

    /// Trains on the words of `words` (which must not be byte-level).
    public func train(_ words: WordCounts) throws(TokenizerError) -> UnigramModel {
        guard !words.byteLevel else { throw .training(message: "Unigram training needs words that are not byte-level") }
        guard vocabSize > 0 else { throw .training(message: "vocab size must be positive, not \(vocabSize)") }
        guard nSubIterations > 0, shrinkingFactor > 0, shrinkingFactor < 1, maxPieceLength > 0, seedSize > 0 else {
            throw .training(message: "n_sub_iterations, max_piece_length and seed_size must be positive and shrinking_factor in (0, 1)")
        }
        let sentences = Sentences(words)
        guard sentences.count > 0 else { throw .training(message: "the training data has no words") }

        let required = requiredCharacters(sentences)
        let unkIndex = unkToken.flatMap { unk in specialTokens.firstIndex { $0.content == unk } }
        let addsUnk = unkToken != nil && unkIndex == nil
        let reserved = specialTokens.count + (addsUnk ? 1 : 0)
        guard required.count + reserved <= vocabSize else {
            throw .training(message: "vocab size \(vocabSize) is too small for the \(required.count) distinct characters "
                                    + "of the data and \(reserved) special tokens")
        }

        // 1. Seeds, behind the training-time unknown piece (id 0).
        var pieces: [TrainingPiece] = [TrainingPiece(piece: "<UNK>", score: .nan)]
        pieces.append(contentsOf: try seedPieces(sentences))
        let desired = vocabSize * 11 / 10

        // 2. EM, pruning between rounds.
        var model = TrainingModel(pieces)
        var lattice = TrainingLattice()
        while true {
            for _ in 0..<nSubIterations {
                let expected = try eStep(model, sentences, &lattice)
                pieces = mStep(pieces, expected)
                model = TrainingModel(pieces)
            }
            if pieces.count <= desired { break }
            pieces = try prune(model, pieces, sentences, &lattice)
            model = TrainingModel(pieces)
        }

        // 3. The final vocabulary.
        return try finalize(model, required: required, unkIndex: unkIndex, addsUnk: addsUnk)
    }

    // MARK: Seeds

    func requiredCharacters(_ sentences: Sentences) -> [Unicode.Scalar] {
        var seen = Set<Unicode.Scalar>(initialAlphabet)
        for w in 0..<sentences.count {
            for s in String(decoding: sentences.word(w), as: UTF8.self).unicodeScalars { seen.insert(s) }
        }
        return seen.sorted { $0.value < $1.value }
    }

    /// The characters by count, then the frequent substrings by occurrences × length, as log
    /// probabilities.
    package func seedPieces(_ sentences: Sentences) throws(TokenizerError) -> [TrainingPiece] {
        // The distinct words joined, each followed by NUL.
        var text: [UInt32] = []
        var characterCounts: [UInt32: Double] = [:]
        for w in 0..<sentences.count {
            let count = sentences.counts[w]
            for s in String(decoding: sentences.word(w), as: UTF8.self).unicodeScalars {
                text.append(s.value)
                if s.value != 0 { characterCounts[s.value, default: 0] += count }
            }
            text.append(0)
            guard text.count <= Self.maxCorpusCharacters else {
                throw .training(message: "the distinct words have more than \(Self.maxCorpusCharacters) characters")
            }
        }
        var seeds: [TrainingPiece] = characterCounts
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }
            .map { TrainingPiece(piece: String(Character(Unicode.Scalar($0.key)!)), score: $0.value) }

        let substrings = frequentSubstrings(text)
        for s in substrings {
            if seeds.count >= seedSize { break }
            var piece = String.UnicodeScalarView()
            for i in s.start..<(s.start + s.length) { piece.append(Unicode.Scalar(text[i])!) }
            seeds.append(TrainingPiece(piece: String(piece), score: Double(s.score)))
        }
        let logSum = log(seeds.reduce(0.0) { $0 + $1.score })
        for i in seeds.indices { seeds[i].score = log(seeds[i].score) - logSum }
        return seeds
    }

    /// Every internal node of the suffix tree of `text` (NUL-terminated words) that spells
    /// 2…`maxPieceLength` characters without NUL: (its start in `text`, length, occurrences ×
    /// length), best first, ties broken by the larger string. Suffixes are sorted on their first
    /// `maxPieceLength + 1` characters only (up to and including a NUL): the lcp-intervals of
    /// depth ≤ `maxPieceLength` do not depend on the rest.
    package func frequentSubstrings(_ text: [UInt32]) -> [(start: Int, length: Int, score: Int)] {
        let keyLength = maxPieceLength + 1
        var found: [(start: Int, length: Int, score: Int)] = []
        text.withUnsafeBufferPointer { t in
            // Suffixes starting with NUL only form intervals that spell NUL: leave them out.
            var suffixes: [Int32] = []
            suffixes.reserveCapacity(t.count)
            for i in 0..<t.count where t[i] != 0 { suffixes.append(Int32(i)) }
            suffixes.sort { a, b in
                var i = Int(a), j = Int(b)
                for _ in 0..<keyLength {
                    let x = t[i], y = t[j]
                    if x != y { return x < y }
                    if x == 0 { return false }
                    i += 1; j += 1
                }
                return false
            }
            // lcp[k]: the common prefix of suffixes k-1 and k, a shared NUL included, capped.
            func lcp(_ a: Int32, _ b: Int32) -> Int {
                var i = Int(a), j = Int(b), n = 0
                while n < keyLength {
                    let x = t[i]
                    if x != t[j] { break }
                    n += 1
                    if x == 0 { break }
                    i += 1; j += 1
                }
                return n
            }
            // The lcp-intervals, bottom up (Abouelhoda et al.): each is reported when it closes.
            var stack: [(depth: Int, left: Int)] = [(0, 0)]
            let m = suffixes.count
            for k in 1...max(m, 1) {
                let depth = k < m ? lcp(suffixes[k - 1], suffixes[k]) : -1
                var left = k - 1
                while let last = stack.last, depth < last.depth {
                    let top = stack.removeLast()
                    left = top.left
                    let length = top.depth
                    if length >= 2 && length <= maxPieceLength {
                        let start = Int(suffixes[top.left])
                        if t[start + length - 1] != 0 {
                            found.append((start, length, (k - top.left) * length))
                        }
                    }
                }
                if depth > (stack.last?.depth ?? -1) { stack.append((depth, left)) }
            }
            found.sort { a, b in
                if a.score != b.score { return a.score > b.score }
                // The larger string first (lexicographic on code points, a prefix is smaller).
                let n = min(a.length, b.length)
                for i in 0..<n where t[a.start + i] != t[b.start + i] { return t[a.start + i] > t[b.start + i] }
                return a.length > b.length
            }
        }
        return found
    }

    // MARK: EM

    /// Expected count of every piece (index 0: the unknown piece).
    func eStep(_ model: TrainingModel, _ sentences: Sentences, _ lattice: inout TrainingLattice) throws(TokenizerError) -> [Double] {
        var expected = [Double](repeating: 0, count: model.scores.count)
        for w in 0..<sentences.count {
            let z = sentences.withWord(w) { lattice.populate(model, $0) ; return lattice.addMarginals(freq: sentences.counts[w], into: &expected) }
            if z.isNaN {
                throw .training(message: "the likelihood of word \(w + 1) is NaN (the word may be too long)")
            }
        }
        return expected
    }

    func mStep(_ pieces: [TrainingPiece], _ expected: [Double]) -> [TrainingPiece] {
        var kept: [TrainingPiece] = [TrainingPiece(piece: pieces[0].piece, score: .nan)]
        var sum = 0.0
        for i in 1..<pieces.count where expected[i] >= 0.5 {
            kept.append(TrainingPiece(piece: pieces[i].piece, score: expected[i]))
            sum += expected[i]
        }
        // Bayesianified EM (a sparse prior), as SentencePiece and tokenizers do.
        let logSum = Self.digamma(sum)
        for i in 1..<kept.count { kept[i].score = Self.digamma(kept[i].score) - logSum }
        return kept
    }

    /// Drops the pieces whose removal costs least likelihood.
    func prune(_ model: TrainingModel, _ pieces: [TrainingPiece], _ sentences: Sentences,
               _ lattice: inout TrainingLattice) throws(TokenizerError) -> [TrainingPiece] {
        let n = pieces.count
        var alwaysKeep = [Bool](repeating: true, count: n)
        var alternatives = [[Int]](repeating: [], count: n)
        alwaysKeep[0] = false
        var path: [Int] = []
        for id in 1..<n {
            var piece = pieces[id].piece
            piece.withUTF8 { lattice.populate(model, $0) }
            lattice.viterbi(excluding: -1, into: &path)
            // The best segmentation of the piece is not the piece itself: it is never used.
            if path.count != 1 { alwaysKeep[id] = false; continue }
            // Otherwise its second-best segmentation (the best one without the whole-piece node)
            // is what replaces it; a single character has none.
            lattice.viterbi(excluding: lattice.wholeNode, into: &path)
            alternatives[id] = path.map { lattice.nodeID[$0] }
        }
        // Piece frequencies on the best segmentations of all words.
        var freq = [Double](repeating: 0, count: n)
        var vsum = 0.0
        for w in 0..<sentences.count {
            let count = sentences.counts[w]
            sentences.withWord(w) { lattice.populate(model, $0) }
            lattice.viterbi(excluding: -1, into: &path)
            vsum += count
            for node in path { freq[lattice.nodeID[node]] += count }
        }
        let sum = freq.reduce(0, +)
        let logSum = log(sum)
        var candidates: [(id: Int, loss: Double)] = []
        var kept: [TrainingPiece] = [pieces[0]]
        for id in 1..<n {
            if freq[id] == 0 && !alwaysKeep[id] { continue }
            if alternatives[id].isEmpty { kept.append(pieces[id]); continue }
            // Never on a best path (but always kept above): tokenizers drops it here.
            if freq[id] == 0 { continue }
            // Every occurrence of the piece is re-segmented by its alternatives.
            let f = freq[id] / vsum
            let logProbPiece = log(freq[id]) - logSum
            // tokenizers multiplies by (number of pieces − 1) here where SentencePiece uses
            // (number of alternatives − 1); kept as tokenizers does it.
            let logSumAlt = log(sum + freq[id] * Double(n - 1))
            var logProbAlt = 0.0
            for a in alternatives[id] { logProbAlt += log(freq[a] + freq[id]) - logSumAlt }
            let loss = f * (logProbPiece - logProbAlt)
            if loss.isNaN { throw .training(message: "the pruning loss of piece \(JSONValue.string(pieces[id].piece).compactString()) is NaN") }
            candidates.append((id, loss))
        }
        let prunedSize = max(vocabSize * 11 / 10, Int(Double(n) * shrinkingFactor))
        candidates.sort { $0.loss != $1.loss ? $0.loss > $1.loss : $0.id < $1.id }
        for c in candidates {
            if kept.count == prunedSize { break }
            kept.append(pieces[c.id])
        }
        return kept
    }

    func finalize(_ model: TrainingModel, required: [Unicode.Scalar], unkIndex: Int?, addsUnk: Bool) throws(TokenizerError) -> UnigramModel {
        var pieces: [(piece: String, score: Double)] = []
        var inserted: Set<String> = ["<UNK>"]
        var existing: [String: Double] = [:]
        for p in model.pieces { existing[p.piece] = p.score }
        var penalty = 0.0
        for c in required {
            let s = String(Character(c))
            inserted.insert(s)
            if let score = existing[s] {
                pieces.append((s, score))
            } else {
                pieces.append((s, model.minScore + penalty))
                penalty += 0.0001
            }
        }
        let room = vocabSize - specialTokens.count - (addsUnk ? 1 : 0)
        for p in model.pieces where pieces.count < room {
            if inserted.contains(p.piece) { continue }
            inserted.insert(p.piece)
            pieces.append((p.piece, p.score.isNaN ? 0 : p.score))
        }
        // Best score first; equal scores keep their order.
        let order = pieces.indices.sorted { pieces[$0].score != pieces[$1].score ? pieces[$0].score > pieces[$1].score : $0 < $1 }
        var vocab: [(piece: String, score: Double)] = specialTokens.map { ($0.content, 0.0) }
        var unkID = unkIndex
        if addsUnk, let unkToken {
            vocab.insert((unkToken, 0.0), at: 0)
            unkID = 0
        }
        vocab.append(contentsOf: order.map { pieces[$0] })
        do {
            return try UnigramModel(pieces: vocab, unkID: unkID, byteFallback: false)
        } catch {
            throw .training(message: "the trained vocabulary is invalid: \(error)")
        }
    }

    /// ψ(x), as `tokenizers` computes it.
    package static func digamma(_ x: Double) -> Double {
        var x = x
        var result = 0.0
        while x < 7 {
            result -= 1 / x
            x += 1
        }
        x -= 0.5
        let xx = 1 / x
        let xx2 = xx * xx
        let xx4 = xx2 * xx2
        result += log(x) + (1.0 / 24.0) * xx2 - 7.0 / 960.0 * xx4 + (31.0 / 8064.0) * xx4 * xx2 - (127.0 / 30720.0) * xx4 * xx4
        return result
    }
}

/// A piece and its score (a count before scores become log probabilities).
package struct TrainingPiece: Sendable {
    package var piece: String
    package var score: Double
}

/// The words to train on: their UTF-8 bytes in one buffer, and their counts.
package struct Sentences {
    var bytes: [UInt8] = []
    var starts: [Int] = [0]
    var counts: [Double] = []

    package init(_ words: WordCounts) {
        words.table.forEach { w, c in
            guard !w.isEmpty else { return }
            bytes.append(contentsOf: w)
            starts.append(bytes.count)
            counts.append(Double(c))
        }
    }

    var count: Int { counts.count }

    func word(_ i: Int) -> ArraySlice<UInt8> { bytes[starts[i]..<starts[i + 1]] }

    func withWord<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[starts[i]..<starts[i + 1]])) }
    }
}

/// The model during training: the pieces' scores and a trie of every piece but the unknown one
/// (index 0), which stands for characters no single-character piece covers.
struct TrainingModel {
    let pieces: [TrainingPiece]
    let scores: [Double]
    let trie: PieceTrie
    /// The lowest score (NaN scores left out).
    let minScore: Double
    var unknownScore: Double { minScore - UnigramModel.unknownPenalty }

    init(_ pieces: [TrainingPiece]) {
        self.pieces = pieces
        scores = pieces.map(\.score)
        var ids: [String: Int] = [:]
        ids.reserveCapacity(pieces.count)
        var minimum = Double.infinity
        for (i, p) in pieces.enumerated() where i > 0 {
            ids[p.piece] = i
            if p.score < minimum { minimum = p.score }
        }
        minScore = minimum
        trie = PieceTrie(ids)
    }
}

/// The segmentation lattice of one word, reused from word to word: its nodes in `tokenizers`'
/// order (by start, then shortest first, an unknown-character node last), forward–backward for
/// expected counts and Viterbi for the best path.
struct TrainingLattice {
    var nodeStart: [Int] = []
    var nodeEnd: [Int] = []
    var nodeID: [Int] = []
    var nodeScore: [Double] = []
    /// The nodes that start at each byte offset: `groupFirst[p]..<groupFirst[p + 1]` (empty inside
    /// a character).
    var groupFirst: [Int] = []
    var length = 0
    /// The node spanning the whole word (-1: none).
    var wholeNode = -1
    var forward: [Double] = []
    var backward: [Double] = []
    var best: [Double] = []
    var bestNode: [Int] = []

    mutating func populate(_ model: TrainingModel, _ word: UnsafeBufferPointer<UInt8>) {
        nodeStart.removeAll(keepingCapacity: true)
        nodeEnd.removeAll(keepingCapacity: true)
        nodeID.removeAll(keepingCapacity: true)
        nodeScore.removeAll(keepingCapacity: true)
        groupFirst.removeAll(keepingCapacity: true)
        length = word.count
        wholeNode = -1
        var start = 0
        while start < length {
            let width = min(UnigramModel.utf8Width(word[start]), length - start)
            groupFirst.append(nodeStart.count)
            var covered = false
            model.trie.forEachPrefix(of: word, from: start) { n, id in
                nodeStart.append(start)
                nodeEnd.append(start + n)
                nodeID.append(id)
                nodeScore.append(model.scores[id])
                if n == width { covered = true }
            }
            if !covered {
                nodeStart.append(start)
                nodeEnd.append(start + width)
                nodeID.append(0)
                nodeScore.append(model.unknownScore)
            }
            // Offsets inside the character start no node.
            for _ in 1..<max(width, 1) { groupFirst.append(nodeStart.count) }
            start += width
        }
        groupFirst.append(nodeStart.count)
        for i in nodeStart.indices where nodeStart[i] == 0 && nodeEnd[i] == length { wholeNode = i; break }
    }

    /// `tokenizers`' log-sum-exp (exact enough: terms 50 nats below the larger one are dropped).
    @inline(__always) static func logSumExp(_ x: Double, _ y: Double) -> Double {
        let (low, high) = x > y ? (y, x) : (x, y)
        return high > low + 50 ? high : high + log(exp(low - high) + 1)
    }

    /// Adds `freq` × each node's marginal probability to `expected[id]`; returns `freq` × log Z.
    mutating func addMarginals(freq: Double, into expected: inout [Double]) -> Double {
        let n = length
        forward.removeAll(keepingCapacity: true)
        forward.append(contentsOf: repeatElement(.nan, count: n + 1))
        backward.removeAll(keepingCapacity: true)
        backward.append(contentsOf: repeatElement(.nan, count: n + 1))
        forward[0] = 0
        // -inf for "nothing yet": logSumExp(-inf, v) is v, as tokenizers' first term.
        // Forward: nodes in order, so every node ending at a node's start is already counted.
        for i in 1...n { forward[i] = -.infinity }
        for i in nodeStart.indices {
            let e = nodeEnd[i]
            forward[e] = Self.logSumExp(forward[e], forward[nodeStart[i]] + nodeScore[i])
        }
        // Backward: from the end, the nodes of one start in their order.
        for i in 0..<n { backward[i] = -.infinity }
        backward[n] = 0
        var p = n - 1
        while p >= 0 {
            for i in groupFirst[p]..<groupFirst[p + 1] {
                backward[p] = Self.logSumExp(backward[p], nodeScore[i] + backward[nodeEnd[i]])
            }
            p -= 1
        }
        let z = forward[n]
        for i in nodeStart.indices {
            expected[nodeID[i]] += freq * exp(forward[nodeStart[i]] + nodeScore[i] + backward[nodeEnd[i]] - z)
        }
        return freq * z
    }

    /// The nodes of the best path (ties: the node that starts first), leaving out node
    /// `excluded`; empty when no path is left.
    mutating func viterbi(excluding excluded: Int, into path: inout [Int]) {
        path.removeAll(keepingCapacity: true)
        let n = length
        guard n > 0 else { return }
        best.removeAll(keepingCapacity: true)
        best.append(contentsOf: repeatElement(0, count: n + 1))
        bestNode.removeAll(keepingCapacity: true)
        bestNode.append(contentsOf: repeatElement(-1, count: n + 1))
        for i in nodeStart.indices where i != excluded {
            let s = nodeStart[i]
            if s > 0 && bestNode[s] < 0 { continue }
            let v = best[s] + nodeScore[i]
            let e = nodeEnd[i]
            if bestNode[e] < 0 || v > best[e] {
                best[e] = v
                bestNode[e] = i
            }
        }
        guard bestNode[n] >= 0 else { return }
        var e = n
        while e > 0 {
            let node = bestNode[e]
            path.append(node)
            e = nodeStart[node]
        }
        path.reverse()
    }
}

// MARK: - T5-style SentencePiece Unigram

extension Tokenizer {
    /// T5's special tokens in the order of their ids: `<pad>`=0, `</s>`=1, `<unk>`=2.
    public static let t5SpecialTokens = ["<pad>", "</s>", "<unk>"]

    /// The normalizer of `tokenizers`' `SentencePieceUnigramTokenizer`: Nmt, NFKC, runs of
    /// spaces to one space.
    public static func sentencePieceNormalizer() -> any Normalizer {
        // The pattern is a constant that OnigRegex accepts.
        let spaces = try! OnigRegex(" {2,}")
        return SequenceNormalizer([NmtNormalizer(), UnicodeNormalizer(.nfkc),
                                   ReplaceNormalizer(pattern: .regex(spaces), content: " ")])
    }

    /// Trains a SentencePiece Unigram tokenizer for T5: the pipeline of `tokenizers`'
    /// `SentencePieceUnigramTokenizer` (`sentencePieceNormalizer`, a Metaspace pre-tokenizer and
    /// decoder with `▁` prepended always), `UnigramTrainer` with T5's special tokens
    /// (`<pad>`=0, `</s>`=1, `<unk>`=2, the unknown token) and a post-processor appending
    /// `</s>` (`$A </s>`, `$A </s> $B </s>`) as T5's tokenizer does. `vocabSize` counts the
    /// special tokens.
    public static func trainT5Unigram(_ words: WordCounts, vocabSize: Int) throws(TokenizerError) -> Tokenizer {
        let specials = t5SpecialTokens.map { AddedToken($0, special: true) }
        let trainer = UnigramTrainer(vocabSize: vocabSize, specialTokens: specials, unkToken: "<unk>")
        let model = try trainer.train(words)
        let eos = TemplateProcessing.SpecialToken(id: "</s>", ids: [1], tokens: ["</s>"])
        let post = TemplateProcessing(single: [.sequence(index: 0, typeID: 0), .specialToken(id: "</s>", typeID: 0)],
                                      pair: [.sequence(index: 0, typeID: 0), .specialToken(id: "</s>", typeID: 0),
                                             .sequence(index: 1, typeID: 0), .specialToken(id: "</s>", typeID: 0)],
                                      specialTokens: [eos])
        return Tokenizer(model: model, normalizer: sentencePieceNormalizer(), preTokenizer: MetaspacePreTokenizer(),
                         postProcessor: post, decoder: MetaspaceDecoder(), addedTokens: specials)
    }

    /// Counts the words of `texts` as `trainT5Unigram` wants them (normalized, Metaspace words).
    public static func t5WordCounts<S: Sequence<String>>(_ texts: S) -> WordCounts {
        var counts = WordCounts(byteLevel: false)
        let normalizer = sentencePieceNormalizer()
        let pre = MetaspacePreTokenizer()
        for t in texts { counts.add(t, normalizer: normalizer, preTokenizer: pre) }
        return counts
    }
}
