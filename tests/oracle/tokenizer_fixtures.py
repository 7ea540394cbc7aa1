"""Synthetic tokenizer folders for test_tokenizer.py, learned from Tiny Shakespeare so that the
vocabularies are realistic: a GPT-2 style byte-level BPE, classic BPE with end-of-word suffix or
continuing-subword prefix, WordPiece (tokenizer.json and vocab.txt-only BERT folders), and
Metaspace variants of the default SentencePiece-style model. Every builder writes a folder and
returns its path.
"""
import collections
import json
import os
import re

import tokenizer_oracle as oracle


def write_json(folder, name, obj):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def learn_merges(word_counts, n_merges, prefix=""):
    """Classic BPE training: word_counts maps tuples of symbols to counts; returns merges as
    (a, b) pairs, most frequent pair first (ties broken by the pair's text)."""
    words = dict(word_counts)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for symbols, count in words.items():
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = best[0] + best[1][len(prefix):]
        new_words = {}
        for symbols, count in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + count
        words = new_words
    return merges


def shakespeare(shared, start=0, size=40000):
    with open(os.path.join(shared, "data", "tinyshakespeare", "input.txt"), encoding="utf-8") as f:
        return f.read()[start:start + size]


# ---------------------------------------------------------------------------------------------
# GPT-2 style byte-level BPE
# ---------------------------------------------------------------------------------------------

def byte_level_model(shared):
    text = shakespeare(shared)
    counts = collections.Counter()
    for w in oracle.gpt2_regex().findall(text):
        counts[tuple(oracle.BYTE_CHAR[b] for b in w.encode("utf-8"))] += 1
    merges = learn_merges(counts, 220)
    vocab = {oracle.BYTE_CHAR[b]: b for b in range(256)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def gpt2_folder(tmp, shared, name, add_prefix_space=False, merges_as_pairs=False, post="ByteLevel"):
    vocab, merges = byte_level_model(shared)
    added = [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}]
    next_id = len(vocab)
    post_processor = {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
                      "use_regex": True}
    if post == "Roberta":
        for t in ["<s>", "</s>"]:
            added.append({"id": next_id, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True})
            next_id += 1
        post_processor = {"type": "RobertaProcessing", "sep": ["</s>", next_id - 1], "cls": ["<s>", next_id - 2],
                          "trim_offsets": True, "add_prefix_space": add_prefix_space}
    elif post == "Template":
        eot = vocab["<|endoftext|>"]
        post_processor = {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}}],
            "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [eot], "tokens": ["<|endoftext|>"]}}}
    # RoBERTa's <mask> (lstrip) and two plain added tokens exercising single_word and rstrip.
    added.append({"id": next_id, "content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False,
                  "normalized": False, "special": True})
    added.append({"id": next_id + 1, "content": "thou", "single_word": True, "lstrip": False, "rstrip": False,
                  "normalized": True, "special": False})
    added.append({"id": next_id + 2, "content": "[[end]]", "single_word": False, "lstrip": False, "rstrip": True,
                  "normalized": True, "special": False})
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [[a, b] for a, b in merges] if merges_as_pairs else [a + " " + b for a, b in merges]},
    }
    folder = os.path.join(tmp, name)
    write_json(folder, "tokenizer.json", tokenizer)
    return folder


# ---------------------------------------------------------------------------------------------
# Classic BPE: end-of-word suffix, or continuing-subword prefix
# ---------------------------------------------------------------------------------------------

def classic_bpe_folder(tmp, shared, name, prefix="", suffix="", fuse_unk=False, ignore_merges=False):
    text = shakespeare(shared).lower()
    counts = collections.Counter()
    for w in re.findall(r"\w+|[^\w\s]+", text):
        symbols = [(prefix if i else "") + c for i, c in enumerate(w)]
        symbols[-1] += suffix
        counts[tuple(symbols)] += 1
    merges = learn_merges(counts, 200, prefix)
    vocab = {"<unk>": 0}
    for symbols in counts:
        for s in symbols:
            vocab.setdefault(s, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b[len(prefix):], len(vocab))
    if ignore_merges:
        # Whole words that the merges would not produce in one piece.
        for w in ["nevertheless", "abcd"]:
            vocab.setdefault(w, len(vocab))
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>",
             "continuing_subword_prefix": prefix or None, "end_of_word_suffix": suffix or None,
             "fuse_unk": fuse_unk, "byte_fallback": False, "vocab": vocab,
             "merges": [a + " " + b for a, b in merges]}
    if ignore_merges:
        model["ignore_merges"] = True
    normalizer = {"type": "Lowercase"} if suffix else {
        "type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]}
    pre = {"type": "Whitespace"} if suffix else {"type": "WhitespaceSplit"}
    tokenizer = {"version": "1.0", "truncation": None, "padding": None,
                 "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False,
                                   "rstrip": False, "normalized": False, "special": True}],
                 "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": None,
                 "decoder": {"type": "BPEDecoder", "suffix": suffix} if suffix else None, "model": model}
    folder = os.path.join(tmp, name)
    write_json(folder, "tokenizer.json", tokenizer)
    return folder


# ---------------------------------------------------------------------------------------------
# WordPiece (BERT)
# ---------------------------------------------------------------------------------------------

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocab(shared):
    """Specials, single characters (plain and ##), the most frequent words and word endings."""
    text = shakespeare(shared)
    words = re.findall(r"\w+|[^\w\s]", text)
    tokens = list(SPECIALS)
    chars = sorted(set(text.lower()) | set(text) | set("éüöà中文字") - set(" \n\t\r"))
    chars = [c for c in chars if c.strip() and c not in "qz"]  # q and z stay unknown
    tokens += chars + ["##" + c for c in chars if c.isalnum()]
    lower_counts = collections.Counter(w.lower() for w in words if w.isalpha())
    tokens += [w for w, _ in lower_counts.most_common(250) if len(w) > 1]
    cased_counts = collections.Counter(w for w in words if w.isalpha() and w[0].isupper())
    tokens += [w for w, _ in cased_counts.most_common(60) if len(w) > 1]
    endings = collections.Counter()
    for w, n in lower_counts.items():
        for k in (2, 3, 4):
            if len(w) > k + 1:
                endings["##" + w[-k:]] += n
    tokens += [e for e, _ in endings.most_common(120)]
    stems = collections.Counter()
    for w, n in lower_counts.items():
        if len(w) > 5:
            stems[w[:4]] += n
    tokens += [s for s, _ in stems.most_common(80)]
    seen, vocab = set(), []
    for t in tokens:
        if t not in seen:
            seen.add(t)
            vocab.append(t)
    return vocab


def wordpiece_json_folder(tmp, shared, name, lowercase=True, strip_accents=None, post="Template",
                          max_chars=100, chinese=True):
    vocab_list = wordpiece_vocab(shared)
    vocab = {t: i for i, t in enumerate(vocab_list)}
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    if post == "Template":
        post_processor = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}}}
    else:
        post_processor = {"type": "BertProcessing", "sep": ["[SEP]", sep], "cls": ["[CLS]", cls]}
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t in SPECIALS],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": chinese,
                       "strip_accents": strip_accents, "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": post_processor,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": max_chars, "vocab": vocab},
    }
    folder = os.path.join(tmp, name)
    write_json(folder, "tokenizer.json", tokenizer)
    return folder


def vocab_txt_folder(tmp, shared, name, config):
    """A BERT folder with only vocab.txt (and tokenizer_config.json unless config is None)."""
    folder = os.path.join(tmp, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(wordpiece_vocab(shared)) + "\n")
    if config is not None:
        write_json(folder, "tokenizer_config.json", config)
    return folder


# ---------------------------------------------------------------------------------------------
# Variants of the default SentencePiece-style model
# ---------------------------------------------------------------------------------------------

def byte_fallback_folder(tmp, shared, name):
    """The default model plus byte tokens for some bytes only: \r and the UTF-8 bytes of é and
    the em dash fall back to <0xXX>, while ü (C3 BC) or CJK still become <unk>."""
    with open(os.path.join(shared, "models", "tinystories-656k", "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = json.load(f)
    vocab = tokenizer["model"]["vocab"]
    for b in [0x0D, 0x09, 0xC3, 0xA9, 0xE2, 0x80, 0x94]:
        vocab["<0x%02X>" % b] = len(vocab)
    folder = os.path.join(tmp, name)
    write_json(folder, "tokenizer.json", tokenizer)
    return folder


# ---------------------------------------------------------------------------------------------
# Metaspace variants of the default SentencePiece-style model
# ---------------------------------------------------------------------------------------------

def metaspace_folder(tmp, shared, name, prepend_scheme, split):
    with open(os.path.join(shared, "models", "tinystories-656k", "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = json.load(f)
    tokenizer["normalizer"] = None
    tokenizer["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": prepend_scheme,
                                  "split": split}
    tokenizer["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": prepend_scheme,
                            "split": split}
    folder = os.path.join(tmp, name)
    write_json(folder, "tokenizer.json", tokenizer)
    return folder
