"""NumPy fake quantization and a LLaMA forward pass with quantization points, for the recipe
oracle test (test_eval_recipe.py).

Written from the definitions in README.md, docs/hooks.md and METHODS.md §1-2 (the uniform
affine quantizer of Bondarenko et al. / Nagel et al.'s white paper), not from the C++:

  asymmetric, b bits: codes 0 .. 2^b - 1; the range is widened to contain 0,
      s = (hi - lo) / (2^b - 1),  z = clamp(round(-lo / s), 0, 2^b - 1)
  symmetric, b bits:  codes -2^(b-1) .. 2^(b-1) - 1,  s = max(|lo|, |hi|) / (2^(b-1) - 1),  z = 0
  x̂ = s (clamp(round(x / s) + z, qmin, qmax) - z),  round = half to even (torch.round)

Scale and zero point are float32 numbers computed in float32 (what the PyTorch references and
tquant keep); a scale below the smallest normal float is raised to it. Weights are float32 and
are fake-quantized in float32, which makes them bit-exact with any correct float32
implementation; activations come from the float64 reference forward and are quantized in float64
with those float32 parameters.

Granularities of an activation [.., C]: per tensor; per channel (one range per column C, over all
tokens); per embedding group (columns mapped to K groups, one range per group); per token
(dynamic: each row's own min/max at run time). Weights [out, in]: per tensor, per channel (one
range per output row), per group (group_size consecutive columns of a row).

Range estimators modelled: current_minmax (the last batch), minmax (over all batches) and
running_minmax (r = m r + (1 - m) batch with m = 0.9, the first batch initialising r, kept in
float64 and rounded to float32 at the end).
"""
import math

import numpy as np

import numpy_reference as ref

FLT_MIN = np.float32(1.17549435e-38)
MOMENTUM = 0.9


def code_range(bits, symmetric):
    if symmetric:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def scale_zero(lo, hi, bits, symmetric):
    """float32 (scale, zero point) arrays for ranges [lo, hi] (arrays or scalars)."""
    lo = np.atleast_1d(np.asarray(lo, dtype=np.float32))
    hi = np.atleast_1d(np.asarray(hi, dtype=np.float32))
    _, qmax = code_range(bits, symmetric)
    f32max = np.float32(qmax)
    if symmetric:
        s = (np.maximum(np.abs(lo), np.abs(hi)) / f32max).astype(np.float32)
        s = np.where(s >= FLT_MIN, s, FLT_MIN).astype(np.float32)
        return s, np.zeros_like(s)
    lo = np.minimum(lo, np.float32(0.0))
    hi = np.maximum(hi, np.float32(0.0))
    s = ((hi - lo) / f32max).astype(np.float32)
    s = np.where(s >= FLT_MIN, s, FLT_MIN).astype(np.float32)
    z = np.clip(np.rint((-lo) / s), np.float32(0.0), f32max).astype(np.float32) + np.float32(0.0)
    return s, z


def fake_quant(x, s, z, bits, symmetric):
    """x̂ with s, z broadcast against x. float32 x is quantized in float32 (bit-exact weights),
    anything else in float64."""
    qmin, qmax = code_range(bits, symmetric)
    if x.dtype == np.float32:
        s, z = np.asarray(s, np.float32), np.asarray(z, np.float32)
        q = np.clip(np.rint(x / s) + z, np.float32(qmin), np.float32(qmax))
        return (s * (q - z)).astype(np.float32)
    s, z = np.asarray(s, np.float64), np.asarray(z, np.float64)
    q = np.clip(np.rint(x / s) + z, qmin, qmax)
    return s * (q - z)


# ---------------------------------------------------------------------------------------------
# Weights (min-max ranges)
# ---------------------------------------------------------------------------------------------

def quantize_weight(w, bits, symmetric, granularity, group_size=0):
    """Min-max fake quantization of a float32 [out, in] weight; returns float32."""
    w = np.asarray(w, np.float32)
    if granularity == "per_tensor":
        s, z = scale_zero(w.min(), w.max(), bits, symmetric)
        return fake_quant(w, s[0], z[0], bits, symmetric)
    if granularity == "per_channel":
        s, z = scale_zero(w.min(1), w.max(1), bits, symmetric)
        return fake_quant(w, s[:, None], z[:, None], bits, symmetric)
    if granularity == "per_group":
        rows, cols = w.shape
        if cols % group_size:
            raise ValueError(f"group size {group_size} does not divide {cols}")
        g = w.reshape(rows, cols // group_size, group_size)
        s, z = scale_zero(g.min(2).ravel(), g.max(2).ravel(), bits, symmetric)
        s, z = s.reshape(rows, -1, 1), z.reshape(rows, -1, 1)
        return fake_quant(g, s, z, bits, symmetric).reshape(rows, cols)
    raise ValueError(f"weight granularity {granularity!r} is not modelled")


# ---------------------------------------------------------------------------------------------
# Activation ranges
# ---------------------------------------------------------------------------------------------

def combine_ranges(estimator, batches):
    """batches: list of (lo, hi) float arrays (one entry per group), in calibration order.
    Returns float32 (lo, hi) as the estimator defines them."""
    if estimator == "current_minmax":
        lo, hi = batches[-1]
    elif estimator == "minmax":
        lo = np.min([b[0] for b in batches], axis=0)
        hi = np.max([b[1] for b in batches], axis=0)
    elif estimator == "running_minmax":
        lo = np.asarray(batches[0][0], np.float64)
        hi = np.asarray(batches[0][1], np.float64)
        for b_lo, b_hi in batches[1:]:
            lo = MOMENTUM * lo + (1.0 - MOMENTUM) * np.asarray(b_lo, np.float64)
            hi = MOMENTUM * hi + (1.0 - MOMENTUM) * np.asarray(b_hi, np.float64)
    else:
        raise ValueError(f"estimator {estimator!r} is not modelled")
    return np.asarray(lo, np.float32), np.asarray(hi, np.float32)


def balanced_sizes(items, groups):
    """K contiguous group sizes differing by at most one, larger ones first."""
    base, extra = divmod(items, groups)
    return [base + (1 if k < extra else 0) for k in range(groups)]


def contiguous_groups(channels, groups):
    return np.repeat(np.arange(groups), balanced_sizes(channels, groups))


def permuted_groups(widths, groups):
    """Range-based permutation (Bondarenko et al. §2): channels sorted by range width ascending
    (ties by channel index) and the sorted order cut into K balanced contiguous groups."""
    widths = np.asarray(widths)
    order = np.lexsort((np.arange(len(widths)), widths))
    out = np.empty(len(widths), np.int64)
    out[order] = contiguous_groups(len(widths), groups)
    return out


def group_ranges(col_lo, col_hi, channel_group):
    """Per-column (lo, hi) -> per-group (lo, hi)."""
    k = int(channel_group.max()) + 1
    lo = np.array([col_lo[channel_group == g].min() for g in range(k)])
    hi = np.array([col_hi[channel_group == g].max() for g in range(k)])
    return lo, hi


class ActQuant:
    """One activation quantizer: granularity in per_tensor | per_channel | per_embedding_group |
    per_token; scale/zero (float32 arrays) for the static ones; channel_group for PEG."""

    def __init__(self, bits, symmetric, granularity, scale=None, zero=None, channel_group=None):
        self.bits, self.symmetric, self.granularity = bits, symmetric, granularity
        self.scale = None if scale is None else np.asarray(scale, np.float32)
        self.zero = None if zero is None else np.asarray(zero, np.float32)
        self.channel_group = None if channel_group is None else np.asarray(channel_group, np.int64)

    def __call__(self, x):
        g = self.granularity
        if g == "per_token":
            lo = x.min(-1).astype(np.float32)
            hi = x.max(-1).astype(np.float32)
            s, z = scale_zero(lo.ravel(), hi.ravel(), self.bits, self.symmetric)
            shape = x.shape[:-1] + (1,)
            return fake_quant(x, s.reshape(shape), z.reshape(shape), self.bits, self.symmetric)
        if g == "per_tensor":
            s, z = self.scale[0], self.zero[0]
        elif g == "per_channel":
            s, z = self.scale, self.zero
        elif g == "per_embedding_group":
            s, z = self.scale[self.channel_group], self.zero[self.channel_group]
        else:
            raise ValueError(f"activation granularity {g!r} is not modelled")
        return fake_quant(x, s, z, self.bits, self.symmetric)


# ---------------------------------------------------------------------------------------------
# LLaMA with quantization points (docs/hooks.md names; only the points a pre-norm LLaMA has)
# ---------------------------------------------------------------------------------------------

class LlamaWeights:
    """The tensors of a LLaMA folder under tquant's linear/norm names, float32 as stored. The
    token embedding stays separate from lm_head, so quantizing a tied head leaves the embedding
    lookup in full precision."""

    def __init__(self, model_dir):
        self.cfg = ref.load_config(model_dir)
        w = ref.Weights(model_dir)
        f32 = lambda name: w(name).astype(np.float32)  # stored F32: exact
        self.embed = f32("model.embed_tokens.weight") if w.has("model.embed_tokens.weight") else f32("lm_head.weight")
        self.linears, self.norms = {}, {}
        for i in range(self.cfg["num_hidden_layers"]):
            p, q = f"model.layers.{i}.", f"layers.{i}."
            for ours, hf in (("attn.q_proj", "self_attn.q_proj"), ("attn.k_proj", "self_attn.k_proj"),
                             ("attn.v_proj", "self_attn.v_proj"), ("attn.o_proj", "self_attn.o_proj"),
                             ("ffn.gate_proj", "mlp.gate_proj"), ("ffn.up_proj", "mlp.up_proj"),
                             ("ffn.down_proj", "mlp.down_proj")):
                self.linears[q + ours] = f32(p + hf + ".weight")
            self.norms[q + "attn.norm"] = f32(p + "input_layernorm.weight")
            self.norms[q + "ffn.norm"] = f32(p + "post_attention_layernorm.weight")
        self.norms["final_norm"] = f32("model.norm.weight")
        tied = self.cfg.get("tie_word_embeddings", False)
        self.linears["lm_head"] = self.embed.copy() if tied else f32("lm_head.weight")
        if self.cfg.get("attention_bias") or self.cfg.get("mlp_bias"):
            raise ValueError("numpy_quant models LLaMA without biases only")


def llama_forward_points(m, ids, hook, lengths=None):
    """Float64 forward of LlamaWeights `m` on right-padded ids [B, T]; hook(point, x) is called
    at every point of docs/hooks.md a LLaMA has (except the linears' `.in`), in forward order,
    and its return value replaces the activation. Returns the logits [B, T, V]."""
    cfg = m.cfg
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    eps = cfg.get("rms_norm_eps", 1e-6)
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError("numpy_quant models SiLU LLaMA only")
    ids = np.asarray(ids, np.int64)
    b, t = ids.shape
    lengths = [t] * b if lengths is None else lengths
    mask = np.zeros((b, t), np.int64)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    W = lambda name: m.linears[name].astype(np.float64)
    G = lambda name: m.norms[name].astype(np.float64)
    cos, sin = ref.rope_cos_sin(np.arange(t), head_dim, cfg.get("rope_theta", 10000.0))
    scores_mask = ref.additive_mask(mask, causal=True)
    group = heads // kv_heads

    def merge(x):  # [B, H, T, D] -> [B, T, H*D]
        return np.transpose(x, (0, 2, 1, 3)).reshape(b, t, -1)

    x = hook("embed.out", m.embed[ids].astype(np.float64))
    for i in range(cfg["num_hidden_layers"]):
        p = f"layers.{i}."
        h = hook(p + "attn.norm.out", ref.rms_norm(x, G(p + "attn.norm"), eps))
        q = hook(p + "attn.q_proj.out", h @ W(p + "attn.q_proj").T)
        k = hook(p + "attn.k_proj.out", h @ W(p + "attn.k_proj").T)
        v = hook(p + "attn.v_proj.out", h @ W(p + "attn.v_proj").T)
        q, k, v = ref.split_heads(q, heads), ref.split_heads(k, kv_heads), ref.split_heads(v, kv_heads)
        q = q * cos + ref.rotate_half(q) * sin
        k = k * cos + ref.rotate_half(k) * sin
        q = ref.split_heads(hook(p + "attn.query", merge(q)), heads)
        k = ref.split_heads(hook(p + "attn.key", merge(k)), kv_heads)
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = hook(p + "attn.scores", q @ np.swapaxes(k, -1, -2))  # raw Q K^T, before scale and mask
        s = scores * head_dim ** -0.5 + scores_mask
        s = s - s.max(-1, keepdims=True)
        probs = np.exp(s)
        probs = hook(p + "attn.probs", probs / probs.sum(-1, keepdims=True))
        context = hook(p + "attn.context", merge(probs @ v))
        o = hook(p + "attn.o_proj.out", context @ W(p + "attn.o_proj").T)
        x = hook(p + "attn.residual_sum", x + o)
        h = hook(p + "ffn.norm.out", ref.rms_norm(x, G(p + "ffn.norm"), eps))
        gate = hook(p + "ffn.gate_proj.out", h @ W(p + "ffn.gate_proj").T)
        up = hook(p + "ffn.up_proj.out", h @ W(p + "ffn.up_proj").T)
        a = hook(p + "ffn.act.out", ref.activation("silu", gate) * up)
        d = hook(p + "ffn.down_proj.out", a @ W(p + "ffn.down_proj").T)
        x = hook(p + "ffn.residual_sum", x + d)
    x = hook("final_norm.out", ref.rms_norm(x, G("final_norm"), eps))
    logits = hook("lm_head.out", x @ W("lm_head").T)
    return hook("logits", logits)


def visible_scores(scores):
    """The entries of causal [B, H, T, T] scores a query may attend to (full-length rows)."""
    t = scores.shape[-1]
    return scores[..., np.tril(np.ones((t, t), dtype=bool))]


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def fmt_err(a, b):
    return f"{a:.9g} vs {b:.9g} (rel {abs(a - b) / max(abs(b), 1e-30):.1e})" if math.isfinite(a) else f"{a} vs {b}"
