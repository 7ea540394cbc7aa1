"""Gamma Migration is exact: on every supported architecture (the tiny generated checkpoints
plus the real default model), `tquant forward --gamma-migration` must reproduce the FP outputs
to 1e-5 relative, including a LayerNorm model whose γ has exact zeros and near-zeros."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402
import test_forward  # noqa: E402
import tiny_models  # noqa: E402


def with_tiny_gamma(src, dst):
    """Copies a BERT folder, setting some LayerNorm γ entries to 0 and 1e-9."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
    path = os.path.join(dst, "model.safetensors")
    tensors, meta = safetensors_py.read(path)
    out = []
    for name, arr in tensors.items():
        if name.endswith("LayerNorm.weight"):
            arr = arr.copy()
            arr[1] = 0.0
            arr[5] = 1e-9
        out.append((name, "F32" if arr.dtype == np.float32 else {"int64": "I64"}[str(arr.dtype)], arr))
    safetensors_py.write(path, out, metadata=meta or None)
    return dst


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tquant", required=True)
    p.add_argument("--shared", required=True)
    p.add_argument("--tmp", required=True)
    args = p.parse_args()
    os.makedirs(args.tmp, exist_ok=True)
    folders = tiny_models.build_all(os.path.join(args.tmp, "models"))
    folders["bert-tiny-gamma"] = with_tiny_gamma(folders["bert-cls3"], os.path.join(args.tmp, "models", "bert-tiny-gamma"))
    folders["default"] = os.path.join(args.shared, "models", "tinystories-656k")
    passed = failed = 0
    for name, folder in folders.items():
        vocab = json.load(open(os.path.join(folder, "config.json")))["vocab_size"]
        batch = test_forward.bert_pair_batch(vocab, 7) if name.startswith("bert") else test_forward.lm_batch(vocab, 7)
        try:
            base = test_forward.run_tquant(args, folder, batch, f"{name}-fp")
            migrated = run_migrated(args, folder, batch, name)
            mask = test_forward.mask_of(batch)
            sel = (lambda x: x[mask.astype(bool)]) if base.ndim == 3 else (lambda x: x)
            a, b = sel(base), sel(migrated)
            err = float(np.max(np.abs(a - b)))
            tol = 1e-5 * max(1.0, float(np.max(np.abs(a))))
            if not np.all(np.isfinite(b)) or err > tol:
                raise test_forward.Failure(f"max |fp - migrated| = {err:.3g} > {tol:.3g}")
            print(f"PASS {name}: max diff {err:.2e}")
            passed += 1
        except test_forward.Failure as e:
            print(f"FAIL {name}: {e}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def run_migrated(args, folder, batch, name):
    out = os.path.join(args.tmp, f"{name}-migrated.npy")
    ids = os.path.join(args.tmp, f"{name}-migrated.ids.json")
    json.dump(batch, open(ids, "w"))
    proc = subprocess.run([args.tquant, "forward", "--model", folder, "--ids-json", ids, "--gamma-migration",
                           "--out", out], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise test_forward.Failure(f"tquant --gamma-migration exited {proc.returncode}: {proc.stderr.strip()}")
    return np.load(out)


if __name__ == "__main__":
    sys.exit(main())
