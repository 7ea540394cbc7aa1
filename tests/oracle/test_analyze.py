"""Oracle test: `tquant analyze` (outlier statistics, no-op attention, the HTML report) end to end.

The data is the first ~6 KB of shared/data/tinystories/eval.txt (cut at a line end). The
reference tokenizes it with tokenizer_oracle.py, lays out the windows the way analysis.json's
"selection" documents (evenly spaced; BOS first, as the tokenizer's post-processor adds it), and
recomputes every checked number in NumPy:
  - embed.out from the embedding rows read straight from model.safetensors (safetensors_py);
    the values are the stored float32 ones, so the statistics must agree to 1e-6;
  - the residual stream, the final norm, the logits and every layer's attention probabilities
    from a float64 LLaMA forward built from numpy_reference.py's blocks (its logits are first
    checked against numpy_reference.forward), against tquant's float32 forward: statistics to
    1e-4 relative (and a 1e-4 * max|x| absolute floor for the per-channel ranges);
  - per head: attention mass on special tokens and delimiters, the uniform baselines, entropy;
  - outlier dims (max|x| > mean + 6 std of the per-channel maxima), the tokens carrying them,
    the values beyond 6 std and the share of the outlier magnitude on special tokens.
Token kinds are worked out here from tokenizer.json: special = BOS/EOS ids; delimiter = a token
that decodes (Replace ▁ -> space, byte fallback, strip one leading space) to punctuation and/or
whitespace only, or to nothing. Also checked: report.html is self-contained (no http(s) URL in
any src/href/url(), no script or stylesheet link), holds an <svg> per plot, the .svg files exist;
a fixed seed gives the same bytes twice; --seq-len is capped at the model's positions; errors
exit 1 naming the problem and leave no output folder.

Usage (ctest passes these): test_analyze.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
Ends with "N passed, M failed"; exits non-zero on any failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_reference as ref  # noqa: E402
import safetensors_py  # noqa: E402
import tokenizer_oracle  # noqa: E402
from eval_common import Checks, Failure, parse_args, run_cases  # noqa: E402

REAL_MODEL = "models/tinystories-656k"
TEXT_BYTES = 6000
SAMPLES, SEQ_LEN = 4, 48
SIGMAS = 6.0

EXACT_RTOL = 1e-6   # embed.out: the same float32 values on both sides
FP32_RTOL = 1e-4    # float32 forward vs the float64 reference


# ---------------------------------------------------------------------------------------------
# Running tquant
# ---------------------------------------------------------------------------------------------

def run_analyze(args, tag, extra, timeout=300):
    out = os.path.join(args.tmp, tag)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [args.tquant, "analyze"] + [str(a) for a in extra] + ["--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise Failure(f"tquant exited {proc.returncode}: {' '.join(cmd)}\n{proc.stderr.strip()}\n{proc.stdout[-2000:]}")
    path = os.path.join(out, "analysis.json")
    try:
        with open(path, encoding="utf-8") as f:
            return out, json.load(f)
    except Exception as e:
        raise Failure(f"{path}: cannot read: {e}")


def run_failing(args, tag, extra, must_mention):
    out = os.path.join(args.tmp, tag)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [args.tquant, "analyze"] + [str(a) for a in extra] + ["--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 1:
        raise Failure(f"expected exit 1, got {proc.returncode}: {' '.join(cmd)}\n{proc.stderr.strip()}")
    missing = [s for s in must_mention if s not in proc.stderr]
    if missing:
        raise Failure(f"stderr does not mention {missing}: {proc.stderr.strip()}")
    if os.path.exists(out):
        raise Failure(f"{out} exists despite the error")
    return proc.stderr.strip().splitlines()[-1][:200]


# ---------------------------------------------------------------------------------------------
# The reference
# ---------------------------------------------------------------------------------------------

def read_text_prefix(path, nbytes):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read(nbytes * 2)
    cut = text[:nbytes].rfind("\n")
    return text[:cut + 1]


def token_kinds(model_dir, special_ids):
    """kind per id ("special", "delimiter", "other") following this tokenizer's decoder:
    Replace ▁ -> ' ', ByteFallback (<0xNN>; a lone non-ASCII byte is U+FFFD), Strip one space."""
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    decoder_types = [d["type"] for d in tj["decoder"]["decoders"]]
    if decoder_types != ["Replace", "ByteFallback", "Fuse", "Strip"]:
        raise Failure(f"the reference models only the TinyStories decoder, got {decoder_types}")
    pieces = dict((i, p) for p, i in tj["model"]["vocab"].items())
    for t in tj["added_tokens"]:
        pieces[t["id"]] = t["content"]
    kinds = {}
    for i, piece in pieces.items():
        if i in special_ids:
            kinds[i] = "special"
            continue
        m = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", piece)
        if m:
            b = int(m.group(1), 16)
            text = chr(b) if b < 0x80 else "\ufffd"
        else:
            text = piece.replace("\u2581", " ")
        if text.startswith(" "):
            text = text[1:]
        delim = text == "" or all(c.isspace() or unicodedata.category(c).startswith("P") for c in text)
        kinds[i] = "delimiter" if delim else "other"
    return kinds


def llama_intermediates(model_dir, ids):
    """float64 LLaMA forward (numpy_reference's blocks) returning the points tquant names, and
    each layer's attention probabilities [B, H, T, T]."""
    cfg = ref.load_config(model_dir)
    w = ref.Weights(model_dir)
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg["hidden_size"] // heads
    eps = cfg["rms_norm_eps"]
    embed = w.first("model.embed_tokens.weight", "lm_head.weight")
    b, t = ids.shape
    cos, sin = ref.rope_cos_sin(np.arange(t), hd, cfg["rope_theta"])
    mask = ref.additive_mask(np.ones_like(ids), causal=True)
    pts, probs = {}, []
    x = embed[ids]
    pts["embed.out"] = x.copy()
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = ref.rms_norm(x, w(p + "input_layernorm.weight"), eps)
        pts[f"layers.{i}.attn.norm.out"] = h
        q = ref.split_heads(ref.linear(h, w(p + "self_attn.q_proj.weight")), heads)
        k = ref.split_heads(ref.linear(h, w(p + "self_attn.k_proj.weight")), kv)
        v = ref.split_heads(ref.linear(h, w(p + "self_attn.v_proj.weight")), kv)
        q = q * cos + ref.rotate_half(q) * sin
        k = k * cos + ref.rotate_half(k) * sin
        k, v = np.repeat(k, heads // kv, axis=1), np.repeat(v, heads // kv, axis=1)
        s = (q @ np.swapaxes(k, -1, -2)) * hd ** -0.5 + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        pr = s / s.sum(-1, keepdims=True)
        probs.append(pr)
        ctx = np.transpose(pr @ v, (0, 2, 1, 3)).reshape(b, t, heads * hd)
        x = x + ref.linear(ctx, w(p + "self_attn.o_proj.weight"))
        pts[f"layers.{i}.attn.residual_sum"] = x.copy()
        h = ref.rms_norm(x, w(p + "post_attention_layernorm.weight"), eps)
        pts[f"layers.{i}.ffn.norm.out"] = h
        gate = ref.linear(h, w(p + "mlp.gate_proj.weight"))
        up = ref.linear(h, w(p + "mlp.up_proj.weight"))
        x = x + ref.linear(ref.activation(cfg["hidden_act"], gate) * up, w(p + "mlp.down_proj.weight"))
        pts[f"layers.{i}.ffn.residual_sum"] = x.copy()
    x = ref.rms_norm(x, w("model.norm.weight"), eps)
    pts["final_norm.out"] = x
    pts["logits"] = ref.linear(x, embed)
    return pts, probs


class Setup:
    def __init__(self, args):
        self.args = args
        self.model = os.path.join(args.shared, REAL_MODEL)
        text = read_text_prefix(os.path.join(args.shared, "data/tinystories/eval.txt"), TEXT_BYTES)
        self.data = os.path.join(args.tmp, "data.txt")
        with open(self.data, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        oracle = tokenizer_oracle.load(self.model)
        self.tokens = oracle.encode(text, add_special_tokens=False)[0]
        prefix = oracle.encode("Hello world", add_special_tokens=True)[0]
        bare = oracle.encode("Hello world", add_special_tokens=False)[0]
        if prefix[1:] != bare:
            raise Failure(f"the reference expects one BOS before the text, got {prefix} vs {bare}")
        self.bos = prefix[0]
        cfg = ref.load_config(self.model)
        self.special = {cfg["bos_token_id"], cfg["eos_token_id"]}
        self.kinds = token_kinds(self.model, self.special)
        self.max_positions = cfg["max_position_embeddings"]

        # Windows: evenly spaced starts of SEQ_LEN - 1 text tokens, BOS in front.
        w = SEQ_LEN - 1
        last = len(self.tokens) - w
        self.starts = [last * i // (SAMPLES - 1) for i in range(SAMPLES)]
        self.ids = np.array([[self.bos] + self.tokens[s:s + w] for s in self.starts], dtype=np.int64)
        self.flat_ids = self.ids.reshape(-1)
        self.flat_kinds = np.array([self.kinds[int(i)] for i in self.flat_ids])

        # embed.out exactly as stored (float32), read with the independent safetensors reader.
        tensors, _ = safetensors_py.read_folder(self.model)
        table = tensors.get("model.embed_tokens.weight", tensors.get("lm_head.weight"))
        self.embed_out = table[self.ids].astype(np.float64)
        self.points, self.probs = llama_intermediates(self.model, self.ids)

        self.out, self.analysis = run_analyze(args, "main", ["--model", self.model, "--data", self.data,
                                                             "--samples", SAMPLES, "--seq-len", SEQ_LEN])
        self.by_name = {p["name"]: p for p in self.analysis["points"]}


# ---------------------------------------------------------------------------------------------
# Statistics of one point
# ---------------------------------------------------------------------------------------------

def check_point(s, name, x, rtol):
    """x: [B, T, C] float64 reference values of point `name`."""
    if name not in s.by_name:
        raise Failure(f"analysis.json has no point {name}")
    p = s.by_name[name]
    c = Checks()
    flat = x.reshape(-1, x.shape[-1])
    v = flat.reshape(-1)
    mean, std = v.mean(), v.std()
    kurt = ((v - mean) ** 4).mean() / v.var() ** 2
    scale = np.abs(v).max()
    c.equal(f"{name}.values", p["values"], v.size)
    c.equal(f"{name}.channels", p["channels"], x.shape[-1])
    c.close(f"{name}.min", p["min"], v.min(), rtol, rtol * scale)
    c.close(f"{name}.max", p["max"], v.max(), rtol, rtol * scale)
    c.close(f"{name}.mean", p["mean"], mean, 0, rtol * scale)
    c.close(f"{name}.std", p["std"], std, rtol)
    c.close(f"{name}.kurtosis", p["kurtosis"], kurt, rtol * 10 if rtol > EXACT_RTOL else rtol)

    # Values beyond 6 std: exact for exact inputs; for float32-vs-float64 only values that lie
    # clearly on one side of the limit are counted on both sides.
    dev = np.abs(v - mean)
    limit = SIGMAS * std
    band = 0 if rtol <= EXACT_RTOL else rtol * scale
    lo, hi = int((dev > limit + band).sum()), int((dev > limit - band).sum())
    got = p["beyond_6sigma"]["count"]
    c.true(f"{name}.beyond_6sigma", lo <= got <= hi, f"{got} in [{lo}, {hi}]")

    # Per-channel ranges, then the outlier rule.
    cmin, cmax = flat.min(0), flat.max(0)
    err_min = np.abs(np.array(p["channel_min"]) - cmin).max()
    err_max = np.abs(np.array(p["channel_max"]) - cmax).max()
    c.true(f"{name}.channel_min/max", max(err_min, err_max) <= rtol * scale,
           f"max error {max(err_min, err_max):.2e} (limit {rtol * scale:.2e})")
    maxabs = np.maximum(-cmin, cmax)
    m, sd = maxabs.mean(), maxabs.std()
    thr = m + SIGMAS * sd
    c.close(f"{name}.outlier_rule.threshold", p["outlier_rule"]["threshold"], thr, rtol)
    got_dims = [d["dim"] for d in p["outlier_dims"]]
    sure = {int(d) for d in np.nonzero(maxabs > thr * (1 + rtol))[0]}
    maybe = {int(d) for d in np.nonzero(maxabs > thr * (1 - rtol))[0]}
    c.true(f"{name}.outlier_dims", sure <= set(got_dims) <= maybe, f"{got_dims} (reference {sorted(sure)})")
    order = sorted(got_dims, key=lambda d: -maxabs[d])
    c.true(f"{name}.outlier_dims order", got_dims == order or rtol > EXACT_RTOL, f"{got_dims}")

    # Carriers: distinct ids with the largest |x| in each inspected dim (first occurrence on a tie).
    for car in p["carriers"]:
        d = car["dim"]
        col = np.abs(flat[:, d])
        best = {}
        for row, tid in enumerate(s.flat_ids):
            tid = int(tid)
            if tid not in best or col[row] > col[best[tid]] * (1 + (0 if rtol <= EXACT_RTOL else rtol)):
                best[tid] = row
        ranked = sorted(best.values(), key=lambda r: (-col[r], r))
        top = car["top_tokens"]
        if not top:
            c.true(f"{name}.carriers[{d}]", False, "no tokens listed")
            continue
        want = ranked[0]
        t = top[0]
        c.true(f"{name}.carriers[{d}][0]",
               t["id"] == s.flat_ids[want] and abs(abs(t["value"]) - col[want]) <= rtol * scale + 1e-12,
               f"id {t['id']} value {t['value']:.6g} at {t['sample']}:{t['position']} (reference id "
               f"{int(s.flat_ids[want])} value {col[want]:.6g} at {want // SEQ_LEN}:{want % SEQ_LEN})")
        if rtol <= EXACT_RTOL:
            c.equal(f"{name}.carriers[{d}] ids", [q["id"] for q in top], [int(s.flat_ids[r]) for r in ranked[:len(top)]])
            c.equal(f"{name}.carriers[{d}][0] where", (t["sample"], t["position"]), (want // SEQ_LEN, want % SEQ_LEN))
        c.equal(f"{name}.carriers[{d}][0].kind", t["kind"], s.kinds[t["id"]])

    # Shares by token kind.
    n = len(s.flat_kinds)
    c.close(f"{name}.token_share.special", p["token_share"]["special"], float((s.flat_kinds == "special").sum()) / n, 1e-12)
    c.close(f"{name}.token_share.delimiter", p["token_share"]["delimiter"], float((s.flat_kinds == "delimiter").sum()) / n,
            1e-12)
    if got_dims:
        mag = np.abs(flat[:, got_dims]).sum(1)
        for kind in ("special", "delimiter"):
            c.close(f"{name}.outlier_magnitude_share.{kind}", p["outlier_magnitude_share"][kind],
                    float(mag[s.flat_kinds == kind].sum() / mag.sum()), rtol * 10, 1e-9)
    else:
        c.equal(f"{name}.outlier_magnitude_share", p["outlier_magnitude_share"], None)
    return c.finish()


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def case_windows(s):
    a = s.analysis
    c = Checks()
    c.equal("data.tokens", a["data"]["tokens"], len(s.tokens))
    c.equal("windows.starts", a["windows"]["starts"], s.starts)
    c.equal("windows.seq_len", a["windows"]["seq_len"], SEQ_LEN)
    c.equal("windows.prefix ids", [t["id"] for t in a["windows"]["prefix"]], [s.bos])
    c.equal("windows.suffix", a["windows"]["suffix"], [])
    c.equal("tokens_analysed", a["tokens_analysed"], SAMPLES * SEQ_LEN)
    c.equal("special ids", sorted(t["id"] for t in a["special_tokens"]), sorted(s.special))
    c.true("definitions", "Pearson" in a["definitions"]["kurtosis"] and "mean + 6 std" in a["definitions"]["outlier_dims"],
           "kurtosis and outlier rule are stated")
    return c.finish()


def case_reference_forward(s):
    want = ref.forward(s.model, s.ids)
    err = np.abs(s.points["logits"] - want).max()
    if err > 1e-9:
        raise Failure(f"the intermediates forward disagrees with numpy_reference.forward by {err:.3g}")
    return f"logits agree to {err:.1e}"


def case_attention(s):
    a = s.analysis
    heads = {(h["layer"], h["head"]): h for h in a["attention"]["heads"]}
    c = Checks()
    special = (s.flat_kinds == "special").reshape(SAMPLES, SEQ_LEN)
    delim = (s.flat_kinds == "delimiter").reshape(SAMPLES, SEQ_LEN)
    pos = np.arange(1, SEQ_LEN + 1)
    for layer, pr in enumerate(s.probs):
        for h in range(pr.shape[1]):
            got = heads.get((layer, h))
            if got is None:
                raise Failure(f"no statistics for layer {layer} head {h}")
            p = pr[:, h]  # [B, T, T], zero above the diagonal
            sm = (p * special[:, None, :]).sum(-1).mean()
            dm = (p * delim[:, None, :]).sum(-1).mean()
            ent = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1).mean()
            us = (np.cumsum(special, 1) / pos).mean()
            ud = (np.cumsum(delim, 1) / pos).mean()
            c.close(f"L{layer}H{h}.special_mass", got["special_mass"], sm, 0, 1e-5)
            c.close(f"L{layer}H{h}.delimiter_mass", got["delimiter_mass"], dm, 0, 1e-5)
            c.close(f"L{layer}H{h}.entropy", got["entropy"], ent, 0, 1e-4)
            c.close(f"L{layer}H{h}.uniform_special", got["uniform_special"], us, 0, 1e-12)
            c.close(f"L{layer}H{h}.uniform_delimiter", got["uniform_delimiter"], ud, 0, 1e-12)
    # The captured map: head `head` of block `layer` for window `sample`, first n positions.
    for m in a["attention"]["maps"]:
        n = len(m["tokens"])
        want = s.probs[m["layer"]][m["sample"], m["head"], :n, :n]
        err = np.abs(np.array(m["probs"]) - want).max()
        c.true(f"map L{m['layer']}H{m['head']}", err <= 1e-5, f"max error {err:.2e}")
        c.equal(f"map L{m['layer']}H{m['head']} ids", [t["id"] for t in m["tokens"]],
                [int(i) for i in s.ids[m["sample"], :n]])
    most = max(a["attention"]["heads"], key=lambda h: h["noop_mass"])
    c.equal("heatmap of the most no-op head", (a["attention"]["maps"][0]["layer"], a["attention"]["maps"][0]["head"]),
            (most["layer"], most["head"]))
    return c.finish()


def case_html(s):
    c = Checks()
    path = os.path.join(s.out, "report.html")
    with open(path, encoding="utf-8") as f:
        html = f.read()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(https?:)|url\(\s*["']?\s*(https?:)""", html, re.I)
    c.true("no http(s) src/href/url()", not urls, f"{len(urls)} found")
    c.true("no http(s) at all", "http://" not in html and "https://" not in html, "the page names no URL")
    c.true("no script or stylesheet link", "<script" not in html.lower() and "<link" not in html.lower(), "inline only")
    c.true("has <svg>", html.count("<svg") >= 1, f"{html.count('<svg')} inline svgs")
    plots = s.analysis.get("plots", [])
    c.true("plots listed", len(plots) >= 5, f"{len(plots)} plots")
    c.equal("one inline svg per plot", html.count("<svg"), len(plots))
    for p in plots:
        f = os.path.join(s.out, p["file"])
        ok = os.path.isfile(f)
        if ok:
            with open(f, encoding="utf-8") as g:
                svg = g.read()
            ok = svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        c.true(f"file {p['file']}", ok, "a standalone svg")
    last = f"layers.{s.analysis['model']['layers'] - 1}.ffn.residual_sum"
    c.true("channel range plot", any(p["file"] == f"channel_ranges_{last}.svg" for p in plots), last)
    c.true("summary first", html.find("Summary") < html.find("<svg"), "summary before the plots")
    return c.finish()


def case_seed_and_cap(s):
    args = s.args
    base = ["--model", s.model, "--data", s.data, "--samples", 2, "--seq-len", 32, "--points", "embed.out"]
    out1, a1 = run_analyze(args, "seed1", base + ["--seed", 7])
    out2, a2 = run_analyze(args, "seed2", base + ["--seed", 7])
    c = Checks()
    with open(os.path.join(out1, "analysis.json"), "rb") as f1, open(os.path.join(out2, "analysis.json"), "rb") as f2:
        c.true("same seed, same bytes", f1.read() == f2.read(), "analysis.json identical")
    c.equal("--points selects", [p["name"] for p in a1["points"]], ["embed.out"])
    starts = a1["windows"]["starts"]
    c.true("seeded starts in range", all(0 <= x <= len(s.tokens) - 31 for x in starts), f"{starts}")
    c.equal("seed recorded", a1["windows"]["seed"], 7)
    _, capped = run_analyze(args, "capped", ["--model", s.model, "--data", s.data, "--samples", 1, "--seq-len", 100000,
                                             "--points", "logits"])
    c.equal("seq_len capped", (capped["windows"]["seq_len"], capped["windows"]["seq_len_capped"]),
            (s.max_positions, True))
    return c.finish()


def case_errors(s):
    args = s.args
    lines = [
        run_failing(args, "err-data", ["--model", s.model, "--data", os.path.join(args.tmp, "missing.txt")],
                    ["missing.txt", "cannot open"]),
        run_failing(args, "err-points", ["--model", s.model, "--data", s.data, "--points", "no.such.point"],
                    ["--points", "matches none"]),
        run_failing(args, "err-seqlen", ["--model", s.model, "--data", s.data, "--seq-len", 1], ["--seq-len", "no room"]),
    ]
    # An existing folder that is not an earlier analysis must be left alone.
    keep = os.path.join(args.tmp, "not-an-analysis")
    os.makedirs(keep, exist_ok=True)
    with open(os.path.join(keep, "notes.txt"), "w") as f:
        f.write("keep me\n")
    cmd = [args.tquant, "analyze", "--model", s.model, "--data", s.data, "--out", keep]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 1 or "no analysis.json" not in proc.stderr:
        raise Failure(f"--out on an unrelated folder: exit {proc.returncode}, stderr {proc.stderr.strip()}")
    if os.listdir(keep) != ["notes.txt"]:
        raise Failure(f"{keep} was changed: {os.listdir(keep)}")
    lines.append(proc.stderr.strip().splitlines()[-1][:200])
    return "; ".join(lines)


def main():
    args = parse_args(__doc__.splitlines()[0])
    state = {}

    def setup():
        if "s" not in state:
            state["s"] = Setup(args)
        return state["s"]

    def point_case(name, exact):
        def run():
            s = setup()
            x = s.embed_out if name == "embed.out" else s.points[name]
            return check_point(s, name, x, EXACT_RTOL if exact else FP32_RTOL)
        return run

    cases = [
        ("windows", lambda: case_windows(setup())),
        ("reference_forward", lambda: case_reference_forward(setup())),
        ("embed.out", point_case("embed.out", True)),
        ("layers.0.ffn.residual_sum", point_case("layers.0.ffn.residual_sum", False)),
        ("layers.1.attn.residual_sum", point_case("layers.1.attn.residual_sum", False)),
        ("layers.1.ffn.residual_sum", point_case("layers.1.ffn.residual_sum", False)),
        ("layers.1.ffn.norm.out", point_case("layers.1.ffn.norm.out", False)),
        ("final_norm.out", point_case("final_norm.out", False)),
        ("logits", point_case("logits", False)),
        ("attention", lambda: case_attention(setup())),
        ("html", lambda: case_html(setup())),
        ("seed_and_cap", lambda: case_seed_and_cap(setup())),
        ("errors", lambda: case_errors(setup())),
    ]
    return run_cases(cases, args.filter)


if __name__ == "__main__":
    sys.exit(main())
