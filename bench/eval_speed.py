"""End-to-end `tquant eval` speed of the default model on TinyStories, F32 vs Q4_0 vs W8A8, same run.

Usage: eval_speed.py TQUANT_BINARY OUT.json [--threads 1,2] [--repeats 3]
Variants (perplexity at ctx 512 over the whole eval file; tokens/s is eval's own figure: the
scoring passes only, not loading or calibration):
  f32            the FP model folder
  q4_0-gguf      the FP model exported to GGUF q4_0 (RTN, as llama-quantize --pure), held packed
  q4_0-gguf-q8act  the same GGUF with --q8-activations (int8 activation blocks, llama.cpp-style)
  q4_0-ckpt      a `tquant quantize --method rtn --wbits 4 --format q4_0` checkpoint, held packed
  w8a8-fake      recipe w8a8, fake quantization (float GEMMs on fake-quantized values)
  w8a8-int8      recipe w8a8 with --real-int8 (int8 GEMM), same calibration file
Each variant runs `repeats` times per thread count, interleaved; the median is reported.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
MODEL = os.path.join(SHARED, "models", "tinystories-656k")
DATA = os.path.join(SHARED, "data", "tinystories", "eval.txt")
CALIB = os.path.join(SHARED, "data", "tinystories", "calib.txt")


def run(cmd):
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")
    return proc.stdout


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    binary, out = argv[0], argv[1]
    threads = [1, 2]
    repeats = 3
    if "--threads" in argv:
        threads = [int(t) for t in argv[argv.index("--threads") + 1].split(",")]
    if "--repeats" in argv:
        repeats = int(argv[argv.index("--repeats") + 1])
    tmp = tempfile.mkdtemp(prefix="tquant-eval-speed-")
    try:
        gguf = os.path.join(tmp, "q4_0.gguf")
        run([binary, "export", "--model", MODEL, "--format", "gguf", "--type", "q4_0", "--out", gguf])
        ckpt = os.path.join(tmp, "q4_0-ckpt")
        run([binary, "quantize", "--model", MODEL, "--method", "rtn", "--wbits", 4, "--format", "q4_0", "--calib", CALIB,
             "--calib-samples", 8, "--calib-len", 128, "--out", ckpt])
        calib = os.path.join(tmp, "w8a8.calibration.json")
        run([binary, "eval", "--model", MODEL, "--task", "ppl", "--data", DATA, "--max-tokens", 512, "--recipe", "w8a8",
             "--calib", CALIB, "--save-calibration", calib])
        w8a8 = ["--model", MODEL, "--recipe", "w8a8", "--load-calibration", calib]
        variants = {"f32": ["--model", MODEL], "q4_0-gguf": ["--model", gguf],
                    "q4_0-gguf-q8act": ["--model", gguf, "--q8-activations"], "q4_0-ckpt": ["--model", ckpt],
                    "w8a8-fake": w8a8, "w8a8-int8": w8a8 + ["--real-int8"]}
        rows = {t: {v: [] for v in variants} for t in threads}
        ppl = {}
        for _ in range(repeats):
            for t in threads:
                for name, args in variants.items():
                    report = os.path.join(tmp, "r.json")
                    run([binary, "--threads", t, "eval", *args, "--task", "ppl", "--data", DATA, "--ctx", 512,
                         "--json", report])
                    r = json.load(open(report))
                    rows[t][name].append(r["tokens_per_second"])
                    ppl[name] = r["metrics"]["ppl"]
        result = {"tokens_per_second_median": {str(t): {v: statistics.median(x) for v, x in rows[t].items()}
                                               for t in threads},
                  "tokens_per_second_all": {str(t): rows[t] for t in threads},
                  "speedup_over_f32": {str(t): {v: statistics.median(x) / statistics.median(rows[t]["f32"])
                                                for v, x in rows[t].items()} for t in threads},
                  "ppl": ppl, "repeats": repeats, "ctx": 512, "data": DATA, "model": MODEL,
                  "load_avg": os.getloadavg()}
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
