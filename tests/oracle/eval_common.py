"""Shared plumbing of the `tquant eval` oracle tests (test_eval_ppl.py, test_eval_glue.py).

Only process handling and comparisons live here; every expected value is computed by the test
scripts themselves from numpy_reference.py / tokenizer_oracle.py, never taken from tquant.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import traceback


class Failure(Exception):
    pass


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tquant", required=True)
    parser.add_argument("--shared", required=True)
    parser.add_argument("--tmp", required=True)
    parser.add_argument("--filter", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    args.tmp = os.path.abspath(args.tmp)
    os.makedirs(args.tmp, exist_ok=True)
    return args


def _fresh(path):
    if os.path.exists(path):
        os.remove(path)
    return path


def run_tquant(args, cmd, timeout=300, simd=None):
    """Runs `tquant CMD` (TQUANT_SIMD=simd when given) and returns its stdout; a non-zero exit
    is a Failure carrying the command and its stderr."""
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    if simd:
        env["TQUANT_SIMD"] = simd
    proc = subprocess.run([args.tquant] + [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if proc.returncode != 0:
        raise Failure(f"tquant {' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stderr.strip()}\n"
                      f"{proc.stdout.strip()[-1500:]}")
    return proc.stdout


class DefaultModel:
    """The default model, its TinyStories calibration and eval text, and quantized checkpoints of
    it that several cases share (each tag is quantized once per run)."""

    def __init__(self, args):
        self.args = args
        self.model = os.path.join(args.shared, "models", "tinystories-656k")
        self.calib = os.path.join(args.shared, "data", "tinystories", "calib.txt")
        self.data = os.path.join(args.shared, "data", "tinystories", "eval.txt")
        self._checkpoints = {}

    def path(self, *parts):
        return os.path.join(self.args.tmp, *parts)

    def checkpoint(self, tag, flags, calib_samples):
        if tag not in self._checkpoints:
            out = self.path(tag)
            shutil.rmtree(out, ignore_errors=True)
            run_tquant(self.args, ["quantize", "--model", self.model, *flags, "--calib", self.calib,
                                   "--calib-samples", calib_samples, "--calib-len", 128, "--out", out])
            self._checkpoints[tag] = out
        return self._checkpoints[tag]


def run_eval(args, tag, eval_args, timeout=300, threads=None):
    """Runs `tquant [--threads N] eval EVAL_ARGS --json TMP/TAG.json`; returns the parsed JSON
    report. A stale report from an earlier run is removed first so it cannot pass for a new one."""
    out = _fresh(os.path.join(args.tmp, f"{tag}.json"))
    cmd = [args.tquant] + (["--threads", str(threads)] if threads else []) + ["eval"]
    cmd += [str(a) for a in eval_args] + ["--json", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise Failure(f"tquant exited {proc.returncode}: {' '.join(cmd)}\n--- stderr ---\n"
                      f"{proc.stderr.strip()}\n--- stdout ---\n{proc.stdout.strip()[-2000:]}")
    try:
        with open(out) as f:
            return json.load(f)
    except Exception as e:  # a missing or malformed report is a C++ bug worth naming precisely
        raise Failure(f"{out}: cannot read the --json report: {e}\nstdout:\n{proc.stdout.strip()}")


def run_eval_failing(args, tag, eval_args, must_mention, timeout=300):
    """`tquant eval` must exit 1 (its clean-error code; 2 is an internal error, negative a
    signal), name every string of must_mention on stderr and leave nothing at the --json path."""
    out = _fresh(os.path.join(args.tmp, f"{tag}.json"))
    cmd = [args.tquant, "eval"] + [str(a) for a in eval_args] + ["--json", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 1:
        raise Failure(f"expected exit code 1 (clean error), got {proc.returncode}: {' '.join(cmd)}\n"
                      f"stderr:\n{proc.stderr.strip()}\nstdout:\n{proc.stdout.strip()[-1000:]}")
    missing = [s for s in must_mention if s not in proc.stderr]
    if missing:
        raise Failure(f"stderr does not mention {missing}; stderr:\n{proc.stderr.strip()}")
    if os.path.exists(out):
        raise Failure(f"{out} was written despite the error")
    lines = proc.stderr.strip().splitlines()
    return f"exit 1: {lines[-1][:240] if lines else '(empty stderr)'}"


def metric(report, key):
    """report["metrics"][key] as a finite float, or a Failure naming what is there instead."""
    metrics = report.get("metrics")
    if not isinstance(metrics, dict) or key not in metrics:
        raise Failure(f"the JSON report has no metrics.{key}: {json.dumps(report)[:600]}")
    value = metrics[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise Failure(f"metrics.{key} is {value!r}, not a finite number")
    return float(value)


class Checks:
    """Collects comparisons of one case so that a failure reports all of them at once (which
    metric is off, and by how much, usually tells the bug apart)."""

    def __init__(self):
        self.lines, self.bad = [], []

    def close(self, name, got, want, rtol=0.0, atol=0.0):
        err = abs(got - want)
        limit = atol + rtol * abs(want)
        line = f"{name} {got:.10g} vs {want:.10g} (|err| {err:.2e}, limit {limit:.2e})"
        (self.bad if not err <= limit else self.lines).append(line)

    def equal(self, name, got, want):
        line = f"{name} {got!r} vs {want!r}"
        (self.bad if got != want else self.lines).append(line)

    def true(self, name, ok, detail):
        (self.lines if ok else self.bad).append(f"{name}: {detail}")

    def finish(self):
        if self.bad:
            raise Failure("; ".join(self.bad) + ("\n    ok: " + "; ".join(self.lines) if self.lines else ""))
        return "; ".join(self.lines)


def run_cases(cases, name_filter):
    """cases: list of (name, callable returning a one-line detail). Prints one line per case and
    the final `N passed, M failed`; returns the process exit code."""
    passed = failed = 0
    for name, case in cases:
        if name_filter not in name:
            continue
        try:
            detail = case()
            passed += 1
            print(f"PASS {name}: {detail}", flush=True)
        except Failure as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception:  # an oracle crash is a failure too, with its traceback
            failed += 1
            print(f"FAIL {name}: unexpected exception\n{traceback.format_exc()}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
