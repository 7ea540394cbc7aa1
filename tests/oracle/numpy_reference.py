"""Reference forward passes in float64 NumPy, following Hugging Face transformers' semantics.

Written from transformers' modeling_llama.py / modeling_bert.py / modeling_opt.py /
modeling_gpt2.py and their configuration defaults, sharing no code with the C++ so the two can
disagree. Everything is computed in float64 from the stored weights (F16/BF16 widened exactly),
so the reference is far more accurate than a float32 implementation and the comparison
tolerance measures the C++ alone.

Entry point: forward(model_dir, input_ids, attention_mask=None, token_type_ids=None) returns
what `tquant forward` writes: logits [B, T, vocab] for causal/masked LMs, [B, num_labels] for
BertForSequenceClassification, the last hidden state [B, T, hidden] for BertModel.
Only right padding is modelled (positions are 0..T-1 on every row, as HF gives them then).
"""
import json
import math
import os

import numpy as np

import safetensors_py

# HF adds torch.finfo(float32).min to masked attention scores (not -inf), so a fully masked
# row still yields a uniform softmax rather than NaN; the same value is used here.
MASK_VALUE = float(np.finfo(np.float32).min)

SUPPORTED = ("LlamaForCausalLM", "BertModel", "BertForSequenceClassification",
             "BertForMaskedLM", "OPTForCausalLM", "GPT2LMHeadModel")


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])  # NumPy has no erf and SciPy is not assumed


def activation(name, x):
    """transformers' ACT2FN entries used by these models."""
    if name == "gelu":  # exact: 0.5 x (1 + erf(x / sqrt 2))
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):  # tanh approximation
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name in ("silu", "swish"):
        return x / (1.0 + np.exp(-x))
    raise ValueError(f"activation {name!r} is not modelled by the reference")


def linear(x, weight, bias=None):
    """nn.Linear: weight is [out, in]."""
    y = x @ weight.T
    return y if bias is None else y + bias


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)  # biased variance, as nn.LayerNorm
    y = (x - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def rms_norm(x, weight, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def additive_mask(attention_mask, causal):
    """[B, 1, T, T] additive scores mask: key padding (and the causal triangle if asked)."""
    b, t = attention_mask.shape
    allowed = np.broadcast_to(attention_mask[:, None, None, :].astype(bool), (b, 1, t, t))
    if causal:
        allowed = allowed & np.tril(np.ones((t, t), dtype=bool))[None, None]
    return np.where(allowed, 0.0, MASK_VALUE)


def attention(q, k, v, mask, scale):
    """q [B,H,T,D], k/v [B,H,T,D] (already expanded for GQA) -> [B,T,H*D]."""
    scores = (q @ np.swapaxes(k, -1, -2)) * scale + mask
    scores = scores - scores.max(-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(-1, keepdims=True)
    out = probs @ v  # [B,H,T,D]
    b, h, t, d = out.shape
    return np.transpose(out, (0, 2, 1, 3)).reshape(b, t, h * d)


def split_heads(x, heads):
    """[B,T,H*D] -> [B,H,T,D]"""
    b, t, hd = x.shape
    return np.transpose(x.reshape(b, t, heads, hd // heads), (0, 2, 1, 3))


# ---------------------------------------------------------------------------------------------
# Weights: name lookup with the prefixes and tied-weight aliases HF checkpoints use
# ---------------------------------------------------------------------------------------------

class Weights:
    def __init__(self, model_dir):
        tensors, metadata = safetensors_py.read_folder(model_dir)
        self.tensors = tensors
        # safetensors' torch helper records a dropped tied tensor as metadata alias -> kept name
        self.aliases = {k: v for k, v in metadata.items() if v in tensors}

    def has(self, name):
        return name in self.tensors or name in self.aliases

    def __call__(self, name):
        name = name if name in self.tensors else self.aliases.get(name, name)
        if name not in self.tensors:
            raise KeyError(f"reference: tensor {name!r} not in checkpoint")
        return self.tensors[name].astype(np.float64)

    def first(self, *names):
        for name in names:
            if self.has(name):
                return self(name)
        raise KeyError(f"reference: none of {names} in checkpoint")


def _prefix(weights, probe, candidates):
    for p in candidates:
        if weights.has(p + probe):
            return p
    raise KeyError(f"reference: {probe!r} not found under any of the prefixes {candidates}")


# ---------------------------------------------------------------------------------------------
# Architectures
# ---------------------------------------------------------------------------------------------

def rope_cos_sin(positions, head_dim, theta):
    """Default (unscaled) RoPE as LlamaRotaryEmbedding: inv_freq_i = theta^(-2i/d), and the
    angle table repeated for both halves, matching rotate_half's pairing of i and i+d/2."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = positions[:, None].astype(np.float64) * inv_freq[None, :]  # [T, d/2]
    emb = np.concatenate([angles, angles], axis=-1)  # [T, d]
    return np.cos(emb), np.sin(emb)


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def llama_forward(cfg, w, ids, mask):
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    if cfg.get("rope_scaling"):
        raise ValueError("reference models only unscaled RoPE")
    act = cfg.get("hidden_act", "silu")
    tied = cfg.get("tie_word_embeddings", False)  # LlamaConfig's default is False

    if tied:  # either copy may be the stored one; HF ties them after loading
        embed = w.first("model.embed_tokens.weight", "lm_head.weight")
        head = embed
    else:
        embed, head = w("model.embed_tokens.weight"), w("lm_head.weight")
    # HF builds the bias parameters only when the config asks, and ignores stray ones otherwise
    attn_bias = cfg.get("attention_bias", False)
    mlp_bias = cfg.get("mlp_bias", False)

    def proj(name, h, has_bias):
        return linear(h, w(name + ".weight"), w(name + ".bias") if has_bias else None)

    b, t = ids.shape
    x = embed[ids]
    cos, sin = rope_cos_sin(np.arange(t), head_dim, theta)
    scores_mask = additive_mask(mask, causal=True)
    group = heads // kv_heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w(p + "input_layernorm.weight"), eps)
        q = proj(p + "self_attn.q_proj", h, attn_bias)
        k = proj(p + "self_attn.k_proj", h, attn_bias)
        v = proj(p + "self_attn.v_proj", h, attn_bias)
        q, k, v = split_heads(q, heads), split_heads(k, kv_heads), split_heads(v, kv_heads)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head j reads key/value head j // group
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        a = attention(q, k, v, scores_mask, head_dim ** -0.5)
        x = x + proj(p + "self_attn.o_proj", a, attn_bias)
        h = rms_norm(x, w(p + "post_attention_layernorm.weight"), eps)
        gate = proj(p + "mlp.gate_proj", h, mlp_bias)
        up = proj(p + "mlp.up_proj", h, mlp_bias)
        x = x + proj(p + "mlp.down_proj", activation(act, gate) * up, mlp_bias)
    x = rms_norm(x, w("model.norm.weight"), eps)
    return linear(x, head)


def bert_encoder(cfg, w, p, ids, mask, token_types):
    """Embeddings + post-LN encoder; `p` is the tensor-name prefix ("bert." or "")."""
    eps = cfg.get("layer_norm_eps", 1e-12)
    heads = cfg["num_attention_heads"]
    act = cfg.get("hidden_act", "gelu")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("reference models only absolute BERT positions")

    def dense(name, h):
        return linear(h, w(name + ".weight"), w(name + ".bias"))

    def ln(name, h):
        return layer_norm(h, w(name + ".weight"), w(name + ".bias"), eps)

    b, t = ids.shape
    e = p + "embeddings."
    x = (w(e + "word_embeddings.weight")[ids] + w(e + "position_embeddings.weight")[np.arange(t)][None]
         + w(e + "token_type_embeddings.weight")[token_types])
    x = ln(e + "LayerNorm", x)
    scores_mask = additive_mask(mask, causal=False)
    head_dim = cfg["hidden_size"] // heads
    for i in range(cfg["num_hidden_layers"]):
        l = f"{p}encoder.layer.{i}."
        q, k, v = (split_heads(dense(l + "attention.self." + n, x), heads) for n in ("query", "key", "value"))
        a = attention(q, k, v, scores_mask, 1.0 / math.sqrt(head_dim))
        x = ln(l + "attention.output.LayerNorm", dense(l + "attention.output.dense", a) + x)
        inner = activation(act, dense(l + "intermediate.dense", x))
        x = ln(l + "output.LayerNorm", dense(l + "output.dense", inner) + x)
    return x


def bert_forward(arch, cfg, w, ids, mask, token_types):
    # BertModel.save_pretrained stores names without "bert."; heads store them with it, and
    # HF loads either into either class, so both are accepted.
    p = _prefix(w, "embeddings.word_embeddings.weight", ("bert.", ""))
    x = bert_encoder(cfg, w, p, ids, mask, token_types)

    def dense(name, h):
        return linear(h, w(name + ".weight"), w(name + ".bias"))

    if arch == "BertModel":
        return x
    if arch == "BertForSequenceClassification":  # pooler: tanh(dense(h[:, 0])), then classifier
        return dense("classifier", np.tanh(dense(p + "pooler.dense", x[:, 0])))
    if arch == "BertForMaskedLM":
        t = "cls.predictions.transform."
        h = activation(cfg.get("hidden_act", "gelu"), dense(t + "dense", x))
        eps = cfg.get("layer_norm_eps", 1e-12)
        h = layer_norm(h, w(t + "LayerNorm.weight"), w(t + "LayerNorm.bias"), eps)
        if cfg.get("tie_word_embeddings", True):
            decoder = w(p + "embeddings.word_embeddings.weight")
        else:
            decoder = w("cls.predictions.decoder.weight")
        return linear(h, decoder, w("cls.predictions.bias"))
    raise ValueError(arch)


def opt_forward(cfg, w, ids, mask):
    p = _prefix(w, "decoder.embed_tokens.weight", ("model.", ""))
    d = p + "decoder."
    heads = cfg["num_attention_heads"]
    act = cfg.get("activation_function", "relu")
    pre_ln = cfg.get("do_layer_norm_before", True)
    eps = 1e-5  # OPT's nn.LayerNorm layers use the PyTorch default
    # HF builds no Linear biases when enable_bias is false and no LayerNorm parameters when
    # layer_norm_elementwise_affine is false (stored ones are then ignored)
    has_bias = cfg.get("enable_bias", True)
    affine = cfg.get("layer_norm_elementwise_affine", True)
    embed = w(d + "embed_tokens.weight")
    x = embed[ids]
    if w.has(d + "project_in.weight"):
        x = linear(x, w(d + "project_in.weight"))
    # OPTLearnedPositionalEmbedding: positions from the cumulative mask, then offset by 2
    positions = (np.cumsum(mask, axis=1) * mask - 1).astype(np.int64) + 2
    x = x + w(d + "embed_positions.weight")[positions]
    scores_mask = additive_mask(mask, causal=True)
    head_dim = cfg["hidden_size"] // heads

    def ln(name, h):
        if not affine:
            return layer_norm(h, None, None, eps)
        return layer_norm(h, w(name + ".weight"), w(name + ".bias"), eps)

    def proj(name, h):
        return linear(h, w(name + ".weight"), w(name + ".bias") if has_bias else None)

    for i in range(cfg["num_hidden_layers"]):
        l = f"{d}layers.{i}."
        s = l + "self_attn."
        h = ln(l + "self_attn_layer_norm", x) if pre_ln else x
        # OPT scales q after its projection (bias included), not the scores
        q = split_heads(proj(s + "q_proj", h) * head_dim ** -0.5, heads)
        k = split_heads(proj(s + "k_proj", h), heads)
        v = split_heads(proj(s + "v_proj", h), heads)
        x = x + proj(s + "out_proj", attention(q, k, v, scores_mask, 1.0))
        if not pre_ln:
            x = ln(l + "self_attn_layer_norm", x)
        h = ln(l + "final_layer_norm", x) if pre_ln else x
        x = x + proj(l + "fc2", activation(act, proj(l + "fc1", h)))
        if not pre_ln:
            x = ln(l + "final_layer_norm", x)
    if pre_ln and not cfg.get("_remove_final_layer_norm", False):
        x = ln(d + "final_layer_norm", x)
    if w.has(d + "project_out.weight"):
        x = linear(x, w(d + "project_out.weight"))
    head = embed if cfg.get("tie_word_embeddings", True) else w("lm_head.weight")
    return linear(x, head)


def gpt2_forward(cfg, w, ids, mask):
    p = _prefix(w, "wte.weight", ("transformer.", ""))
    heads = cfg["n_head"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act = cfg.get("activation_function", "gelu_new")
    b, t = ids.shape
    wte = w(p + "wte.weight")
    x = wte[ids] + w(p + "wpe.weight")[np.arange(t)][None]
    scores_mask = additive_mask(mask, causal=True)
    head_dim = cfg["n_embd"] // heads

    def conv1d(name, h):  # GPT-2's Conv1D stores weight as [in, out]: y = x W + b
        return h @ w(name + ".weight") + w(name + ".bias")

    for i in range(cfg["n_layer"]):
        l = f"{p}h.{i}."
        h = layer_norm(x, w(l + "ln_1.weight"), w(l + "ln_1.bias"), eps)
        q, k, v = np.split(conv1d(l + "attn.c_attn", h), 3, axis=-1)
        scale = 1.0
        if cfg.get("scale_attn_weights", True):
            scale /= math.sqrt(head_dim)
        if cfg.get("scale_attn_by_inverse_layer_idx", False):
            scale /= i + 1
        a = attention(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), scores_mask, scale)
        x = x + conv1d(l + "attn.c_proj", a)
        h = layer_norm(x, w(l + "ln_2.weight"), w(l + "ln_2.bias"), eps)
        x = x + conv1d(l + "mlp.c_proj", activation(act, conv1d(l + "mlp.c_fc", h)))
    x = layer_norm(x, w(p + "ln_f.weight"), w(p + "ln_f.bias"), eps)
    head = wte if cfg.get("tie_word_embeddings", True) else w("lm_head.weight")
    return linear(x, head)


# ---------------------------------------------------------------------------------------------

def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def forward(model_dir, input_ids, attention_mask=None, token_type_ids=None):
    cfg = load_config(model_dir)
    arch = cfg["architectures"][0]
    if arch not in SUPPORTED:
        raise ValueError(f"reference does not model {arch}")
    ids = np.asarray(input_ids, dtype=np.int64)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask, dtype=np.int64)
    types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids, dtype=np.int64)
    w = Weights(model_dir)
    if arch == "LlamaForCausalLM":
        return llama_forward(cfg, w, ids, mask)
    if arch.startswith("Bert"):
        return bert_forward(arch, cfg, w, ids, mask, types)
    if arch == "OPTForCausalLM":
        return opt_forward(cfg, w, ids, mask)
    return gpt2_forward(cfg, w, ids, mask)
