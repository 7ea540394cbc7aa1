"""Oracle test: `tquant grad` (loss + every parameter's gradient) against float64 finite differences.

For tiny seeded checkpoints (tiny_models.py) it runs
    tquant grad --model DIR --batch-json FILE --out grads.safetensors
and checks the hand-written backward passes of the training engine against central finite
differences of the float64 NumPy forward (numpy_reference.py's llama_forward / bert_forward, which
share no code with the C++), with the loss written here from the task's definition: the MEAN over
all targets of softmax cross-entropy (causal LM: labels already shifted by the caller, -100 = no
target; masked LM; sequence classification) or of (pred - target)^2 (regression, num_labels 1).

Models: LLaMA with grouped-query attention, untied and tied (embed_only: the embedding must also
receive the tied head's gradient) and a tied lm_head_alias checkpoint with attention/MLP biases
(stored under lm_head.weight); BertForMaskedLM (tied decoder, padding, token_type_ids, 3 masked
positions per row); BertForSequenceClassification with 3 classes and with regression. Every batch
has a right-padded row and a token repeated inside the batch (embedding scatter-add).

Checks per model:
 * the loss ("loss" F32 [1] and metadata "loss_f64") equals the float64 loss;
 * the gradient file holds exactly one F32 gradient per stored floating tensor, shaped like it;
 * per tensor: 6 seeded random entries, the 2 entries of largest |tquant gradient| (plus, for
   embeddings, entries of the padding token's row and of the repeated token's row) against
   central differences, |g - g_fd| <= ENTRY_ATOL * max|g_tensor| + ENTRY_RTOL * |g_fd| (+ a floor
   of FLOOR * max|g_model| for gradients that are zero in exact arithmetic);
 * per tensor: a random full-tensor direction d, Σ g·d against (L(θ+εd) - L(θ-εd)) / 2ε
   (catches a gradient wrong only in entries the sampling missed);
 * one random direction over ALL parameters at once (catches a missing gradient anywhere).
Finite-difference steps are 1e-5 times each tensor's RMS. A negative-control case then mutates the
LLaMA gradients (negated tensor, swapped same-shape tensors, transposed square tensor, 1% scale
error, halved tied embedding, one zeroed embedding row, one zeroed tensor) and requires every
mutation to fail, so the tolerances are shown to be tight enough to see real bugs.

Usage (ctest passes these): test_train_grad.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
Ends with "N passed, M failed"; exits non-zero on any failure.
"""
import json
import os
import shutil
import subprocess
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_reference as ref  # noqa: E402
import safetensors_py  # noqa: E402
import tiny_models  # noqa: E402
from eval_common import Failure, parse_args, run_cases  # noqa: E402

ENV = dict(os.environ, OMP_WAIT_POLICY="passive")
STEP = 1e-5            # finite-difference step, relative to the tensor's RMS
# Per entry: |g - g_fd| <= ENTRY_ATOL * max|g_tensor| + ENTRY_RTOL * |g_fd| + FLOOR * max|g_model|.
# Correct float32 code lands near 3e-6 * max|g_tensor|; a sign, factor, transposition or missing
# term is O(1). FLOOR covers gradients that are exactly zero in exact arithmetic (BERT's key bias:
# softmax ignores a per-query constant), where float32 leaves ~1e-7 of noise.
ENTRY_ATOL = 2e-4
ENTRY_RTOL = 1e-3
FLOOR = 1e-5
# Directional: |g·d - fd| <= DIR_RTOL * (||g ∘ d||_2 + |fd|) + FLOOR * ||g_model ∘ d_model||_2
# (observed: below 1e-5 relative).
DIR_RTOL = 1e-3
LOSS_RTOL = 2e-5       # float32 loss vs float64
RANDOM_ENTRIES = 6
TOP_ENTRIES = 2
IGNORE = -100


# ---------------------------------------------------------------------------------------------
# float64 reference loss with perturbable weights
# ---------------------------------------------------------------------------------------------

class Reference:
    """The checkpoint's floating tensors as float64 arrays that the finite differences perturb
    in place; loss() runs numpy_reference's forward on them and applies the task's loss."""

    def __init__(self, folder, batch):
        self.cfg = ref.load_config(folder)
        self.arch = self.cfg["architectures"][0]
        self.w = ref.Weights(folder)
        # float64 copies, so that a perturbation is exact and Weights(...) sees it
        self.w.tensors = {n: (a.astype(np.float64) if a.dtype.kind == "f" else a)
                          for n, a in self.w.tensors.items()}
        self.params = [n for n, a in self.w.tensors.items() if a.dtype.kind == "f"]
        self.ids = np.asarray(batch["input_ids"], dtype=np.int64)
        self.mask = np.asarray(batch.get("attention_mask", np.ones_like(self.ids)), dtype=np.int64)
        self.types = np.asarray(batch.get("token_type_ids", np.zeros_like(self.ids)), dtype=np.int64)
        self.labels = np.asarray(batch["labels"]) if "labels" in batch else None
        self.seq_labels = np.asarray(batch["sequence_labels"], dtype=np.float64) \
            if "sequence_labels" in batch else None

    def tensor(self, name):
        return self.w.tensors[name]

    def logits(self):
        if self.arch == "LlamaForCausalLM":
            return ref.llama_forward(self.cfg, self.w, self.ids, self.mask)
        return ref.bert_forward(self.arch, self.cfg, self.w, self.ids, self.mask, self.types)

    def loss(self):
        out = self.logits()
        if self.labels is not None:  # LM heads: per-position targets
            keep = self.labels != IGNORE
            return cross_entropy(out[keep], self.labels[keep])
        if out.shape[1] == 1:  # regression (num_labels 1): MSE of the squeezed score
            return float(np.mean((out[:, 0] - self.seq_labels) ** 2))
        return cross_entropy(out, self.seq_labels.astype(np.int64))


def cross_entropy(logits, targets):
    m = logits.max(-1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(-1))
    return float(np.mean(lse - logits[np.arange(len(targets)), targets]))


def rms(a):
    return max(float(np.sqrt(np.mean(a * a))), 1e-3)


# ---------------------------------------------------------------------------------------------
# Running tquant
# ---------------------------------------------------------------------------------------------

def run_grad(args, tag, folder, batch):
    batch_path = os.path.join(args.tmp, f"{tag}.batch.json")
    with open(batch_path, "w") as f:
        json.dump(batch, f)
    out = os.path.join(args.tmp, f"{tag}.grads.safetensors")
    if os.path.exists(out):
        os.remove(out)
    cmd = [args.tquant, "grad", "--model", folder, "--batch-json", batch_path, "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    if proc.returncode != 0:
        raise Failure(f"tquant exited {proc.returncode}: {' '.join(cmd)}\n--- stderr ---\n"
                      f"{proc.stderr.strip()}\n--- stdout ---\n{proc.stdout.strip()[-2000:]}")
    try:
        tensors, meta = safetensors_py.read(out)
    except Exception as e:
        raise Failure(f"{out} is not a readable safetensors file: {e}")
    return tensors, meta


# ---------------------------------------------------------------------------------------------
# Finite differences (computed once per model; any gradient set can then be judged against them)
# ---------------------------------------------------------------------------------------------

class FiniteDifferences:
    def __init__(self, model, grads, extra_entries):
        """grads: tquant's gradients (used only to choose the largest-|g| entries);
        extra_entries: {tensor name: [index tuples]} checked in addition."""
        self.model = model
        self.entries = {}   # name -> (list of index tuples, np.array of fd values)
        self.dirs = {}      # name -> (direction, fd of the directional derivative)
        for name in model.params:
            t = model.tensor(name)
            h = STEP * rms(t)
            rng = np.random.default_rng(zlib.crc32(name.encode()))
            idx = [tuple(int(i) for i in np.unravel_index(k, t.shape))
                   for k in rng.choice(t.size, min(RANDOM_ENTRIES, t.size), replace=False)]
            g = grads[name]
            for k in np.argsort(-np.abs(g), axis=None)[:TOP_ENTRIES]:
                idx.append(tuple(int(i) for i in np.unravel_index(int(k), t.shape)))
            idx += extra_entries.get(name, [])
            idx = list(dict.fromkeys(idx))  # unique, in order
            fd = np.array([self._entry(t, i, h) for i in idx])
            self.entries[name] = (idx, fd)
            d = rng.standard_normal(t.shape) * rms(t)
            self.dirs[name] = (d, self._direction({name: d}))
        rng = np.random.default_rng(12345)
        self.global_dir = {n: rng.standard_normal(model.tensor(n).shape) * rms(model.tensor(n))
                           for n in model.params}
        self.global_fd = self._direction(self.global_dir)

    def _entry(self, t, i, h):
        orig = t[i]
        t[i] = orig + h
        plus = self.model.loss()
        t[i] = orig - h
        minus = self.model.loss()
        t[i] = orig
        return (plus - minus) / (2 * h)

    def _direction(self, dirs):
        origs = {n: self.model.tensor(n).copy() for n in dirs}
        vals = []
        for sign in (1.0, -1.0):
            for n, d in dirs.items():
                self.model.tensor(n)[...] = origs[n] + sign * STEP * d
            vals.append(self.model.loss())
        for n in dirs:
            self.model.tensor(n)[...] = origs[n]
        return (vals[0] - vals[1]) / (2 * STEP)

    def judge(self, grads):
        """Returns (failure lines, stats dict) for a gradient set {name: array}."""
        bad, worst_entry, worst_use, worst_dir = [], 0.0, 0.0, 0.0
        model_scale = max(max(float(np.abs(grads[n]).max()), float(np.abs(fd).max()))
                          for n, (_, fd) in self.entries.items())
        model_spread = float(np.sqrt(sum(float(((grads[n].astype(np.float64) * d) ** 2).sum())
                                          for n, (d, _) in self.dirs.items())))
        for name, (idx, fd) in self.entries.items():
            g = grads[name].astype(np.float64)
            got = np.array([g[i] for i in idx])
            scale = max(float(np.abs(g).max()), float(np.abs(fd).max()))
            err = np.abs(got - fd)
            limit = ENTRY_ATOL * scale + ENTRY_RTOL * np.abs(fd) + FLOOR * model_scale
            if scale > FLOOR * model_scale:
                worst_entry = max(worst_entry, float(err.max()) / scale)
                worst_use = max(worst_use, float((err / limit).max()))
            over = np.flatnonzero(~(err <= limit))
            if len(over):
                bad.append(f"{name} {list(g.shape)}: {len(over)}/{len(idx)} entries off; "
                           + ", ".join(f"{idx[k]} tquant {got[k]:.6g} fd {fd[k]:.6g}" for k in over[:4])
                           + f" (max|g_tensor| {scale:.3g})" + diagnose(g, idx, fd))
            d, dfd = self.dirs[name]
            dot = float((g * d).sum())
            spread = float(np.sqrt(((g * d) ** 2).sum()))
            derr = abs(dot - dfd)
            dlimit = DIR_RTOL * (spread + abs(dfd)) + FLOOR * model_spread
            if spread + abs(dfd) > FLOOR * model_spread:
                worst_dir = max(worst_dir, derr / (spread + abs(dfd)))
            if not derr <= dlimit:
                bad.append(f"{name}: directional derivative g·d {dot:.6g} vs fd {dfd:.6g} "
                           f"(|err| {derr:.3g}, limit {dlimit:.3g})")
        dot = sum(float((grads[n].astype(np.float64) * d).sum()) for n, d in self.global_dir.items())
        spread = float(np.sqrt(sum(float(((grads[n].astype(np.float64) * d) ** 2).sum())
                                   for n, d in self.global_dir.items())))
        gerr = abs(dot - self.global_fd)
        glimit = DIR_RTOL * (spread + abs(self.global_fd))
        if not gerr <= glimit:
            bad.append(f"ALL parameters: directional derivative {dot:.8g} vs fd {self.global_fd:.8g} "
                       f"(|err| {gerr:.3g}, limit {glimit:.3g})")
        return bad, {"entry": worst_entry, "use": worst_use, "dir": worst_dir,
                     "global": gerr / (spread + abs(self.global_fd))}


def diagnose(g, idx, fd):
    """A hint at what kind of error it is: a constant ratio (sign or factor), or a transpose."""
    hints = []
    nz = np.abs(fd) > 1e-3 * max(np.abs(fd).max(), 1e-300)
    if nz.any():
        ratios = np.array([g[i] for i in idx])[nz] / fd[nz]
        hints.append(f"tquant/fd ratios on nonzero entries: {np.array2string(ratios, precision=4)}")
    if g.ndim == 2 and g.shape[0] == g.shape[1]:
        gt = np.array([g[i[::-1]] for i in idx])
        if np.allclose(gt, fd, rtol=1e-2, atol=1e-2 * np.abs(fd).max()):
            hints.append("tquant's TRANSPOSED gradient matches")
    return ("; " + "; ".join(hints)) if hints else ""


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------

def causal_batch(vocab, seed, lengths=(12, 7), pad=0):
    """Right-padded rows; labels = next token, -100 at padding and at each row's last token.
    Token ids avoid `pad`; one id is repeated inside and across rows."""
    rng = np.random.default_rng(seed)
    t = max(lengths)
    ids = np.full((len(lengths), t), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(3, vocab, n)
        mask[b, :n] = 1
    rep = int(ids[0, 2])
    ids[0, 5] = rep
    ids[1, 3] = rep
    labels = np.full_like(ids, IGNORE)
    for b, n in enumerate(lengths):
        labels[b, :n - 1] = ids[b, 1:n]
    batch = {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist()}
    return batch, rep


def bert_batch(vocab, seed, pairs=((5, 4), (3, 2)), t=12):
    """[CLS] a [SEP] b [SEP] with segment ids 0/1, right-padded with id 0; one id repeated."""
    rng = np.random.default_rng(seed)
    cls, sep = 2, 3
    rows, types, masks = [], [], []
    for a_len, b_len in pairs:
        a = rng.integers(5, vocab, a_len).tolist()
        b = rng.integers(5, vocab, b_len).tolist()
        row = [cls] + a + [sep] + b + [sep]
        typ = [0] * (a_len + 2) + [1] * (b_len + 1)
        pad = t - len(row)
        rows.append(row + [0] * pad)
        types.append(typ + [0] * pad)
        masks.append([1] * len(row) + [0] * pad)
    rep = rows[0][1]
    rows[0][2] = rep  # row 0's first segment holds it twice, the last row once more
    rows[-1][1] = rep
    return {"input_ids": rows, "token_type_ids": types, "attention_mask": masks}, rep


def mlm_batch(vocab, seed, mask_id=4, per_row=3):
    """bert_batch with `per_row` ordinary tokens per row replaced by [MASK]; labels = originals."""
    batch, rep = bert_batch(vocab, seed)
    rng = np.random.default_rng(seed + 1)
    labels = []
    for row, m in zip(batch["input_ids"], batch["attention_mask"]):
        cand = [i for i, tok in enumerate(row) if m[i] and tok not in (2, 3)]
        pick = sorted(rng.choice(cand, per_row, replace=False).tolist())
        lab = [IGNORE] * len(row)
        for i in pick:
            lab[i] = row[i]
            row[i] = mask_id
        labels.append(lab)
    batch["labels"] = labels
    return batch, rep


def cls_batch(vocab, seed, labels):
    """Three sentence pairs (two right-padded) with one class id or score per sequence."""
    batch, rep = bert_batch(vocab, seed, pairs=((5, 4), (3, 2), (4, 3)))
    batch["sequence_labels"] = labels
    return batch, rep


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def embed_rows(name, rows, width, per_row=3, seed=0):
    rng = np.random.default_rng(seed)
    return {name: [(r, int(c)) for r in rows for c in rng.choice(width, per_row, replace=False)]}


def check_model(args, tag, folder, batch, extra_entries, keep=None):
    """Runs tquant grad and every check; returns a detail line. keep: dict to stash the
    FiniteDifferences and gradients in (for the negative controls)."""
    model = Reference(folder, batch)
    tensors, meta = run_grad(args, tag, folder, batch)
    problems = []
    # --- loss ------------------------------------------------------------------------------
    want = model.loss()
    if "loss" not in tensors:
        raise Failure("no \"loss\" tensor in the output")
    loss = tensors.pop("loss")
    if loss.dtype != np.float32 or loss.shape != (1,):
        problems.append(f"loss is {loss.dtype} {list(loss.shape)}, expected float32 [1]")
    got = float(loss.reshape(-1)[0])
    if not abs(got - want) <= LOSS_RTOL * max(1.0, abs(want)):
        problems.append(f"loss {got:.8g} vs reference {want:.8g}")
    if "loss_f64" not in meta:
        problems.append("no loss_f64 metadata")
    else:
        got64 = float(meta["loss_f64"])
        if not abs(got64 - want) <= LOSS_RTOL * max(1.0, abs(want)):
            problems.append(f"loss_f64 {got64:.10g} vs reference {want:.10g}")
    # --- names, shapes, dtypes -------------------------------------------------------------
    # A tied matrix that the checkpoint stores under the head's name with a safetensors alias
    # (tied_embeddings metadata) is one parameter; tquant names it by the HF parameter name
    # model.embed_tokens.weight, which is also what its training checkpoints store.
    for alias, stored in model.w.aliases.items():
        if alias in tensors and stored not in tensors:
            tensors[stored] = tensors.pop(alias)
    missing = [n for n in model.params if n not in tensors]
    extra = [n for n in tensors if n not in model.params]
    if missing or extra:
        raise Failure(f"gradient names differ from the checkpoint's parameters: missing {missing}, "
                      f"unexpected {extra}" + (("; " + "; ".join(problems)) if problems else ""))
    for n in model.params:
        g = tensors[n]
        if g.dtype != np.float32 or g.shape != model.tensor(n).shape:
            raise Failure(f"gradient {n} is {g.dtype} {list(g.shape)}, parameter is "
                          f"{list(model.tensor(n).shape)}")
        if not np.all(np.isfinite(g)):
            raise Failure(f"gradient {n} has non-finite entries")
    # --- finite differences ----------------------------------------------------------------
    fd = FiniteDifferences(model, tensors, extra_entries)
    bad, stats = fd.judge(tensors)
    if keep is not None:
        keep.update(fd=fd, grads=tensors)
    summary = (f"loss {got:.7f} (ref {want:.7f}); {len(model.params)} tensors, "
               f"{sum(len(i) for i, _ in fd.entries.values())} entries; worst entry err/max|g| "
               f"{stats['entry']:.2e} ({stats['use']:.2g} of the limit), per-tensor directional rel err {stats['dir']:.2e}, "
               f"all-parameter directional rel err {stats['global']:.2e}")
    if problems or bad:
        raise Failure("\n    " + "\n    ".join(problems + bad) + f"\n    ({summary})")
    return summary


def llama_case(args, name, build, keep=None):
    def case():
        folder = os.path.join(args.tmp, "models", name)
        shutil.rmtree(folder, ignore_errors=True)
        build(folder)
        cfg = ref.load_config(folder)
        batch, rep = causal_batch(cfg["vocab_size"], zlib.crc32(name.encode()) % 1000)
        stored = "model.embed_tokens.weight"
        if stored not in safetensors_py.read_folder(folder)[0]:
            stored = "lm_head.weight"  # lm_head_alias: the tied matrix is stored under the head's name
        extra = embed_rows(stored, [0, rep], cfg["hidden_size"])  # pad row, repeated token row
        return check_model(args, name, folder, batch, extra, keep)
    return name, case


def bert_case(args, name, build, make_batch):
    def case():
        folder = os.path.join(args.tmp, "models", name)
        shutil.rmtree(folder, ignore_errors=True)
        build(folder)
        cfg = ref.load_config(folder)
        batch, rep = make_batch(cfg["vocab_size"], zlib.crc32(name.encode()) % 1000)
        extra = embed_rows("bert.embeddings.word_embeddings.weight", [0, rep], cfg["hidden_size"])
        # position rows past the sequence length must get no gradient
        extra.update(embed_rows("bert.embeddings.position_embeddings.weight",
                                [len(batch["input_ids"][0]) + 1], cfg["hidden_size"], seed=1))
        return check_model(args, name, folder, batch, extra)
    return name, case


def oracle_self_check(args):
    """The finite differences and the loss definition checked alone, on gradients known in closed
    form: for BERT classification, dL/d classifier.bias = mean_b (softmax_b - onehot_b), and for
    regression 2 mean_b (pred_b - y_b). A wrong loss (sum instead of mean, an MSE without the
    square) or a broken perturbation would show here, not be blamed on the C++."""
    def case():
        lines = []
        for tag, num_labels, labels in (("cls3", 3, [2, 0, 1]), ("regression", 1, [0.7, -1.3, 2.1])):
            folder = os.path.join(args.tmp, "models", f"self-check-{tag}")
            shutil.rmtree(folder, ignore_errors=True)
            tiny_models.bert(folder, 700 + num_labels, "BertForSequenceClassification", num_labels=num_labels)
            batch, _ = cls_batch(ref.load_config(folder)["vocab_size"], 7, labels)
            model = Reference(folder, batch)
            out = model.logits()
            if num_labels == 1:
                want = 2 * (out[:, 0] - np.asarray(labels)).mean(keepdims=True)
            else:
                p = np.exp(out - out.max(-1, keepdims=True))
                p /= p.sum(-1, keepdims=True)
                p[np.arange(len(labels)), labels] -= 1
                want = p.mean(0)
            bias = model.tensor("classifier.bias")
            h = STEP * rms(bias)
            fd = FiniteDifferences.__new__(FiniteDifferences)
            fd.model = model
            got = np.array([fd._entry(bias, (i,), h) for i in range(num_labels)])
            err = np.abs(got - want).max() / np.abs(want).max()
            if not err < 1e-6:
                raise Failure(f"{tag}: finite differences {got} vs closed form {want}")
            lines.append(f"{tag} classifier.bias rel err {err:.1e}")
        return "; ".join(lines)
    return "oracle-closed-form-gradients", case


def negative_controls(keep, source_case):
    """Mutated LLaMA gradients must all fail (the checks can see real bugs). source_case fills
    `keep`; it is run here if --filter skipped it."""
    def case():
        if "fd" not in keep:
            try:
                source_case()
            except Failure:
                pass  # its own failure is reported by that case; the controls need only the data
        if "fd" not in keep:
            raise Failure("the llama-gqa-tied case did not get far enough to provide gradients")
        fd, grads = keep["fd"], keep["grads"]
        embed = "model.embed_tokens.weight"
        rep_rows = sorted({i[0] for i in fd.entries[embed][0]})

        def mutate(fn):
            g = {n: a.copy() for n, a in grads.items()}
            fn(g)
            return g

        def swap(g, a, b):
            g[a], g[b] = g[b].copy(), g[a].copy()

        def zero_row(g):
            used = [r for r in rep_rows if np.abs(grads[embed][r]).max() > 0.5 * np.abs(grads[embed]).max()]
            g[embed][used[0] if used else int(np.abs(grads[embed]).max(1).argmax())] = 0

        controls = {
            "negated layers.0 q_proj": lambda g: g.__setitem__(
                "model.layers.0.self_attn.q_proj.weight", -g["model.layers.0.self_attn.q_proj.weight"]),
            "swapped layers.1 gate/up": lambda g: swap(g, "model.layers.1.mlp.gate_proj.weight",
                                                       "model.layers.1.mlp.up_proj.weight"),
            "transposed layers.0 o_proj": lambda g: g.__setitem__(
                "model.layers.0.self_attn.o_proj.weight",
                g["model.layers.0.self_attn.o_proj.weight"].T.copy()),
            "1% too large model.norm": lambda g: g.__setitem__("model.norm.weight", g["model.norm.weight"] * 1.01),
            "halved tied embedding": lambda g: g.__setitem__(embed, g[embed] * 0.5),
            "one embedding row zeroed": zero_row,
            "layers.1 k_proj zeroed": lambda g: g.__setitem__(
                "model.layers.1.self_attn.k_proj.weight", 0 * g["model.layers.1.self_attn.k_proj.weight"]),
        }
        caught, missed = [], []
        for label, fn in controls.items():
            bad, _ = fd.judge(mutate(fn))
            kinds = sorted({("all-params" if b.startswith("ALL") else
                             "directional" if "directional" in b else "entries") for b in bad})
            (caught if bad else missed).append(f"{label} [{'+'.join(kinds)}]" if bad else label)
        if missed:
            raise Failure(f"mutations NOT detected: {missed}; detected: {caught}")
        return "all detected: " + "; ".join(caught)
    return "negative-controls", case


def main():
    args = parse_args(__doc__.splitlines()[0])
    keep = {}
    L, B = tiny_models.llama, tiny_models.bert
    tied = llama_case(args, "llama-gqa-tied", lambda p: L(p, 502, heads=4, kv_heads=2, tie="embed_only"), keep)
    cases = [
        oracle_self_check(args),
        llama_case(args, "llama-gqa-untied", lambda p: L(p, 501, heads=4, kv_heads=2, tie="untied")),
        tied,
        llama_case(args, "llama-bias-tied-alias", lambda p: L(p, 503, heads=4, kv_heads=1, attention_bias=True,
                                                           mlp_bias=True, tie="lm_head_alias")),
        bert_case(args, "bert-mlm", lambda p: B(p, 601, "BertForMaskedLM", pooler=False), mlm_batch),
        bert_case(args, "bert-cls3", lambda p: B(p, 602, "BertForSequenceClassification", num_labels=3,
                                                 legacy_position_ids=True),
                  lambda v, s: cls_batch(v, s, [2, 0, 1])),
        bert_case(args, "bert-regression", lambda p: B(p, 603, "BertForSequenceClassification", num_labels=1,
                                                       omit_defaults=True),
                  lambda v, s: cls_batch(v, s, [0.7, -1.3, 2.1])),
        negative_controls(keep, tied[1]),
    ]
    return run_cases(cases, args.filter)


if __name__ == "__main__":
    sys.exit(main())
