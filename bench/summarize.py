"""Same-run summaries of Google Benchmark JSON files (medians of the repetitions).

Usage: summarize.py RESULT.json [RESULT.json ...]
Each file is recognised by its benchmarks (tquant_bench_forward, _calib, _gptq, _train, _kernels or _eval); its
summary is printed and written beside it as NAME_summary.json (forward.json ->
forward_summary.json). Ratios are always between benchmarks of the same file, i.e. the same run.
"""
import json
import os
import statistics
import sys

TO_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def medians(path):
    """run_name -> the median row: the "median" aggregate when the run had repetitions,
    otherwise the median of the plain iteration rows (seconds kept in the row's time_unit)."""
    doc = json.load(open(path))
    runs, plain = {}, {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            raise SystemExit(f"{path}: {b['name']} failed: {b.get('error_message')}")
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                runs[b["run_name"]] = b
        else:
            plain.setdefault(b["run_name"], []).append(b)
    for name, rows in plain.items():
        if name not in runs:
            ordered = sorted(rows, key=lambda r: r["real_time"])
            mid = dict(ordered[(len(ordered) - 1) // 2])
            mid["real_time"] = statistics.median(r["real_time"] for r in rows)
            runs[name] = mid
    return doc.get("context", {}), runs


def seconds(row):
    return row["real_time"] * TO_SECONDS[row["time_unit"]]


def repetitions(rows):
    return max((r.get("repetitions", 1) for r in rows), default=0)


def forward_summary(runs):
    fwd = runs["BM_BertBaseForward/min_time:3.000/real_time"]
    gemm = runs["BM_BertBaseGemmsOnly/min_time:3.000/real_time"]
    ev = runs["BM_DefaultModelEvalCtx512/min_time:3.000/real_time"]
    return {
        "bert_base_forward_ms": fwd["real_time"],
        "bert_base_gemms_only_ms": gemm["real_time"],
        "bert_base_forward_gflops": fwd["GFLOPs"],
        "sgemm_gflops_same_shapes": gemm["GFLOPs"],
        "fraction_of_sgemm_throughput": gemm["real_time"] / fwd["real_time"],
        "default_model_eval_ctx512_tokens_per_second": ev["tokens_per_second"],
    }


def by_prefix(runs, prefix):
    """{variant: row} for run names PREFIX<variant>[/suffixes], in file order."""
    out = {}
    for name, row in runs.items():
        if name.startswith(prefix):
            out[name[len(prefix):].split("/")[0]] = row
    return out


def calib_summary(runs):
    calib = by_prefix(runs, "BM_Calibrate/")
    fwd = by_prefix(runs, "BM_Forward/")
    floor = next(r for n, r in runs.items() if n.startswith("BM_CalibForwardOnly"))
    fp = fwd["fp"]
    return {
        "calibration_tokens": int(floor["tokens"]),
        "calibration_seconds": {e: seconds(r) for e, r in calib.items()},
        "calibration_tokens_per_second": {e: r["tokens_per_second"] for e, r in calib.items()},
        "calibration_forward_only_seconds": seconds(floor),
        # calibrate_activations / the bare forward passes over the same batches
        "calibration_over_forward": {e: seconds(r) / seconds(floor) for e, r in calib.items()},
        "forward_tokens": int(fp["tokens"]),
        "forward_ms": {v: seconds(r) * 1e3 for v, r in fwd.items()},
        "forward_tokens_per_second": {v: r["tokens_per_second"] for v, r in fwd.items()},
        # fake-quantized forward / FP forward, same batch, same run
        "fake_quant_overhead_ratio": {v: seconds(r) / seconds(fp) for v, r in fwd.items() if v != "fp"},
        "repetitions": {"calibration": repetitions(list(calib.values()) + [floor]),
                        "forward": repetitions(fwd.values())},
    }


def gptq_summary(runs):
    gptq = runs["BM_Gptq/4096/0/iterations:2/real_time"]
    gptq_act = runs["BM_Gptq/4096/1/iterations:2/real_time"]
    sgemm = runs["BM_Sgemm/4096/iterations:3/real_time"]
    return {
        "gptq_4096_seconds": seconds(gptq),
        "gptq_4096_act_order_seconds": seconds(gptq_act),
        "gptq_gflops": gptq["GFLOP/s"],
        "gptq_gflops_reference_count": gptq["ref_GFLOP/s"],
        "sgemm_4096_gflops": sgemm["GFLOP/s"],
        # the GPTQ solve's achieved rate over sgemm's, same run
        "fraction_of_sgemm": gptq["GFLOP/s"] / sgemm["GFLOP/s"],
        "fraction_of_sgemm_reference_count": gptq["ref_GFLOP/s"] / sgemm["GFLOP/s"],
        "search_grid_4096_per_channel_seconds": seconds(runs["BM_SearchGrid/4096/0/iterations:1/real_time"]),
        "search_grid_4096_group128_seconds": seconds(runs["BM_SearchGrid/4096/128/iterations:1/real_time"]),
    }


def train_summary(runs):
    bert = runs["BM_TrainStepBertMini/min_time:3.000/real_time"]
    llama = runs["BM_TrainStepLlamaTiny/min_time:3.000/real_time"]
    sgemm = runs["BM_SgemmFfnShape/min_time:2.000/real_time"]
    return {
        "bert_mini_step_ms": seconds(bert) * 1e3,
        "bert_mini_tokens_per_second": bert["tokens_per_s"],
        "bert_mini_gemm_gflops": bert["gemm_GFLOP_per_s"],
        "llama_tiny_step_ms": seconds(llama) * 1e3,
        "llama_tiny_tokens_per_second": llama["tokens_per_s"],
        "llama_tiny_gemm_gflops": llama["gemm_GFLOP_per_s"],
        "sgemm_ffn_shape_gflops": sgemm["gemm_GFLOP_per_s"],
        # the step's counted GEMM work per second / a bare sgemm's, same run
        "bert_mini_fraction_of_sgemm": bert["gemm_GFLOP_per_s"] / sgemm["gemm_GFLOP_per_s"],
        "llama_tiny_fraction_of_sgemm": llama["gemm_GFLOP_per_s"] / sgemm["gemm_GFLOP_per_s"],
    }


def kernels_summary(runs):
    """Packed 4-bit GEMV over sgemv (float32 and int8 activations), int8 GEMM and the packed 4-bit
    GEMMs with int8 activations (Q4_0 and tquant 4-bit g32) over sgemm, per thread count (same
    run). A pair is reported when the run has both of its benchmarks: runs from before a
    benchmark existed, or filtered ones (--benchmark_filter), give the pairs they hold."""
    # (benchmark, reference, name of its time, scale of the time, name of reference / it)
    pairs = [
        ("BM_GemvQ4_0", "BM_GemvF32", "q4_0_gemv_us", 1e6, "q4_0_gemv_speedup_over_sgemv"),
        ("BM_GemvPacked4", "BM_GemvF32", "packed4_g32_gemv_us", 1e6, "packed4_gemv_speedup_over_sgemv"),
        # int8 activations, their quantization included
        ("BM_GemvQ4_0Q8", "BM_GemvF32", "q4_0_q8act_gemv_us", 1e6, "q4_0_q8act_gemv_speedup_over_sgemv"),
        ("BM_GemvPacked4Q8", "BM_GemvF32", "packed4_g32_q8act_gemv_us", 1e6,
         "packed4_q8act_gemv_speedup_over_sgemv"),
        ("BM_GemmInt8", "BM_GemmF32", "int8_gemm_ms", 1e3, "int8_gemm_speedup_over_sgemm"),
        ("BM_GemmInt8Peg6", "BM_GemmF32", "int8_peg6_gemm_ms", 1e3, "int8_peg6_speedup_over_sgemm"),
        ("BM_GemmQ4_0", "BM_GemmF32", "q4_0_fp32_act_gemm_ms", 1e3, "q4_0_gemm_speedup_over_sgemm"),
        # many tokens with int8 activations, their quantization included (the tiled kernels)
        ("BM_GemmQ4_0Q8", "BM_GemmF32", "q4_0_q8act_gemm_ms", 1e3, "q4_0_q8act_gemm_speedup_over_sgemm"),
        ("BM_GemmPacked4Q8", "BM_GemmF32", "packed4_g32_q8act_gemm_ms", 1e3,
         "packed4_q8act_gemm_speedup_over_sgemm"),
    ]
    out = {}
    for threads in ("1", "2"):
        def t(name):
            row = next((r for n, r in runs.items() if n.startswith(f"{name}/{threads}")), None)
            return seconds(row) if row else None
        gemv, gemm = t("BM_GemvF32"), t("BM_GemmF32")
        row = {}
        if gemv is not None:
            row["sgemv_4096_us"] = gemv * 1e6
        if gemm is not None:
            row["sgemm_512x4096x4096_ms"] = gemm * 1e3
        for bench, ref, time_key, scale, ratio_key in pairs:
            mine, base = t(bench), t(ref)
            if mine is None:
                continue
            row[time_key] = mine * scale
            if base is not None:
                row[ratio_key] = base / mine
        if row:
            out[f"threads_{threads}"] = row
    return out


def eval_summary(runs):
    """End-to-end evaluation (tquant_bench_eval): tokens/s of every variant and its ratio over F32
    on the same model and thread count (same run), with the perplexity each one reached."""
    out = {}
    for name, row in runs.items():
        model, variant, threads = name.split("/")[:3]
        entry = out.setdefault(model.removeprefix("BM_Eval"), {}).setdefault(f"{threads}_threads", {})
        entry[variant] = {"tokens_per_second": row["tokens_per_second"], "ppl": row["ppl"]}
    for per_model in out.values():
        for entry in per_model.values():
            f32 = entry.get("f32", {}).get("tokens_per_second")
            for v in entry.values():
                if f32:
                    v["speedup_over_f32"] = v["tokens_per_second"] / f32
    return out


def summarize(path):
    context, runs = medians(path)
    if any(n.startswith("BM_BertBaseForward") for n in runs):
        summary = forward_summary(runs)
    elif any(n.startswith("BM_Calibrate/") for n in runs):
        summary = calib_summary(runs)
    elif any(n.startswith("BM_Gptq/") for n in runs):
        summary = gptq_summary(runs)
    elif any(n.startswith("BM_TrainStep") for n in runs):
        summary = train_summary(runs)
    elif any(n.startswith("BM_Eval") for n in runs):
        summary = eval_summary(runs)
    elif any(n.startswith(("BM_GemvF32", "BM_GemmF32")) for n in runs):
        summary = kernels_summary(runs)
    else:
        raise SystemExit(f"{path}: no benchmarks this script knows")
    summary.setdefault("repetitions", repetitions(runs.values()))
    summary["statistic"] = "median of the repetitions"
    summary["context"] = {k: context[k] for k in ("date", "host_name", "num_cpus", "load_avg") if k in context}
    return summary


def main(paths):
    if not paths:
        raise SystemExit(__doc__)
    for path in paths:
        summary = summarize(path)
        out = os.path.splitext(path)[0] + "_summary.json"
        with open(out, "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
        print(f"# {path} -> {out}")
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
