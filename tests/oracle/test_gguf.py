"""Oracle test: `tquant export --format gguf` against an independent NumPy reading of the file.

Everything expected here is computed from ggml's docs/gguf.md, the block layouts of ggml-common.h
and the llama.cpp converter's conventions as described in README "GGUF export", never from tquant:
  * a GGUF reader (header, typed metadata, tensor infos, alignment, data section) and block
    decoders for F32/F16/Q4_0/Q4_1/Q8_0 written from the format description;
  * the llama layout: tensor names and shapes (dimensions reversed), hyperparameter keys from
    config.json, the Q/K RoPE row permutation, tied head = no output.weight;
  * the tokenizer keys from tokenizer.json: tokens by id, scores = -(merge rank), token types,
    special ids; and llama.cpp's SentencePiece merge loop (highest score first) run here on the
    exported tokens/scores must give the Hugging Face ids that `tquant tokenize` gives;
  * exactness: the GGUF of a `tquant quantize --format q4_0|q4_1|q8_0` checkpoint holds its codes
    and scales block for block (d = scale, m = -scale*zero, nibbles = codes), decodes bit for bit
    to the checkpoint's dequantized weights, and `tquant eval` of the .gguf gives the perplexity
    of the checkpoint (to 1e-5 relative; it is in fact identical);
  * FP exports: f32 bit for bit, f16 = NumPy's float16 rounding, q4_0/q4_1/q8_0 byte for byte
    equal to ggml's reference round-to-nearest quantizers re-implemented here;
  * errors: 3-bit weights into q4_0, scales that are not fp16, rows not a multiple of 32, a
    non-llama architecture, a non-SentencePiece tokenizer, and bad --format combinations on
    quantize: exit 1, a message naming the tensor/field, nothing written (an existing --out kept).

Usage (ctest passes these): test_gguf.py --tquant BIN --shared DIR --tmp DIR [--filter SUBSTR]
"""
import heapq
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402
import tiny_models  # noqa: E402
from eval_common import (Checks, DefaultModel, Failure, metric, parse_args, run_cases, run_eval,  # noqa: E402
                         run_tquant)

ENV = dict(os.environ, OMP_WAIT_POLICY="passive")
SPACE = "\u2581"
PPL_RTOL = 1e-5
EVAL_TOKENS = 8192

# ---------------------------------------------------------------------------------------------
# GGUF, from docs/gguf.md
# ---------------------------------------------------------------------------------------------

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 8: "q8_0"}
BLOCK_BYTES = {"f32": 4, "f16": 2, "q4_0": 18, "q4_1": 20, "q8_0": 34}
BLOCK_ELEMS = {"f32": 1, "f16": 1, "q4_0": 32, "q4_1": 32, "q8_0": 32}
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7}


class Gguf:
    """kv: key -> (type id, value); tensors: name -> dict(ne, type, offset, shape, raw)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.bytes = f.read()
        self.pos = 0
        if self.bytes[:4] != b"GGUF":
            raise Failure(f"{path}: magic {self.bytes[:4]!r}")
        self.pos = 4
        self.version = self.take("<I")
        n_tensors, n_kv = self.take("<Q"), self.take("<Q")
        self.kv, self.order = {}, []
        for _ in range(n_kv):
            key = self.string()
            vtype = self.take("<I")
            self.kv[key] = (vtype, self.value(vtype))
            self.order.append(key)
        self.alignment = self.kv.get("general.alignment", (4, 32))[1]
        self.tensors, self.tensor_order = {}, []
        for _ in range(n_tensors):
            name = self.string()
            nd = self.take("<I")
            ne = [self.take("<Q") for _ in range(nd)]
            ttype = TYPES[self.take("<I")]
            offset = self.take("<Q")
            self.tensors[name] = {"ne": ne, "type": ttype, "offset": offset, "shape": tuple(reversed(ne))}
            self.tensor_order.append(name)
        self.data_start = self.pos + (-self.pos % self.alignment)
        for t in self.tensors.values():
            rows = int(np.prod(t["ne"][1:])) if len(t["ne"]) > 1 else 1
            nbytes = rows * t["ne"][0] // BLOCK_ELEMS[t["type"]] * BLOCK_BYTES[t["type"]]
            begin = self.data_start + t["offset"]
            t["nbytes"] = nbytes
            t["raw"] = self.bytes[begin:begin + nbytes]
            if len(t["raw"]) != nbytes:
                raise Failure(f"{path}: a tensor runs past the end of the file")

    def take(self, fmt):
        (v,) = struct.unpack_from(fmt, self.bytes, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.bytes[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype in SCALARS:
            return self.take(SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype, n = self.take("<I"), self.take("<Q")
            return [self.value(etype) for _ in range(n)]
        raise Failure(f"unknown metadata value type {vtype}")

    def get(self, key, vtype=None):
        if key not in self.kv:
            raise Failure(f"metadata key {key} is missing")
        t, v = self.kv[key]
        if vtype is not None and t != vtype:
            raise Failure(f"{key} has value type {t}, expected {vtype}")
        return v

    def array(self, name):
        """The tensor decoded to float32 [rows, cols] (or [n] for 1-D), as ggml decodes it."""
        t = self.tensors[name]
        cols = t["ne"][0]
        rows = len(t["raw"]) // (cols // BLOCK_ELEMS[t["type"]] * BLOCK_BYTES[t["type"]])
        raw, kind = t["raw"], t["type"]
        if kind == "f32":
            x = np.frombuffer(raw, "<f4").reshape(rows, cols)
        elif kind == "f16":
            x = np.frombuffer(raw, "<f2").astype(np.float32).reshape(rows, cols)
        else:
            b = blocks(raw, kind)
            d = b["d"].astype(np.float32)[:, None]
            if kind == "q8_0":
                x = b["qs"].astype(np.float32) * d
            else:
                q = nibbles(b["qs"]).astype(np.float32)
                x = (q - np.float32(8)) * d if kind == "q4_0" else q * d + b["m"].astype(np.float32)[:, None]
            x = x.reshape(rows, cols)
        return x.reshape(t["shape"]) if len(t["shape"]) == 1 else x


def blocks(raw, kind):
    fields = [("d", "<f2")] + ([("m", "<f2")] if kind == "q4_1" else [])
    fields.append(("qs", "u1", 16) if kind != "q8_0" else ("qs", "i1", 32))
    return np.frombuffer(raw, dtype=np.dtype(fields))


def nibbles(qs):
    """[blocks, 16] bytes -> [blocks, 32] codes: element j in the low nibble of byte j, element
    j + 16 in its high nibble."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def rope_rows(heads, rows):
    """GGUF row index -> Hugging Face row: within a head of hd rows, GGUF row 2i + j is HF row
    j*hd/2 + i (adjacent pairs instead of halves)."""
    hd = rows // heads
    perm = np.empty(rows, dtype=np.int64)
    for h in range(heads):
        for i in range(hd // 2):
            for j in range(2):
                perm[h * hd + 2 * i + j] = h * hd + j * (hd // 2) + i
    return perm


# ggml's reference quantizers (quantize_row_*_ref), for FP exports: float32 arithmetic throughout.
def ref_quantize(x, kind):
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    n = x.shape[0]
    if kind == "q4_0":
        pick = np.argmax(np.abs(x), axis=1)  # the first element of largest magnitude, with its sign
        mx = x[np.arange(n), pick]
        d = (mx / np.float32(-8)).astype(np.float32)
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
        q = np.minimum(15, (x * inv[:, None] + np.float32(8.5)).astype(np.int8).astype(np.int32))
        out = np.zeros(n, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    elif kind == "q4_1":
        mn, mx = x.min(axis=1), x.max(axis=1)
        d = ((mx - mn) / np.float32(15)).astype(np.float32)
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
        q = np.minimum(15, ((x - mn[:, None]) * inv[:, None] + np.float32(0.5)).astype(np.int8).astype(np.int32))
        out = np.zeros(n, dtype=np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)]))
        out["m"] = mn.astype(np.float16)
    else:
        amax = np.abs(x).max(axis=1)
        d = (amax / np.float32(127)).astype(np.float32)
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
        v = (x * inv[:, None]).astype(np.float64)
        q8 = (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int8)  # roundf: half away from zero
        out = np.zeros(n, dtype=np.dtype([("d", "<f2"), ("qs", "i1", 32)]))
        out["d"] = d.astype(np.float16)
        out["qs"] = q8
        return out.tobytes()
    out["d"] = d.astype(np.float16)
    out["qs"] = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    return out.tobytes()


# ---------------------------------------------------------------------------------------------
# The reference model's tokenizer, and llama.cpp's SentencePiece merge loop
# ---------------------------------------------------------------------------------------------

def hf_vocab(model_dir):
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    vocab = dict(tj["model"]["vocab"])
    special = {}
    for a in tj.get("added_tokens", []):
        vocab[a["content"]] = a["id"]
        special[a["id"]] = a.get("special", False)
    merges = [m.split(" ", 1) if isinstance(m, str) else m for m in tj["model"]["merges"]]
    return tj, vocab, special, merges


def spm_tokenize(text, tokens, scores):
    """llama.cpp's SentencePiece tokenization (llm_tokenizer_spm): a space prefix, spaces as ▁,
    then repeatedly merge the adjacent pair whose concatenation is the token of highest score
    (leftmost on ties); pieces that are no token fall back to <0xXX> byte tokens."""
    ids = {t: i for i, t in enumerate(tokens)}
    text = (" " + text).replace(" ", SPACE)
    syms = [{"text": c, "prev": i - 1, "next": i + 1 if i + 1 < len(text) else -1} for i, c in enumerate(text)]
    heap = []

    def add(left, right):
        if left < 0 or right < 0:
            return
        piece = syms[left]["text"] + syms[right]["text"]
        if piece in ids:
            heapq.heappush(heap, (-scores[ids[piece]], left, right, len(piece)))

    for i in range(1, len(syms)):
        add(i - 1, i)
    while heap:
        _, left, right, size = heapq.heappop(heap)
        ls, rs = syms[left], syms[right]
        if not ls["text"] or not rs["text"] or len(ls["text"]) + len(rs["text"]) != size:
            continue
        ls["text"] += rs["text"]
        rs["text"] = ""
        ls["next"] = rs["next"]
        if rs["next"] >= 0:
            syms[rs["next"]]["prev"] = left
        add(ls["prev"], left)
        add(left, ls["next"])
    # Every merged piece is a token by construction; a single character that is none falls back
    # to its UTF-8 bytes (<0xXX> tokens, here <unk> where the vocabulary has none).
    out = []
    i = 0
    while i != -1:
        piece = syms[i]["text"]
        if piece in ids:
            out.append(ids[piece])
        else:
            out.extend(ids.get(f"<0x{b:02X}>", ids.get("<unk>", 0)) for b in piece.encode("utf-8"))
        i = syms[i]["next"]
    return out


# ---------------------------------------------------------------------------------------------
# Running tquant
# ---------------------------------------------------------------------------------------------

def run_failing(args, cmd, must_mention):
    proc = subprocess.run([args.tquant] + [str(c) for c in cmd], capture_output=True, text=True, timeout=300, env=ENV)
    if proc.returncode != 1:
        raise Failure(f"expected exit 1, got {proc.returncode}: tquant {' '.join(map(str, cmd))}\n{proc.stderr}")
    missing = [m for m in must_mention if m not in proc.stderr]
    if missing:
        raise Failure(f"stderr lacks {missing}: {proc.stderr.strip()}")
    return proc.stderr.strip().splitlines()[-1]


class Setup(DefaultModel):
    def __init__(self, args):
        super().__init__(args)
        with open(os.path.join(self.model, "config.json")) as f:
            self.config = json.load(f)
        self.fp, _ = safetensors_py.read_folder(self.model)
        self.tj, self.vocab, self.special, self.merges = hf_vocab(self.model)

    def checkpoint(self, tag, flags):
        return super().checkpoint(tag, flags, calib_samples=8)

    def export(self, model, kind, name):
        out = self.path(name)
        if os.path.exists(out):
            os.remove(out)
        run_tquant(self.args, ["export", "--model", model, "--format", "gguf", "--type", kind, "--out", out])
        leftovers = [n for n in os.listdir(self.args.tmp) if ".tmp-" in n]
        if leftovers:
            raise Failure(f"temporary files left beside the output: {leftovers}")
        return out

    def ppl(self, model, tag):
        report = run_eval(self.args, tag, ["--model", model, "--task", "ppl", "--data", self.data, "--ctx", 128,
                                           "--max-tokens", EVAL_TOKENS])
        return metric(report, "ppl"), metric(report, "nll"), report["tokens_scored"]


# ---------------------------------------------------------------------------------------------
# Checks shared by the cases
# ---------------------------------------------------------------------------------------------

LINEARS = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
           "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
           "ffn_down": "mlp.down_proj"}


def check_layout(s, g, c, kind):
    cfg = s.config
    c.equal("version", g.version, 3)
    c.equal("alignment", g.alignment, 32)
    c.true("data aligned", g.data_start % 32 == 0, f"data section at {g.data_start}")
    spans = sorted((t["offset"], t["offset"] + t["nbytes"]) for t in g.tensors.values())
    c.true("offsets", all(o % 32 == 0 for o, _ in spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:])),
           "every tensor at a multiple of 32, none overlapping")
    c.equal("general.architecture", g.get("general.architecture", 8), "llama")
    c.equal("general.file_type", g.get("general.file_type", 4), FILE_TYPE[kind])
    if kind.startswith("q"):
        c.equal("general.quantization_version", g.get("general.quantization_version", 4), 2)
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    for key, want in [("context_length", cfg["max_position_embeddings"]), ("embedding_length", cfg["hidden_size"]),
                      ("block_count", cfg["num_hidden_layers"]), ("feed_forward_length", cfg["intermediate_size"]),
                      ("rope.dimension_count", hd), ("attention.head_count", cfg["num_attention_heads"]),
                      ("attention.head_count_kv", cfg["num_key_value_heads"])]:
        c.equal("llama." + key, g.get("llama." + key, 4), want)
    c.equal("rms eps", g.get("llama.attention.layer_norm_rms_epsilon", 6), float(np.float32(cfg["rms_norm_eps"])))
    c.equal("rope base", g.get("llama.rope.freq_base", 6), float(np.float32(cfg["rope_theta"])))
    names = {"token_embd.weight", "output_norm.weight"}
    for i in range(cfg["num_hidden_layers"]):
        names |= {f"blk.{i}.{n}.weight" for n in list(LINEARS) + ["attn_norm", "ffn_norm"]}
    c.true("tensor names", sorted(g.tensors) == sorted(names),
           f"{len(names)} llama names, no output.weight (tied head)" if sorted(g.tensors) == sorted(names)
           else f"got {sorted(set(g.tensors) ^ names)} different")
    c.equal("token_embd ne", g.tensors["token_embd.weight"]["ne"], [cfg["hidden_size"], cfg["vocab_size"]])
    c.equal("attn_k ne", g.tensors["blk.0.attn_k.weight"]["ne"], [cfg["hidden_size"], cfg["num_key_value_heads"] * hd])
    c.equal("ffn_down ne", g.tensors["blk.1.ffn_down.weight"]["ne"], [cfg["intermediate_size"], cfg["hidden_size"]])


def check_tokenizer(s, g, c):
    tokens = g.get("tokenizer.ggml.tokens", 9)
    scores = g.get("tokenizer.ggml.scores", 9)
    types = g.get("tokenizer.ggml.token_type", 9)
    c.equal("tokenizer model", g.get("tokenizer.ggml.model", 8), "llama")
    by_id = {i: t for t, i in s.vocab.items()}
    c.equal("tokens by id", tokens == [by_id.get(i, f"[PAD{i}]") for i in range(len(tokens))], True)
    want_scores = [-float(len(s.merges))] * len(tokens)
    seen = set()
    for rank, (a, b) in enumerate(s.merges):
        i = s.vocab[a + b]
        if i not in seen:
            want_scores[i] = -float(rank)
            seen.add(i)
    c.equal("scores = -(merge rank)", scores == want_scores, True)
    want_types = []
    for i, t in enumerate(tokens):
        if i == 0:
            want_types.append(2)
        elif i in s.special:
            want_types.append(3 if s.special[i] else 4)
        elif t.startswith("<0x") and len(t) == 6:
            want_types.append(6)
        else:
            want_types.append(1)
    c.equal("token types", types == want_types, True)
    c.equal("bos", g.get("tokenizer.ggml.bos_token_id", 4), s.config["bos_token_id"])
    c.equal("eos", g.get("tokenizer.ggml.eos_token_id", 4), s.config["eos_token_id"])
    c.equal("unk", g.get("tokenizer.ggml.unknown_token_id", 4), 0)
    c.equal("add_bos", g.get("tokenizer.ggml.add_bos_token", 7), True)
    with open(os.path.join(s.model, "tokenizer.json"), encoding="utf-8") as f:
        c.equal("embedded tokenizer.json", g.get("tokenizer.huggingface.json", 8) == f.read(), True)


def hf_weight(s, tensors, name):
    """The source weight of GGUF tensor `name`, rows in GGUF order (Q/K permuted)."""
    cfg = s.config
    if name == "token_embd.weight":
        key = "model.embed_tokens.weight" if "model.embed_tokens.weight" in tensors else "lm_head.weight"
        return tensors[key]
    if name == "output_norm.weight":
        return tensors["model.norm.weight"]
    _, i, kind, _ = name.split(".")
    p = f"model.layers.{i}."
    if kind in ("attn_norm", "ffn_norm"):
        return tensors[p + ("input_layernorm.weight" if kind == "attn_norm" else "post_attention_layernorm.weight")]
    w = tensors[p + LINEARS[kind] + ".weight"]
    if kind in ("attn_q", "attn_k"):
        heads = cfg["num_attention_heads"] if kind == "attn_q" else cfg["num_key_value_heads"]
        w = w[rope_rows(heads, w.shape[0])]
    return w


def unpack_packed(folder):
    """{HF weight name: (codes, scales, zeros, dequantized float32)} of a tquant checkpoint,
    unpacked from the README's format: LSB-first bit stream per row."""
    t, _ = safetensors_py.read_folder(folder)
    with open(os.path.join(folder, "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    out = {}
    for prefix in qc["modules"]:
        fmt = {**{k: qc[k] for k in ("bits", "group_size", "sym")}, **qc.get("overrides", {}).get(prefix, {})}
        bits, group = fmt["bits"], fmt["group_size"]
        qw, sc, zp = t[prefix + ".qweight"], t[prefix + ".scales"], t[prefix + ".zeros"]
        rows = qw.shape[0]
        cols = (qw.shape[1] * 8) // bits
        stream = np.unpackbits(qw, axis=1, bitorder="little")[:, :cols * bits].reshape(rows, cols, bits)
        codes = (stream.astype(np.int64) << np.arange(bits)).sum(axis=2)
        g = np.arange(cols) // (group if group > 0 else cols)
        s, z = sc[:, g], zp[:, g].astype(np.float32)
        w = s * (codes.astype(np.float32) - z)
        out[prefix + ".weight"] = (codes, s, z, w.astype(np.float32))
    return out, t, qc


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

QUANT = {  # --type -> quantize flags (the method that picks the codes)
    "q4_0": ["--method", "gptq", "--format", "q4_0"],
    "q4_1": ["--method", "aespa", "--iters", "20", "--format", "q4_1"],
    "q8_0": ["--method", "rtn", "--format", "q8_0"],
}


def quantized_case(s, kind):
    def case():
        c = Checks()
        ckpt = s.checkpoint(f"ckpt-{kind}", QUANT[kind])
        packed, stored, qc = unpack_packed(ckpt)
        c.equal("quantization_config fp16_grid", (qc.get("fp16_grid"), qc["group_size"], qc["sym"], qc["bits"]),
                (True, 32, kind != "q4_1", 8 if kind == "q8_0" else 4))
        out = s.export(ckpt, kind, f"{kind}.gguf")
        g = Gguf(out)
        check_layout(s, g, c, kind)
        check_tokenizer(s, g, c)
        exact = 0
        for name in g.tensor_order:
            t = g.tensors[name]
            src_name = None
            if name.startswith("blk.") and name.split(".")[2] in LINEARS:
                _, i, kind_, _ = name.split(".")
                src_name = f"model.layers.{i}.{LINEARS[kind_]}.weight"
            if src_name is None:  # FP tensors of the checkpoint: float32, bit for bit
                want = hf_weight(s, stored, name).astype(np.float32)
                c.true(name, t["type"] == "f32" and np.array_equal(g.array(name).view(np.uint32),
                                                                    want.reshape(g.array(name).shape).view(np.uint32)),
                       "f32 and identical to the checkpoint")
                continue
            codes, sc, zp, w = packed[src_name]
            if name.split(".")[2] in ("attn_q", "attn_k"):
                heads = s.config["num_attention_heads"] if "attn_q" in name else s.config["num_key_value_heads"]
                perm = rope_rows(heads, w.shape[0])
                codes, sc, zp, w = codes[perm], sc[perm], zp[perm], w[perm]
            if t["type"] != kind:
                c.true(name, False, f"type {t['type']}")
                continue
            b = blocks(t["raw"], kind)
            d = b["d"].astype(np.float32).reshape(w.shape[0], -1)
            bs, bz = sc[:, ::32], zp[:, ::32]
            ok = np.array_equal(d, bs)
            if kind == "q4_1":
                ok &= np.array_equal(b["m"].astype(np.float32).reshape(d.shape), np.where(bz == 0, 0, -(bs * bz)))
            if kind == "q8_0":
                ok &= np.array_equal(b["qs"].astype(np.int64).reshape(w.shape), codes - 128)
            else:
                ok &= np.array_equal(nibbles(b["qs"]).reshape(w.shape), codes)
            ok &= np.array_equal(g.array(name).view(np.uint32), w.view(np.uint32))
            exact += bool(ok)
            if not ok:
                c.true(name, False, "blocks differ from the checkpoint's codes/scales or decode differently")
        c.equal("linears exact block for block", exact, 14)
        p_ckpt, nll_ckpt, n1 = s.ppl(ckpt, f"ppl-ckpt-{kind}")
        p_gguf, nll_gguf, n2 = s.ppl(out, f"ppl-gguf-{kind}")
        c.equal("tokens scored", n2, n1)
        c.close(f"ppl(gguf) vs ppl(checkpoint)", p_gguf, p_ckpt, rtol=PPL_RTOL)
        c.close("nll", nll_gguf, nll_ckpt, rtol=PPL_RTOL)
        return c.finish()
    return case


def fp_case(s, kind):
    def case():
        c = Checks()
        out = s.export(s.model, kind, f"fp-{kind}.gguf")
        g = Gguf(out)
        check_layout(s, g, c, kind)
        for name in g.tensor_order:
            t = g.tensors[name]
            src = hf_weight(s, s.fp, name).astype(np.float32)
            if src.ndim == 1:
                c.true(name, t["type"] == "f32" and np.array_equal(np.frombuffer(t["raw"], "<f4"), src), "f32 exact")
            elif kind == "f32":
                c.true(name, t["type"] == "f32" and t["raw"] == src.astype("<f4").tobytes(), "f32 exact")
            elif kind == "f16":
                c.true(name, t["type"] == "f16" and t["raw"] == src.astype("<f2").tobytes(), "float16 rounding")
            else:
                c.true(name, t["type"] == kind and t["raw"] == ref_quantize(src, kind), "ggml reference bytes")
        if kind == "f32":
            p_fp, _, _ = s.ppl(s.model, "ppl-fp")
            p_gguf, _, _ = s.ppl(out, "ppl-fp-gguf")
            c.close("ppl(f32 gguf) vs ppl(FP folder)", p_gguf, p_fp, rtol=PPL_RTOL)
        elif kind == "q8_0":  # lossy, but close: the whole model quantized round-to-nearest at 8 bits
            p_fp, _, _ = s.ppl(s.model, "ppl-fp")
            p_gguf, _, _ = s.ppl(out, "ppl-fp-q8")
            c.close("ppl(q8_0 RTN gguf) near FP", p_gguf, p_fp, rtol=0.02)
        return c.finish()
    return case


def spm_case(s):
    """The exported tokens/scores under llama.cpp's SentencePiece loop reproduce Hugging Face's
    BPE ids (tquant tokenize of the folder and of the .gguf, which uses the embedded JSON)."""
    def case():
        c = Checks()
        out = s.path("fp-f32.gguf")
        if not os.path.exists(out):
            out = s.export(s.model, "f32", "fp-f32.gguf")
        g = Gguf(out)
        with open(s.data, encoding="utf-8") as f:
            text = f.read()[:6000]
        sample = s.path("spm-sample.txt")
        with open(sample, "w", encoding="utf-8") as f:
            f.write(text)
        hf = json.loads(run_tquant(s.args, ["tokenize", "--model", s.model, "--file", sample, "--no-special"]))["ids"]
        from_gguf = json.loads(run_tquant(s.args, ["tokenize", "--model", out, "--file", sample, "--no-special"]))["ids"]
        spm = spm_tokenize(text, g.get("tokenizer.ggml.tokens"), g.get("tokenizer.ggml.scores"))
        c.equal("tquant tokenize of the .gguf == of the folder", from_gguf == hf, True)
        first = next((i for i, (a, b) in enumerate(zip(spm, hf)) if a != b), None)
        c.true("SentencePiece loop on the GGUF vocab == HF BPE", spm == hf,
               f"{len(hf)} HF ids, {len(spm)} SPM ids, first difference at {first}")
        return c.finish()
    return case


def error_cases(s):
    def nothing_at(path):
        if os.path.exists(path):
            raise Failure(f"{path} exists after a failed export")

    def three_bit():
        ckpt = s.checkpoint("ckpt-w3", ["--method", "rtn", "--wbits", "3", "--group", "32", "--sym"])
        out = s.path("w3.gguf")
        line = run_failing(s.args, ["export", "--model", ckpt, "--type", "q4_0", "--out", out],
                           ["model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight", "3-bit", "q4_0"])
        nothing_at(out)
        return line

    def not_fp16():
        ckpt = s.checkpoint("ckpt-plain-sym", ["--method", "rtn", "--wbits", "4", "--group", "32", "--sym"])
        out = s.path("plain.gguf")
        with open(out, "w") as f:
            f.write("keep me")
        line = run_failing(s.args, ["export", "--model", ckpt, "--type", "q4_0", "--out", out],
                           ["blk.0.attn_q.weight", "not an fp16 value", "--format q4_0"])
        with open(out) as f:
            if f.read() != "keep me":
                raise Failure("the existing --out file was changed by a failed export")
        return line

    def rows_48():
        model = s.path("llama-h48")
        shutil.rmtree(model, ignore_errors=True)
        tiny_models.llama(model, 7, hidden=48, heads=4, kv_heads=2, inter=96, vocab=64)
        out = s.path("h48.gguf")
        line = run_failing(s.args, ["export", "--model", model, "--type", "q4_0", "--out", out],
                           ["token_embd.weight", "48", "32-element blocks"])
        nothing_at(out)
        return line

    def tokenizer_style():
        model = s.path("llama-chars")
        shutil.rmtree(model, ignore_errors=True)
        tiny_models.llama(model, 8, hidden=64, heads=4, kv_heads=2, inter=64, vocab=40)
        with open(os.path.join(model, "tokenizer.json"), "w") as f:
            json.dump({"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
                       "post_processor": None, "decoder": None,
                       "model": {"type": "BPE", "vocab": {chr(97 + i): i for i in range(26)}, "merges": []}}, f)
        out = s.path("chars.gguf")
        line = run_failing(s.args, ["export", "--model", model, "--type", "f32", "--out", out],
                           ["tokenizer.json", "SentencePiece-style"])
        nothing_at(out)
        return line

    def architecture():
        model = s.path("gpt2")
        shutil.rmtree(model, ignore_errors=True)
        tiny_models.gpt2(model, 9)
        out = s.path("gpt2.gguf")
        line = run_failing(s.args, ["export", "--model", model, "--type", "f16", "--out", out],
                           ["GPT2LMHeadModel", "no GGUF mapping"])
        nothing_at(out)
        return line

    def quantize_flags():
        lines = []
        for flags, words in [(["--format", "q4_0", "--wbits", "3"], ["--format q4_0", "4 bits", "--wbits 3"]),
                             (["--format", "q4_1", "--group", "16"], ["--format q4_1", "--group 16", "32"]),
                             (["--format", "q4_1", "--sym"], ["--format q4_1", "asymmetric"]),
                             (["--format", "q5_0"], ["q5_0", "q4_0, q4_1 or q8_0"])]:
            out = s.path("never")
            lines.append(run_failing(s.args, ["quantize", "--model", s.model, "--calib", s.calib, "--out", out,
                                              *flags], words))
            nothing_at(out)
        return "; ".join(lines)

    return [("error.3bit-into-q4_0", three_bit), ("error.scales-not-fp16", not_fp16), ("error.rows-of-48", rows_48),
            ("error.tokenizer-style", tokenizer_style), ("error.architecture", architecture),
            ("error.quantize-format-flags", quantize_flags)]


def main():
    args = parse_args(__doc__.splitlines()[0])
    s = Setup(args)
    cases = [(f"exact.{k}", quantized_case(s, k)) for k in ("q4_0", "q4_1", "q8_0")]
    cases += [(f"fp.{k}", fp_case(s, k)) for k in ("f32", "f16", "q4_0", "q4_1", "q8_0")]
    cases.append(("tokenizer.spm-scores", spm_case(s)))
    cases += error_cases(s)
    return run_cases(cases, args.filter)


if __name__ == "__main__":
    sys.exit(main())
