"""Summarises bench/activation_table.sh: one row per (dataset, recipe) with ppl, KLD, top-1 and
the calibration time, as JSON and as a Markdown table.

Usage: python3 activation_table.py RUN_DIR OUT_PREFIX
"""
import json
import pathlib
import sys

LABELS = {
    "fp": "FP32",
    "w8a8": "W8A8 per tensor",
    "w8a8-mixed": "W8A{8,16} mixed",
    "w8a8-peg-k4": "W8A8 PEG K=4",
    "w8a8-peg-k4-permuted": "W8A8 PEG K=4 permuted",
    "w8a8-peg-k6-permuted": "W8A8 PEG K=6 permuted (preset)",
    "w8a8-peg-k8": "W8A8 PEG K=8",
    "w8a8-peg-k8-permuted": "W8A8 PEG K=8 permuted",
    "w6a6": "W6A6 min-max",
    "w6a6-os-gm": "W6A6 + Gamma Migration",
    "w6a6-os-gm-twc": "W6A6 + Gamma Migration + Token-Wise Clipping",
    "w4a8": "W4A8",
}


def main():
    run_dir, prefix = pathlib.Path(sys.argv[1]), sys.argv[2]
    rows = []
    for dataset in ("wikitext2", "tinystories"):
        for name, label in LABELS.items():
            f = run_dir / f"{dataset}-{name}.json"
            if not f.exists():
                continue
            r = json.loads(f.read_text())
            m = r["metrics"]
            calib = r.get("token_clipping", r.get("calibration", {}))
            rows.append({
                "dataset": dataset, "recipe": name, "label": label,
                "ppl": m["ppl"], "ppl_stderr": m["ppl_stderr"],
                "kld_mean": m.get("kld_mean"), "top1_agreement": m.get("top1_agreement"),
                "tokens_scored": r["tokens_scored"],
                "calibration_seconds": calib.get("seconds"),
                "clip_ratio": r.get("token_clipping", {}).get("ratio"),
            })
    pathlib.Path(prefix + ".json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = []
    for dataset in ("wikitext2", "tinystories"):
        part = [r for r in rows if r["dataset"] == dataset]
        if not part:
            continue
        lines += [f"### {dataset} ({part[0]['tokens_scored']} tokens scored)", "",
                  "| recipe | ppl | KLD vs FP | top-1 | calibration s |", "|---|---|---|---|---|"]
        for r in part:
            kld = "" if r["kld_mean"] is None else f"{r['kld_mean']:.4f}"
            top1 = "" if r["top1_agreement"] is None else f"{100 * r['top1_agreement']:.1f}%"
            cal = "" if r["calibration_seconds"] is None else f"{r['calibration_seconds']:.1f}"
            label = r["label"] + (f" (ratio {r['clip_ratio']:.2f})" if r["clip_ratio"] else "")
            lines.append(f"| {label} | {r['ppl']:.2f} ± {r['ppl_stderr']:.2f} | {kld} | {top1} | {cal} |")
        lines.append("")
    pathlib.Path(prefix + ".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
