#!/usr/bin/env python3
"""TABLE.md for scripts/glue-table.sh: per setting and task, the median over seeds of the dev
metric (x100), the model size in bytes as stored and the median time the method took.
Usage: glue_table_report.py OUT_DIR REFERENCE_DIR"""
import json
import os
import statistics
import sys

TASKS = ["sst2", "mrpc", "rte", "stsb", "cola"]
# (row, cell name, where the score is, what the papers expect)
SETTINGS = [
    ("FP32", "fp32", "eval", "–"),
    ("W8A8 per-tensor PTQ", "w8a8", "eval", "large drop"),
    ("W8A{8,16} mixed PTQ", "w8a8-mixed", "eval", "near FP"),
    ("W8A8 PEG PTQ (K=6, permuted)", "w8a8-peg", "eval", "near FP"),
    ("W6A6 min-max PTQ", "w6a6", "eval", "drop"),
    ("W6A6 OS: Gamma Migration + TWC coarse + fine", "w6a6-os", "eval", "near FP"),
    ("W4A32 AdaRound", "w4a32-adaround", "adaround", "small drop"),
    ("W4A8 PTQ, no training (QAT's recipe)", "w4a8", "eval", "–"),
    ("W4A8 PTQ, 2-bit embeddings, no training", "w4a8-emb2", "eval", "–"),
    ("W8A8 QAT", "qat-w8a8", "qat", "≈ FP"),
    ("W4A8 QAT", "qat-w4a8", "qat", "small drop"),
    ("W4A8 QAT, 2-bit embeddings", "qat-w4a8-emb2", "qat", "small drop, ~8x smaller"),
]


def read(path):
    with open(path) as f:
        return json.load(f)


def cell(seed_dir, name, kind):
    """(score, bytes, seconds) of one seed, or None when the cell has not run."""
    seconds_file = os.path.join(seed_dir, name + ".seconds")
    if not os.path.exists(seconds_file):
        return None
    with open(seconds_file) as f:
        seconds = float(f.read())
    if kind == "qat":
        s = read(os.path.join(seed_dir, name, "finetune_summary.json"))
        return 100 * s["median_final"], s.get("model_bytes"), seconds
    j = read(os.path.join(seed_dir, name + ".json"))
    size = j.get("model_bytes")
    if kind == "adaround":
        seconds += float(open(os.path.join(seed_dir, "adaround-quantize.seconds")).read())
        size = os.path.getsize(os.path.join(seed_dir, "w4-adaround", "model.safetensors"))
    if name == "fp32":
        size = os.path.getsize(os.path.join(j["model"], "model.safetensors"))
    return 100 * j["metrics"]["score"], size, seconds


def training_budgets(out):
    """One line per task: what QAT and AdaRound actually ran on (read back from their outputs)."""
    lines = []
    for task in TASKS:
        seed_dir = os.path.join(out, task, "seed-1")
        parts = []
        summary = os.path.join(seed_dir, "qat-w8a8", "finetune_summary.json")
        if os.path.exists(summary):
            s = read(summary)
            with open(s["train"]) as f:
                examples = sum(1 for _ in f) - (task != "cola")  # CoLA's raw TSV has no header line
            parts.append(f"QAT {len(s['seeds'][0]['epochs'])} epoch(s) over {examples:,} training examples")
        quantize = os.path.join(seed_dir, "adaround-quantize.json")
        if os.path.exists(quantize):
            q = read(quantize)
            parts.append(f"AdaRound on {q['method']['calibration_samples']} x {q['method']['calibration_length']} "
                         f"tokens, summed layer objective {q['totals']['objective']:.1f} (RTN: "
                         f"{q['totals']['objective_rtn']:.1f})")
        if parts:
            lines.append(f"- {task}: " + "; ".join(parts))
    return lines


def main():
    out, ref = sys.argv[1], sys.argv[2]
    rows = []
    for label, name, kind, expected in SETTINGS:
        scores, sizes, times = {}, [], []
        for task in TASKS:
            task_dir = os.path.join(out, task)
            if not os.path.isdir(task_dir):
                continue
            per_seed = []
            for seed_dir in sorted(os.listdir(task_dir)):
                full = os.path.join(task_dir, seed_dir)
                if seed_dir.startswith("seed-") and (c := cell(full, name, kind)):
                    per_seed.append(c)
            if per_seed:
                scores[task] = (statistics.median(c[0] for c in per_seed), len(per_seed))
                sizes += [c[1] for c in per_seed if c[1]]
                times += [c[2] for c in per_seed]
        rows.append((label, expected, scores, statistics.median(sizes) if sizes else None,
                     statistics.median(times) if times else None))
    print("# GLUE dev, reference encoders (median over seeds, x100)\n")
    print(f"Reference models: `{ref}`. Results: `{out}`. Sizes are bytes as stored (FP32: the safetensors "
          "file; recipes: packed codes + scales + zero points, FP32 elsewhere). Time: median per seed model, "
          "wall clock on this machine (calibration + evaluation, or training).\n")
    budgets = training_budgets(out)
    if budgets:
        print("Training budgets, as run:\n\n" + "\n".join(budgets) + "\n")
    print("| setting | " + " | ".join(TASKS) + " | mean | size (bytes) | time (s) | papers |")
    print("|---|" + "---|" * (len(TASKS) + 4))
    for label, expected, scores, size, seconds in rows:
        cells = []
        for t in TASKS:
            cells.append(f"{scores[t][0]:.1f}" + ("" if scores[t][1] == 3 else f" ({scores[t][1]} seed)") if t in scores else "–")
        mean = f"{statistics.mean(s for s, _ in scores.values()):.1f}" if len(scores) == len(TASKS) else "–"
        print(f"| {label} | " + " | ".join(cells) + f" | {mean} | {f'{int(size):,}' if size else '–'} | "
              f"{f'{seconds:.0f}' if seconds else '–'} | {expected} |")


if __name__ == "__main__":
    main()
