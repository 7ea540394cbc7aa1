"""A deliberately simple, independent re-implementation of the Hugging Face `tokenizers` semantics
that tquant's tokenizers must reproduce. It favours obviousness over speed:

  * BPE merges naively: find the adjacent pair with the lowest merge rank (leftmost on ties),
    merge it, and start again - O(n^2) per word, so keep inputs to a few KB.
  * GPT-2's pre-tokenizer regex runs on Python's `re` with the Unicode classes \\p{L}, \\p{N}
    and White_Space spelled out as explicit character ranges built from `unicodedata`.
  * WordPiece is greedy longest-match-first; BertNormalizer uses `unicodedata`.
  * Added tokens are matched leftmost-longest by trying every pattern at every position.

It reads tokenizer.json (or a BERT folder with only vocab.txt) and offers
encode(text, pair=None, add_special_tokens=True, max_length=0) -> (ids, type_ids).
"""
import json
import os
import re
import unicodedata

# ---------------------------------------------------------------------------------------------
# Character classes (as the Rust code defines them)
# ---------------------------------------------------------------------------------------------

WHITE_SPACE = set([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F,
                   0x205F, 0x3000] + list(range(0x2000, 0x200B)))


def is_ws(c):
    return ord(c) in WHITE_SPACE


def category(c):
    return unicodedata.category(c)


def is_punct(c):  # BERT: Rust's is_ascii_punctuation or Unicode P*
    return (c.isascii() and not c.isalnum() and 0x21 <= ord(c) <= 0x7E) or category(c).startswith("P")


def is_word(c):  # regex \w: letters, marks, decimal digits, connectors (and the joiners)
    cat = category(c)
    return cat[0] in "LM" or cat in ("Nd", "Nl", "Pc") or c in "\u200c\u200d"


def word_runs(s):
    """Pieces of regex `\w+|[^\w\s]+`: runs of word characters, runs of other non-space ones."""
    pieces, cur, cur_word = [], "", None
    for c in s:
        if is_ws(c):
            if cur:
                pieces.append(cur)
            cur, cur_word = "", None
        elif cur and is_word(c) == cur_word:
            cur += c
        else:
            if cur:
                pieces.append(cur)
            cur, cur_word = c, is_word(c)
    if cur:
        pieces.append(cur)
    return pieces


def lower(s):  # Rust char::to_lowercase per character: no final-sigma context
    return "".join(c.lower() for c in s)


_CLASS_CACHE = {}


def char_class(name):
    """Regex character-class body (no brackets) listing every code point of the class."""
    if name in _CLASS_CACHE:
        return _CLASS_CACHE[name]
    tests = {
        "L": lambda cp: unicodedata.category(chr(cp)).startswith("L"),
        "N": lambda cp: unicodedata.category(chr(cp)).startswith("N"),
        "WS": lambda cp: cp in WHITE_SPACE,
    }
    test = tests[name]
    parts, start = [], None
    for cp in range(0x110001):
        inside = cp <= 0x10FFFF and test(cp)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            parts.append("\\U%08x-\\U%08x" % (start, cp - 1))
            start = None
    _CLASS_CACHE[name] = "".join(parts)
    return _CLASS_CACHE[name]


_GPT2_RE = None


def gpt2_regex():
    global _GPT2_RE
    if _GPT2_RE is None:
        L, N, WS = char_class("L"), char_class("N"), char_class("WS")
        pattern = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^%s%s%s]+|[%s]+(?![^%s])|[%s]+"
                   % (L, N, WS, L, N, WS, WS, WS))
        _GPT2_RE = re.compile(pattern)
    return _GPT2_RE


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()

# ---------------------------------------------------------------------------------------------
# Normalizers: str -> str
# ---------------------------------------------------------------------------------------------


def bert_normalize(s, clean_text, chinese, strip_accents, lowercase):
    out = []
    for c in s:
        cp = ord(c)
        if clean_text:
            if cp == 0 or cp == 0xFFFD or (c not in "\t\n\r" and category(c).startswith("C")):
                continue
            if c in "\t\n\r" or is_ws(c):
                out.append(" ")
                continue
        if chinese and (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
                        or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F
                        or 0x2B920 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
                        or 0x2F800 <= cp <= 0x2FA1F):
            out.append(" " + c + " ")
            continue
        out.append(c)
    s = "".join(out)
    if strip_accents:
        s = "".join(c for c in unicodedata.normalize("NFD", s) if category(c) != "Mn")
    if lowercase:
        s = lower(s)
    return s


def make_normalizer(spec):
    if spec is None:
        return lambda s: s
    t = spec["type"]
    if t == "Sequence":
        parts = [make_normalizer(x) for x in spec["normalizers"]]

        def run(s):
            for p in parts:
                s = p(s)
            return s
        return run
    if t == "Prepend":
        return lambda s: spec["prepend"] + s if s else s
    if t == "Replace":
        pattern, content = spec["pattern"]["String"], spec["content"]
        return lambda s: s.replace(pattern, content)
    if t == "Lowercase":
        return lower
    if t in ("NFC", "NFD", "NFKC", "NFKD"):
        return lambda s: unicodedata.normalize(t, s)
    if t == "StripAccents":
        return lambda s: "".join(c for c in s if category(c) != "Mn")
    if t == "Strip":
        left, right = spec.get("strip_left", True), spec.get("strip_right", True)

        def strip(s):
            while left and s and is_ws(s[0]):
                s = s[1:]
            while right and s and is_ws(s[-1]):
                s = s[:-1]
            return s
        return strip
    if t == "BertNormalizer":
        lc = spec.get("lowercase", True)
        sa = spec.get("strip_accents")
        return lambda s: bert_normalize(s, spec.get("clean_text", True), spec.get("handle_chinese_chars", True),
                                        lc if sa is None else sa, lc)
    raise ValueError("oracle: unsupported normalizer " + t)

# ---------------------------------------------------------------------------------------------
# Pre-tokenizers: list of (text, starts_at_original_offset_0) -> same
# ---------------------------------------------------------------------------------------------


def split_chars(s, pred, keep_matches):
    """Splits on every character satisfying pred; matches are dropped or kept as pieces."""
    pieces, cur = [], ""
    for c in s:
        if pred(c):
            if cur:
                pieces.append(cur)
            cur = ""
            if keep_matches:
                pieces.append(c)
        else:
            cur += c
    if cur:
        pieces.append(cur)
    return pieces


def make_pre_tokenizer(spec):
    if spec is None:
        return lambda pieces: pieces
    t = spec["type"]
    if t == "Sequence":
        parts = [make_pre_tokenizer(x) for x in spec["pretokenizers"]]

        def run(pieces):
            for p in parts:
                pieces = p(pieces)
            return pieces
        return run
    if t == "ByteLevel":
        prefix, use_regex = spec.get("add_prefix_space", True), spec.get("use_regex", True)

        def byte_level(pieces):
            out = []
            for s, origin in pieces:
                if prefix and not s.startswith(" "):
                    s = " " + s
                words = gpt2_regex().findall(s) if use_regex else [s]
                assert "".join(words) == s
                for i, w in enumerate(words):
                    out.append(("".join(BYTE_CHAR[b] for b in w.encode("utf-8")), origin and i == 0))
            return out
        return byte_level
    if t == "BertPreTokenizer":
        def bert(pieces):
            out = []
            for s, origin in pieces:
                pos = 0
                for w in split_chars(s, is_ws, False):
                    w_origin = origin and s.startswith(w) and pos == 0
                    for p in split_chars(w, is_punct, True):
                        out.append((p, w_origin))
                        w_origin = False
                    pos += 1
            return out
        return bert
    if t == "WhitespaceSplit":
        return lambda pieces: [(w, o and s.startswith(w)) for s, o in pieces for w in split_chars(s, is_ws, False)]
    if t == "Whitespace":
        return lambda pieces: [(w, False) for s, _ in pieces for w in word_runs(s)]
    if t == "Metaspace":
        rep = spec.get("replacement", "\u2581")
        scheme = spec.get("prepend_scheme", "always" if spec.get("add_prefix_space", True) else "never")
        split = spec.get("split", True)

        def metaspace(pieces):
            out = []
            for s, origin in pieces:
                s = s.replace(" ", rep)
                if not s.startswith(rep) and (scheme == "always" or (scheme == "first" and origin)):
                    s = rep + s
                if not split:
                    out.append((s, origin))
                    continue
                # Each replacement character starts a new piece.
                words = []
                for c in s:
                    if c == rep or not words:
                        words.append(c)
                    else:
                        words[-1] += c
                out.extend((w, origin and i == 0) for i, w in enumerate(words))
            return out
        return metaspace
    raise ValueError("oracle: unsupported pre-tokenizer " + t)

# ---------------------------------------------------------------------------------------------
# Models: word -> ids
# ---------------------------------------------------------------------------------------------


class NaiveBPE:
    def __init__(self, spec):
        self.vocab = spec["vocab"]
        self.unk = spec.get("unk_token")
        self.prefix = spec.get("continuing_subword_prefix") or ""
        self.suffix = spec.get("end_of_word_suffix") or ""
        self.fuse_unk = spec.get("fuse_unk", False)
        self.byte_fallback = spec.get("byte_fallback", False)
        self.ignore_merges = spec.get("ignore_merges", False)
        self.ranks = {}
        for rank, m in enumerate(spec["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.ranks[(a, b)] = rank

    def initial_symbols(self, word):
        symbols = []  # token strings
        pending_unk = None
        for i, c in enumerate(word):
            s = (self.prefix if i > 0 else "") + c + (self.suffix if i == len(word) - 1 else "")
            if s in self.vocab:
                if pending_unk is not None:
                    symbols.append(pending_unk)
                    pending_unk = None
                symbols.append(s)
                continue
            if self.byte_fallback:
                byte_tokens = ["<0x%02X>" % b for b in s.encode("utf-8")]
                if all(t in self.vocab for t in byte_tokens):
                    symbols.extend(byte_tokens)
                    continue
            if self.unk is not None:
                if pending_unk is not None and not self.fuse_unk:
                    symbols.append(pending_unk)
                pending_unk = self.unk
        if pending_unk is not None:
            symbols.append(pending_unk)
        return symbols

    def merged(self, a, b):
        return a + (b[len(self.prefix):] if self.prefix else b)

    def tokenize(self, word):
        if not word:
            return []
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        symbols = self.initial_symbols(word)
        while len(symbols) > 1:
            best, best_rank = None, None
            for i in range(len(symbols) - 1):
                r = self.ranks.get((symbols[i], symbols[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            symbols[best:best + 2] = [self.merged(symbols[best], symbols[best + 1])]
        return [self.vocab[s] for s in symbols]


class GreedyWordPiece:
    def __init__(self, vocab, unk="[UNK]", prefix="##", max_chars=100):
        self.vocab, self.unk, self.prefix, self.max_chars = vocab, unk, prefix, max_chars

    def tokenize(self, word):
        if len(word) > self.max_chars:
            return [self.vocab[self.unk]]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = (self.prefix if start > 0 else "") + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return [self.vocab[self.unk]]
            ids.append(self.vocab[piece])
            start = end
        return ids


# ---------------------------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------------------------


class NoRoomForSpecialTokens(Exception):
    """max_length is smaller than the special tokens alone (tquant refuses such a request)."""


class Oracle:
    def __init__(self, model, vocab, normalizer, pre_tokenizer, post, added_tokens, truncation=None):
        self.model, self.vocab = model, vocab
        self.normalize, self.pre_tokenize, self.post = normalizer, pre_tokenizer, post
        self.truncation = truncation
        # Added tokens keep the model's id when the model has them, else get new ids in order.
        self.added = []  # (content, id, token dict)
        next_id = len(vocab)
        specials = [t for t in added_tokens if t.get("special")]
        others = [t for t in added_tokens if not t.get("special")]
        ids = {}
        for t in added_tokens:
            if t["content"] in ids:
                continue
            if t["content"] in vocab:
                ids[t["content"]] = vocab[t["content"]]
            else:
                ids[t["content"]] = next_id
                next_id += 1
        for t in specials + others:
            pattern = t["content"] if not t.get("normalized", True) else normalizer(t["content"])
            self.added.append((t, ids[t["content"]], pattern))

    @staticmethod
    def from_tokenizer_json(path):
        spec = json.load(open(path, encoding="utf-8"))
        m = spec["model"]
        if m["type"] == "BPE":
            model, vocab = NaiveBPE(m), m["vocab"]
        elif m["type"] == "WordPiece":
            vocab = m["vocab"]
            model = GreedyWordPiece(vocab, m.get("unk_token", "[UNK]"), m.get("continuing_subword_prefix", "##"),
                                    m.get("max_input_chars_per_word", 100))
        else:
            raise ValueError("oracle: unsupported model " + m["type"])
        return Oracle(model, vocab, make_normalizer(spec.get("normalizer")),
                      make_pre_tokenizer(spec.get("pre_tokenizer")), spec.get("post_processor"),
                      spec.get("added_tokens") or [], spec.get("truncation"))

    @staticmethod
    def from_vocab_txt(folder):
        """transformers' BertTokenizerFast for a folder with vocab.txt (+ tokenizer_config.json)."""
        with open(os.path.join(folder, "vocab.txt"), encoding="utf-8") as f:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(f.readlines())}
        config = {}
        if os.path.exists(os.path.join(folder, "tokenizer_config.json")):
            config = json.load(open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8"))
        lc = config.get("do_lower_case", True)
        sa = config.get("strip_accents")
        normalizer = lambda s: bert_normalize(s, True, config.get("tokenize_chinese_chars", True),  # noqa: E731
                                              lc if sa is None else sa, lc)
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                         {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                "special_tokens": {"[CLS]": {"ids": [vocab["[CLS]"]]}, "[SEP]": {"ids": [vocab["[SEP]"]]}}}
        added = [{"content": t, "normalized": False, "special": True}
                 for t in ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]]
        return Oracle(GreedyWordPiece(vocab), vocab, normalizer, make_pre_tokenizer({"type": "BertPreTokenizer"}),
                      post, added)

    # -- added tokens ------------------------------------------------------------------------

    def split_added(self, s, normalized, origin):
        """[(text, id or None, starts_at_origin)] for one piece, matching added tokens whose
        'normalized' flag equals `normalized`."""
        patterns = [(p, i, t) for t, i, p in self.added if bool(t.get("normalized", True)) == normalized and p]
        matches, pos = [], 0
        while pos < len(s):
            best = None
            for p, i, t in patterns:
                if s.startswith(p, pos) and (best is None or len(p) > len(best[0])):
                    best = (p, i, t)
            if best is None:
                pos += 1
                continue
            matches.append((pos, pos + len(best[0]), best[1], best[2]))
            pos += len(best[0])
        out, last = [], 0
        for start, stop, tid, t in matches:
            if t.get("single_word"):
                if (start > 0 and is_word(s[start - 1])) or (stop < len(s) and is_word(s[stop])):
                    continue
            if t.get("lstrip"):
                k = start
                while k > 0 and is_ws(s[k - 1]):
                    k -= 1
                start = max(k, last)
            if t.get("rstrip"):
                while stop < len(s) and is_ws(s[stop]):
                    stop += 1
            if last < start:
                out.append((s[last:start], None, origin and last == 0))
            out.append((s[start:stop], tid, origin and start == 0))
            last = stop
        if last < len(s):
            out.append((s[last:], None, origin and last == 0))
        return out

    def encode_sequence(self, text):
        pieces = []
        for s, tid, origin in self.split_added(text, False, True):
            if tid is not None:
                pieces.append((s, tid, origin))
                continue
            pieces.extend(self.split_added(self.normalize(s), True, origin))
        ids = []
        for s, tid, origin in pieces:
            if tid is not None:
                ids.append(tid)
                continue
            for word, _ in self.pre_tokenize([(s, origin)]):
                ids.extend(self.model.tokenize(word))
        return ids

    # -- post-processing ---------------------------------------------------------------------

    def n_special(self, is_pair):
        p = self.post
        if p is None or p["type"] == "ByteLevel":
            return 0
        if p["type"] == "BertProcessing":
            return 3 if is_pair else 2
        if p["type"] == "RobertaProcessing":
            return 4 if is_pair else 2
        if p["type"] == "TemplateProcessing":
            template = p["pair"] if is_pair else p["single"]
            return sum(len(p["special_tokens"][x["SpecialToken"]["id"]]["ids"]) for x in template if "SpecialToken" in x)
        raise ValueError("oracle: unsupported post-processor " + p["type"])

    def post_process(self, a, b, add_special):
        p = self.post
        seqs = [a] + ([b] if b is not None else [])
        if p is not None and p["type"] == "TemplateProcessing":
            ids, types = [], []
            for piece in (p["pair"] if b is not None else p["single"]):
                if "Sequence" in piece:
                    seq = seqs[0 if piece["Sequence"]["id"] == "A" else 1]
                    ids += seq
                    types += [piece["Sequence"]["type_id"]] * len(seq)
                elif add_special:
                    sp = p["special_tokens"][piece["SpecialToken"]["id"]]["ids"]
                    ids += sp
                    types += [piece["SpecialToken"]["type_id"]] * len(sp)
            return ids, types
        if p is not None and p["type"] == "BertProcessing" and add_special:
            cls, sep = p["cls"][1], p["sep"][1]
            ids, types = [cls] + a + [sep], [0] * (len(a) + 2)
            if b is not None:
                ids += b + [sep]
                types += [1] * (len(b) + 1)
            return ids, types
        if p is not None and p["type"] == "RobertaProcessing":
            if not add_special:
                return a + (b or []), [0] * (len(a) + len(b or []))
            cls, sep = p["cls"][1], p["sep"][1]
            ids = [cls] + a + [sep] + ([sep] + b + [sep] if b is not None else [])
            return ids, [0] * len(ids)
        return a + (b or []), [0] * len(a) + [1] * len(b or [])

    def encode(self, text, pair=None, add_special_tokens=True, max_length=0):
        a = self.encode_sequence(text)
        b = self.encode_sequence(pair) if pair is not None else None
        limit = max_length or (self.truncation or {}).get("max_length", 0)
        if limit:
            if add_special_tokens:
                limit -= self.n_special(b is not None)
                if limit < 0:
                    raise NoRoomForSpecialTokens()
            a, b = truncate_longest_first(a, b, limit)
        return self.post_process(a, b, add_special_tokens)


def truncate_longest_first(a, b, limit):
    """Removes tokens from the end, one at a time, from whichever sequence is currently longer
    until the total fits; on a tie from the one that was shorter to begin with (the first if
    they started equal), so that an odd budget leaves the extra token to the longer input."""
    a, b = list(a), (list(b) if b is not None else None)
    if b is None:
        return a[:max(limit, 0)], None
    a_started_shorter = len(a) <= len(b)
    while len(a) + len(b) > limit:
        if len(a) > len(b) or (len(a) == len(b) and a_started_shorter):
            a.pop()
        else:
            b.pop()
    return a, b


def load(folder):
    if os.path.exists(os.path.join(folder, "tokenizer.json")):
        return Oracle.from_tokenizer_json(os.path.join(folder, "tokenizer.json"))
    return Oracle.from_vocab_txt(folder)
