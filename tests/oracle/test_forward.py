"""Oracle test: `tquant forward` against the float64 NumPy reference (numpy_reference.py).

For every tiny generated checkpoint (tiny_models.py) and the real TinyStories LLaMA it runs
    tquant forward --model DIR --ids-json FILE --out FILE.npy
on a batch of 2 (one row right-padded, with attention_mask; BERT rows are sentence pairs with
token_type_ids) and requires max |tquant - ref| <= 1e-4 * max(1, max |ref|) over unpadded
positions. It also checks that bad inputs fail cleanly, and sanity-checks the oracle itself so
that a broken reference cannot make the C++ look wrong (or right).

Usage (ctest passes these): test_forward.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
Ends with "N passed, M failed"; exits non-zero on any failure.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_reference  # noqa: E402
import safetensors_py  # noqa: E402
import tiny_models  # noqa: E402

RTOL = 1e-4
REAL_MODEL = "models/tinystories-656k"

# The first two lines of shared/data/tinystories/eval.txt joined by a space, tokenized (BOS
# first) by a hand-written BPE over tokenizer.json's merges. The test decodes them back through the
# vocabulary and compares with TEXT, so the list cannot silently drift from the text.
TEXT = ('Once upon a time, there was a little girl named Lily. She had an unusual toy. It was a '
        'big pot with a long cord. She loved to play with it all day. One day, as she was playing, '
        'a small bird came to her. The bird said, "Hello, little girl! Can you help me?" Lily '
        'looked at the bird and said, "Yes, I can help you. What do you need?"')
TEXT_IDS = [1, 80, 147, 201, 282, 215, 286, 598, 1662, 992, 148, 823, 73, 578, 408, 885, 202,
            917, 758, 1019, 1385, 56, 163, 436, 1607, 1053, 84, 235, 8, 941, 1218, 1171, 313,
            552, 319, 1351, 536, 776, 204, 1443, 1890, 271, 1690, 498, 452, 417, 303, 1119, 319,
            135, 928, 1739, 1881, 84, 1228, 649, 266, 1148, 1885]


from eval_common import Failure, run_cases  # noqa: E402  (one case runner for every oracle script)


# ---------------------------------------------------------------------------------------------
# Running tquant
# ---------------------------------------------------------------------------------------------

def run_tquant(args, model_dir, batch, tag):
    """Runs `tquant forward` on `batch` (dict as in --ids-json, or {"text": STR} plus optional
    "no_special": True for the --text path); returns the float32 output."""
    out_path = os.path.join(args.tmp, f"{tag}.npy")
    if os.path.exists(out_path):
        os.remove(out_path)
    cmd = [args.tquant, "forward", "--model", model_dir, "--out", out_path]
    if "text" in batch:
        cmd += ["--text", batch["text"]] + (["--no-special"] if batch.get("no_special") else [])
    else:
        ids_path = os.path.join(args.tmp, f"{tag}.ids.json")
        with open(ids_path, "w") as f:
            json.dump(batch, f)
        cmd += ["--ids-json", ids_path]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise Failure(f"tquant exited {proc.returncode}: {' '.join(cmd)}\n--- stderr ---\n"
                      f"{proc.stderr.strip()}\n--- stdout ---\n{proc.stdout.strip()[-2000:]}")
    try:
        out = np.load(out_path, allow_pickle=False)
    except Exception as e:  # a wrong .npy header is a C++ bug worth naming precisely
        raise Failure(f"{out_path} is not a readable .npy: {e}")
    if out.dtype != np.float32:
        raise Failure(f"output dtype is {out.dtype}, expected float32")
    return out


def compare(out, ref, mask):
    """mask [B,T] selects the compared positions when the output has a T axis."""
    if out.shape != ref.shape:
        raise Failure(f"output shape {out.shape}, reference {ref.shape}")
    if out.ndim == 3:
        keep = mask.astype(bool)
        o, r = out[keep], ref[keep]  # [positions, features]
        where = np.argwhere(keep)
    else:
        o, r = out, ref
        where = np.array([[b, -1] for b in range(out.shape[0])])
    if not np.all(np.isfinite(o)):
        bad = np.argwhere(~np.isfinite(o))[0]
        b, t = where[bad[0]]
        raise Failure(f"non-finite output at batch {b}, position {t}, index {bad[1]}: {o[tuple(bad)]}")
    scale = max(1.0, float(np.abs(r).max()))
    err = np.abs(o.astype(np.float64) - r)
    worst = np.unravel_index(int(err.argmax()), err.shape)
    b, t = where[worst[0]]
    detail = (f"max|err| {err.max():.3e} at batch {b}, position {t}, index {worst[1]}: "
              f"tquant {o[worst]:.7g} vs reference {r[worst]:.7g} (max|ref| {np.abs(r).max():.4g}, "
              f"limit {RTOL * scale:.3e})")
    if err.max() > RTOL * scale:
        if out.ndim == 3:  # where it starts going wrong helps tell a mask bug from a math bug
            per_pos = err.max(axis=1)
            bad = [f"({where[i][0]},{where[i][1]})" for i in np.flatnonzero(per_pos > RTOL * scale)]
            detail += f"\n    positions over the limit (batch,pos): {' '.join(bad[:40])}"
            if len(bad) > 40:
                detail += f" ... ({len(bad)} in all)"
        raise Failure(detail)
    return detail


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def lm_batch(vocab, seed, lengths=(12, 7), low=3):
    """Right-padded rows of random ids (pad id 0, masked out)."""
    rng = np.random.default_rng(seed)
    t = max(lengths)
    ids = np.zeros((len(lengths), t), dtype=np.int64)
    mask = np.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(low, vocab, n)
        mask[b, :n] = 1
    return {"input_ids": ids.tolist(), "attention_mask": mask.tolist()}


def bert_pair_batch(vocab, seed):
    """[CLS] a [SEP] b [SEP] pairs with segment ids 0/1; row 1 is shorter and right-padded."""
    rng = np.random.default_rng(seed)
    cls, sep, t = 2, 3, 12
    rows, types, masks = [], [], []
    for a_len, b_len in ((5, 4), (3, 2)):
        a = rng.integers(5, vocab, a_len).tolist()
        b = rng.integers(5, vocab, b_len).tolist()
        row = [cls] + a + [sep] + b + [sep]
        typ = [0] * (a_len + 2) + [1] * (b_len + 1)
        pad = t - len(row)
        rows.append(row + [0] * pad)
        types.append(typ + [0] * pad)
        masks.append([1] * len(row) + [0] * pad)
    return {"input_ids": rows, "token_type_ids": types, "attention_mask": masks}


def reference(model_dir, batch):
    return numpy_reference.forward(model_dir, batch["input_ids"], batch.get("attention_mask"),
                                   batch.get("token_type_ids"))


def mask_of(batch):
    ids = np.asarray(batch["input_ids"])
    return np.asarray(batch["attention_mask"]) if "attention_mask" in batch else np.ones_like(ids)


# ---------------------------------------------------------------------------------------------
# Cases: each returns a one-line detail on success or raises Failure
# ---------------------------------------------------------------------------------------------

def forward_case(args, name, model_dir, batch, expect_shape, tquant_input=None):
    """tquant_input, if given, is what tquant gets instead of `batch` (e.g. the text that
    should tokenize to batch's ids)."""
    def case():
        ref = reference(model_dir, batch)
        if ref.shape != expect_shape:  # guards the oracle too: the head must be the right one
            raise Failure(f"reference shape {ref.shape}, expected {expect_shape} (oracle bug)")
        out = run_tquant(args, model_dir, tquant_input or batch, name)
        if tquant_input and out.shape != ref.shape:
            raise Failure(f"output shape {out.shape}, reference {ref.shape}: the text tokenized "
                          f"to {out.shape[1]} ids, expected {ref.shape[1]}: {batch['input_ids'][0]}")
        return compare(out, ref, mask_of(batch))
    return name, case


def expected_shape(config, batch):
    b, t = np.shape(batch["input_ids"])
    arch = config["architectures"][0]
    if arch == "BertModel":
        return (b, t, config["hidden_size"])
    if arch == "BertForSequenceClassification":
        n = len(config["id2label"]) if "id2label" in config else config.get("num_labels", 2)
        return (b, n)
    return (b, t, config["vocab_size"])


def tiny_cases(args):
    cases = []
    folders = tiny_models.build_all(os.path.join(args.tmp, "models"))
    for i, (name, folder) in enumerate(folders.items()):
        config = numpy_reference.load_config(folder)
        if name.startswith("bert"):
            batch = bert_pair_batch(config["vocab_size"], 1000 + i)
        else:
            batch = lm_batch(config["vocab_size"], 1000 + i)
        cases.append(forward_case(args, name, folder, batch, expected_shape(config, batch)))
    # Defaults of the ids JSON: no attention_mask (all ones), no token_type_ids (all zero).
    single = {"input_ids": [[2, 17, 33, 99, 5, 61, 3]]}
    config = numpy_reference.load_config(folders["bert-model"])
    cases.append(forward_case(args, "bert-model-no-mask-no-types", folders["bert-model"], single,
                              expected_shape(config, single)))
    return cases, folders


def real_model_cases(args):
    model = os.path.join(args.shared, REAL_MODEL)
    config = numpy_reference.load_config(model)
    rng = np.random.default_rng(7)
    lengths = (1, 17, 200)
    ids = [[1] + rng.integers(3, 2048, n - 1).tolist() if n > 1 else [1] for n in lengths]
    t = max(lengths)
    batch = {"input_ids": [r + [0] * (t - len(r)) for r in ids],
             "attention_mask": [[1] * len(r) + [0] * (t - len(r)) for r in ids]}
    text = {"input_ids": [TEXT_IDS]}
    bare = {"input_ids": [TEXT_IDS[1:]]}  # --no-special: no BOS
    return [
        forward_case(args, "tinystories-lengths-1-17-200", model, batch, expected_shape(config, batch)),
        forward_case(args, "tinystories-text-ids", model, text, expected_shape(config, text)),
        # The --text path: tokenizer + forward must equal the forward of the known ids.
        forward_case(args, "tinystories-text-flag", model, text, expected_shape(config, text),
                     tquant_input={"text": TEXT}),
        forward_case(args, "tinystories-text-flag-no-special", model, bare,
                     expected_shape(config, bare), tquant_input={"text": TEXT, "no_special": True}),
    ]


def failing_case(args, name, model_dir, must_mention):
    """tquant must exit 1 (its clean-error code, not 2 = internal error, not a signal) and
    stderr must contain every string in must_mention."""
    def case():
        batch = {"input_ids": [[1, 5, 9]]}
        ids_path = os.path.join(args.tmp, f"{name}.ids.json")
        with open(ids_path, "w") as f:
            json.dump(batch, f)
        out_path = os.path.join(args.tmp, f"{name}.npy")
        cmd = [args.tquant, "forward", "--model", model_dir, "--ids-json", ids_path, "--out", out_path]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 1:
            raise Failure(f"expected exit code 1 (clean error), got {proc.returncode}; stderr:\n"
                          f"{proc.stderr.strip()}")
        missing = [s for s in must_mention if s not in proc.stderr]
        if missing:
            raise Failure(f"stderr does not mention {missing}; stderr:\n{proc.stderr.strip()}")
        if os.path.exists(out_path):
            raise Failure(f"{out_path} was written despite the error")
        return f"exit 1: {proc.stderr.strip().splitlines()[-1][:200]}"
    return name, case


def error_cases(args, folders):
    root = os.path.join(args.tmp, "bad-models")
    shutil.rmtree(root, ignore_errors=True)

    t5 = os.path.join(root, "t5")
    os.makedirs(t5)
    with open(os.path.join(t5, "config.json"), "w") as f:
        json.dump({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5",
                   "d_model": 32, "num_layers": 2, "num_heads": 4, "vocab_size": 100}, f)
    safetensors_py.write(os.path.join(t5, "model.safetensors"),
                         [("shared.weight", "F32", np.zeros((100, 32), np.float32))], {"format": "pt"})

    broken = os.path.join(root, "malformed-config")
    shutil.copytree(folders["llama-gqa"], broken)
    with open(os.path.join(broken, "config.json"), "w") as f:
        f.write('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64,')  # truncated JSON

    missing = os.path.join(root, "missing-tensor")
    shutil.copytree(folders["llama-untied"], missing)
    path = os.path.join(missing, "model.safetensors")
    tensors, metadata = safetensors_py.read(path)
    gone = "model.layers.1.mlp.up_proj.weight"
    safetensors_py.write(path, [(n, "F32", a) for n, a in tensors.items() if n != gone], metadata)

    return [
        failing_case(args, "error-unsupported-architecture", t5,
                     ["T5ForConditionalGeneration"] + list(numpy_reference.SUPPORTED)),
        failing_case(args, "error-malformed-config", broken, ["config.json"]),
        failing_case(args, "error-missing-tensor", missing, [gone]),
    ]


def oracle_self_checks(args):
    """Checks of the oracle alone, so a wrong reference is caught here, not blamed on C++."""
    def bf16_rounding():
        # halfway cases must round to even; 1+2^-7 is exact in bfloat16
        x = np.array([1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -7, -2.5], np.float32)
        got = safetensors_py.bf16_bits_to_float32(safetensors_py.float32_to_bf16_bits(x))
        want = np.array([1.0, 1.0 + 2 ** -6, 1.0 + 2 ** -7, -2.5], np.float32)
        if not np.array_equal(got, want):
            raise Failure(f"bf16 rounding gave {got}, want {want}")
        return "round-to-nearest-even ok"

    def real_model_perplexity():
        # A trained model must find real text far likelier than chance (ln 2048 = 7.62 nats).
        # The reference scores 2.44; pairing RoPE dimensions interleaved (GPT-J style) instead of
        # rotate_half gives 3.92, and a wrong GQA head mapping about 11.
        model = os.path.join(args.shared, REAL_MODEL)
        with open(os.path.join(model, "tokenizer.json")) as f:
            vocab = json.load(f)["model"]["vocab"]
        pieces = {i: s for s, i in vocab.items()}
        decoded = "".join(pieces[i] for i in TEXT_IDS[1:]).replace("\u2581", " ")
        if decoded != " " + TEXT:
            raise Failure(f"TEXT_IDS decode to {decoded!r}")
        logits = numpy_reference.forward(model, [TEXT_IDS])[0]
        logp = logits - logits.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        nll = -logp[np.arange(len(TEXT_IDS) - 1), TEXT_IDS[1:]].mean()
        if not nll < 3.0:
            raise Failure(f"reference mean NLL {nll:.3f} nats on real text; expected < 3.0")
        return f"reference mean NLL {nll:.3f} nats/token (chance 7.62)"

    def safetensors_roundtrip():
        path = os.path.join(args.tmp, "roundtrip.safetensors")
        a = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
        safetensors_py.write(path, [("a", "F16", a), ("s", "F32", np.array(3.5, np.float32))], {"k": "v"})
        with open(path, "rb") as f:
            raw = f.read()
        n = int.from_bytes(raw[:8], "little")
        if n % 8 or len(raw) != 8 + n + 6 * 2 + 4:
            raise Failure(f"header length {n}, file size {len(raw)}")
        tensors, meta = safetensors_py.read(path)
        if meta != {"k": "v"} or not np.array_equal(tensors["a"], a.astype(np.float16)) \
                or tensors["s"].shape != () or tensors["s"] != 3.5:
            raise Failure("round trip changed the data")
        return "ok"

    return [("oracle-bf16-rounding", bf16_rounding),
            ("oracle-safetensors-roundtrip", safetensors_roundtrip),
            ("oracle-real-model-perplexity", real_model_perplexity)]


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tquant", required=True)
    parser.add_argument("--shared", required=True)
    parser.add_argument("--tmp", required=True)
    parser.add_argument("--filter", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    args.tmp = os.path.abspath(args.tmp)
    os.makedirs(args.tmp, exist_ok=True)

    cases = oracle_self_checks(args)
    tiny, folders = tiny_cases(args)
    cases += tiny + real_model_cases(args) + error_cases(args, folders)

    return run_cases(cases, args.filter)


if __name__ == "__main__":
    sys.exit(main())
