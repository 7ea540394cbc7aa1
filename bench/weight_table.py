"""Summarises bench/weight_table.sh: per dataset, one row per method and format with ppl, KLD
against FP, top-1 agreement and the quantization time, as JSON and Markdown.

Usage: python3 weight_table.py RUN_DIR OUT_PREFIX
"""
import json
import pathlib
import sys

METHODS = ("rtn", "gptq", "zfold", "aespa")


def main():
    run_dir, prefix = pathlib.Path(sys.argv[1]), sys.argv[2]
    rows, lines = [], []
    for dataset in ("wikitext2", "tinystories"):
        fp = run_dir / f"{dataset}-fp.json"
        if not fp.exists():
            continue
        fpm = json.loads(fp.read_text())["metrics"]
        rows.append({"dataset": dataset, "method": "fp", "ppl": fpm["ppl"]})
        lines += [f"### {dataset}: FP ppl {fpm['ppl']:.2f}", "",
                  "| method | bits | group | ppl | KLD vs FP | top-1 | quantize s |", "|---|---|---|---|---|---|---|"]
        for bits in (4, 3, 2):
            for group in (0, 32):
                for method in METHODS:
                    name = f"{dataset}-{method}-w{bits}-g{group}"
                    ev, qu = run_dir / f"{name}.eval.json", run_dir / f"{name}.quant.json"
                    if not ev.exists() or not qu.exists():
                        continue
                    m = json.loads(ev.read_text())["metrics"]
                    q = json.loads(qu.read_text())["totals"]
                    row = {"dataset": dataset, "method": method, "bits": bits, "group": group, "ppl": m["ppl"],
                           "kld_mean": m["kld_mean"], "top1_agreement": m["top1_agreement"],
                           "quantize_seconds": q["seconds"], "objective": q["objective"],
                           "objective_rtn": q["objective_rtn"], "peak_rss_mib": q["peak_rss_mib"]}
                    rows.append(row)
                    lines.append(f"| {method} | {bits} | {group or 'per channel'} | {m['ppl']:.2f} | "
                                 f"{m['kld_mean']:.4f} | {100 * m['top1_agreement']:.1f}% | {q['seconds']:.1f} |")
        lines.append("")
    pathlib.Path(prefix + ".json").write_text(json.dumps(rows, indent=2) + "\n")
    pathlib.Path(prefix + ".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
