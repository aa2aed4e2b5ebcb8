#!/usr/bin/env python3
"""Golden fixtures for the Swift ROUGE implementation (target PrecisMetrics).

Writes, under Tests/Fixtures/rouge/:

  golden.jsonl  one JSON object per line: "id", "kind", "reference",
                "prediction", and rouge-score 0.1.2's scores for
                rouge1/rouge2/rougeL/rougeLsum as [precision, recall, fmeasure]
                under "plain" (use_stemmer=False) and "stemmed"
                (use_stemmer=True). Pairs are drawn from SAMSum (verbatim
                summaries, dialogue lines and word-boundary prefixes, paired
                across examples), synthetic texts over a small vocabulary (word
                shuffles, drops and repeats, which stress LCS tie-breaking) and
                hand-written edge cases.
  porter.tsv    word<TAB>stem with NLTK's PorterStemmer (NLTK_EXTENSIONS) for
                every distinct rouge token of SAMSum train+validation+test,
                classic Porter examples and synthetic words built to reach
                every rule.
  aggregate.json  over all golden pairs, per mode ("plain"/"stemmed") and
                type: "mean" = np.mean of each statistic ([p, r, f]) and
                "bootstrap" = BootstrapAggregator low/mid/high after
                np.random.seed(0), for the statistical comparison.

SAMSum text is only ever copied verbatim (the corpus is CC BY-NC-ND 4.0), so
perturbed texts are synthetic.

Usage (with the venv that has rouge-score 0.1.2 and nltk):
  /work/venv/bin/python tools/golden/make_rouge_golden.py [SAMSUM_DIR]
SAMSUM_DIR defaults to ../shared/data/samsum relative to the repository root,
falling back to data/samsum (after `make data`).
"""

import argparse
import json
import os
import random
import re
import sys

import numpy as np
from nltk.stem import porter
from rouge_score import rouge_scorer, scoring, tokenize

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(REPO, "Tests", "Fixtures", "rouge")
TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
SPLITS = ["train", "validation", "test"]
MAX_TEXT_CHARS = 1500  # ordinary pairs; the few "long" pairs are bigger

CLASSIC_WORDS = """
caresses ponies ties caress cats feed agreed plastered bled motoring sing
conflated troubled sized hopping tanned falling hissing fizzed failing filing
happy sky relational conditional rational valenci hesitanci digitizer
conformabli radicalli differentli vileli analogousli vietnamization
predication operator feudalism decisiveness hopefulness callousness formaliti
sensitiviti sensibiliti triplicate formative formalize electriciti electrical
hopeful goodness revival allowance inference airliner gyroscopic adjustable
defensible irritant replacement adjustment dependent adoption homologou
communism activate angulariti homologous effective bowdlerize probate rate
cease controll roll generalizations oscillators dying lying tying news innings
inning outings outing cannings canning howe proceed exceed succeed skies dies
died flies spied cried tried owing bowing sowing enjoy enjoyment toy syzygy
yyyy yyyyy by spy fly try fully hopefully logically archaeology geology
theology analogies dogged rolling falling misspelling abilities possibly
agreement sensational national nationalization irrationally generously
""".split()

SUFFIXES = [
    "s", "es", "ies", "sses", "ss", "ied", "eed", "ed", "ing", "y", "ly", "ally",
    "alli", "ational", "tional", "enci", "anci", "izer", "bli", "abli", "entli",
    "eli", "ousli", "ization", "ation", "ator", "alism", "iveness", "fulness",
    "ousness", "aliti", "iviti", "biliti", "fulli", "logi", "logy", "icate",
    "ative", "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er",
    "ic", "able", "ible", "ant", "ement", "ment", "ent", "sion", "tion", "ion",
    "ou", "ism", "ate", "iti", "ous", "ive", "ize", "e", "ll", "at", "bl", "iz",
]

# A small vocabulary with inflected forms, for synthetic texts (lots of
# repeated tokens make LCS ties, and the forms exercise the stemmer).
SYNTH_VOCAB = """
the a and of to is was be meeting meetings meet met call calls called calling
plan plans planned planning happy happily happiness run runs running ran
agree agreed agreement agreeable fly flies flying flew nation national
nationally relate related relational relation go goes going went good better
goodness tomorrow today party parties cook cooks cooked cooking sky skies
""".split()

EDGE_TEXTS = [
    "",
    " ",
    "   \n  \n",
    "\n",
    "\n\n\n",
    "\t",
    "?!...",
    "...",
    "- -- --- !!!",
    "Zoë and Jürgen — café ☕",
    "Zoe and Jurgen cafe",
    "日本語のテキストです。",
    "中文 测试 English mixed 文本",
    "🙂🙃 emoji 😀 test 🎉 party",
    "The meeting is at 10:30, it costs 3.5 dollars.",
    "3.5 10:30 2019-05-01 100% 3,5",
    "İstanbul and the \u212aelvin scale",
    "istanbul and the kelvin scale",
    "a\nb\n\nc",
    "line one\r\nline two\r\n\r\nline three",
    "line one\nline two\nline three",
    "  \n line two \n   ",
    "THE THE THE the the",
    "a a a a b b",
    "b a b a b a",
    "running runs ran runner easily fairly",
    "generalizations of the relational conditional",
    "ŞĞÜÖÇ ı i̇ ß ﬁ",
    "don't won't can't it's",
    "e-mail e.g. i.e. U.S.A.",
    "x",
    "ab",
    "caresses ponies ties caress cats",
    "\t tabs\tand  spaces ",
    "Ｆｕｌｌｗｉｄｔｈ １２３ digits",
    "skies dying lying tying news innings",
    "Dr. Smith met Mrs. Jones. They talked!\nThen they left?",
]


def load_samsum(directory):
    examples = []
    for split in SPLITS:
        path = os.path.join(directory, split + ".jsonl")
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                record["split"] = split
                examples.append(record)
    return examples


def porter_words(examples, rng):
    words = set(CLASSIC_WORDS)
    for ex in examples:
        for key in ("summary", "dialogue"):
            words.update(tokenize.tokenize(ex[key] or "", None))
    corpus_words = sorted(words)
    # Synthetic words: corpus stems with every rule's suffix appended.
    alpha = [w for w in corpus_words if w.isalpha() and 3 <= len(w) <= 8]
    for stem in rng.sample(alpha, 500):
        for suffix in SUFFIXES:
            words.add(stem + suffix)
    # Random strings over a vowel/y-heavy alphabet reach odd rule interactions.
    letters = "aeiouyyllssttzzbcdgmnprwx"
    for _ in range(8000):
        n = rng.randint(1, 12)
        words.add("".join(rng.choice(letters) for _ in range(n)))
    return sorted(words)


def dialogue_prefix(dialogue, lines):
    """The first `lines` lines of a dialogue, verbatim (separators included)."""
    pieces = dialogue.split("\n")
    return "\n".join(pieces[:lines])


def word_prefix(text, rng):
    """A verbatim prefix of `text` ending at a word boundary."""
    cuts = [m.start() for m in re.finditer(r"\s", text)]
    if not cuts:
        return text
    return text[: rng.choice(cuts)]


def sentences_on_lines(text):
    """Puts each sentence on its own line (whitespace after . ! ? becomes \\n)."""
    return re.sub(r"([.!?])\s+", r"\1\n", text.strip())


def synthetic_text(rng, vocab, words, lines):
    out = []
    for _ in range(lines):
        out.append(" ".join(rng.choice(vocab) for _ in range(words)))
    return "\n".join(out)


def perturb(text, rng):
    lines = text.split("\n")
    result = []
    for line in lines:
        tokens = line.split(" ")
        op = rng.randrange(4)
        if op == 0:
            rng.shuffle(tokens)
        elif op == 1 and tokens:
            tokens = [t for t in tokens if rng.random() > 0.3]
        elif op == 2 and tokens:
            tokens = tokens + rng.sample(tokens, min(len(tokens), 3))
        else:
            tokens = list(reversed(tokens))
        result.append(" ".join(tokens))
    if rng.random() < 0.3:
        rng.shuffle(result)
    return "\n".join(result)


def clip(text, limit=MAX_TEXT_CHARS):
    return text if len(text) <= limit else text[:limit]


def make_pairs(examples, rng):
    pairs = []

    def add(kind, reference, prediction):
        pairs.append({"kind": kind, "reference": reference, "prediction": prediction})

    held_out = [e for e in examples if e["split"] != "train"]
    train = [e for e in examples if e["split"] == "train"]
    chosen = held_out + rng.sample(train, 500)
    for i, ex in enumerate(chosen):
        summary = ex["summary"]
        dialogue = ex["dialogue"] or ""
        other = rng.choice(examples)["summary"]
        kind = i % 7
        if kind == 0:
            add("other_summary", summary, other)
        elif kind == 1:
            add("dialogue_lines", summary, clip(dialogue_prefix(dialogue, rng.randint(1, 3))))
        elif kind == 2:
            add("summary_prefix", summary, word_prefix(summary, rng))
        elif kind == 3:
            add("identical", summary, summary)
        elif kind == 4:
            add("sentence_lines", sentences_on_lines(summary), sentences_on_lines(other))
        elif kind == 5:
            mixed = "\n".join([sentences_on_lines(other), summary, rng.choice(examples)["summary"]])
            add("mixed_lines", sentences_on_lines(summary), mixed)
        else:
            add("dialogue_as_reference", clip(dialogue_prefix(dialogue, rng.randint(2, 6))), summary)

    for i in range(400):
        vocab = rng.sample(SYNTH_VOCAB, rng.choice([3, 5, 8, 15, 40]))
        reference = synthetic_text(rng, vocab, rng.randint(1, 14), rng.randint(1, 4))
        prediction = perturb(reference, rng) if i % 4 else synthetic_text(
            rng, vocab, rng.randint(1, 14), rng.randint(1, 4))
        add("synthetic", reference, prediction)

    for a in EDGE_TEXTS:
        for b in EDGE_TEXTS:
            if rng.random() < 0.45 or a == b:
                add("edge", a, b)

    for i in range(6):
        dialogues = [e["dialogue"] or "" for e in rng.sample(examples, 12)]
        long_reference = "\n".join(dialogues)[: 4000 + 1000 * i]
        long_prediction = "\n".join(dialogues[::-1])[: 3000 + 800 * i]
        add("long", long_reference, long_prediction)
    return pairs


def score_all(pairs):
    plain = rouge_scorer.RougeScorer(TYPES, use_stemmer=False)
    stemmed = rouge_scorer.RougeScorer(TYPES, use_stemmer=True)
    for n, pair in enumerate(pairs):
        pair["id"] = n
        for name, scorer in (("plain", plain), ("stemmed", stemmed)):
            scores = scorer.score(pair["reference"], pair["prediction"])
            pair[name] = {t: [float(scores[t].precision), float(scores[t].recall),
                              float(scores[t].fmeasure)] for t in TYPES}
    return pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("samsum_dir", nargs="?", default=None)
    parser.add_argument("--out", default=OUT_DIR)
    args = parser.parse_args()
    directory = args.samsum_dir
    if directory is None:
        directory = os.path.join(REPO, "..", "shared", "data", "samsum")
        if not os.path.exists(os.path.join(directory, "train.jsonl")):
            directory = os.path.join(REPO, "data", "samsum")
    examples = load_samsum(directory)
    rng = random.Random(20240615)
    os.makedirs(args.out, exist_ok=True)

    stemmer = porter.PorterStemmer()
    words = porter_words(examples, rng)
    with open(os.path.join(args.out, "porter.tsv"), "w", encoding="utf-8", newline="\n") as f:
        for word in words:
            f.write(f"{word}\t{stemmer.stem(word)}\n")

    pairs = score_all(make_pairs(examples, rng))
    with open(os.path.join(args.out, "golden.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for pair in pairs:
            record = {k: pair[k] for k in ("id", "kind", "reference", "prediction", "plain", "stemmed")}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    aggregate = {}
    for mode in ("plain", "stemmed"):
        aggregator = scoring.BootstrapAggregator()
        for pair in pairs:
            aggregator.add_scores({t: scoring.Score(*pair[mode][t]) for t in TYPES})
        np.random.seed(0)
        intervals = aggregator.aggregate()
        aggregate[mode] = {
            "mean": {t: [float(np.mean([pair[mode][t][k] for pair in pairs])) for k in range(3)]
                     for t in TYPES},
            "bootstrap": {t: {bound: [float(x) for x in getattr(intervals[t], bound)]
                              for bound in ("low", "mid", "high")} for t in TYPES},
        }
    with open(os.path.join(args.out, "aggregate.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(aggregate, f, indent=1)
        f.write("\n")
    print(f"{len(words)} stems, {len(pairs)} pairs -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
