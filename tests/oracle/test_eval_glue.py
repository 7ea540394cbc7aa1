"""Oracle test: `tquant eval --task glue` end to end on the real GLUE dev sets.

Tiny random BertForSequenceClassification checkpoints (tiny_models.bert; 2 labels, or 1 for the
STS-B regression head) get a WordPiece vocabulary derived from the SST-2 train text: the
[PAD]/[UNK]/[CLS]/[SEP]/[MASK] specials, the most frequent lower-case words, every character
seen (alone and as a ##continuation) and a few common ##suffixes, so real sentences tokenize
into a mix of whole words, suffix splits, single characters and [UNK]. Most folders hold only
vocab.txt; the MRPC one holds an equivalent tokenizer.json, as BertTokenizerFast saves it.

The reference parses each TSV itself, tokenizes with tokenizer_oracle.py (max length 128,
longest-first truncation), runs numpy_reference.py's float64 forward pass, takes the argmax
(or the regression output) and computes the metric in NumPy: accuracy, binary F1, Matthews
correlation, Pearson, and Spearman from average ranks. tquant's --json report must agree:
classification metrics exactly (the test asserts that no example's two logits lie within 1e-4 of
each other, so float32 rounding cannot flip a prediction), Pearson/Spearman to 1e-5, and
tokens_scored (the token count over all examples) exactly.

Usage (ctest passes these): test_eval_glue.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
Ends with "N passed, M failed"; exits non-zero on any failure.
"""
import collections
import json
import math
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_reference  # noqa: E402
import safetensors_py  # noqa: E402
import tiny_models  # noqa: E402
import tokenizer_oracle  # noqa: E402
from eval_common import Checks, Failure, metric, parse_args, run_cases, run_eval, run_eval_failing  # noqa: E402

MAX_LENGTH = 128
N_WORDS = 500
TIE_MARGIN = 1e-4     # a prediction only counts as certain when its logits differ by more
CORR_ATOL = 1e-5      # Pearson / Spearman
BATCH = 64            # reference batch (examples sorted by length to keep padding small)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SUFFIXES = ["##s", "##ed", "##ing", "##ly", "##er", "##es", "##y", "##al"]


def _erf_fast(x):
    """math.erf over an array, as numpy_reference._erf, without np.vectorize's per-element
    overhead (6x faster; GELU's erf was half of this test's run time). Same function, so the
    values are bit-identical; use_fast_erf() checks that before swapping it in."""
    x = np.asarray(x, np.float64)
    return np.fromiter(map(math.erf, x.ravel()), np.float64, x.size).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Data: the TSV layouts, parsed here independently of the C++ reader
# ---------------------------------------------------------------------------------------------

def tsv_rows(path):
    """Rows of tab-separated fields. Lines end at '\\n' only (str.splitlines would also split at
    \\x1c, \\x85, \\u2028, ... inside a sentence); a UTF-8 BOM is dropped (MRPC has one)."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.split("\t") for line in lines]


def load_task(shared, task):
    """[(a, b or None, label)] of the dev set, labels as HF class ids (float score for STS-B)."""
    glue = os.path.join(shared, "data/glue")
    if task == "sst2":  # header: sentence, label
        rows = tsv_rows(os.path.join(glue, "SST-2/dev.tsv"))
        assert rows[0] == ["sentence", "label"], rows[0]
        return os.path.join(glue, "SST-2/dev.tsv"), [(r[0], None, int(r[1])) for r in rows[1:]]
    if task == "mrpc":  # header: Quality, #1 ID, #2 ID, #1 String, #2 String; Quality 1 = paraphrase
        rows = tsv_rows(os.path.join(glue, "MRPC/dev.tsv"))
        assert rows[0][0] == "Quality" and rows[0][3:] == ["#1 String", "#2 String"], rows[0]
        return os.path.join(glue, "MRPC/dev.tsv"), [(r[3], r[4], int(r[0])) for r in rows[1:]]
    if task == "cola":  # no header: source, label, original mark, sentence
        rows = tsv_rows(os.path.join(glue, "CoLA/dev.tsv"))
        assert len(rows[0]) == 4 and rows[0][1] in ("0", "1"), rows[0]
        return os.path.join(glue, "CoLA/dev.tsv"), [(r[3], None, int(r[1])) for r in rows]
    if task == "stsb":  # header: index ... sentence1, sentence2, score
        rows = tsv_rows(os.path.join(glue, "STS-B/dev.tsv"))
        assert rows[0][7:] == ["sentence1", "sentence2", "score"], rows[0]
        return os.path.join(glue, "STS-B/dev.tsv"), [(r[7], r[8], float(r[9])) for r in rows[1:]]
    if task == "rte":  # header: index, sentence1, sentence2, label (names; HF: 0 = entailment)
        rows = tsv_rows(os.path.join(glue, "RTE/dev.tsv"))
        assert rows[0] == ["index", "sentence1", "sentence2", "label"], rows[0]
        ids = {"entailment": 0, "not_entailment": 1}
        return os.path.join(glue, "RTE/dev.tsv"), [(r[1], r[2], ids[r[3]]) for r in rows[1:]]
    raise ValueError(task)


# ---------------------------------------------------------------------------------------------
# Vocabulary and models
# ---------------------------------------------------------------------------------------------

def build_vocab(shared):
    """The vocabulary described in the module docstring, in a fixed order."""
    rows = tsv_rows(os.path.join(shared, "data/glue/SST-2/train.tsv"))[1:]
    normalize = tokenizer_oracle.make_normalizer({"type": "BertNormalizer", "lowercase": True})
    pre = tokenizer_oracle.make_pre_tokenizer({"type": "BertPreTokenizer"})
    words = collections.Counter()
    chars = set()
    for r in rows:
        for word, _ in pre([(normalize(r[0]), True)]):
            words[word] += 1
            chars.update(word)
    top = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:N_WORDS]]
    vocab = list(SPECIALS)
    for piece in top + sorted(chars) + ["##" + c for c in sorted(chars)] + SUFFIXES:
        if piece not in vocab:
            vocab.append(piece)
    return vocab


def write_vocab_txt(folder, vocab):
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in vocab))


def write_tokenizer_json(folder, vocab):
    """What BertTokenizerFast.save_pretrained writes for this vocabulary (uncased)."""
    ids = {t: i for i, t in enumerate(vocab)}
    special = [{"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for t in SPECIALS]

    def tok(name, type_id):
        return {"SpecialToken": {"id": name, "type_id": type_id}}

    spec = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("[CLS]", 0), {"Sequence": {"id": "A", "type_id": 0}}, tok("[SEP]", 0)],
            "pair": [tok("[CLS]", 0), {"Sequence": {"id": "A", "type_id": 0}}, tok("[SEP]", 0),
                     {"Sequence": {"id": "B", "type_id": 1}}, tok("[SEP]", 1)],
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids},
    }
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)


# Per task: (seed, num_labels, tokenizer file). A random classifier's bias usually outweighs
# what the input changes, so calibrate_classifier() re-centres it on each dev set.
MODELS = {
    "sst2": (11, 2, "vocab.txt"),
    "mrpc": (12, 2, "tokenizer.json"),
    "cola": (13, 2, "vocab.txt"),
    "rte": (14, 2, "vocab.txt"),
    "stsb": (15, 1, "vocab.txt"),
}


def make_model(folder, seed, num_labels, vocab, tokenizer_file):
    shutil.rmtree(folder, ignore_errors=True)
    tiny_models.bert(folder, seed, "BertForSequenceClassification", num_labels=num_labels,
                     vocab=len(vocab), max_pos=MAX_LENGTH, id2label=num_labels > 1)
    if tokenizer_file == "vocab.txt":
        write_vocab_txt(folder, vocab)
    else:
        write_tokenizer_json(folder, vocab)
    return folder


def calibrate_classifier(folder, logits):
    """Moves class 1's classifier bias so that the decision boundary falls in the widest gap
    between the dev examples' logit differences near their median: both classes are then
    predicted for 30-70% of the examples, and no example sits within half that gap of a tie.
    The bias is the last term added to the logits, so the reference logits move by exactly the
    change of the stored float32 bias: they are updated here instead of recomputed."""
    margin = np.sort(logits[:, 1] - logits[:, 0])
    n = len(margin)
    lo, hi = int(0.3 * n), int(0.7 * n)
    k = lo + int(np.argmax(np.diff(margin[lo:hi + 1])))
    shift = -(margin[k] + margin[k + 1]) / 2
    path = os.path.join(folder, "model.safetensors")
    tensors, metadata = safetensors_py.read(path)
    bias = tensors["classifier.bias"].astype(np.float32).copy()
    old = bias[1]
    bias[1] = np.float32(old + shift)
    tensors["classifier.bias"] = bias
    safetensors_py.write(path, [(name, "F32", a) for name, a in tensors.items()], metadata)
    out = logits.copy()
    out[:, 1] += float(bias[1]) - float(old)
    return out


# ---------------------------------------------------------------------------------------------
# The reference: tokenize, forward, metrics
# ---------------------------------------------------------------------------------------------

def reference_outputs(model_dir, examples, max_length=MAX_LENGTH):
    """(logits [N, num_labels] float64, token count per example) with tokenizer_oracle ids."""
    oracle = tokenizer_oracle.load(model_dir)
    encoded = [oracle.encode(a, b, add_special_tokens=True, max_length=max_length) for a, b, _ in examples]
    lengths = np.array([len(ids) for ids, _ in encoded])
    out = [None] * len(examples)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), BATCH):
        chunk = order[start:start + BATCH]
        width = int(lengths[chunk].max())
        ids = np.zeros((len(chunk), width), np.int64)
        types, mask = np.zeros_like(ids), np.zeros_like(ids)
        for row, k in enumerate(chunk):
            n = lengths[k]
            ids[row, :n], types[row, :n], mask[row, :n] = encoded[k][0], encoded[k][1], 1
        logits = numpy_reference.forward(model_dir, ids, mask, types)
        for row, k in enumerate(chunk):
            out[k] = logits[row]
    return np.array(out), lengths


def average_ranks(x):
    """1-based ranks; tied values share the mean of the ranks they span."""
    values, inverse, counts = np.unique(np.asarray(x, np.float64), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    first = last - counts + 1
    return ((first + last) / 2.0)[inverse]


def pearson(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    return float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))


def expected_metrics(task, pred, labels):
    """The official GLUE metrics (as HF `evaluate`'s glue / sklearn define them)."""
    if task == "stsb":
        p, s = pearson(pred, labels), pearson(average_ranks(pred), average_ranks(labels))
        return {"pearson": p, "spearman": s, "score": (p + s) / 2}
    pred, labels = np.asarray(pred, np.int64), np.asarray(labels, np.int64)
    acc = float((pred == labels).mean())
    if task == "mrpc":
        tp = int(((pred == 1) & (labels == 1)).sum())
        fp = int(((pred == 1) & (labels == 0)).sum())
        fn = int(((pred == 0) & (labels == 1)).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        return {"accuracy": acc, "f1": f1, "score": (acc + f1) / 2}
    if task == "cola":
        tp = float(((pred == 1) & (labels == 1)).sum())
        tn = float(((pred == 0) & (labels == 0)).sum())
        fp = float(((pred == 1) & (labels == 0)).sum())
        fn = float(((pred == 0) & (labels == 1)).sum())
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = float((tp * tn - fp * fn) / denom) if denom else 0.0
        return {"matthews_corr": mcc, "score": mcc}
    return {"accuracy": acc, "score": acc}


SCORE_NAMES = {"sst2": "accuracy", "rte": "accuracy", "mrpc": "accuracy_f1_mean",
               "cola": "matthews_corr", "stsb": "pearson_spearman_mean"}


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

class Setup:
    def __init__(self, args):
        self.args = args
        self.vocab = build_vocab(args.shared)
        self.models = {}

    def model(self, task, name=None):
        """A fresh model folder per case name: calibrate_classifier() fits it to one run."""
        name = name or f"glue-{task}"
        if name not in self.models:
            seed, labels, tok = MODELS[task]
            self.models[name] = make_model(os.path.join(self.args.tmp, "models", name), seed, labels,
                                           self.vocab, tok)
        return self.models[name]


def task_case(s, task, name=None, max_length=MAX_LENGTH, batch=None, threads=1):
    """threads=1 by default: tquant's default is a thread per core, and on a tiny model OpenMP's
    per-operation synchronisation dominates; on a busy machine (ctest -j) that was ~8x slower
    (22 s vs 3 s for STS-B). One case keeps the default so the threaded path is compared too."""
    name = name or f"glue-{task}"

    def case():
        data_path, examples = load_task(s.args.shared, task)
        model = s.model(task, name)
        logits, lengths = reference_outputs(model, examples, max_length)
        labels = [label for _, _, label in examples]
        c = Checks()
        if task == "stsb":
            pred = logits[:, 0]
        else:
            logits = calibrate_classifier(model, logits)
            # guards the comparison: a near tie could flip under float32 rounding
            margin = np.abs(logits[:, 1] - logits[:, 0])
            if margin.min() <= TIE_MARGIN:
                raise Failure(f"oracle: example {int(margin.argmin()) + 1} has logits within "
                              f"{margin.min():.2e}; pick another seed for {task}")
            pred = logits.argmax(-1)
            share = float(pred.mean())
            if not 0.1 < share < 0.9:  # a constant predictor would make the metric insensitive
                raise Failure(f"oracle: the {task} model predicts class 1 for {share:.0%} of examples")
            c.lines.append(f"min |logit gap| {margin.min():.2e}, class 1 predicted {share:.0%}")
        want = expected_metrics(task, pred, labels)
        eval_args = ["--model", model, "--task", "glue", "--glue-task", task, "--data", data_path]
        eval_args += ["--max-length", max_length] if max_length != MAX_LENGTH else []
        eval_args += ["--batch", batch] if batch else []
        report = run_eval(s.args, name, eval_args, threads=threads)
        c.equal("task", report.get("task"), "glue")
        c.equal("model", report.get("model"), model)
        c.equal("glue_task", report.get("glue_task"), task)
        c.equal("examples", report.get("examples"), len(examples))
        # the token count of all examples: a tokenizer or truncation difference shows here
        c.equal("tokens_scored", report.get("tokens_scored"), int(lengths.sum()))
        c.equal("score_name", report.get("metrics", {}).get("score_name"), SCORE_NAMES[task])
        for key, value in want.items():
            tol = CORR_ATOL if task == "stsb" else 1e-12  # classification: exact counts
            c.close(key, metric(report, key), value, atol=tol)
        truncated = int((lengths == max_length).sum())
        c.lines.append(f"{len(examples)} examples, {truncated} truncated to {max_length}, "
                       f"{int(lengths.sum())} tokens")
        return c.finish()
    return name, case


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def error_cases(s):
    args = s.args
    sst2 = os.path.join(args.shared, "data/glue/SST-2/dev.tsv")
    stsb = os.path.join(args.shared, "data/glue/STS-B/dev.tsv")
    bad = os.path.join(args.tmp, "bad-data")
    os.makedirs(bad, exist_ok=True)
    with open(sst2, encoding="utf-8") as f:
        head = f.read().split("\n")[:12]

    def glue(model, task, data):
        return ["--model", model, "--task", "glue"] + (["--glue-task", task] if task else []) + ["--data", data]

    def extra_column():  # line 7 (1-based, header = line 1) gains a third field
        lines = list(head)
        lines[6] += "\tstray"
        path = write(os.path.join(bad, "extra-column.tsv"), "\n".join(lines) + "\n")
        return run_eval_failing(args, "error-tsv-extra-column", glue(s.model("sst2"), "sst2", path),
                                [f"{path}:7", "columns"])

    def unknown_label():
        lines = list(head)
        lines[4] = lines[4].rsplit("\t", 1)[0] + "\tmaybe"
        path = write(os.path.join(bad, "unknown-label.tsv"), "\n".join(lines) + "\n")
        return run_eval_failing(args, "error-tsv-unknown-label", glue(s.model("sst2"), "sst2", path),
                                [f"{path}:5", "maybe"])

    def wrong_header():  # an SST-2 file read as MRPC: no sentence-pair columns
        return run_eval_failing(args, "error-tsv-wrong-header", glue(s.model("mrpc"), "mrpc", sst2),
                                [sst2, "header"])

    def bad_score():
        with open(stsb, encoding="utf-8") as f:
            lines = f.read().split("\n")[:6]
        fields = lines[3].split("\t")
        fields[-1] = "high"
        lines[3] = "\t".join(fields)
        path = write(os.path.join(bad, "bad-score.tsv"), "\n".join(lines) + "\n")
        return run_eval_failing(args, "error-tsv-bad-score", glue(s.model("stsb"), "stsb", path),
                                [f"{path}:4", "high"])

    return [
        ("error-glue-task-missing", lambda: run_eval_failing(
            args, "error-glue-task-missing", glue(s.model("sst2"), None, sst2), ["--glue-task"])),
        ("error-glue-task-unknown", lambda: run_eval_failing(
            args, "error-glue-task-unknown", glue(s.model("sst2"), "sst3", sst2), ["sst3", "sst2"])),
        # a 2-label classifier on the regression task and the regression head on a 2-class task
        ("error-num-labels-2-for-stsb", lambda: run_eval_failing(
            args, "error-num-labels-2-for-stsb", glue(s.model("sst2"), "stsb", stsb),
            [s.model("sst2"), "2 labels", "stsb"])),
        ("error-num-labels-1-for-sst2", lambda: run_eval_failing(
            args, "error-num-labels-1-for-sst2", glue(s.model("stsb"), "sst2", sst2),
            [s.model("stsb"), "1 labels", "sst2"])),
        ("error-not-a-classifier", lambda: run_eval_failing(
            args, "error-not-a-classifier",
            glue(os.path.join(args.shared, "models/tinystories-656k"), "sst2", sst2), ["LlamaForCausalLM"])),
        ("error-missing-data", lambda: run_eval_failing(
            args, "error-missing-data", glue(s.model("sst2"), "sst2", os.path.join(bad, "nope.tsv")),
            [os.path.join(bad, "nope.tsv")])),
        ("error-tsv-extra-column", extra_column),
        ("error-tsv-unknown-label", unknown_label),
        ("error-tsv-wrong-header", wrong_header),
        ("error-tsv-bad-score", bad_score),
    ]


def oracle_self_checks(s):
    def metrics():
        # hand-worked values: sklearn's matthews_corrcoef / f1_score, scipy's spearmanr
        pred, lab = [1, 1, 0, 0, 1, 0, 1, 1], [1, 0, 0, 1, 1, 0, 1, 0]
        m = expected_metrics("cola", pred, lab)  # tp 3 tn 2 fp 2 fn 1
        want_mcc = (3 * 2 - 2 * 1) / np.sqrt(5 * 4 * 4 * 3)
        f = expected_metrics("mrpc", pred, lab)
        ranks = average_ranks([3.0, 1.0, 3.0, 2.0, 3.0])
        sp = expected_metrics("stsb", [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 2.0, 3.0])["spearman"]
        checks = [(m["matthews_corr"], want_mcc), (f["f1"], 6 / 9), (f["accuracy"], 5 / 8),
                  (sp, 0.9486832980505138)]
        if any(abs(a - b) > 1e-12 for a, b in checks) or list(ranks) != [4.0, 1.0, 4.0, 2.0, 4.0]:
            raise Failure(f"metrics {checks}, ranks {list(ranks)}")
        return "mcc, f1, accuracy, average ranks, spearman ok"

    def vocab():
        # the vocabulary must exercise whole words, suffix splits, characters and [UNK]
        model = s.model("sst2")
        oracle = tokenizer_oracle.load(model)
        ids, _ = oracle.encode("the unflinchingly bleak film's \u00e6on \u4e00", max_length=MAX_LENGTH)
        pieces = [s.vocab[i] for i in ids]
        need = ["the", "film", "##ing", "[UNK]"]
        if any(p not in pieces for p in need) or not any(len(p) == 3 and p.startswith("##") for p in pieces):
            raise Failure(f"pieces {pieces}")
        return f"{len(s.vocab)} pieces; sample: {' '.join(pieces)}"

    return [("oracle-metrics", metrics), ("oracle-vocab", vocab)]


def use_fast_erf():
    """Swaps _erf_fast into numpy_reference when it agrees bit for bit with the original on a
    spread of values (else the slow one stays and the test is merely slower)."""
    x = np.concatenate([np.linspace(-8, 8, 4001), np.random.default_rng(0).standard_normal(5000) * 3])
    if np.array_equal(_erf_fast(x), numpy_reference._erf(x)):
        numpy_reference._erf = _erf_fast
        return True
    return False


def main():
    args = parse_args(__doc__.splitlines()[0])
    if not use_fast_erf():
        print("note: the fast erf differs from numpy_reference's; using the slow one", flush=True)
    s = Setup(args)
    cases = oracle_self_checks(s)
    cases += [
        task_case(s, "sst2", threads=None),  # tquant's default thread count
        task_case(s, "mrpc"),  # sentence pairs, a BOM, tokenizer.json; most pairs truncated
        task_case(s, "cola", batch=7),  # no header; 7 per pass: batch edges and padding vary
        task_case(s, "stsb"),  # regression head
        task_case(s, "rte"),  # labels given as names
        # longest-first truncation of pairs at a short limit: both sides are cut
        task_case(s, "mrpc", name="glue-mrpc-max-length-40", max_length=40),
    ]
    cases += error_cases(s)
    return run_cases(cases, args.filter)


if __name__ == "__main__":
    sys.exit(main())
