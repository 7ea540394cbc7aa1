"""Seeded tiny Hugging Face-format checkpoints for the forward-pass oracle tests.

Each model is a folder with config.json and model.safetensors (or shards + index), laid out
and named the way transformers' save_pretrained (or an older/converted checkpoint) leaves
them, so the C++ loader meets the same variety it will meet in the wild: prefixed and
unprefixed names, tied weights stored once (with or without a metadata alias), legacy buffers,
F16/BF16 storage, shards. Weights are random but scaled so attention is far from uniform and
every output is non-trivial; LayerNorm gains sit near 1 and every bias is non-zero, so a
loader that drops a bias or a gain produces a visible error.

Usage: /usr/bin/python3 tiny_models.py OUT_DIR   (writes every model under OUT_DIR)
"""
import json
import os
import sys

import numpy as np

import safetensors_py


class Init:
    """Seeded float32 initialisers (float32 is what a torch checkpoint would hold)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, shape, std):
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def gain(self, n):  # LayerNorm/RMSNorm gamma: around 1, noisy enough to matter
        return (1.0 + self.rng.standard_normal(n) * 0.2).astype(np.float32)

    def bias(self, n, std=0.1):
        return self.normal(n, std)


def _write_folder(path, config, tensors, dtype="F32", metadata=None, shards=1):
    """tensors: list of (name, array); dtype applies to floating tensors only."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    entries = [(n, dtype if a.dtype.kind == "f" else _own_dtype(a), a) for n, a in tensors]
    meta = {"format": "pt", **(metadata or {})}
    if shards == 1:
        safetensors_py.write(os.path.join(path, "model.safetensors"), entries, meta)
        return
    # Split in order, as save_pretrained does when it fills each shard up to max_shard_size.
    bounds = np.linspace(0, len(entries), shards + 1).astype(int)
    weight_map, total = {}, 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = entries[bounds[s]:bounds[s + 1]]
        safetensors_py.write(os.path.join(path, name), part, meta)
        for tensor_name, dt, array in part:
            weight_map[tensor_name] = name
            total += len(safetensors_py.encode(array, dt))
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def _own_dtype(array):  # non-float buffers keep their own type
    return {"int64": "I64", "bool": "BOOL", "uint8": "U8"}[str(array.dtype)]


# ---------------------------------------------------------------------------------------------
# LLaMA
# ---------------------------------------------------------------------------------------------

def llama(path, seed, *, hidden=64, heads=4, kv_heads=2, head_dim=None, inter=128, layers=2,
          vocab=256, theta=10000.0, eps=1e-5, attention_bias=False, mlp_bias=False,
          tie="embed_only", dtype="F32", shards=1, extra_config=None):
    """tie: "embed_only" (tied; modern save_pretrained keeps model.embed_tokens.weight),
    "lm_head_alias" (tied; only lm_head.weight plus a __metadata__ alias, like the real default
    model), "untied" (both stored, different; tie_word_embeddings false), "untied_default"
    (both stored, tie_word_embeddings absent: LlamaConfig's default is False)."""
    g = Init(seed)
    d = head_dim or hidden // heads
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "vocab_size": vocab, "max_position_embeddings": 64, "rms_norm_eps": eps,
        "rope_theta": theta, "rope_scaling": None, "hidden_act": "silu",
        "attention_bias": attention_bias, "mlp_bias": mlp_bias,
        "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
    }
    if head_dim:
        config["head_dim"] = head_dim
    if tie != "untied_default":
        config["tie_word_embeddings"] = tie in ("embed_only", "lm_head_alias")
    config.update(extra_config or {})

    # Embedding scale as a real init (std 0.02): RMSNorm's eps then visibly matters.
    embed = g.normal((vocab, hidden), 0.02 if tie != "lm_head_alias" else 0.3)
    t = [("model.embed_tokens.weight", embed)]
    for i in range(layers):
        p = f"model.layers.{i}."
        t.append((p + "input_layernorm.weight", g.gain(hidden)))
        for proj, out in (("q", heads * d), ("k", kv_heads * d), ("v", kv_heads * d)):
            t.append((p + f"self_attn.{proj}_proj.weight", g.normal((out, hidden), 0.25)))
            if attention_bias:
                t.append((p + f"self_attn.{proj}_proj.bias", g.bias(out, 0.3)))
        t.append((p + "self_attn.o_proj.weight", g.normal((hidden, heads * d), 0.15)))
        if attention_bias:
            t.append((p + "self_attn.o_proj.bias", g.bias(hidden)))
        t.append((p + "post_attention_layernorm.weight", g.gain(hidden)))
        for proj, shape in (("gate", (inter, hidden)), ("up", (inter, hidden)), ("down", (hidden, inter))):
            t.append((p + f"mlp.{proj}_proj.weight", g.normal(shape, 0.15)))
            if mlp_bias:
                t.append((p + f"mlp.{proj}_proj.bias", g.bias(shape[0])))
    t.append(("model.norm.weight", g.gain(hidden)))
    metadata = None
    if tie == "embed_only":
        pass
    elif tie == "lm_head_alias":
        t[0] = ("lm_head.weight", embed)
        metadata = {"model.embed_tokens.weight": "lm_head.weight"}
    else:
        t.append(("lm_head.weight", g.normal((vocab, hidden), 0.2)))
    _write_folder(path, config, t, dtype=dtype, metadata=metadata, shards=shards)


# ---------------------------------------------------------------------------------------------
# BERT
# ---------------------------------------------------------------------------------------------

def bert(path, seed, arch, *, prefix="bert.", hidden=32, heads=4, inter=64, layers=2, vocab=120,
         max_pos=24, num_labels=None, id2label=True, eps=1e-3, omit_defaults=False,
         legacy_position_ids=False, pooler=True):
    """BERT encoder plus the head `arch` needs. eps defaults to 1e-3 (not BERT's 1e-12) so a
    C++ that ignores layer_norm_eps differs visibly; omit_defaults drops hidden_act and
    layer_norm_eps from config.json to exercise the BertConfig defaults ("gelu", 1e-12)."""
    g = Init(seed)
    config = {
        "architectures": [arch], "model_type": "bert", "vocab_size": vocab,
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
        "intermediate_size": inter, "hidden_act": "gelu", "max_position_embeddings": max_pos,
        "type_vocab_size": 2, "layer_norm_eps": eps, "position_embedding_type": "absolute",
        "pad_token_id": 0, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    }
    if omit_defaults:
        del config["hidden_act"], config["layer_norm_eps"]
    if num_labels is not None:
        if id2label:  # what save_pretrained writes
            config["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
            config["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
        else:  # hand-written configs often say only this
            config["num_labels"] = num_labels
        if num_labels == 1:
            config["problem_type"] = "regression"

    def ln(name):
        return [(name + ".weight", g.gain(hidden)), (name + ".bias", g.bias(hidden))]

    def dense(name, out, inp, std=0.2):
        return [(name + ".weight", g.normal((out, inp), std)), (name + ".bias", g.bias(out))]

    e = prefix + "embeddings."
    word = g.normal((vocab, hidden), 0.5)
    t = [(e + "word_embeddings.weight", word),
         (e + "position_embeddings.weight", g.normal((max_pos, hidden), 0.3)),
         (e + "token_type_embeddings.weight", g.normal((2, hidden), 0.5))]
    t += ln(e + "LayerNorm")
    if legacy_position_ids:  # persistent buffer in checkpoints saved before transformers 4.31
        t.append((e + "position_ids", np.arange(max_pos, dtype=np.int64)[None]))
    for i in range(layers):
        l = f"{prefix}encoder.layer.{i}."
        for proj in ("query", "key", "value"):
            t += dense(l + f"attention.self.{proj}", hidden, hidden, 0.3)
        t += dense(l + "attention.output.dense", hidden, hidden)
        t += ln(l + "attention.output.LayerNorm")
        t += dense(l + "intermediate.dense", inter, hidden)
        t += dense(l + "output.dense", hidden, inter)
        t += ln(l + "output.LayerNorm")
    if pooler:
        t += dense(prefix + "pooler.dense", hidden, hidden, 0.3)
    if arch == "BertForSequenceClassification":
        t += dense("classifier", num_labels, hidden, 0.5)
    if arch == "BertForMaskedLM":
        # save_pretrained drops the tied cls.predictions.decoder.{weight,bias}
        t += dense("cls.predictions.transform.dense", hidden, hidden)
        t += ln("cls.predictions.transform.LayerNorm")
        t.append(("cls.predictions.bias", g.bias(vocab, 0.5)))
    _write_folder(path, config, t)


# ---------------------------------------------------------------------------------------------
# OPT
# ---------------------------------------------------------------------------------------------

def opt(path, seed, *, prefix="model.", hidden=48, heads=4, ffn=96, layers=2, vocab=150, max_pos=32,
        enable_bias=True):
    """prefix "model." is what OPTForCausalLM.save_pretrained writes; "" is how the
    facebook/opt-* hub checkpoints name them (saved from OPTModel: "decoder.layers.0...").
    enable_bias=False stores no Linear biases (LayerNorms keep theirs), as HF would save it."""
    g = Init(seed)
    config = {
        "architectures": ["OPTForCausalLM"], "model_type": "opt", "vocab_size": vocab,
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
        "ffn_dim": ffn, "max_position_embeddings": max_pos, "do_layer_norm_before": True,
        "activation_function": "relu", "word_embed_proj_dim": hidden, "enable_bias": enable_bias,
        "layer_norm_elementwise_affine": True, "pad_token_id": 1, "bos_token_id": 2,
        "eos_token_id": 2, "torch_dtype": "float32",
    }

    def ln(name):
        return [(name + ".weight", g.gain(hidden)), (name + ".bias", g.bias(hidden))]

    def dense(name, out, inp, std=0.2):
        weight = [(name + ".weight", g.normal((out, inp), std))]
        return weight + [(name + ".bias", g.bias(out))] if enable_bias else weight

    d = prefix + "decoder."
    t = [(d + "embed_tokens.weight", g.normal((vocab, hidden), 0.3)),
         (d + "embed_positions.weight", g.normal((max_pos + 2, hidden), 0.3))]
    for i in range(layers):
        l = f"{d}layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj"):
            t += dense(l + f"self_attn.{proj}", hidden, hidden, 0.3)
        t += dense(l + "self_attn.out_proj", hidden, hidden)
        t += ln(l + "self_attn_layer_norm")
        t += dense(l + "fc1", ffn, hidden)
        t += dense(l + "fc2", hidden, ffn)
        t += ln(l + "final_layer_norm")
    t += ln(d + "final_layer_norm")
    _write_folder(path, config, t)


# ---------------------------------------------------------------------------------------------
# GPT-2
# ---------------------------------------------------------------------------------------------

def gpt2(path, seed, *, prefix="transformer.", n_embd=48, heads=4, layers=2, vocab=200,
         n_positions=32, legacy_buffers=False, untied=False):
    """prefix "transformer." is what GPT2LMHeadModel.save_pretrained writes; "" is the
    original openai-community/gpt2 naming ("h.0.attn.c_attn.weight"). legacy_buffers adds the
    attn.bias causal-mask and attn.masked_bias buffers old checkpoints carry. untied sets
    tie_word_embeddings false and stores a separate lm_head.weight."""
    g = Init(seed)
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocab,
        "n_embd": n_embd, "n_layer": layers, "n_head": heads, "n_positions": n_positions,
        "n_ctx": n_positions, "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5, "scale_attn_weights": True, "bos_token_id": 0,
        "eos_token_id": 0, "tie_word_embeddings": not untied,
    }

    def ln(name):
        return [(name + ".weight", g.gain(n_embd)), (name + ".bias", g.bias(n_embd))]

    def conv1d(name, inp, out, std=0.2):  # Conv1D stores weight as [in, out]
        return [(name + ".weight", g.normal((inp, out), std)), (name + ".bias", g.bias(out))]

    t = [(prefix + "wte.weight", g.normal((vocab, n_embd), 0.3)),
         (prefix + "wpe.weight", g.normal((n_positions, n_embd), 0.3))]
    for i in range(layers):
        l = f"{prefix}h.{i}."
        t += ln(l + "ln_1")
        if legacy_buffers:
            mask = np.tril(np.ones((n_positions, n_positions), dtype=np.float32))[None, None]
            t.append((l + "attn.bias", mask))
            t.append((l + "attn.masked_bias", np.array(-1e4, dtype=np.float32)))
        t += conv1d(l + "attn.c_attn", n_embd, 3 * n_embd, 0.3)
        t += conv1d(l + "attn.c_proj", n_embd, n_embd)
        t += ln(l + "ln_2")
        t += conv1d(l + "mlp.c_fc", n_embd, 4 * n_embd)
        t += conv1d(l + "mlp.c_proj", 4 * n_embd, n_embd, 0.1)
    t += ln(prefix + "ln_f")
    if untied:  # nn.Linear layout [vocab, n_embd], unlike the Conv1D weights
        t.append(("lm_head.weight", g.normal((vocab, n_embd), 0.3)))
    _write_folder(path, config, t)


# ---------------------------------------------------------------------------------------------

def build_all(root):
    """Writes every tiny model under `root`; returns {name: folder}."""
    models = {
        "llama-gqa": lambda p: llama(p, 101, heads=4, kv_heads=2, tie="embed_only"),
        "llama-bias": lambda p: llama(p, 102, heads=4, kv_heads=4, attention_bias=True,
                                      mlp_bias=True, theta=500.0, eps=1e-6, tie="lm_head_alias"),
        "llama-untied": lambda p: llama(p, 103, tie="untied"),
        "llama-headdim": lambda p: llama(p, 104, hidden=48, heads=4, kv_heads=2, head_dim=16,
                                         inter=96, tie="untied_default"),
        "llama-f16": lambda p: llama(p, 105, heads=4, kv_heads=1, dtype="F16", tie="untied"),
        "llama-bf16": lambda p: llama(p, 106, dtype="BF16", tie="untied"),
        "llama-sharded": lambda p: llama(p, 107, shards=2, tie="untied"),
        "bert-cls3": lambda p: bert(p, 201, "BertForSequenceClassification", num_labels=3,
                                    legacy_position_ids=True),
        "bert-regression": lambda p: bert(p, 202, "BertForSequenceClassification", num_labels=1,
                                          id2label=False, omit_defaults=True),
        "bert-mlm": lambda p: bert(p, 203, "BertForMaskedLM", pooler=False),
        "bert-model": lambda p: bert(p, 204, "BertModel", prefix=""),
        "bert-model-prefixed": lambda p: bert(p, 205, "BertModel", prefix="bert."),
        "opt": lambda p: opt(p, 301, prefix="model."),
        "opt-noprefix": lambda p: opt(p, 302, prefix=""),
        "opt-nobias": lambda p: opt(p, 303, enable_bias=False),
        "gpt2": lambda p: gpt2(p, 401, prefix="transformer."),
        "gpt2-noprefix-buffers": lambda p: gpt2(p, 402, prefix="", legacy_buffers=True),
        "gpt2-untied": lambda p: gpt2(p, 403, untied=True),
    }
    out = {}
    for name, make in models.items():
        folder = os.path.join(root, name)
        make(folder)
        out[name] = folder
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_models.py OUT_DIR")
    for name, folder in build_all(sys.argv[1]).items():
        print(name, folder)
