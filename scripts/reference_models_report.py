#!/usr/bin/python3
"""Markdown report on the reference models of scripts/reference-models.sh (stdout), plus
OUT_DIR/mlm_curve.svg. Usage: reference_models_report.py OUT_DIR. Standard library only; every
missing input is reported as "not run yet"."""
import glob, json, math, os, re, struct, sys
from statistics import mean, median

TASKS = ["sst2", "mrpc", "rte", "stsb", "cola"]
# Residual stream (and the LayerNorm outputs that carry it in post-LN BERT).
RESIDUAL = re.compile(r"^(embed\.(norm\.)?out|final_norm\.out|layers\.\d+\.(attn|ffn)\.(residual_sum|norm\.out))$")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def count_params(path):
    try:
        with open(path, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    except (OSError, ValueError, struct.error):
        return None
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def fmt(x, digits=3):
    return "–" if x is None else f"{x:.{digits}f}"


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}"


def duration(s):
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def nice_ticks(lo, hi, n=6):
    raw = (hi - lo) / n or 1.0
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def svg_chart(series, path, xlabel="step", ylabel="MLM loss"):
    """Line chart of [(name, colour, [(x, y)])] with axes, ticks and a legend."""
    W, H, L, R, T, B = 720, 420, 70, 20, 20, 50
    pts = [p for _, _, s in series for p in s]
    x0, x1 = 0, max(x for x, _ in pts) or 1
    y0, y1 = min(y for _, y in pts), max(y for _, y in pts)
    pad = (y1 - y0) * 0.05 or 0.5
    y0, y1 = y0 - pad, y1 + pad
    sx = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    sy = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
    for t in nice_ticks(x0, x1):
        out.append(f'<line x1="{sx(t):.1f}" y1="{H - B}" x2="{sx(t):.1f}" y2="{H - B + 5}" stroke="black"/>'
                   f'<text x="{sx(t):.1f}" y="{H - B + 18}" text-anchor="middle">{t:g}</text>')
    for t in nice_ticks(y0, y1):
        out.append(f'<line x1="{L - 5}" y1="{sy(t):.1f}" x2="{W - R}" y2="{sy(t):.1f}" stroke="#ddd"/>'
                   f'<text x="{L - 8}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text transform="translate(18,{(T + H - B) / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for i, (name, colour, s) in enumerate(series):
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in s]
        ly = T + 15 + 18 * i
        out.append(f'<line x1="{W - R - 170}" y1="{ly}" x2="{W - R - 145}" y2="{ly}" stroke="{colour}" stroke-width="2"/>'
                   f'<text x="{W - R - 140}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def pretraining(out_dir, mlm):
    print("## Pretraining (masked LM)\n")
    state = load(os.path.join(mlm, "trainer_state.json")) if mlm else None
    if state is None:
        print("not run yet\n")
        return
    cfg = load(os.path.join(mlm, "config.json")) or {}
    opts = state.get("options", {})
    params = count_params(os.path.join(mlm, "model.safetensors"))
    shape = "config.json not written yet"
    if cfg:
        shape = (f"{cfg.get('num_hidden_layers')} layers, hidden {cfg.get('hidden_size')}, "
                 f"{cfg.get('num_attention_heads')} heads, FFN {cfg.get('intermediate_size')}, "
                 f"vocabulary {cfg.get('vocab_size')}")
    print(f"Model `{os.path.basename(mlm)}`: {shape}; " +
          (f"{params:,} parameters (tensors in model.safetensors)." if params else "model.safetensors not written yet."))
    done = "completed" if state.get("completed") else f"in progress (target {opts.get('steps')} steps)"
    tokens, secs = state.get("tokens_seen", 0), state.get("train_seconds", 0)
    shown = ", ".join(f"{k} {opts[k]:g}" if isinstance(opts[k], float) else f"{k} {opts[k]}"
                      for k in ("seq-len", "batch", "lr", "warmup", "decay", "mask-prob") if k in opts)
    print(f"\nStep {state.get('step')}, {done}: {tokens:,} tokens seen in {duration(secs)}"
          f" ({tokens / secs if secs else 0:,.0f} tokens/s)." + (f" Options: {shown}." if shown else "") + "\n")
    log, ev = state.get("log", []), state.get("eval", [])
    if log:
        n = min(len(log), 12)
        picked = sorted({round(i * (len(log) - 1) / max(n - 1, 1)) for i in range(n)})
        print("Training (means over each logging window):\n")
        print(table(["step", "loss", "accuracy", "lr", "tokens seen", "time"],
                    [(e["step"], fmt(e["loss"]), fmt(e["accuracy"]), f"{e['lr']:.2e}", f"{e['tokens_seen']:,}",
                      duration(e["seconds"])) for e in (log[i] for i in picked)]))
    if ev:
        print("\nHeld-out text (documents never trained on):\n")
        print(table(["step", "loss", "accuracy", "perplexity", "targets"],
                    [(e["step"], fmt(e["loss"]), fmt(e["accuracy"]), f"{math.exp(e['loss']):.1f}", e["targets"])
                     for e in ev]))
    if log or ev:
        series = [(n, c, [(e["step"], e["loss"]) for e in s])
                  for n, c, s in (("training loss", "#1f77b4", log), ("held-out loss", "#d62728", ev)) if s]
        svg_chart(series, os.path.join(out_dir, "mlm_curve.svg"))
        print("\nLoss curve: [mlm_curve.svg](mlm_curve.svg) (training and held-out MLM loss against the step).")
    print()


def glue(out_dir):
    print("## GLUE fine-tuning\n")
    summaries = {t: load(os.path.join(out_dir, "glue", t, "finetune_summary.json")) for t in TASKS}
    rows, timing, medians = [], [], []
    for t, s in summaries.items():
        if s is None:
            rows.append((t, "", "not run yet", "", "", ""))
            continue
        seeds = s["seeds"]
        epochs = sorted({e["epoch"] for sd in seeds for e in sd["epochs"]})
        per_epoch = [f"{ep}: {pct(median(e['score'] for sd in seeds for e in sd['epochs'] if e['epoch'] == ep))}"
                     for ep in epochs]
        finals = ", ".join(f"{pct(sd['final'])} (seed {sd['seed']})" for sd in seeds)
        rows.append((t, s["score_name"], f"**{pct(s['median_final'])}**", finals, pct(s["median_best_epoch"]),
                     "; ".join(per_epoch)))
        medians.append(s["median_final"])
        secs = [sd["train_seconds"] for sd in seeds]
        timing.append((t, len(seeds), duration(sum(secs)), duration(median(secs)),
                       f"{sum(sd['tokens'] for sd in seeds):,}", f"{median(sd['tokens_per_second'] for sd in seeds):,.0f}"))
    print("Dev-set scores ×100; the median is over seeds, at the final epoch unless stated.\n")
    print(table(["task", "metric", "median (final)", "per-seed finals", "median of best epoch", "per-epoch medians"],
                rows))
    if medians:
        print(f"\nMean over tasks of the medians: **{pct(mean(medians))}** ({len(medians)} of {len(TASKS)} tasks).")
    print("\n### Fine-tuning cost\n")
    print(table(["task", "seeds", "time (sum)", "time (median seed)", "tokens (sum)", "tokens/s (median)"], timing)
          if timing else "not run yet")
    print()


def short(point):
    return re.sub(r"^layers\.\d+\.", "", point)


def analysis(path, name):
    a = load(path)
    print(f"### {name}\n")
    if a is None:
        print("not run yet\n")
        return
    w = a.get("windows", {})
    print(f"{w.get('samples')} windows of {w.get('seq_len')} tokens ({a.get('tokens_analysed')} positions).")
    res = [p for p in a["points"] if RESIDUAL.match(p["name"])]
    dims = {}  # dim -> [max |x| over points, where, points flagging it, ratio to that point's mean channel max|x|]
    for p in res:
        for d in p["outlier_dims"]:
            e = dims.setdefault(d["dim"], [0.0, "", 0, 0.0])
            e[2] += 1
            if d["max_abs"] > e[0]:
                e[0], e[1] = d["max_abs"], p["name"]
                e[3] = d["max_abs"] / (p["outlier_rule"]["mean_of_channel_max_abs"] or 1)
    heads = a.get("attention", {}).get("heads", [])
    layers = sorted({p["layer"] for p in res})
    rows = []
    for layer in layers:
        ps = [p for p in res if p["layer"] == layer]
        k = max(ps, key=lambda p: p["kurtosis"] or 0)
        m = max(ps, key=lambda p: max(-p["min"], p["max"]))
        od = sorted({d["dim"] for p in ps for d in p["outlier_dims"]}, key=lambda d: -dims[d][0])
        hs = [h for h in heads if h["layer"] == layer]
        attn = (f"{mean(h['noop_mass'] for h in hs):.2f} / {max(h['noop_mass'] for h in hs):.2f}; "
                f"{mean(h['special_mass'] for h in hs):.2f} vs {mean(h['uniform_special'] for h in hs):.2f}") if hs else "–"
        rows.append(("emb" if layer < 0 else layer, f"{fmt(k['kurtosis'], 1)} ({short(k['name'])})",
                     f"{fmt(max(-m['min'], m['max']), 1)} ({short(m['name'])})",
                     ", ".join(str(d) for d in od[:5]) or "none", attn))
    print()
    print(table(["layer", "max kurtosis (point)", "max abs x (point)", "outlier dims", "attn no-op; special"], rows))
    top = sorted(dims.items(), key=lambda kv: -kv[1][0])[:5]
    if top:
        print("\nStrongest outlier dimensions:\n")
        print(table(["dim", "max abs x", "where", "x mean channel max", "points flagging it"],
                    [(d, fmt(e[0], 2), e[1], f"{e[3]:.1f}", f"{e[2]} of {len(res)}") for d, e in top]))
    flagged = sum(1 for p in res if p["outlier_dims"])
    recurring = [d for d, e in top if e[2] >= 2]
    if recurring:
        verdict = (f"**structured outliers present**: dims {', '.join(map(str, recurring))} exceed the outlier rule "
                   f"in several residual-stream points ({flagged} of {len(res)} points have outlier dims).")
    elif top:
        verdict = f"isolated outliers only ({flagged} of {len(res)} points, no dimension recurs)."
    else:
        ratio, dim, p = max(((max(-lo, hi) / (p["outlier_rule"]["threshold"] or 1), d, p) for p in res
                             for d, (lo, hi) in enumerate(zip(p["channel_min"], p["channel_max"]))),
                            key=lambda t: t[0], default=(0.0, None, {"name": "–"}))
        verdict = (f"no structured outliers (no dimension passes the rule in any of {len(res)} residual-stream points; "
                   f"the closest is dim {dim} of {p['name']}, at {ratio:.2f}x its threshold).")
    print(f"\nVerdict: {verdict}\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: reference_models_report.py OUT_DIR")
    out_dir = sys.argv[1]
    mlms = sorted(glob.glob(os.path.join(out_dir, "bert-*-mlm")))
    mlm = mlms[0] if mlms else None
    print(f"# tquant reference models\n\nOutputs in `{os.path.abspath(out_dir)}`.\n")
    pretraining(out_dir, mlm)
    glue(out_dir)
    print("## Outliers (`tquant analyze`, first seed of each task)\n")
    print("Per layer, over the residual-stream points (residual sums and LayerNorm outputs): the largest kurtosis "
          "(normal = 3) and max |x|, and the outlier dims: channels whose max |x| exceeds mean + 6 std of the "
          "per-channel max |x| of that point (analysis.json's rule). Attention: no-op mass (on special + delimiter "
          "keys) mean / max over the layer's heads; special-token mass, mean over heads, vs uniform attention. "
          "Outliers are called structured when a dimension recurs in two or more points.\n")
    for name in ([os.path.basename(mlm)] if mlm else ["bert-*-mlm"]) + TASKS:
        analysis(os.path.join(out_dir, "analysis", name, "analysis.json"), name)


if __name__ == "__main__":
    main()
