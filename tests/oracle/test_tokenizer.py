"""Oracle test: `tquant tokenize` against tokenizer_oracle.py, a naive independent
re-implementation of Hugging Face `tokenizers`.

Tokenizers covered: the default model's SentencePiece-style BPE (byte fallback without byte
tokens, so unknown characters become a fused <unk>), Metaspace variants of it, GPT-2 style
byte-level BPE learned here from Tiny Shakespeare (ByteLevel / RoBERTa / template
post-processors, merges as strings and as pairs, lstrip / rstrip / single_word added tokens),
classic BPE with an end-of-word suffix or a continuing-subword prefix, and WordPiece, both from
tokenizer.json and from vocab.txt-only BERT folders (lowercase and cased), with sentence pairs
and longest-first truncation.

Usage (ctest passes these): test_tokenizer.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
Prints a diff for each mismatch, ends with "N passed, M failed", exits non-zero on any failure.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_fixtures as fixtures  # noqa: E402
import tokenizer_oracle as oracle  # noqa: E402

DEFAULT_MODEL = "models/tinystories-656k"

COMMON_TEXTS = [
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily.",
    "Hello, world! How are you?",
    "",
    " ",
    "   ",
    "  leading spaces",
    "trailing spaces   ",
    "multiple   spaces   between    words",
    "tab\tseparated\tvalues\t",
    "line one\r\nline two\r\n",
    "\r\n\r\n",
    "new\nlines\n\nand\n",
    "caf\u00e9 na\u00efve \u00fcber r\u00e9sum\u00e9 \u00c9COLE",
    "\u00e9\u00fc\u00f6 \u00e9\u00e9\u00e9",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 and \u4e2d\u6587\u5b57\u7b26",
    "emoji \U0001F600\U0001F389 here \U0001F44D",
    "I'm sure they'll say we've done what you'd've DON'T",
    "numbers 12345 and 3.14159, 1,000,000!",
    "punctuation... (parens) [brackets] {braces} \"quotes\" 'single' --dash-- @#$%^&*",
    "<|start_story|>",
    "Once <|start_story|> there",
    "a<|start_story|>b",
    "<|start_story|><|end_story|>",
    "<unk>",
    "the <unk> token <unk>",
    "x<unk>y",
    "<|endoftext|> after end of text",
    "before<|endoftext|>after",
    "Ends with special <|endoftext|>",
    "[CLS] fake [SEP] markers [MASK] and [cls]",
    "<mask> masked   <mask>",
    "thou art; thousand thou, thou",
    "[[end]]   next [[end]]",
    "Zebra quiz: Qatar jazz",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "zero\u200bwidth and soft\u00adhyphen and \x00nul \x07bell",
    "Grand \u03a3\u039f\u03a6\u039f\u03a3 \u0130stanbul",
    "nevertheless abcd",
    "Supercalifragilisticexpialidocious is a long word",
    "lllll ll lll eeeee tttt ssssss oooo!!!!!! ...... ====== ----",
    "Hmmmmm. Wellllll, thththth!",
]

PAIRS = [
    ("Once upon a time", "there was a dog."),
    ("How old are you?", "I am six years old."),
    ("", "only the second"),
    ("only the first", ""),
    ("Caf\u00e9 au lait", "Cr\u00e8me br\u00fbl\u00e9e"),
    ("To be, or not to be", "that is the question: whether 'tis nobler in the mind to suffer"),
]

MAX_LENGTHS = [1, 2, 3, 5, 8, 13, 40]


class Runner:
    """Collects cases per tokenizer folder, runs them through `tquant tokenize --batch` (one
    process per folder), and every SINGLE_SHOT_EVERY-th case also through the one-shot
    --file / --pair-file / --no-special / --max-length path."""

    SINGLE_SHOT_EVERY = 7

    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.counter = 0
        self.pending = []  # (name, folder, text, pair, add_special, max_length, want or None)

    def check(self, name, folder, tok, text, pair=None, add_special=True, max_length=0):
        if self.args.filter and self.args.filter not in name:
            return
        try:
            want = tok.encode(text, pair, add_special, max_length)
        except oracle.NoRoomForSpecialTokens:
            want = None
        self.pending.append((name, folder, text, pair, add_special, max_length, want))

    def flush(self):
        by_folder = collections.OrderedDict()
        for case in self.pending:
            by_folder.setdefault(case[1], []).append(case)
        self.pending = []
        for folder, cases in by_folder.items():
            try:
                results = self.batch(folder, cases)
            except RuntimeError as e:
                for case in cases:
                    self.fail(case[0], case[2], case[3], str(e))
                continue
            for i, (case, got) in enumerate(zip(cases, results)):
                self.compare(case, got, "batch")
                if i % self.SINGLE_SHOT_EVERY == 0:
                    self.compare(case, self.single_shot(*case[1:6]), "single-shot")

    def batch(self, folder, cases):
        self.counter += 1
        path = os.path.join(self.args.tmp, "batch-%d.jsonl" % self.counter)
        with open(path, "w", encoding="utf-8") as f:
            for _, _, text, pair, add_special, max_length, _ in cases:
                request = {"text": text, "special": add_special, "max_length": max_length}
                if pair is not None:
                    request["pair"] = pair
                f.write(json.dumps(request) + "\n")
        proc = subprocess.run([self.args.tquant, "tokenize", "--model", folder, "--batch", path],
                              capture_output=True, text=True, encoding="utf-8")
        lines = proc.stdout.splitlines()
        if proc.returncode != 0 or len(lines) != len(cases):
            raise RuntimeError("tquant --batch failed (exit %d, %d of %d lines): %s" %
                               (proc.returncode, len(lines), len(cases), proc.stderr.strip()))
        return [json.loads(line) for line in lines]

    def single_shot(self, folder, text, pair, add_special, max_length):
        self.counter += 1
        text_file = os.path.join(self.args.tmp, "text-%d.txt" % self.counter)
        with open(text_file, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        cmd = [self.args.tquant, "tokenize", "--model", folder, "--file", text_file]
        if pair is not None:
            pair_file = os.path.join(self.args.tmp, "pair-%d.txt" % self.counter)
            with open(pair_file, "w", encoding="utf-8", newline="") as f:
                f.write(pair)
            cmd += ["--pair-file", pair_file]
        if not add_special:
            cmd.append("--no-special")
        if max_length:
            cmd += ["--max-length", str(max_length)]
        proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8")
        if proc.returncode != 0:
            return {"error": proc.stderr.strip()}
        return json.loads(proc.stdout)

    def compare(self, case, got, how):
        name, _, text, pair, _, max_length, want = case
        name = "%s [%s]" % (name, how)
        if want is None:
            if "leaves no room" in got.get("error", ""):
                self.passed += 1
            else:
                self.fail(name, text, pair, "max_length %d cannot hold the special tokens; tquant should refuse "
                                            "it, got %s" % (max_length, got))
            return
        if "error" in got:
            self.fail(name, text, pair, "tquant failed: %s" % got["error"])
            return
        want_ids, want_types = want
        if got["ids"] == want_ids and got["type_ids"] == want_types and len(got["tokens"]) == len(want_ids):
            self.passed += 1
            return
        lines = []
        if got["ids"] != want_ids:
            i = next((k for k, (x, y) in enumerate(zip(got["ids"], want_ids)) if x != y),
                     min(len(got["ids"]), len(want_ids)))
            lines.append("ids differ at index %d (tquant %d tokens, oracle %d)" % (i, len(got["ids"]), len(want_ids)))
            lines.append("  tquant: ...%s" % list(zip(got["ids"][max(0, i - 3):i + 6],
                                                       got["tokens"][max(0, i - 3):i + 6])))
            lines.append("  oracle: ...%s" % want_ids[max(0, i - 3):i + 6])
        if got["type_ids"] != want_types:
            lines.append("type_ids: tquant %s\n          oracle %s" % (got["type_ids"], want_types))
        self.fail(name, text, pair, "\n".join(lines))

    def fail(self, name, text, pair, message):
        self.failed += 1
        shown = text if len(text) < 120 else text[:117] + "..."
        print("FAIL %s\n  text: %r%s\n  %s" % (name, shown, "" if pair is None else "\n  pair: %r" % pair[:120],
                                              message.replace("\n", "\n  ")))

    def expect_error(self, name, folder, needles):
        """tquant must fail cleanly (exit 1) with a message containing every needle."""
        if self.args.filter and self.args.filter not in name:
            return
        proc = subprocess.run([self.args.tquant, "tokenize", "--model", folder, "--text", "x"],
                              capture_output=True, text=True)
        if proc.returncode == 1 and all(n in proc.stderr for n in needles):
            self.passed += 1
        else:
            self.fail(name, "x", None, "expected exit 1 naming %s, got %d: %s" % (needles, proc.returncode,
                                                                                proc.stderr.strip()))


def read(path, start, size):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()[start:start + size]


def run_suite(r, name, folder, texts, pairs=(), max_lengths=(), specials=(True, False)):
    tok = oracle.load(folder)
    for i, text in enumerate(texts):
        for add in specials:
            r.check("%s/text%d%s" % (name, i, "" if add else "/nospecial"), folder, tok, text, add_special=add)
    for i, (a, b) in enumerate(pairs):
        for add in specials:
            r.check("%s/pair%d%s" % (name, i, "" if add else "/nospecial"), folder, tok, a, b, add_special=add)
    for n in max_lengths:
        r.check("%s/trunc%d" % (name, n), folder, tok, COMMON_TEXTS[1], max_length=n)
        for i, (a, b) in enumerate(pairs):
            r.check("%s/pair%d/trunc%d" % (name, i, n), folder, tok, a, b, max_length=n)
            r.check("%s/pair%d/trunc%d/nospecial" % (name, i, n), folder, tok, a, b, add_special=False, max_length=n)


def self_check():
    """The oracle's own building blocks against values worked out by hand, so that a broken
    oracle cannot pass or fail the C++ by accident."""
    assert oracle.gpt2_regex().findall("I'm  here!!\n\n x") == ["I", "'m", " ", " here", "!!", "\n\n", " x"]
    assert oracle.gpt2_regex().findall("a  b ") == ["a", " ", " b", " "]
    assert oracle.BYTE_CHAR[ord(" ")] == "\u0120" and oracle.BYTE_CHAR[ord("\n")] == "\u010a"
    assert oracle.lower("\u03a3") == "\u03c3" and oracle.lower("\u0130") == "i\u0307"
    assert oracle.bert_normalize("H\u00e9llo\t\u4e2d!", True, True, True, True) == "hello  \u4e2d !"
    bpe = oracle.NaiveBPE({"vocab": {"a": 0, "b": 1, "ab": 2, "aa": 3, "<unk>": 4}, "merges": ["a b", "a a"],
                           "unk_token": "<unk>", "fuse_unk": True})
    assert bpe.tokenize("aab") == [0, 2]          # "a b" outranks "a a"
    assert bpe.tokenize("aaa") == [3, 0]          # leftmost of equal-rank pairs
    assert bpe.tokenize("axyb") == [0, 4, 1]      # unknown run fused into one <unk>
    wp = oracle.GreedyWordPiece({"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "u": 4})
    assert wp.tokenize("unaffable") == [1, 2, 3] and wp.tokenize("unx") == [0]
    assert oracle.truncate_longest_first([1] * 10, [2] * 3, 9) == ([1] * 6, [2] * 3)
    assert oracle.truncate_longest_first([1] * 10, [2] * 8, 9) == ([1] * 5, [2] * 4)
    assert oracle.truncate_longest_first([1] * 8, [2] * 10, 9) == ([1] * 4, [2] * 5)
    assert oracle.truncate_longest_first([1] * 6, [2] * 6, 9) == ([1] * 4, [2] * 5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tquant", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    shutil.rmtree(args.tmp, ignore_errors=True)
    os.makedirs(args.tmp)
    self_check()
    r = Runner(args)
    sh = args.shared

    # The default model, including real text. The naive oracle is quadratic: snippets stay small.
    default = os.path.join(sh, DEFAULT_MODEL)
    stories = os.path.join(sh, "data", "tinystories", "eval.txt")
    wiki = os.path.join(sh, "data", "wikitext-2", "raw", "wiki.test.raw")
    snippets = [read(stories, 0, 2500), read(stories, 100000, 1500), read(wiki, 0, 2500), read(wiki, 500000, 1500)]
    run_suite(r, "default", default, COMMON_TEXTS + snippets, PAIRS, MAX_LENGTHS)

    run_suite(r, "byte-fallback", fixtures.byte_fallback_folder(args.tmp, sh, "byte-fallback"),
              COMMON_TEXTS + ["\u00fc\u00e9 \u00e9\u00fc\u00fc\u00e9", "a\u2014b\r\n\u00e9t\u00e9", snippets[2]],
              PAIRS[4:5])
    run_suite(r, "metaspace-first", fixtures.metaspace_folder(args.tmp, sh, "metaspace-first", "first", False),
              COMMON_TEXTS + ["<unk>hello", "<unk> hello", "<|start_story|>Once upon"], PAIRS[:2])
    run_suite(r, "metaspace-always-split",
              fixtures.metaspace_folder(args.tmp, sh, "metaspace-always", "always", True),
              COMMON_TEXTS + ["<unk>hello", "<unk> hello"], PAIRS[:2])

    shakespeare_tail = fixtures.shakespeare(sh, 600000, 1500)
    byte_texts = COMMON_TEXTS + [shakespeare_tail, read(wiki, 200000, 1200)]
    run_suite(r, "gpt2", fixtures.gpt2_folder(args.tmp, sh, "gpt2"), byte_texts, PAIRS[:3], [3, 8])
    run_suite(r, "gpt2-prefix-roberta",
              fixtures.gpt2_folder(args.tmp, sh, "gpt2-roberta", add_prefix_space=True, merges_as_pairs=True,
                                   post="Roberta"), byte_texts[:45], PAIRS, [4, 9, 20])
    run_suite(r, "gpt2-template", fixtures.gpt2_folder(args.tmp, sh, "gpt2-template", post="Template"),
              COMMON_TEXTS[:12], PAIRS, [3, 7])

    run_suite(r, "bpe-suffix", fixtures.classic_bpe_folder(args.tmp, sh, "bpe-suffix", suffix="</w>"),
              COMMON_TEXTS + [shakespeare_tail], specials=(True,))
    run_suite(r, "bpe-prefix",
              fixtures.classic_bpe_folder(args.tmp, sh, "bpe-prefix", prefix="##", fuse_unk=True, ignore_merges=True),
              COMMON_TEXTS + [shakespeare_tail], specials=(True,))

    wp_texts = COMMON_TEXTS + [shakespeare_tail, read(wiki, 300000, 1500)]
    run_suite(r, "wordpiece", fixtures.wordpiece_json_folder(args.tmp, sh, "wordpiece"), wp_texts, PAIRS, MAX_LENGTHS)
    run_suite(r, "wordpiece-cased-bert",
              fixtures.wordpiece_json_folder(args.tmp, sh, "wordpiece-cased", lowercase=False, post="Bert",
                                             max_chars=12, chinese=False), wp_texts, PAIRS, [5, 16])
    run_suite(r, "wordpiece-keep-accents",
              fixtures.wordpiece_json_folder(args.tmp, sh, "wordpiece-accents", strip_accents=False),
              COMMON_TEXTS[:20], PAIRS[4:5])
    run_suite(r, "vocab-txt-uncased",
              fixtures.vocab_txt_folder(args.tmp, sh, "vocab-uncased", {"do_lower_case": True}), wp_texts, PAIRS,
              [4, 11, 33])
    run_suite(r, "vocab-txt-cased",
              fixtures.vocab_txt_folder(args.tmp, sh, "vocab-cased", {"do_lower_case": False}), wp_texts, PAIRS,
              [6])
    run_suite(r, "vocab-txt-only", fixtures.vocab_txt_folder(args.tmp, sh, "vocab-only", None), COMMON_TEXTS[:15],
              PAIRS[:2])

    # Unsupported or broken tokenizer files fail with the file, field and value in the message.
    bad = os.path.join(args.tmp, "bad-unigram")
    fixtures.write_json(bad, "tokenizer.json", {"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})
    r.expect_error("errors/unigram", bad, ["tokenizer.json", "model.type", "Unigram", "BPE", "WordPiece"])
    bad = os.path.join(args.tmp, "bad-normalizer")
    with open(os.path.join(default, "tokenizer.json"), encoding="utf-8") as f:
        spec = json.load(f)
    spec["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": ""}]}
    fixtures.write_json(bad, "tokenizer.json", spec)
    r.expect_error("errors/normalizer", bad, ["tokenizer.json", "normalizer.normalizers[0].type", "Precompiled", "NFKC"])
    bad = os.path.join(args.tmp, "bad-json")
    os.makedirs(bad)
    with open(os.path.join(bad, "tokenizer.json"), "w") as f:
        f.write('{"model": {"type": "BPE", ')
    r.expect_error("errors/malformed", bad, ["tokenizer.json", "malformed JSON"])
    bad = os.path.join(args.tmp, "bad-merge")
    spec = json.load(open(os.path.join(default, "tokenizer.json"), encoding="utf-8"))
    spec["model"]["merges"][5] = "no_such_token e"
    fixtures.write_json(bad, "tokenizer.json", spec)
    r.expect_error("errors/merge", bad, ["tokenizer.json", "model.merges[5]", "no_such_token"])
    r.expect_error("errors/empty-dir", args.tmp, ["no tokenizer.json or vocab.txt"])

    r.flush()

    print("%d passed, %d failed" % (r.passed, r.failed))
    sys.exit(1 if r.failed else 0)


if __name__ == "__main__":
    main()
