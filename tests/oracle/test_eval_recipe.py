"""Oracle test: `tquant eval --task ppl --recipe R --calib F` (fake-quantized evaluation) end to end.

The test writes its own recipe for the real TinyStories LLaMA that mixes what a recipe can say
with simple (min-max) estimators: 6-bit symmetric per-channel weights with per-tensor 4-bit,
asymmetric per-channel, per-group(32) and 8-bit overrides and one skipped linear; 8-bit
asymmetric per-tensor activations with running_minmax, and overrides for current_minmax,
minmax, symmetric, 6/7 bits, per-channel, PEG (K = 3 and 4, with range-based permutation, and
K = 4 contiguous), per-token (dynamic) and a disabled point.

The calibration windows are known to the test: the calibration text is a whole-line prefix of
shared/data/tinystories/calib.txt of n > 1025 tokens, and --calib-len is n - 1 (no BOS), so every
window starts at token 0 or 1 (windows A and B), and each is a batch of its own (`tquant eval`
puts 2048 // calib-len windows in a batch). Which of A and B each of the 6 batches holds is the
seeded generator's business, so the test tries all 64 layouts and requires that one of them
explains every calibrated point at once (and that it mixes A and B, or the estimators coincide).

Cases:
  calibration-tokens  tquant's tokenizer counts the calibration text as the oracle does;
  weights             the quantized linears (skip honoured) as the saved calibration lists them;
  calibration         every point of the recipe, and no other, in --save-calibration's JSON, with
                      bits, symmetry, granularity, PEG channel map and per-group scale and zero
                      point equal to NumPy's: float64 activations of the NumPy forward with NumPy's
                      own fake-quantized weights (float32, bit-exact), min-max / running min-max
                      over the batches, scale and zero point by the affine formulas. Scales to
                      SCALE_RTOL; zero points exactly (either neighbour only when NumPy's -lo/s is
                      within ZERO_TIE of a half); a permuted PEG map must sort channels by range
                      (ties within float32 noise may sit on either side of a cut);
  eval-point P        for every quantized point P: the saved calibration cut down to P, then
                      `--load-calibration` (weights quantized as the recipe says), against NumPy's
                      fake-quantized forward with P quantized by the saved parameters (validated
                      above; per-token ranges from NumPy's own activations), scoring the eval text
                      with tquant's window protocol. The saved fp16 log-softmax rows
                      (--save-logits) must agree within fp16 precision for all but MAX_ODD_POINT of
                      the tokens, and the report's nll/ppl to NLL_ATOL/PPL_RTOL (see compare_eval).
                      As a guard of the test's own power, the same comparison against the
                      reference with P left in FP32 must fail;
  eval-all-points     the evaluation with every point quantized (the one that calibrated), checked
                      the same way but loosely (MAX_ODD_ALL, NLL_ATOL_ALL): with quantizers in
                      sequence one float32-vs-float64 code crossing moves later activations across
                      further boundaries, so whole stretches of tokens may differ a little;
  load-calibration    --load-calibration of the saved file reproduces the perplexity exactly.

Why "odd" tokens are allowed at all: tquant computes in float32, the reference in float64; an
activation within ~1e-6 of a rounding boundary may get the neighbouring code, which moves later
values by a whole step. A logit at a boundary is recognised exactly (explain_logit_flips); an
upstream crossing is only counted. Leaving any point in FP32, a zero point off by one at a point
that clips, or rounding down instead of to nearest moves (nearly) every token instead.

Usage (ctest passes these): test_eval_recipe.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
Ends with "N passed, M failed"; exits non-zero on any failure.
"""
import fnmatch
import itertools
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_quant as nq  # noqa: E402
import tokenizer_oracle  # noqa: E402
from eval_common import Checks, Failure, metric, parse_args, run_cases, run_eval  # noqa: E402

REAL_MODEL = "models/tinystories-656k"
CALIB_MIN_TOKENS = 1030  # calib-len n - 1 above 1024: one window to a batch (2048 // len)
CALIB_SAMPLES = 6        # 6 batches: 64 possible layouts of windows A and B
PER_BATCH = 1
SEED = 0
EVAL_BYTES = 4000
CTX = 128

# Tolerances. tquant's forward is float32, the reference float64.
SCALE_RTOL = 2e-5        # calibrated scales: seen up to 1.6e-6 (float32 activations)
ZERO_TIE = 0.02          # |frac(-lo/s) - 0.5| below this: either rounding is accepted
NLL_ATOL = 5e-5          # mean NLL over the scored tokens (odd rows taken from tquant, see compare_eval)
PPL_RTOL = 5e-5
LOGIT_TIE = 0.05         # logits this close (in steps) to a rounding boundary may round either way
MAX_ODD_POINT = 0.10     # one point quantized: seen up to 5% odd tokens; FP32 at the point: ~100%
MAX_ODD_ALL = 0.50       # every point: seen 4% and 20% odd; any one point left in FP32: >= 88%
NLL_ATOL_ALL = 1e-2      # every point, plain reference: seen 0.8e-3 and 2.9e-3 (cascades)
FP16_REL = 2.0 ** -11    # fp16 storage of a log-probability
ROW_ATOL = 2e-4          # float32 forward error of one log-probability (no boundary crossing)

POINT_GLOBS = ["embed.out", "layers.*.attn.norm.out", "layers.*.attn.?_proj.out", "layers.*.attn.scores",
               "layers.*.attn.probs", "layers.*.attn.context", "layers.*.attn.o_proj.out",
               "layers.*.attn.residual_sum", "layers.*.ffn.norm.out", "layers.*.ffn.act.out",
               "layers.*.ffn.down_proj.out", "layers.*.ffn.residual_sum", "final_norm.out", "logits"]

RECIPE = {
    "name": "oracle-recipe",
    "description": "written by test_eval_recipe.py",
    "weights": {"bits": 6, "granularity": "per_channel", "symmetric": True, "estimator": "minmax",
                "skip": ["layers.1.ffn.gate_proj"]},
    "activations": {"bits": 8, "granularity": "per_tensor", "symmetric": False,
                    "estimator": "running_minmax", "points": POINT_GLOBS},
    "overrides": {
        # weights
        "layers.0.attn.o_proj": {"granularity": "per_tensor", "bits": 4},
        "layers.0.ffn.up_proj": {"symmetric": False},
        "layers.1.ffn.down_proj": {"granularity": "per_group", "group_size": 32},
        "lm_head": {"bits": 8},
        # activations: globs first, then the single points they refine
        "layers.*.attn.scores": {"estimator": "current_minmax"},
        "layers.*.attn.residual_sum": {"granularity": "per_embedding_group", "groups": 3, "permute": True},
        "layers.*.ffn.residual_sum": {"granularity": "per_embedding_group", "groups": 4},
        "layers.1.ffn.residual_sum": {"permute": True, "estimator": "minmax"},
        "layers.1.attn.context": {"granularity": "per_token"},
        "layers.0.ffn.act.out": {"granularity": "per_token", "symmetric": True, "bits": 6},
        "final_norm.out": {"granularity": "per_channel", "estimator": "minmax"},
        "layers.0.attn.q_proj.out": {"symmetric": True},
        "layers.1.attn.k_proj.out": {"enabled": False},
        "embed.out": {"estimator": "current_minmax"},
        "logits": {"estimator": "minmax", "bits": 7},
    },
}

SPEC_DEFAULTS = {"bits": 8, "symmetric": False, "granularity": "per_tensor", "group_size": 0, "groups": 0,
                 "permute": False, "estimator": "minmax", "enabled": True}


# ---------------------------------------------------------------------------------------------
# The recipe, read by the test's own rules (README: globs, overrides in file order)
# ---------------------------------------------------------------------------------------------

def resolve(base, name, defaults):
    spec = dict(defaults)
    spec.update({k: v for k, v in base.items() if k not in ("points", "skip")})
    for pattern, override in RECIPE["overrides"].items():
        if fnmatch.fnmatchcase(name, pattern):
            spec.update(override)
    return spec if spec["enabled"] else None


def weight_spec(linear):
    w = RECIPE.get("weights")
    if w is None or any(fnmatch.fnmatchcase(linear, p) for p in w.get("skip", [])):
        return None
    return resolve(w, linear, dict(SPEC_DEFAULTS, symmetric=True, granularity="per_channel"))


def activation_spec(point):
    a = RECIPE.get("activations")
    if a is None or not any(fnmatch.fnmatchcase(point, p) for p in a["points"]):
        return None
    return resolve(a, point, SPEC_DEFAULTS)


# ---------------------------------------------------------------------------------------------
# Setup: texts, tokens, the tquant run, the NumPy model
# ---------------------------------------------------------------------------------------------

def whole_lines(path, start, min_bytes=None, until_tokens=None, oracle=None):
    with open(path, "rb") as f:
        raw = f.read()
    if start:
        start = raw.index(b"\n", start) + 1
    end = start
    while True:
        end = raw.index(b"\n", end) + 1
        text = raw[start:end].decode("utf-8")
        if min_bytes is not None and end - start >= min_bytes:
            return text
        # encoding is slow in pure Python: only count once the text could hold enough tokens
        # (a token of this vocabulary averages well over 2 bytes)
        if (until_tokens is not None and end - start >= 2 * until_tokens
                and len(oracle.encode(text, add_special_tokens=False)[0]) >= until_tokens):
            return text


class Setup:
    def __init__(self, args):
        self.args = args
        self.model = os.path.join(args.shared, REAL_MODEL)
        data = os.path.join(args.shared, "data/tinystories")
        oracle = tokenizer_oracle.load(self.model)
        self.calib_text = whole_lines(os.path.join(data, "calib.txt"), 0, until_tokens=CALIB_MIN_TOKENS,
                                      oracle=oracle)
        self.calib_tokens = oracle.encode(self.calib_text, add_special_tokens=False)[0]
        self.calib_len = len(self.calib_tokens) - 1
        if 2048 // self.calib_len != PER_BATCH:  # guards the oracle's window layout
            raise Failure(f"oracle: calib-len {self.calib_len} does not give {PER_BATCH} windows a batch")
        self.eval_text = whole_lines(os.path.join(data, "eval.txt"), 0, min_bytes=EVAL_BYTES)
        self.eval_tokens = oracle.encode(self.eval_text, add_special_tokens=False)[0]
        self.calib_path = self.write("calib.txt", self.calib_text)
        self.eval_path = self.write("eval.txt", self.eval_text)
        self.recipe_path = self.write("recipe.json", json.dumps(RECIPE, indent=2))
        self.calibration_path = os.path.join(args.tmp, "calibration.json")
        self.logits_path = os.path.join(args.tmp, "quantized.logits")
        self.m = nq.LlamaWeights(self.model)
        self.layers = self.m.cfg["num_hidden_layers"]
        self.qm = self.quantized_weights()
        self._report = self._saved = None
        self._stats = self._ref_eval = None

    def write(self, name, text):
        path = os.path.join(self.args.tmp, name)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return path

    def quantized_weights(self):
        q = nq.LlamaWeights.__new__(nq.LlamaWeights)
        q.cfg, q.embed, q.norms = self.m.cfg, self.m.embed, self.m.norms
        q.linears, q.weight_specs = {}, {}
        for name, w in self.m.linears.items():
            spec = weight_spec(name)
            q.weight_specs[name] = spec
            q.linears[name] = w if spec is None else nq.quantize_weight(
                w, spec["bits"], spec["symmetric"], spec["granularity"], spec["group_size"])
        return q

    def eval_args(self):
        return ["--model", self.model, "--task", "ppl", "--data", self.eval_path, "--ctx", CTX,
                "--recipe", self.recipe_path]

    def report(self):
        """The one quantized evaluation every case reads (calibration saved, logits saved)."""
        if self._report is None:
            for p in (self.calibration_path, self.logits_path):
                if os.path.exists(p):
                    os.remove(p)
            self._report = run_eval(self.args, "recipe-eval", self.eval_args() + [
                "--calib", self.calib_path, "--calib-samples", CALIB_SAMPLES, "--calib-len", self.calib_len,
                "--seed", SEED, "--save-calibration", self.calibration_path, "--save-logits", self.logits_path])
            with open(self.calibration_path) as f:
                self._saved = json.load(f)
        return self._report

    def saved(self):
        self.report()
        return self._saved

    def weights_only_reference(self):
        if self._ref_eval is None:
            self._ref_eval = reference_eval(self, {})
        return self._ref_eval

    def quantized_points(self):
        return [p for p in self.points() if activation_spec(p)]

    def points(self):
        """Every LLaMA point name the NumPy forward visits, in forward order."""
        names = []
        nq.llama_forward_points(self.m, np.zeros((1, 2), np.int64), lambda n, x: names.append(n) or x)
        return names

    def window_stats(self):
        """Per window (A: tokens 0..L-1, B: 1..L) and point: per-column (lo, hi) of [.., C]
        points, or the (lo, hi) of the visible entries of scores/probs; plus the float32
        widths pass 1 of permuted PEG would see."""
        if self._stats is None:
            stats = []
            for start in (0, 1):
                ids = np.asarray([self.calib_tokens[start:start + self.calib_len]])
                rec = {}

                def hook(name, x, rec=rec):
                    if name.endswith((".attn.scores", ".attn.probs")):
                        v = nq.visible_scores(x)
                        rec[name] = (np.array([v.min()]), np.array([v.max()]))
                    else:
                        flat = x.reshape(-1, x.shape[-1])
                        rec[name] = (flat.min(0), flat.max(0))
                    return x

                nq.llama_forward_points(self.qm, ids, hook)
                stats.append(rec)
            self._stats = stats
        return self._stats


# ---------------------------------------------------------------------------------------------
# Expected calibration
# ---------------------------------------------------------------------------------------------

def batch_layouts():
    """Each batch holds window A only, B only, or (with several windows a batch) both."""
    kinds = ("A", "B") if PER_BATCH == 1 else ("A", "B", "AB")
    return list(itertools.product(kinds, repeat=math.ceil(CALIB_SAMPLES / PER_BATCH)))


def batch_columns(stats, layout, point):
    """Per batch: per-column (lo, hi) over the windows it holds."""
    out = []
    for held in layout:
        wins = [stats[0 if w == "A" else 1][point] for w in held]
        out.append((np.min([w[0] for w in wins], axis=0), np.max([w[1] for w in wins], axis=0)))
    return out


def float32_widths(cols):
    lo = np.min([c[0] for c in cols], axis=0).astype(np.float32)
    hi = np.max([c[1] for c in cols], axis=0).astype(np.float32)
    return hi - lo


def check_channel_map(got, widths, groups):
    """PEG with permutation: `got` must cut the channels sorted by width into balanced groups;
    channels whose widths tie within float32 noise may sit on either side of a cut."""
    got = np.asarray(got)
    want = nq.permuted_groups(widths, groups)
    if np.array_equal(got, want):
        return None
    sizes = [int((got == g).sum()) for g in range(groups)]
    if sizes != nq.balanced_sizes(len(widths), groups):
        return f"group sizes {sizes}, expected {nq.balanced_sizes(len(widths), groups)}"
    for g in range(groups - 1):
        upper, lower = widths[got == g].max(), widths[got == g + 1].min()
        if upper > lower + 1e-5 * max(abs(upper), 1.0):
            return (f"group {g} holds a channel of width {upper:.7g} above group {g + 1}'s narrowest "
                    f"{lower:.7g}; NumPy's map differs in {int((got != want).sum())} channels")
    return None


def expected_params(s, layout, point, spec, saved_point):
    """(scale, zero) float32 arrays NumPy expects for a static point, or an error string."""
    stats = s.window_stats()
    cols = batch_columns(stats, layout, point)
    g = spec["granularity"]
    if g == "per_tensor":
        batches = [(np.array([lo.min()]), np.array([hi.max()])) for lo, hi in cols]
    elif g == "per_channel":
        batches = cols
    elif g == "per_embedding_group":
        channels = len(cols[0][0])
        if spec["permute"]:
            first = cols[:10]  # pass 1: per-channel ranges on up to 10 batches
            got = saved_point.get("channel_group")
            if got is None or len(got) != channels:
                return None, f"channel_group {got!r:.80}"
            bad = check_channel_map(got, float32_widths(first), spec["groups"])
            if bad:
                return None, bad
            cmap = np.asarray(got)
        else:
            cmap = nq.contiguous_groups(channels, spec["groups"])
            if saved_point.get("channel_group") != cmap.tolist():
                return None, f"channel_group {saved_point.get('channel_group')!r:.120} is not K contiguous groups"
        batches = [nq.group_ranges(lo, hi, cmap) for lo, hi in cols]
    else:
        raise ValueError(g)
    lo, hi = nq.combine_ranges(spec["estimator"], batches)
    s_, z_ = nq.scale_zero(lo, hi, spec["bits"], spec["symmetric"])
    return (s_, z_, lo, hi), None


def compare_point(point, spec, saved_point, expected):
    """A list of mismatch descriptions (empty: the point agrees) and the worst scale rel error."""
    bad = []
    for key, want in (("bits", spec["bits"]), ("symmetric", spec["symmetric"]), ("granularity", spec["granularity"])):
        if saved_point.get(key) != want:
            bad.append(f"{key} {saved_point.get(key)!r}, expected {want!r}")
    if spec["granularity"] == "per_channel" and saved_point.get("channel_axis") != 1:
        bad.append(f"channel_axis {saved_point.get('channel_axis')!r}, expected 1 (columns)")
    if bad or expected is None:
        return bad, 0.0
    s_want, z_want, lo, hi = expected
    s_got = np.asarray(saved_point.get("scale", []), np.float64)
    z_got = np.asarray(saved_point.get("zero_point", []), np.float64)
    if s_got.shape != s_want.shape or z_got.shape != z_want.shape:
        return [f"{len(s_got)} scales / {len(z_got)} zero points, expected {len(s_want)}"], 0.0
    rel = np.abs(s_got - s_want) / s_want
    worst = float(rel.max())
    if worst > SCALE_RTOL:
        i = int(rel.argmax())
        bad.append(f"scale[{i}] {nq.fmt_err(s_got[i], float(s_want[i]))} (range [{lo[i]:.7g}, {hi[i]:.7g}])")
    if spec["symmetric"]:
        if np.any(z_got != 0):
            bad.append(f"zero_point {z_got.tolist()!r:.80} for a symmetric quantizer")
    else:
        exact = -np.minimum(lo, np.float32(0)).astype(np.float64) / s_want.astype(np.float64)
        tie = np.abs(exact - np.floor(exact) - 0.5) < ZERO_TIE
        ok = (z_got == z_want) | (tie & ((z_got == np.floor(exact)) | (z_got == np.ceil(exact))))
        if not ok.all():
            i = int(np.argmin(ok))
            bad.append(f"zero_point[{i}] {z_got[i]:g}, expected {z_want[i]:g} (-lo/s = {exact[i]:.4f}, "
                       f"range [{lo[i]:.7g}, {hi[i]:.7g}])")
    return bad, worst


def calibration_case(s):
    saved = s.saved()
    c = Checks()
    c.equal("format", saved.get("format"), "tquant-calibration-1")
    c.equal("recipe", saved.get("recipe"), RECIPE["name"])
    points = {p: activation_spec(p) for p in s.points()}
    want = sorted(p for p, spec in points.items() if spec)
    got_points = saved.get("points", {})
    c.equal("points", sorted(got_points), want)
    static = [p for p in want if points[p]["granularity"] != "per_token" and p in got_points]
    for p in want:
        if points[p]["granularity"] == "per_token" and p in got_points:
            sp = got_points[p]
            c.true(f"{p} per_token", sp.get("granularity") == "per_token" and sp.get("scale") == []
                   and sp.get("bits") == points[p]["bits"] and sp.get("symmetric") == points[p]["symmetric"],
                   json.dumps(sp)[:160])
    best = None
    for layout in batch_layouts():
        mismatches, worst = [], 0.0
        for p in static:
            expected, err = expected_params(s, layout, p, points[p], got_points[p])
            if err:
                mismatches.append(f"{p}: {err}")
                continue
            bad, w = compare_point(p, points[p], got_points[p], expected)
            mismatches += [f"{p}: {b}" for b in bad]
            worst = max(worst, w)
        if best is None or len(mismatches) < len(best[1]):
            best = (layout, mismatches, worst)
    layout, mismatches, worst = best
    c.true("calibrated parameters", not mismatches,
           f"{len(static)} static points agree with batches {'/'.join(layout)}, worst scale rel err "
           f"{worst:.1e}" if not mismatches else
           f"closest batch layout {'/'.join(layout)} leaves {len(mismatches)} mismatches: " + "; ".join(mismatches[:8]))
    if not mismatches and len(set(layout)) == 1:  # guards the test: the estimators must differ
        raise Failure(f"oracle: every calibration batch held the same windows ({layout[0]}), so current, "
                      f"running and plain min-max coincide; change SEED")
    return c.finish()


def weights_case(s):
    saved = s.saved()
    c = Checks()
    want = sorted(n for n in s.m.linears if weight_spec(n))
    got = saved.get("weights", {})
    c.equal("quantized linears", sorted(got), want)
    for n in want:
        spec = weight_spec(n)
        d = got.get(n, "")
        c.true(f"{n} description", d.startswith(f"{spec['bits']}-bit ") and spec["granularity"] in d, repr(d))
    return c.finish()


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

def quantizers_from_saved(saved):
    out = {}
    for p, sp in saved["points"].items():
        out[p] = nq.ActQuant(sp["bits"], sp["symmetric"], sp["granularity"], sp.get("scale"),
                             sp.get("zero_point"), sp.get("channel_group"))
    return out


def reference_eval(s, quantizers):
    """Scores the eval text with tquant's protocol (stride = ctx, no BOS: a window's first
    token is not scored). Per scored token: the log-softmax row, the target, its NLL, and the
    logits before the `logits` point's quantizer (for explain_logit_flips)."""
    tokens = s.eval_tokens
    windows = [(b, min(b + CTX, len(tokens))) for b in range(0, len(tokens), CTX)]
    windows = [(b, e) for b, e in windows if e - b > 1]
    pre = []

    def hook(name, x):
        q = quantizers.get(name)
        if name == "logits":
            pre.append(x[0, :-1])
        return x if q is None else q(x)

    logp, targets = [], []
    for b, e in windows:
        logits = nq.llama_forward_points(s.qm, np.asarray([tokens[b:e]]), hook)[0]
        logp.append(nq.log_softmax(logits[:-1]))
        targets += tokens[b + 1:e]
    logp = np.concatenate(logp)
    targets = np.asarray(targets)
    return {"logp": logp, "targets": targets, "nll": -logp[np.arange(len(targets)), targets],
            "pre": np.concatenate(pre), "logits_q": quantizers.get("logits")}


def read_logits_file(path):
    """logits_file.h: "TQLOGP01", uint64 LE header length, JSON header, tokens x vocab fp16."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"TQLOGP01":
        raise Failure(f"{path}: magic {raw[:8]!r}")
    (hlen,) = struct.unpack("<Q", raw[8:16])
    header = json.loads(raw[16:16 + hlen].decode("utf-8"))
    return header, np.frombuffer(raw[16 + hlen:], dtype="<f2").reshape(header["tokens"], header["vocab"])


def row_bound(logp):
    return FP16_REL * np.abs(logp) + ROW_ATOL


def explain_logit_flips(stored, pre, q):
    """A saved row that differs from the reference only because some logits sat right at a
    rounding boundary of the (per-tensor) `logits` quantizer, where float32 and float64 may pick
    neighbouring codes: returns the reference row with those codes moved, or None when moving
    boundary codes does not reproduce the saved row."""
    if q is None or q.granularity != "per_tensor":
        return None
    s, z = float(q.scale[0]), float(q.zero[0])
    qmin, qmax = nq.code_range(q.bits, q.symmetric)
    v = pre / s
    frac = v - np.floor(v)
    near = np.abs(frac - 0.5) < LOGIT_TIE
    codes = np.clip(np.rint(v) + z, qmin, qmax)
    lp = nq.log_softmax(s * (codes - z))
    shift = np.median(stored - lp)  # the normaliser moves when a likely token's code moves
    moved = near & (np.abs(stored - lp - shift) > 0.5 * s)
    if not moved.any():
        return None
    codes = np.clip(codes + np.where(frac > 0.5, -1.0, 1.0) * moved, qmin, qmax)
    lp = nq.log_softmax(s * (codes - z))
    return lp if (np.abs(stored - lp) <= row_bound(lp)).all() else None


def compare_eval(report, stored, ref, max_odd):
    """Checks of tquant's report and saved rows against a reference evaluation. Rows are
    compared within fp16 precision; a row that differs only by logits at a rounding boundary
    counts as agreeing (with those codes moved); the rest ("odd": an upstream activation on the
    other side of a boundary) may be at most a fraction max_odd, and the NLL check takes
    tquant's own (fp16) values for them, widening the tolerance by their fp16 error."""
    c = Checks()
    logp, targets = ref["logp"], ref["targets"]
    n = len(targets)
    c.equal("tokens_scored", report.get("tokens_scored"), n)
    if stored.shape != logp.shape:
        c.true("saved rows", False, f"shape {stored.shape}, expected {logp.shape}")
        return c
    stored = stored.astype(np.float64)
    rows = np.arange(n)
    agree = (np.abs(stored - logp) <= row_bound(logp)).all(1)
    fixed = logp.copy()
    explained = 0
    for i in np.nonzero(~agree)[0]:
        lp = explain_logit_flips(stored[i], ref["pre"][i], ref["logits_q"])
        if lp is not None:
            fixed[i], agree[i] = lp, True
            explained += 1
    odd = ~agree
    c.true("saved log-softmax rows", odd.sum() <= max_odd * n,
           f"{n - int(odd.sum())} of {n} agree within fp16 precision ({explained} after moving logits at a "
           f"rounding boundary); {int(odd.sum())} odd, allowed {max_odd:.0%}")
    nll_ref = -fixed[rows, targets]
    nll_cpp16 = -stored[rows, targets]
    want = float(np.where(odd, nll_cpp16, nll_ref).mean())
    slack = float((FP16_REL * np.abs(nll_cpp16) * odd).sum()) / n
    c.close("nll", metric(report, "nll"), want, atol=NLL_ATOL + slack)
    c.close("ppl", metric(report, "ppl"), math.exp(want), rtol=PPL_RTOL + slack)
    return c


def eval_all_case(s):
    """The evaluation with every point quantized. Quantized points in sequence amplify a code
    crossing (float32 vs float64 at a rounding boundary) into later ones, so whole stretches of
    tokens may differ a little; the comparison is loose here (eval-point cases are tight)."""
    report = s.report()
    ref = reference_eval(s, quantizers_from_saved(s.saved()))
    _, stored = read_logits_file(s.logits_path)
    c = compare_eval(report, stored, ref, MAX_ODD_ALL)
    c.close("nll of the reference (no rows taken from tquant)", metric(report, "nll"), float(ref["nll"].mean()),
            atol=NLL_ATOL_ALL)
    c.true("recipe in report", report.get("recipe", {}).get("name") == RECIPE["name"], str(report.get("recipe")))
    c.equal("calibration tokens", report.get("calibration", {}).get("tokens"), CALIB_SAMPLES * s.calib_len)
    return c.finish()


def eval_point_case(s, point):
    """The evaluation with only `point` quantized (weights as the recipe says): --load-calibration
    of the saved file cut down to that point. No cascades, so the comparison is tight; and it
    must tell the point's quantization apart (against the reference with the point in FP32,
    the same comparison has to fail: a guard of the test's own power)."""
    saved = s.saved()
    one = dict(saved, points={point: saved["points"][point]})
    tag = "point-" + point.replace(".", "_")
    calib = s.write(tag + "-calibration.json", json.dumps(one))
    logits = os.path.join(s.args.tmp, tag + ".logits")
    if os.path.exists(logits):
        os.remove(logits)
    report = run_eval(s.args, tag, s.eval_args() + ["--load-calibration", calib, "--save-logits", logits])
    _, stored = read_logits_file(logits)
    c = compare_eval(report, stored, reference_eval(s, quantizers_from_saved(one)), MAX_ODD_POINT)
    if not c.bad:
        os.remove(logits)  # 3.6 MB each; kept only when the case fails
        blind = compare_eval(report, stored, s.weights_only_reference(), MAX_ODD_POINT)
        if not blind.bad:
            raise Failure(f"oracle: the comparison cannot tell {point} quantized from FP32; make its "
                          f"quantization coarser in RECIPE")
    return c.finish()


def load_case(s):
    first = s.report()
    again = run_eval(s.args, "recipe-load", s.eval_args() + ["--load-calibration", s.calibration_path])
    c = Checks()
    c.close("nll (loaded calibration)", metric(again, "nll"), metric(first, "nll"), atol=1e-12)
    c.equal("tokens_scored", again.get("tokens_scored"), first.get("tokens_scored"))
    return c.finish()


def tokens_case(s):
    """tquant's tokenizer must see the calibration file as the oracle does (n tokens), or the
    windows the calibration case assumes would not be the ones drawn."""
    out = subprocess.run([s.args.tquant, "tokenize", "--model", s.model, "--file", s.calib_path, "--no-special",
                          "--count"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise Failure(f"tquant tokenize failed: {out.stderr.strip()}")
    n = int(out.stdout.split()[0])
    if n != len(s.calib_tokens):
        raise Failure(f"tquant tokenizes the calibration text to {n} tokens, the oracle to {len(s.calib_tokens)}")
    return f"{n} calibration tokens, calib-len {s.calib_len}; {len(s.eval_tokens)} eval tokens"


def main():
    args = parse_args(__doc__.splitlines()[0])
    s = Setup(args)
    cases = [("calibration-tokens", lambda: tokens_case(s)), ("weights", lambda: weights_case(s)),
             ("calibration", lambda: calibration_case(s)), ("eval-all-points", lambda: eval_all_case(s)),
             ("load-calibration", lambda: load_case(s))]
    cases += [(f"eval-point {p}", lambda p=p: eval_point_case(s, p)) for p in s.quantized_points()]
    return run_cases(cases, args.filter)


if __name__ == "__main__":
    sys.exit(main())
