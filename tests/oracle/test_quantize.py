"""Oracle test: `tquant quantize` (RTN, GPTQ, Z-Fold, aespa) end to end on every model family.

Models: the seeded tiny checkpoints of tiny_models.py (LLaMA with GQA and RoPE, OPT, GPT-2 with
its fused Conv1D c_attn, post-norm BERT), each given a one-character-per-token tokenizer.json so
that the calibration ids are known exactly here. Calibration: ONE window that is the whole
calibration file (--calib-samples 1, --calib-len = the file's token count = the model's
positions), so N = T tokens and every statistic is a single-sequence sum.

What is checked, all against NumPy written from METHODS.md §4 / README / pipeline.h, not the C++:
 1. Objectives. The pipeline is replayed in float64: block i's statistics come from the FP block
    i run on the output of the already QUANTIZED blocks 0..i-1 (taken from the --fake output),
    H = (2/N) Σ x xᵀ, damped (dead inputs -> 1, + percdamp·mean diag), and for aespa
    G_Q = (2/N) KᵀK, G_K = (2/N)/|g| Σ_h QᵀQ (after RoPE), H_V = (2/N) Σ_h (A_h X)ᵀ(A_h X).
    Every layer's JSON "objective" must equal Σ_h tr(G_h ΔW_h H_h ΔW_hᵀ) ("formula"), and, where
    the claim is exact, the DIRECTLY MEASURED error: for layers read by Q/K/V of a model without
    RoPE, (2/N)² Σ_h ‖ΔS_h‖² over all T×T raw scores S = Q Kᵀ (ΔQ or ΔK measured from the
    quantized model's own norm + weights, so a Z-Fold ζ folded into γ/β is exercised) plus the
    damping term; for V, (2/N) Σ_h ‖A_h ΔV_g‖² (exact with RoPE/GQA too); for plain layers
    (2/N)‖ΔY‖². "objective_rtn" must equal the formula at NumPy's own min-max RTN.
    The single-sequence Kronecker identity Σ_{t,s}(x_tᵀΔWᵀk_s)² = tr(KᵀK ΔW XᵀX ΔWᵀ) and the
    first-order softmax expansion (‖ΔO‖² vs ‖J_softmax(ΔS/√d)·V‖² as ε -> 0) are checked in NumPy.
 2. Round trip. The packed checkpoint is unpacked here (LSB-first bitstream per row, scales,
    zeros, optional ζ) and must equal the --fake checkpoint tensor for tensor; `tquant forward`
    on the packed and on the fake folder must give identical outputs, equal (1e-4) to
    numpy_reference.py's forward of the dequantized weights with the output's (folded) norms.
    Pre-norm Z-Fold/aespa must change the norms and store no ζ; BERT must keep its norms and
    store <prefix>.zeta. RTN codes/scales must match NumPy's min-max RTN.
 3. Every method's objective <= its min-max RTN objective per layer; 2/3/4/8 bits, per-channel
    and --group 16, asymmetric and --sym all round-trip.
 4. SIGINT/SIGTERM during a long aespa run: killed by the signal, no --out and no <out>.tmp-*.
    Errors (--wbits 9, a --group that does not divide, missing --calib, an --out that is a
    foreign folder): exit 1, a message naming the problem, nothing written or changed.

Usage (ctest passes these): test_quantize.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
"""
import glob
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_reference as ref  # noqa: E402
import safetensors_py  # noqa: E402
import tiny_models  # noqa: E402
from eval_common import Checks, Failure, parse_args, run_cases  # noqa: E402

ALPHABET = "abcdefghijklmnopqrstuvwxyz ."
FIRST_ID = 5  # token id of ALPHABET[0]
TEXT = ("once upon a time there was a little girl named lily. she liked to play with her red ball in "
        "the park. one day a big dog came and took the ball. lily was sad but the dog came back.")
# tquant's results do not depend on thread scheduling; libgomp's default active spin-waiting,
# though, makes the many tiny parallel regions of these toy models cost seconds on a loaded
# machine (0.7-4.5 s vs 0.2 s for one aespa run), so the children wait passively.
ENV = dict(os.environ, OMP_WAIT_POLICY="passive")
OBJ_RTOL = 2e-4     # float32 statistics in the C++ vs float64 here
FWD_RTOL = 1e-4     # as test_forward.py: float32 forward vs float64 reference

FAMILIES = {  # name -> (builder with build_all's arguments, family, tokens per calibration window)
    "llama-gqa": (lambda p: tiny_models.llama(p, 101, heads=4, kv_heads=2, tie="embed_only"), "llama", 64),
    "opt": (lambda p: tiny_models.opt(p, 301, prefix="model."), "opt", 32),
    "gpt2": (lambda p: tiny_models.gpt2(p, 401, prefix="transformer."), "gpt2", 32),
    "bert-mlm": (lambda p: tiny_models.bert(p, 203, "BertForMaskedLM", pooler=False), "bert", 24),
}

# (tag, flags): every family runs COMMON plus its EXTRA; together they cover every method, 2/3/4/8
# bits with --group 16 and per channel, asymmetric and --sym, act-order, aespa with and without
# Z-Fold / OPTQ init, and --percdamp 0 (where the objectives need no damping term at all).
COMMON = [
    ("rtn-w8-g16-sym", ["--method", "rtn", "--wbits", "8", "--group", "16", "--sym"]),
    ("gptq-w3-g16-actorder", ["--method", "gptq", "--wbits", "3", "--group", "16", "--act-order"]),
    ("zfold-w2-g16", ["--method", "zfold", "--wbits", "2", "--group", "16"]),
    ("aespa-w4", ["--method", "aespa", "--wbits", "4", "--iters", "50"]),
]
EXTRA = {
    "llama-gqa": ("aespa-w4-g16-nozfold", ["--method", "aespa", "--wbits", "4", "--group", "16", "--no-zfold",
                                           "--iters", "30"]),
    "opt": ("aespa-w2-rtninit-nodamp", ["--method", "aespa", "--wbits", "2", "--no-optq-init", "--percdamp", "0",
                                        "--iters", "30"]),
    "gpt2": ("gptq-w4-g16-sym", ["--method", "gptq", "--wbits", "4", "--group", "16", "--sym"]),
    "bert-mlm": ("rtn-w4", ["--method", "rtn", "--wbits", "4"]),
}


def flag_value(flags, name, default):
    return type(default)(flags[flags.index(name) + 1]) if name in flags else default


# ---------------------------------------------------------------------------------------------
# Setup: models with a character tokenizer, calibration files, evaluation batches
# ---------------------------------------------------------------------------------------------

def write_char_tokenizer(folder):
    """BPE without merges, pre-tokenizer or normalizer: every character of ALPHABET is a token."""
    vocab = {c: FIRST_ID + i for i, c in enumerate(ALPHABET)}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
          "pre_tokenizer": None, "post_processor": None, "decoder": None,
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "fuse_unk": False,
                    "byte_fallback": False, "vocab": vocab, "merges": []}}
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(tj, f)


def text_ids(text):
    return [FIRST_ID + ALPHABET.index(c) for c in text]


def folder_digest(folder):
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        h.update(name.encode())
        with open(os.path.join(folder, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


class Setup:
    def __init__(self, args):
        self.args = args
        self.models, self.calib, self.batches, self.digests = {}, {}, {}, {}
        root = os.path.join(args.tmp, "models")
        shutil.rmtree(root, ignore_errors=True)
        for name, (build, fam, T) in FAMILIES.items():
            folder = os.path.join(root, name)
            build(folder)
            write_char_tokenizer(folder)
            self.models[name] = folder
            self.digests[name] = folder_digest(folder)
            path = os.path.join(args.tmp, f"calib-{name}.txt")
            with open(path, "w") as f:
                f.write(TEXT[:T])  # exactly T tokens: the one window is the whole file
            self.calib[name] = path
            cfg = ref.load_config(folder)
            rng = np.random.default_rng(7)
            ids = np.zeros((2, 12), dtype=np.int64)
            mask = np.zeros_like(ids)
            for b, n in enumerate((12, 7)):
                ids[b, :n] = rng.integers(3, cfg["vocab_size"], n)
                mask[b, :n] = 1
            batch = {"input_ids": ids.tolist(), "attention_mask": mask.tolist()}
            if fam == "bert":
                batch["token_type_ids"] = [[0] * 6 + [1] * 6, [0] * 4 + [1] * 8]
            self.batches[name] = batch
        self.results = {}  # (model, config tag) -> dict, for the cases that reuse a run


# ---------------------------------------------------------------------------------------------
# Running tquant
# ---------------------------------------------------------------------------------------------

def quantize_cmd(args, model, calib, T, flags, out, fake, json_path=None):
    cmd = [args.tquant, "quantize", "--model", model, "--calib", calib, "--calib-samples", "1",
           "--calib-len", str(T), "--seed", "0", "--out", out] + flags
    if fake:
        cmd.append("--fake")
    if json_path:
        cmd += ["--json", json_path]
    return cmd


def run_quantize(args, model, calib, T, flags, out, fake):
    json_path = out + ".json"
    if os.path.exists(json_path):  # a stale report must not pass for a new one
        os.remove(json_path)
    shutil.rmtree(out, ignore_errors=True)
    cmd = quantize_cmd(args, model, calib, T, flags, out, fake, json_path)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    if proc.returncode != 0:
        raise Failure(f"tquant quantize exited {proc.returncode}: {' '.join(cmd)}\n--- stderr ---\n"
                      f"{proc.stderr.strip()[-3000:]}\n--- stdout ---\n{proc.stdout.strip()[-2000:]}")
    with open(json_path) as f:
        return json.load(f)


def run_forward(args, model, batch, tag):
    out = os.path.join(args.tmp, f"{tag}.npy")
    ids = os.path.join(args.tmp, f"{tag}.ids.json")
    if os.path.exists(out):
        os.remove(out)
    with open(ids, "w") as f:
        json.dump(batch, f)
    cmd = [args.tquant, "forward", "--model", model, "--ids-json", ids, "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    if proc.returncode != 0:
        raise Failure(f"tquant forward exited {proc.returncode}: {' '.join(cmd)}\n{proc.stderr.strip()[-3000:]}")
    return np.load(out)


# ---------------------------------------------------------------------------------------------
# The packed format, read and dequantized here
# ---------------------------------------------------------------------------------------------

def unpack_codes(qweight, cols, bits):
    bitsarr = np.unpackbits(qweight, axis=1, bitorder="little")
    rows = qweight.shape[0]
    used = bitsarr[:, :cols * bits].reshape(rows, cols, bits).astype(np.int64)
    padding = bitsarr[:, cols * bits:]
    return used @ (1 << np.arange(bits)), int(padding.sum())


def dequantize_packed(packed_dir, family, shapes, c):
    """Reads the packed folder, validates every quantized module against README's format (shapes:
    module -> (out, in) of the FP layer) and returns ({name: float32 array, quantized layers
    dequantized into the FP layout}, {module: (codes, scales, zeros, zeta)}, metadata, config)."""
    with open(os.path.join(packed_dir, "config.json")) as f:
        config = json.load(f)
    q = config.get("quantization_config")
    if not isinstance(q, dict):
        raise Failure(f"{packed_dir}/config.json has no quantization_config")
    bits, gs, sym = q.get("bits"), q.get("group_size"), q.get("sym")
    c.true("quantization_config", q.get("quant_method") == "tquant" and q.get("format_version") == 1,
           f"quant_method {q.get('quant_method')!r}, format_version {q.get('format_version')!r}")
    tensors, meta = safetensors_py.read_folder(packed_dir)
    modules = sorted(n[:-len(".qweight")] for n in tensors if n.endswith(".qweight"))
    c.true("modules", sorted(q.get("modules", [])) == modules, f"{len(modules)} listed and stored")
    out, parts = {}, {}
    maxq = (1 << bits) - 1
    for name, arr in tensors.items():
        if name.endswith((".qweight", ".scales", ".zeros", ".zeta")):
            continue
        out[name] = arr
    bad = []
    for m in modules:
        qw, sc, zr = tensors[m + ".qweight"], tensors[m + ".scales"], tensors[m + ".zeros"]
        zeta = tensors.get(m + ".zeta")
        if m not in shapes:
            bad.append(f"{m} is not a linear layer of the input")
            continue
        rows, cols = shapes[m]
        if zeta is not None and (zeta.dtype != np.float32 or zeta.shape != (cols,)):
            bad.append(f"{m}.zeta {zeta.dtype} {zeta.shape}, expected float32 ({cols},)")
            continue
        if qw.dtype != np.uint8 or qw.shape != (rows, -(-cols * bits // 8)):
            bad.append(f"{m}.qweight {qw.dtype} {qw.shape}, expected uint8 ({rows}, {-(-cols * bits // 8)})")
            continue
        if sc.dtype != np.float32 or sc.shape != (rows, cols // gs if gs > 0 else 1):
            bad.append(f"{m}.scales {sc.dtype} {sc.shape}")
        if zr.dtype != np.uint8 or zr.shape != sc.shape:
            bad.append(f"{m}.zeros {zr.dtype} {zr.shape}")
        codes, pad = unpack_codes(qw, cols, bits)
        if pad:
            bad.append(f"{m}: {pad} padding bits set")
        if codes.max() > maxq or zr.max() > maxq:
            bad.append(f"{m}: code/zero above {maxq}")
        if not np.all(np.isfinite(sc)) or sc.min() <= 0:
            bad.append(f"{m}: scales not finite/positive")
        if sym and np.any(zr != (1 << (bits - 1))):
            bad.append(f"{m}: symmetric but zeros != {1 << (bits - 1)}")
        g_of_col = np.arange(cols) // gs if gs > 0 else np.zeros(cols, dtype=np.int64)
        s = sc[:, g_of_col]
        z = zr[:, g_of_col].astype(np.float32)
        w = (s * (codes.astype(np.float32) - z)).astype(np.float32)
        if zeta is not None:
            w = (w * zeta[None, :]).astype(np.float32)
        parts[m] = (codes, sc, zr, zeta)
        out[m + ".weight"] = w.T.copy() if family == "gpt2" else w  # GPT-2 Conv1D: [in, out]
    if bad:
        c.true("packed tensors valid", False, "; ".join(bad))
    return out, parts, meta, config


# ---------------------------------------------------------------------------------------------
# A per-block float64 forward that exposes what the statistics need
# ---------------------------------------------------------------------------------------------

class Model:
    """Canonical view of one model folder: embeddings, and per block the norms and linears as
    (W [out, in], b) in nn.Linear orientation."""

    def __init__(self, folder, family):
        self.family = family
        self.cfg = ref.load_config(folder)
        self.w = ref.Weights(folder)
        cfg = self.cfg
        if family == "llama":
            self.H, self.KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
            self.L, self.eps = cfg["num_hidden_layers"], cfg["rms_norm_eps"]
        elif family == "gpt2":
            self.H = self.KV = cfg["n_head"]
            self.L, self.eps = cfg["n_layer"], cfg["layer_norm_epsilon"]
        else:
            self.H = self.KV = cfg["num_attention_heads"]
            self.L = cfg["num_hidden_layers"]
            self.eps = 1e-5 if family == "opt" else cfg["layer_norm_eps"]
        self.D = cfg.get("hidden_size", cfg.get("n_embd"))
        self.d = self.D // self.H
        self.pre_norm = family != "bert"
        self.act = {"llama": "silu", "opt": "relu", "gpt2": "gelu_new", "bert": "gelu"}[family]
        self.blocks = [self._block(i) for i in range(self.L)]

    def _block(self, i):
        w, fam = self.w, self.family

        def lin(name, bias=True):
            return (w(name + ".weight"), w(name + ".bias") if bias else None)

        def norm(name, bias=True):
            return (w(name + ".weight"), w(name + ".bias") if bias else None)

        if fam == "llama":
            p = f"model.layers.{i}."
            return dict(norm1=norm(p + "input_layernorm", False), norm2=norm(p + "post_attention_layernorm", False),
                        q=lin(p + "self_attn.q_proj", False), k=lin(p + "self_attn.k_proj", False),
                        v=lin(p + "self_attn.v_proj", False), o=lin(p + "self_attn.o_proj", False),
                        gate=lin(p + "mlp.gate_proj", False), up=lin(p + "mlp.up_proj", False),
                        down=lin(p + "mlp.down_proj", False))
        if fam == "opt":
            p = f"model.decoder.layers.{i}."
            return dict(norm1=norm(p + "self_attn_layer_norm"), norm2=norm(p + "final_layer_norm"),
                        q=lin(p + "self_attn.q_proj"), k=lin(p + "self_attn.k_proj"), v=lin(p + "self_attn.v_proj"),
                        o=lin(p + "self_attn.out_proj"), up=lin(p + "fc1"), down=lin(p + "fc2"))
        if fam == "gpt2":
            p = f"transformer.h.{i}."
            D = self.D
            ca, cb = w(p + "attn.c_attn.weight").T, w(p + "attn.c_attn.bias")

            def conv(name):
                return (w(name + ".weight").T, w(name + ".bias"))

            return dict(norm1=norm(p + "ln_1"), norm2=norm(p + "ln_2"),
                        q=(ca[:D], cb[:D]), k=(ca[D:2 * D], cb[D:2 * D]), v=(ca[2 * D:], cb[2 * D:]),
                        o=conv(p + "attn.c_proj"), up=conv(p + "mlp.c_fc"), down=conv(p + "mlp.c_proj"))
        p = f"bert.encoder.layer.{i}."
        return dict(norm1=norm(p + "attention.output.LayerNorm"), norm2=norm(p + "output.LayerNorm"),
                    q=lin(p + "attention.self.query"), k=lin(p + "attention.self.key"),
                    v=lin(p + "attention.self.value"), o=lin(p + "attention.output.dense"),
                    up=lin(p + "intermediate.dense"), down=lin(p + "output.dense"))

    def norm(self, nm, x):
        g, b = nm
        if self.family == "llama":
            return ref.rms_norm(x, g, self.eps)
        return ref.layer_norm(x, g, b, self.eps)

    def embed(self, ids):
        w, T = self.w, len(ids)
        ids = np.asarray(ids)
        if self.family == "llama":
            return w("model.embed_tokens.weight")[ids]
        if self.family == "opt":
            return w("model.decoder.embed_tokens.weight")[ids] + w("model.decoder.embed_positions.weight")[np.arange(T) + 2]
        if self.family == "gpt2":
            return w("transformer.wte.weight")[ids] + w("transformer.wpe.weight")[np.arange(T)]
        e = "bert.embeddings."
        x = w(e + "word_embeddings.weight")[ids] + w(e + "position_embeddings.weight")[np.arange(T)] \
            + w(e + "token_type_embeddings.weight")[0]
        return ref.layer_norm(x, w(e + "LayerNorm.weight"), w(e + "LayerNorm.bias"), self.eps)

    def heads(self, y, n):  # [T, n*d] -> [n, T, d]
        return np.transpose(y.reshape(y.shape[0], n, self.d), (1, 0, 2))

    def attention_probs(self, q, k):
        """q [H,T,d] and k [KV,T,d] as they enter the scores -> probabilities [H,T,T]."""
        T, grp = q.shape[1], self.H // self.KV
        s = np.einsum("htd,hsd->hts", q, np.repeat(k, grp, axis=0)) / math.sqrt(self.d)
        if self.family != "bert":
            s = np.where(np.tril(np.ones((T, T), dtype=bool))[None], s, -np.inf)
        s = s - s.max(-1, keepdims=True)
        p = np.exp(s)
        return p / p.sum(-1, keepdims=True)

    def qkv(self, blk, h):
        """Q [H,T,d], K, V [KV,T,d] as they enter the attention (after RoPE for LLaMA)."""
        q = self.heads(ref.linear(h, *blk["q"]), self.H)
        k = self.heads(ref.linear(h, *blk["k"]), self.KV)
        v = self.heads(ref.linear(h, *blk["v"]), self.KV)
        if self.family == "llama":
            cos, sin = ref.rope_cos_sin(np.arange(h.shape[0]), self.d, self.cfg["rope_theta"])
            q = q * cos + ref.rotate_half(q) * sin
            k = k * cos + ref.rotate_half(k) * sin
        return q, k, v

    def block(self, i, x):
        """Runs block i on one sequence x [T, D]; returns (output, record of the internals)."""
        blk, grp = self.blocks[i], self.H // self.KV
        r = {"x": x}
        h = self.norm(blk["norm1"], x) if self.pre_norm else x
        r["attn_in"] = h
        q, k, v = self.qkv(blk, h)
        a = self.attention_probs(q, k)
        r.update(Q=q, K=k, V=v, A=a)
        ctx = np.einsum("hts,hsd->htd", a, np.repeat(v, grp, axis=0))
        ctx = np.transpose(ctx, (1, 0, 2)).reshape(x.shape[0], -1)
        r["o_in"] = ctx
        att = ref.linear(ctx, *blk["o"])
        if self.pre_norm:
            x = x + att
            r["ffn_pre"] = x
            h2 = self.norm(blk["norm2"], x)
        else:
            x = self.norm(blk["norm1"], att + x)
            h2 = x
        r["up_in"] = h2
        u = ref.linear(h2, *blk["up"])
        inner = ref.activation(self.act, ref.linear(h2, *blk["gate"])) * u if "gate" in blk \
            else ref.activation(self.act, u)
        r["down_in"] = inner
        y = ref.linear(inner, *blk["down"])
        x = x + y if self.pre_norm else self.norm(blk["norm2"], y + x)
        return x, r


LINEARS = {  # canonical key -> (C++ Linear::name suffix, input record, norm that may carry ζ)
    "q": ("attn.q_proj", "attn_in", "norm1"), "k": ("attn.k_proj", "attn_in", "norm1"),
    "v": ("attn.v_proj", "attn_in", "norm1"), "o": ("attn.o_proj", "o_in", None),
    "gate": ("ffn.gate_proj", "up_in", "norm2"), "up": ("ffn.up_proj", "up_in", "norm2"),
    "down": ("ffn.down_proj", "down_in", None),
}


# ---------------------------------------------------------------------------------------------
# The objectives, computed here
# ---------------------------------------------------------------------------------------------

def prepare(Hraw, percdamp):
    """prepare_hessian as METHODS.md §4 step 1 describes it: dead inputs -> 1, then damping."""
    H = Hraw.copy()
    dead = np.flatnonzero(np.diag(H) == 0)
    H[dead, dead] = 1.0
    lam = percdamp * float(np.mean(np.diag(H)))
    return H + lam * np.eye(H.shape[0]), dead, lam


def quad(dW, Hs, Gs=None):
    """Σ_h tr(G_h ΔW_h H_h ΔW_hᵀ) over equal consecutive row blocks; Hs, Gs lists (len 1 = shared)."""
    n = max(len(Hs), len(Gs) if Gs else 1)
    rows = dW.shape[0] // n
    total = 0.0
    for h in range(n):
        d = dW[h * rows:(h + 1) * rows]
        M = d @ (Hs[h] if len(Hs) > 1 else Hs[0]) @ d.T
        total += float(np.sum(Gs[h] * M)) if Gs else float(np.trace(M))
    return total


def rtn_minmax(W, bits, group, sym):
    """GPTQ-reference min-max round to nearest (range widened to hold 0), per row or row group,
    in float32 like the stored scales: the symmetric grid puts -max|w| exactly on a rounding tie
    ((2^b - 1)/2 steps below the zero point), which float64 would settle differently at random.
    Returns (dequantized float64, codes, scales [rows, groups], zeros [rows, groups])."""
    rows, cols = W.shape
    gs = group if group > 0 else cols
    Wg = W.astype(np.float32).reshape(rows, cols // gs, gs)
    zero32 = np.float32(0)
    lo = np.minimum(Wg.min(-1), zero32)
    hi = np.maximum(Wg.max(-1), zero32)
    maxq = np.float32((1 << bits) - 1)
    if sym:
        hi = np.maximum(-lo, hi)
        lo = np.where(lo < 0, -hi, lo)
    both0 = (lo == 0) & (hi == 0)
    lo = np.where(both0, np.float32(-1), lo).astype(np.float32)
    hi = np.where(both0, np.float32(1), hi).astype(np.float32)
    scale = ((hi - lo) / maxq).astype(np.float32)
    zero = np.full_like(scale, np.float32(1 << (bits - 1))) if sym else np.round(-lo / scale).astype(np.float32)
    codes = np.clip(np.round(Wg / scale[..., None]) + zero[..., None], 0, maxq)
    deq = (scale[..., None] * (codes - zero[..., None])).astype(np.float32).reshape(rows, cols)
    return deq.astype(np.float64), codes.reshape(rows, cols).astype(np.int64), scale, zero


class Expect:
    """One quantize run replayed here: per layer the expected objective (formula and, where exact,
    measured) and objective_rtn."""

    def __init__(self, fp, qm, ids, flags, method):
        self.rows = {}
        N = len(ids)
        two_n = 2.0 / N
        pd = flag_value(flags, "--percdamp", 0.01)
        bits, group, sym = flag_value(flags, "--wbits", 4), flag_value(flags, "--group", 0), "--sym" in flags
        aespa = method == "aespa"
        grp = fp.H // fp.KV
        x = fp.embed(ids)
        self.max_zeta_dev = 0.0
        for i in range(fp.L):
            _, r = fp.block(i, x)          # the statistics pass: FP block i on quantized inputs
            fb, qb = fp.blocks[i], qm.blocks[i]
            for key, (suffix, rec, normkey) in LINEARS.items():
                if key not in fb:
                    continue
                name = f"layers.{i}.{suffix}"
                X = r[rec]
                W, b = fb[key]
                What, bq = qb[key]
                Hraw = two_n * X.T @ X
                Hd, dead, lam = prepare(Hraw, pd)
                Wz = W.copy()
                Wz[:, dead] = 0.0
                # ζ folded into the preceding norm (pre-norm Z-Fold): the effective weight is Ŵ diag(ζ)
                zeta = np.ones(W.shape[1])
                Xq = X
                if fp.pre_norm and normkey is not None:
                    g0, b0 = fb[normkey]
                    g1, b1 = qb[normkey]
                    zeta = g1 / g0
                    self.max_zeta_dev = max(self.max_zeta_dev, float(np.max(np.abs(zeta - 1))))
                    Xq = qm.norm(qb[normkey], r["x"] if normkey == "norm1" else r["ffn_pre"])
                dW = What * zeta[None, :] - Wz
                dY = ref.linear(Xq, What, bq) - ref.linear(X, W, b)  # measured output change
                rtn_deq, _, rtn_scale, _ = rtn_minmax(Wz, bits, group, sym)
                dW_rtn = rtn_deq - Wz
                e = {"dead": len(dead), "bias_same": (b is None and bq is None) or np.array_equal(b, bq)}
                if method == "rtn":  # tquant's RTN result vs NumPy's, in units of the grid step
                    gs = group if group > 0 else W.shape[1]
                    step = np.repeat(rtn_scale, gs, axis=1)
                    steps = np.abs(What - rtn_deq) / step
                    e["rtn_steps"] = (int(np.sum(steps > 1e-3)), steps.size, float(steps.max()))
                kind = "H"
                if aespa and key in ("q", "k", "v"):
                    kind = {"q": "attention-Q", "k": "attention-K", "v": "attention-V"}[key]
                e["kind"] = kind
                if kind == "H":
                    Hs, Gs = [Hd], None
                    e["measured"] = two_n * float(np.sum(dY ** 2)) + lam * float(np.sum(dW ** 2)) \
                        + float(np.sum(dW[:, dead] ** 2))
                elif kind == "attention-V":
                    Xa = r["attn_in"]
                    Hs, lams = [], []
                    for g in range(fp.KV):
                        HV = sum(two_n * (r["A"][h] @ Xa).T @ (r["A"][h] @ Xa) for h in range(g * grp, (g + 1) * grp))
                        HVd, _, lg = prepare(HV, pd)
                        Hs.append(HVd)
                        lams.append(lg)
                    Gs = None
                    dV = fp.heads(dY, fp.KV)
                    meas = 0.0
                    for g in range(fp.KV):
                        for h in range(g * grp, (g + 1) * grp):
                            meas += two_n * float(np.sum((r["A"][h] @ dV[g]) ** 2))
                        meas += lams[g] * float(np.sum(dW[g * fp.d:(g + 1) * fp.d] ** 2))
                    e["measured"] = meas
                else:
                    K, Q = r["K"], r["Q"]
                    GQ = [two_n * K[g].T @ K[g] for g in range(fp.KV)]
                    GK = [two_n / grp * sum(Q[h].T @ Q[h] for h in range(g * grp, (g + 1) * grp)) for g in range(fp.KV)]
                    Hs = [Hd]
                    if key == "q":
                        Gs = [GQ[h // grp] for h in range(fp.H)]
                        if fp.family != "llama":  # no RoPE: the raw scores' change, all T×T entries
                            dQ = fp.heads(dY, fp.H)
                            meas = sum(float(np.sum((dQ[h] @ K[h // grp].T) ** 2)) for h in range(fp.H)) * two_n ** 2
                            meas += lam * sum(float(np.sum(Gs[h] * (dW[h * fp.d:(h + 1) * fp.d] @ dW[h * fp.d:(h + 1) * fp.d].T)))
                                              for h in range(fp.H))
                            e["measured"] = meas
                    else:
                        Gs = GK
                        if fp.family != "llama":
                            dK = fp.heads(dY, fp.KV)
                            meas = 0.0
                            for g in range(fp.KV):
                                for h in range(g * grp, (g + 1) * grp):
                                    meas += two_n ** 2 / grp * float(np.sum((Q[h] @ dK[g].T) ** 2))
                                dg = dW[g * fp.d:(g + 1) * fp.d]
                                meas += lam * float(np.sum(GK[g] * (dg @ dg.T)))
                            e["measured"] = meas
                e["formula"] = quad(dW, Hs, Gs)
                e["rtn"] = quad(dW_rtn, Hs, Gs)
                self.rows[name] = e
            x, _ = qm.block(i, x)  # the next block's inputs: through the QUANTIZED block


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def quantize_case(s, model_name, tag, flags):
    def case():
        args = s.args
        build, fam, T = FAMILIES[model_name]
        folder, calib = s.models[model_name], s.calib[model_name]
        method = flag_value(flags, "--method", "gptq")
        bits, group, sym = flag_value(flags, "--wbits", 4), flag_value(flags, "--group", 0), "--sym" in flags
        base = os.path.join(args.tmp, "out", f"{model_name}-{tag}")
        os.makedirs(os.path.dirname(base), exist_ok=True)
        t0 = time.time()
        rep = run_quantize(args, folder, calib, T, flags, base + "-packed", fake=False)
        rep_fake = run_quantize(args, folder, calib, T, flags, base + "-fake", fake=True)
        c = Checks()
        c.equal("N", rep["totals"]["calibration_tokens"], T)
        c.true("input folder unchanged", folder_digest(folder) == s.digests[model_name], "same bytes")
        # the two runs are deterministic and the same: same per-layer objectives
        c.true("packed/fake runs agree", [l["objective"] for l in rep["layers"]] ==
               [l["objective"] for l in rep_fake["layers"]], "same per-layer objectives")

        # --- round trip: NumPy's unpacking of the packed folder == the fake folder ---
        fake_t, _ = safetensors_py.read_folder(base + "-fake")
        fp_t, fp_meta = safetensors_py.read_folder(folder)
        shapes = {n[:-len(".weight")]: (a.shape[::-1] if fam == "gpt2" else a.shape)  # GPT-2 Conv1D: [in, out]
                  for n, a in fp_t.items() if n.endswith(".weight") and a.ndim == 2}
        deq, parts, meta, config = dequantize_packed(base + "-packed", fam, shapes, c)
        c.equal("bits/group/sym", (config["quantization_config"]["bits"],
                                                   config["quantization_config"]["group_size"],
                                                   config["quantization_config"]["sym"]),
                (bits, group if group else -1, sym))
        with open(os.path.join(base + "-fake", "config.json")) as f:
            fake_cfg = json.load(f)
        c.true("fake config", "quantization_config" not in fake_cfg and "tquant" in fake_cfg, "ok")
        c.true("tensor names", sorted(deq) == sorted(fake_t),
               f"packed-only {sorted(set(deq) - set(fake_t))}, fake-only {sorted(set(fake_t) - set(deq))}")
        worst, exact = 0.0, True
        for n in set(deq) & set(fake_t):
            a, b = deq[n].astype(np.float64), fake_t[n].astype(np.float64)
            if a.shape != b.shape:
                c.true(f"{n} shape", False, f"{a.shape} vs {b.shape}")
                continue
            exact &= bool(np.array_equal(a, b))
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(1e-30, np.abs(b)), initial=0)))
        c.true("packed == fake weights", worst <= 2.5e-7, f"max rel diff {worst:.1e} (bit-exact: {exact})")
        # untouched tensors are byte-for-byte the input's; quantized ones are gone from the packed
        changed = sorted(n for n in fp_t if n in fake_t and not np.array_equal(fp_t[n], fake_t[n]))
        quantized = {m + ".weight" for m in parts}
        norms_changed = [n for n in changed if n not in quantized]
        folds = method == "zfold" or (method == "aespa" and "--no-zfold" not in flags)
        zetas = sorted(m for m, p in parts.items() if p[3] is not None)
        if folds and fam != "bert":
            c.true("pre-norm Z-Fold folds ζ into norms", len(norms_changed) > 0 and not zetas,
                   f"{len(norms_changed)} norm tensors changed, {len(zetas)} .zeta stored")
        elif folds and fam == "bert":
            c.true("BERT (post-norm) stores ζ", not norms_changed and len(zetas) == 4 * fp_models(s, model_name).L,
                   f"{len(zetas)} .zeta tensors (q, k, v, intermediate per block), norms changed: {norms_changed}")
        else:
            c.true("no ζ without Z-Fold", not norms_changed and not zetas, f"changed {norms_changed}, ζ {zetas}")
        c.equal("aliases", {k: v for k, v in meta.items() if k != "format"},
                {k: v for k, v in fp_meta.items() if k != "format"})

        # --- forward: packed == fake exactly, both == NumPy reference of the dequantized weights ---
        deq_dir = base + "-numpy"
        shutil.rmtree(deq_dir, ignore_errors=True)
        os.makedirs(deq_dir)
        shutil.copy(os.path.join(base + "-packed", "config.json"), deq_dir)
        safetensors_py.write(os.path.join(deq_dir, "model.safetensors"),
                             [(n, {"float32": "F32", "int64": "I64"}[str(a.dtype)], a) for n, a in deq.items()],
                             meta or None)
        batch = s.batches[model_name]
        out_p = run_forward(args, base + "-packed", batch, f"{model_name}-{tag}-packed")
        out_f = run_forward(args, base + "-fake", batch, f"{model_name}-{tag}-fake")
        c.true("forward packed == fake", out_p.shape == out_f.shape and np.array_equal(out_p, out_f),
               f"max |diff| {float(np.max(np.abs(out_p - out_f))) if out_p.shape == out_f.shape else 'shape'}")
        want = ref.forward(deq_dir, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        keep = np.asarray(batch["attention_mask"]).astype(bool)
        err = float(np.max(np.abs(out_p[keep] - want[keep])))
        lim = FWD_RTOL * max(1.0, float(np.max(np.abs(want[keep]))))
        c.true("forward vs NumPy", err <= lim, f"max|err| {err:.2e} (limit {lim:.1e})")
        fp_out = fp_forward(s, model_name)
        qerr = float(np.max(np.abs(fp_out[keep] - want[keep])))
        c.true("quantization changes the output", qerr > 10 * lim or bits == 8, f"max |FP - quantized| {qerr:.3g}")

        # --- objectives: replayed pipeline, formula and measured ---
        fpm = fp_models(s, model_name)
        qm = Model(base + "-fake", fam)
        ex = Expect(fpm, qm, text_ids(TEXT[:T]), flags, method)
        names = [l["name"] for l in rep["layers"]]
        c.true("layers reported", sorted(names) == sorted(ex.rows), f"{len(names)} layers")
        ratios, measured_ratios, worse = [], [], []
        for l in rep["layers"]:
            e = ex.rows.get(l["name"])
            if e is None:
                continue
            nm = l["name"]
            if l["objective_kind"] != e["kind"] or l["dead_inputs"] != e["dead"]:
                c.true(f"{nm} kind/dead inputs", False, f"{l['objective_kind']}/{l['dead_inputs']} vs {e['kind']}/{e['dead']}")
            if not e["bias_same"]:
                c.true(f"{nm} bias", False, "bias changed")
            if not abs(l["objective"] - e["formula"]) <= OBJ_RTOL * abs(e["formula"]) + 1e-12:
                c.true(f"{nm} objective", False, f"{l['objective']:.8g} vs formula {e['formula']:.8g}")
            ratios.append(l["objective"] / e["formula"] if e["formula"] else 1.0)
            if "measured" in e:
                okm = abs(l["objective"] - e["measured"]) <= OBJ_RTOL * abs(e["measured"]) + 1e-12
                if not okm:
                    c.true(f"{nm} objective vs measured", False, f"{l['objective']:.8g} vs measured {e['measured']:.8g}")
                measured_ratios.append((e["kind"], l["objective"] / e["measured"] if e["measured"] else 1.0))
            okr = abs(l["objective_rtn"] - e["rtn"]) <= 1e-3 * abs(e["rtn"]) + 1e-12
            if not okr:
                c.true(f"{nm} objective_rtn", False, f"{l['objective_rtn']:.8g} vs NumPy RTN {e['rtn']:.8g}")
            if method == "rtn":
                if l["objective"] != l["objective_rtn"]:
                    c.true(f"{nm} rtn objective", False, f"{l['objective']} != objective_rtn {l['objective_rtn']}")
            elif l["objective"] > l["objective_rtn"] * (1 + 1e-6):
                worse.append(f"{nm} {l['objective']:.4g} > RTN {l['objective_rtn']:.4g}")
        if method == "rtn":
            off = sum(e["rtn_steps"][0] for e in ex.rows.values())
            total = sum(e["rtn_steps"][1] for e in ex.rows.values())
            far = max(e["rtn_steps"][2] for e in ex.rows.values())
            c.true("RTN == NumPy min-max RTN", off <= max(1, total // 1000) and far < 1.001,
                   f"{off}/{total} weights off by up to {far:.3g} grid steps (rounding ties)")
        c.true("objective <= RTN per layer", not worse, "; ".join(worse) if worse else f"{len(names)} layers")
        summary = [f"N={T}", f"fwd err {err:.1e} (packed==fake bit-exact, weights bit-exact: {exact})"]
        if ratios:
            summary.append(f"objective/formula [{min(ratios):.6f}, {max(ratios):.6f}]")
        if measured_ratios:
            by = {}
            for k, v in measured_ratios:
                by.setdefault(k, []).append(v)
            summary.append("objective/measured " + ", ".join(f"{k} [{min(v):.6f}, {max(v):.6f}]"
                                                              for k, v in sorted(by.items())))
        if method != "rtn":
            gains = [l["objective"] / l["objective_rtn"] for l in rep["layers"] if l["objective_rtn"] > 0]
            summary.append(f"objective/RTN median {float(np.median(gains)):.3f}")
        if method == "rtn":
            summary.append(f"RTN codes == NumPy ({off} of {total} differ)")
        s.results[(model_name, tag)] = dict(base=base, report=rep, flags=flags)
        summary.append(f"{time.time() - t0:.1f}s")
        c.finish()  # raises with every check's line on any failure
        return "; ".join(summary)
    return case


_FP_CACHE = {}


def fp_forward(s, model_name):
    key = ("forward", model_name)
    if key not in _FP_CACHE:
        b = s.batches[model_name]
        _FP_CACHE[key] = ref.forward(s.models[model_name], b["input_ids"], b["attention_mask"], b.get("token_type_ids"))
    return _FP_CACHE[key]


def fp_models(s, model_name):
    if model_name not in _FP_CACHE:
        _FP_CACHE[model_name] = Model(s.models[model_name], FAMILIES[model_name][1])
    return _FP_CACHE[model_name]


def kronecker_case(s):
    """The single-sequence identity behind the Q/K objectives, in NumPy alone (random data, no
    RoPE): Σ_{t,s} (x_tᵀ ΔWᵀ k_s)² = tr(KᵀK ΔW XᵀX ΔWᵀ); and with RoPE it is NOT exact."""
    def case():
        rng = np.random.default_rng(3)
        T, D, d = 20, 12, 4
        X, K, dW = rng.standard_normal((T, D)), rng.standard_normal((T, d)), rng.standard_normal((d, D))
        lhs = float(np.sum((X @ dW.T @ K.T) ** 2))
        rhs = float(np.trace(K.T @ K @ dW @ X.T @ X @ dW.T))
        cos, sin = ref.rope_cos_sin(np.arange(T), d, 10000.0)
        dq = X @ dW.T
        dq_rope = dq * cos + ref.rotate_half(dq) * sin
        roped = float(np.sum((dq_rope @ K.T) ** 2))
        c = Checks()
        c.close("no RoPE: Σ(ΔS)² vs tr(KᵀK ΔW XᵀX ΔWᵀ)", lhs, rhs, rtol=1e-12)
        c.true("with RoPE the factorisation is only approximate", abs(roped / rhs - 1) > 1e-3,
               f"ratio {roped / rhs:.4f}")
        return c.finish()
    return case


def first_order_case(s, model_name, tag):
    """‖ΔO‖² of the attention output for W_Q + εΔ (Δ = the quantization error of aespa's q_proj)
    against the first-order prediction ‖J_softmax(ΔS/√d)·V‖², as ε -> 0."""
    def case():
        res = s.results.get((model_name, tag))
        if res is None:
            raise Failure(f"needs the {model_name} {tag} case to have passed")
        fam, T = FAMILIES[model_name][1], FAMILIES[model_name][2]
        fp = fp_models(s, model_name)
        qm = Model(res["base"] + "-fake", fam)
        x = fp.embed(text_ids(TEXT[:T]))
        _, r = fp.block(0, x)
        W = fp.blocks[0]["q"][0]
        zeta = qm.blocks[0]["norm1"][0] / fp.blocks[0]["norm1"][0]
        delta = qm.blocks[0]["q"][0] * zeta[None, :] - W
        h = r["attn_in"]
        K, V, A = r["K"], r["V"], r["A"]
        sq = math.sqrt(fp.d)

        def out(probs):
            return np.einsum("hts,hsd->htd", probs, V)

        O = out(A)
        rows = []
        for eps in (1.0, 1e-1, 1e-2, 1e-3):
            dQ = fp.heads(h @ (eps * delta).T, fp.H)
            Aeps = fp.attention_probs(r["Q"] + dQ, K)
            dO = out(Aeps) - O
            dS = np.einsum("htd,hsd->hts", dQ, K) / sq
            dP = A * (dS - np.sum(A * dS, -1, keepdims=True))  # masked entries: A = 0
            pred = out(dP)
            rows.append((eps, float(np.sum(dO ** 2)) / float(np.sum(pred ** 2))))
        c = Checks()
        errs = [abs(rt - 1) for _, rt in rows]
        c.true("ratio -> 1", errs[-1] < 1e-2 and errs[-1] < errs[1] / 20,
               " ".join(f"eps={e:g}: {rt:.6f}" for e, rt in rows))
        return c.finish()
    return case


def interrupt_case(s, sig):
    def case():
        args = s.args
        name = "llama-gqa"
        _, fam, T = FAMILIES[name]
        out = os.path.join(args.tmp, "out", f"interrupted-{sig.name}")
        shutil.rmtree(out, ignore_errors=True)
        for stale in glob.glob(out + ".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        cmd = quantize_cmd(args, s.models[name], s.calib[name], T,
                           ["--method", "aespa", "--wbits", "2", "--iters", "100000"], out, False)
        # A Ctrl-C'd terminal program has the default disposition; do not inherit an ignored one.
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            first = proc.stderr.readline()
            if not first.startswith("block "):
                raise Failure(f"expected a progress line first, got {first!r}")
            time.sleep(0.3)
            proc.send_signal(sig)
            proc.stderr.read()  # until it dies
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        c = Checks()
        c.true("exit status", rc in (-sig, 128 + sig), f"{rc} (expected {-sig} or {128 + sig}) after {first.strip()!r}")
        c.true("no output folder", not os.path.exists(out), out)
        c.true("no temporary folder", not glob.glob(out + ".tmp-*"), str(glob.glob(out + ".tmp-*")))
        return c.finish()
    return case


def big_vocab_model(s):
    """A tiny LLaMA with a 262144-token embedding (67 MB), so that writing its checkpoint takes
    long enough (~0.2 s) to be interrupted while the temporary folder exists."""
    folder = os.path.join(s.args.tmp, "models", "llama-bigvocab")
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        tiny_models.llama(folder, 111, vocab=262144, tie="embed_only")
        write_char_tokenizer(folder)
    return folder


def interrupt_write_case(s, sig):
    """The signal arrives while the checkpoint is being written: <out>.tmp-<pid> exists at that
    moment and must be gone afterwards, with no <out> either."""
    def case():
        args = s.args
        folder = big_vocab_model(s)
        out = os.path.join(args.tmp, "out", f"interrupted-write-{sig.name}")
        shutil.rmtree(out, ignore_errors=True)
        for stale in glob.glob(out + ".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        cmd = quantize_cmd(args, folder, s.calib["llama-gqa"], 64, ["--method", "rtn"], out, False)
        for attempt in range(3):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            seen = None
            deadline = time.time() + 120
            while proc.poll() is None and time.time() < deadline:
                tmp = glob.glob(out + ".tmp-*")
                if tmp:
                    seen = tmp
                    proc.send_signal(sig)
                    break
                time.sleep(0.001)
            rc = proc.wait(timeout=60)
            if seen:
                break
            shutil.rmtree(out, ignore_errors=True)  # finished before the window was caught: again
        else:
            raise Failure(f"three runs finished before their temporary folder could be seen (last exit {rc})")
        c = Checks()
        c.true("exit status", rc in (-sig, 128 + sig), f"{rc} (expected {-sig} or {128 + sig}), signalled while "
               f"{os.path.basename(seen[0])} existed (attempt {attempt + 1})")
        c.true("no output folder", not os.path.exists(out), out)
        c.true("temporary folder removed", not glob.glob(out + ".tmp-*"), str(glob.glob(out + ".tmp-*")))
        return c.finish()
    return case


def error_case(s, label, model_name, flags, must_mention, out_setup=None, calib=None):
    def case():
        args = s.args
        _, fam, T = FAMILIES[model_name]
        out = os.path.join(args.tmp, "out", f"error-{label}")
        shutil.rmtree(out, ignore_errors=True)
        json_path = out + ".json"
        if os.path.exists(json_path):
            os.remove(json_path)
        before = None
        if out_setup:
            before = out_setup(out)
        cmd = quantize_cmd(args, s.models[model_name], calib or s.calib[model_name], T, flags, out, False, json_path)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)
        c = Checks()
        c.equal("exit status", proc.returncode, 1)
        missing = [m for m in must_mention if m not in proc.stderr]
        c.true("message", not missing, f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''!r}"
               + (f" does not mention {missing}" if missing else ""))
        if before is None:
            c.true("nothing written", not os.path.exists(out), out)
        else:
            c.equal("foreign folder untouched", folder_digest(out), before)
        c.true("no temporary folder", not glob.glob(out + ".tmp-*"), str(glob.glob(out + ".tmp-*")))
        c.true("no --json report", not os.path.exists(json_path), json_path)
        return c.finish()
    return case


def foreign_folder(out):
    os.makedirs(out)
    with open(os.path.join(out, "notes.txt"), "w") as f:
        f.write("my notes, not a model\n")
    return folder_digest(out)


def main():
    args = parse_args(__doc__.splitlines()[0])
    t0 = time.time()
    s = Setup(args)
    cases = [("kronecker identity (NumPy)", kronecker_case(s))]
    for model_name in FAMILIES:
        for tag, flags in COMMON + [EXTRA[model_name]]:
            cases.append((f"{model_name} {tag}", quantize_case(s, model_name, tag, flags)))
    cases.append(("first-order softmax expansion (opt aespa-w4)", first_order_case(s, "opt", "aespa-w4")))
    cases.append(("SIGINT", interrupt_case(s, signal.SIGINT)))
    cases.append(("SIGTERM", interrupt_case(s, signal.SIGTERM)))
    cases.append(("SIGINT while writing", interrupt_write_case(s, signal.SIGINT)))
    cases.append(("SIGTERM while writing", interrupt_write_case(s, signal.SIGTERM)))
    missing_calib = os.path.join(args.tmp, "no-such-calibration.txt")
    cases += [
        ("error --wbits 9", error_case(s, "wbits9", "opt", ["--method", "gptq", "--wbits", "9"], ["9", "bits"])),
        ("error --group 10", error_case(s, "group10", "opt", ["--method", "rtn", "--group", "10"],
                                        ["group size 10", "48"])),
        ("error missing --calib", error_case(s, "nocalib", "opt", ["--method", "rtn"], [missing_calib],
                                             calib=missing_calib)),
        ("error foreign --out", error_case(s, "foreign", "opt", ["--method", "rtn"], ["not empty"],
                                           out_setup=foreign_folder)),
    ]
    rc = run_cases(cases, args.filter)
    t = os.times()
    print(f"total {time.time() - t0:.1f}s wall; CPU: this script {t.user + t.system:.1f}s, "
          f"tquant {t.children_user + t.children_system:.1f}s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
