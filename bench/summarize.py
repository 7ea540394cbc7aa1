"""Prints the same-run ratios from a Google Benchmark JSON file (medians of the repetitions)."""
import json
import sys

runs = {b["run_name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("aggregate_name") == "median"}
fwd = runs["BM_BertBaseForward/min_time:3.000/real_time"]
gemm = runs["BM_BertBaseGemmsOnly/min_time:3.000/real_time"]
ev = runs["BM_DefaultModelEvalCtx512/min_time:3.000/real_time"]
summary = {
    "bert_base_forward_ms": fwd["real_time"],
    "bert_base_gemms_only_ms": gemm["real_time"],
    "bert_base_forward_gflops": fwd["GFLOPs"],
    "sgemm_gflops_same_shapes": gemm["GFLOPs"],
    "fraction_of_sgemm_throughput": gemm["real_time"] / fwd["real_time"],
    "default_model_eval_ctx512_tokens_per_second": ev["tokens_per_second"],
}
print(json.dumps(summary, indent=2))
