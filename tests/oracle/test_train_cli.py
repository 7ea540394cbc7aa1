"""End-to-end checks of `tquant pretrain` and `tquant finetune` as a user runs them.

 * A pretraining run killed with SIGKILL after a checkpoint and continued with --resume ends with
   the same model.safetensors, byte for byte, as the uninterrupted run.
 * The checkpoints are model folders that `tquant eval` and `tquant quantize` load as they are.
 * The loss falls: the last logged window is well below the first (by 0.5 nats).
 * Fine-tuning reports per epoch the dev score that `tquant eval --task glue` gives for the saved
   model, and the summary's median is the median of the seeds' final scores.
 * Bad input fails with a non-zero exit and a message naming the problem.
"""
import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def must(cmd):
    r = run(cmd)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def fails(cmd, *needles):
    r = run(cmd)
    msg = r.stdout + r.stderr
    if r.returncode == 0:
        raise SystemExit(f"FAIL: expected an error from {' '.join(cmd)}")
    for n in needles:
        if n not in msg:
            raise SystemExit(f"FAIL: the error of {' '.join(cmd)} lacks {n!r}:\n{msg}")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def glue_subset(shared, task, tmp, n_train, n_dev):
    """The header and the first examples of a GLUE task's train and dev TSVs, as files in tmp."""
    out = []
    for split, n in (("train", n_train), ("dev", n_dev)):
        with open(os.path.join(shared, "data", "glue", task, f"{split}.tsv")) as f:
            lines = f.readlines()
        path = os.path.join(tmp, f"{task.lower()}-{split}.tsv")
        open(path, "w").writelines(lines[:n + 1])
        out.append(path)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tquant", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    tq = a.tquant
    tmp = os.path.join(a.tmp, "train_cli")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    stories = os.path.join(a.shared, "data", "tinystories", "calib.txt")
    tokenizer = os.path.join(a.shared, "models", "tinystories-656k")
    size = os.path.join(tmp, "size.json")
    with open(size, "w") as f:
        json.dump({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "intermediate_size": 64}, f)

    # --- pretraining, killed and resumed ----------------------------------------------------
    base = [tq, "--threads", "2", "pretrain", "--arch", "llama", "--size", size, "--data", stories,
            "--tokenizer", tokenizer, "--seq-len", "64", "--batch", "8", "--micro-batch", "4",
            "--steps", "40", "--lr", "1e-2", "--warmup", "4", "--save-every", "8", "--log-every", "8",
            "--seed", "3"]
    whole = os.path.join(tmp, "whole")
    out = must(base + ["--out", whole])
    log = json.load(open(os.path.join(whole, "trainer_state.json")))["log"]
    assert log[-1]["loss"] < log[0]["loss"] - 0.5, f"the loss did not fall: {log[0]['loss']} -> {log[-1]['loss']}"
    assert not os.path.exists(os.path.join(whole, "optimizer.safetensors")), "a finished run keeps optimizer state"

    killed = os.path.join(tmp, "killed")
    p = subprocess.Popen(base + ["--out", killed], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = os.path.join(killed, "trainer_state.json")
    deadline = time.time() + 120
    step = 0
    while time.time() < deadline and p.poll() is None:
        try:
            step = json.load(open(state))["step"]
        except (OSError, ValueError, KeyError):
            step = 0
        if step >= 16:
            break
        time.sleep(0.005)
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait()
    saved = json.load(open(state))
    if saved["completed"]:
        print("note: the run finished before it could be killed; resume then has nothing to do")
    leftovers = [n for n in os.listdir(tmp) if ".tmp-" in n]
    for n in leftovers:  # SIGKILL cannot be caught: a partial folder may remain beside, never in place
        shutil.rmtree(os.path.join(tmp, n))
    must(base + ["--out", killed, "--resume"])
    assert read(os.path.join(killed, "model.safetensors")) == read(os.path.join(whole, "model.safetensors")), \
        f"resumed at step {saved['step']}: weights differ from the uninterrupted run"
    print(f"PASS resume: killed at checkpoint step {saved['step']}, resumed, identical weights")

    # The checkpoint is a model folder for the other commands.
    ev = must([tq, "eval", "--model", whole, "--task", "ppl", "--data", stories, "--ctx", "64", "--max-tokens", "2000"])
    assert "ppl" in ev
    must([tq, "quantize", "--model", whole, "--method", "rtn", "--wbits", "4", "--calib", stories,
          "--calib-samples", "4", "--calib-len", "64", "--out", os.path.join(tmp, "whole-rtn")])
    print("PASS eval and quantize load the checkpoint")

    # Errors.
    other_lr = [("2e-2" if x == "1e-2" else x) for x in base]
    fails(other_lr + ["--out", killed, "--resume"], "--lr", "resume")
    fails(base + ["--out", whole], "--resume")
    os.makedirs(os.path.join(tmp, "busy"))
    open(os.path.join(tmp, "busy", "x"), "w").close()
    fails(base + ["--out", os.path.join(tmp, "busy")], "busy", "not empty")
    fails([tq, "pretrain", "--arch", "bert", "--data", stories, "--tokenizer", tokenizer, "--out",
           os.path.join(tmp, "nobert")], "[PAD]")
    fails(base[:-2] + ["--data", os.path.join(tmp, "missing.txt"), "--out", os.path.join(tmp, "m2")], "missing.txt")
    print("PASS errors")

    # --- fine-tuning ------------------------------------------------------------------------
    tok = os.path.join(tmp, "wp")
    must([tq, "train-tokenizer", "--type", "wordpiece", "--vocab-size", "600", "--lowercase", "--data", stories,
          "--out", tok])
    bert = os.path.join(tmp, "bert")
    must([tq, "pretrain", "--arch", "bert", "--size", "tiny", "--data", stories, "--tokenizer", tok, "--out", bert,
          "--steps", "3", "--batch", "8", "--micro-batch", "8", "--seq-len", "64"])
    train, dev = glue_subset(a.shared, "RTE", tmp, 48, 40)
    ft = os.path.join(tmp, "ft")
    must([tq, "finetune", "--model", bert, "--glue-task", "rte", "--train", train, "--dev", dev, "--out", ft,
          "--epochs", "2", "--batch", "16", "--seeds", "1,2,3"])
    summary = json.load(open(os.path.join(ft, "finetune_summary.json")))
    finals = [s["final"] for s in summary["seeds"]]
    assert len(finals) == 3 and all(len(s["epochs"]) == 2 for s in summary["seeds"])
    assert abs(summary["median_final"] - statistics.median(finals)) < 1e-12
    # The reported dev score is what `tquant eval` gives for the saved model.
    js = os.path.join(tmp, "eval.json")
    must([tq, "eval", "--model", os.path.join(ft, "seed-2"), "--task", "glue", "--glue-task", "rte", "--data", dev,
          "--json", js])
    score = json.load(open(js))["metrics"]["score"]
    want = summary["seeds"][1]["final"]
    assert abs(score - want) < 1e-12, f"finetune reported {want}, tquant eval gives {score}"
    print(f"PASS finetune: finals {finals}, median {summary['median_final']}")

    # --- quantization-aware training --------------------------------------------------------
    # STS-B: its score (Pearson/Spearman) is continuous, so agreement to 1e-12 is a real check.
    train, dev = glue_subset(a.shared, "STS-B", tmp, 96, 80)
    ft = os.path.join(tmp, "ft-stsb")
    must([tq, "finetune", "--model", bert, "--glue-task", "stsb", "--train", train, "--dev", dev, "--out", ft,
          "--epochs", "2", "--batch", "16", "--lr", "1e-3", "--seeds", "2"])
    os.rename(os.path.join(ft, "model"), os.path.join(ft, "seed-2"))
    # This tiny model's regression outputs span a range that 8 bits cannot resolve (PTQ gives a
    # constant prediction too), so its recipe leaves the pooler and the logits in FP.
    recipe = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "recipes", "w4a8.json")))
    recipe["name"] = "w4a8-body"
    recipe["activations"]["points"] = [p for p in recipe["activations"]["points"] if p not in ("logits", "pooler.out")]
    recipe_file = os.path.join(tmp, "w4a8-body.json")
    json.dump(recipe, open(recipe_file, "w"))
    qat = os.path.join(tmp, "qat")
    must([tq, "qat", "--model", os.path.join(ft, "seed-2"), "--recipe", recipe_file, "--glue-task", "stsb", "--train", train,
          "--dev", dev, "--out", qat, "--epochs", "1", "--batch", "8", "--lr", "1e-3", "--seeds", "1"])
    run_dir = os.path.join(qat, "model")
    cal = json.load(open(os.path.join(run_dir, "calibration.json")))
    assert cal["recipe"] == "w4a8-body" and cal["points"] and cal["weight_params"], "calibration.json is incomplete"
    assert all(w["bits"] == 4 for w in cal["weight_params"].values())
    qsum = json.load(open(os.path.join(qat, "finetune_summary.json")))
    # The reported quantized dev score is what `tquant eval` gives with the learnt quantizers.
    must([tq, "eval", "--model", run_dir, "--task", "glue", "--glue-task", "stsb", "--data", dev, "--recipe", recipe_file,
          "--load-calibration", os.path.join(run_dir, "calibration.json"), "--json", js])
    score = json.load(open(js))["metrics"]["score"]
    assert abs(score - qsum["median_final"]) < 1e-12, f"qat reported {qsum['median_final']}, tquant eval gives {score}"
    # The scales moved from their initial values (they are trained).
    assert 0 < abs(score) < 1, f"a continuous score is expected, got {score}"
    fails([tq, "qat", "--model", bert, "--recipe", "w4a8", "--glue-task", "stsb", "--train", train, "--dev", dev,
           "--out", os.path.join(tmp, "qat-mlm")], "finetune first")
    print(f"PASS qat: quantized dev score {score} reproduced by tquant eval --load-calibration")

    # --- Token-Wise Clipping, fine stage ----------------------------------------------------
    # (That training lowers the logit error is tested in train_qat_test; here, the command runs it.)
    must([tq, "eval", "--model", os.path.join(ft, "seed-2"), "--task", "glue", "--glue-task", "stsb", "--data", dev,
          "--recipe", "w6a6-os", "--gamma-migration", "--token-clipping", "fine", "--calib", train,
          "--calib-samples", "32", "--json", js])
    fine = json.load(open(js))["token_clipping_fine"]
    assert len(fine["epoch_mse"]) == 3 and all(math.isfinite(x) for x in fine["epoch_mse"]), fine
    assert fine["mse_before"] > 0 and math.isfinite(fine["mse_after"]), fine
    fails([tq, "eval", "--model", os.path.join(ft, "seed-2"), "--task", "glue", "--glue-task", "stsb", "--data", dev,
           "--recipe", "w6a6-os", "--token-clipping", "finest", "--calib", train], "--token-clipping", "finest")
    print(f"PASS token-clipping fine: logit MSE {fine['mse_before']:.4g} -> {fine['mse_after']:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
