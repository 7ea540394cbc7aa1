#!/usr/bin/python3
"""Text extraction and filtering for scripts/pretraining-corpus.sh (standard library only).

Each source subcommand writes UTF-8 text to stdout: one sentence or paragraph per line and a
blank line between documents. `devfilter` removes, in place, every line that equals a GLUE dev
sentence after whitespace normalisation and lowercasing. Output is deterministic: directory
listings are sorted and nothing depends on hash or filesystem order.

    pretraining_corpus_filter.py wordnet  DIR               (/usr/share/wordnet)
    pretraining_corpus_filter.py gcide    DICT.dz INDEX     (dictd database)
    pretraining_corpus_filter.py devil    DICT.dz
    pretraining_corpus_filter.py fortunes DIR               (/usr/share/games/fortunes)
    pretraining_corpus_filter.py bible                      (stdin: `bible -l0 gen1:1-rev22:21`)
    pretraining_corpus_filter.py html     FILE_OR_DIR...    (prose paragraphs of HTML manuals)
    pretraining_corpus_filter.py shakespeare FILE
    pretraining_corpus_filter.py tinystories FILE
    pretraining_corpus_filter.py glue     DATA_DIR [--cola-all]
    pretraining_corpus_filter.py devfilter DATA_DIR FILE...  (prints `FILE<TAB>removed`)
"""
import gzip
import html
import html.parser
import os
import re
import sys
import unicodedata

MAX_LINE = 2000

_ws = re.compile(r"\s+")
_url = re.compile(r"(https?://|ftp://|www\.|\S@\S+\.(com|org|net|edu)\b|mailto:)", re.I)
_ctrl = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def norm_ws(s):
    return _ws.sub(" ", _ctrl.sub(" ", s)).strip()


def dev_key(s):
    return norm_ws(s).lower()


def decode(data):
    """UTF-8 where valid, else Windows-1252 (a few old fortune/dictionary files)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def overstrike(s):
    """Resolve nroff-style backspace overstriking ("_\bx" underline, "x\bx" bold)."""
    if "\b" not in s:
        return s
    out = []
    for line in s.split("\n"):
        buf, pos = [], 0
        for c in line:
            if c == "\b":
                pos = max(0, pos - 1)
            elif pos < len(buf):
                if buf[pos] == "_":
                    buf[pos] = c
                pos += 1
            else:
                buf.append(c)
                pos += 1
        out.append("".join(buf))
    return "\n".join(out)


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith((".gz", ".dz")):
        data = gzip.decompress(data)
    return overstrike(decode(data))


def split_long(line):
    """Split a line longer than MAX_LINE at sentence ends (then at spaces)."""
    if len(line) <= MAX_LINE:
        return [line]
    out, cur = [], ""
    for sent in re.split(r"(?<=[.!?;:])\s+", line):
        while len(sent) > MAX_LINE:
            cut = sent.rfind(" ", 0, MAX_LINE)
            cut = cut if cut > 0 else MAX_LINE
            if cur:
                out.append(cur)
                cur = ""
            out.append(sent[:cut].strip())
            sent = sent[cut:].strip()
        if cur and len(cur) + 1 + len(sent) > MAX_LINE:
            out.append(cur)
            cur = sent
        else:
            cur = f"{cur} {sent}" if cur else sent
    if cur:
        out.append(cur)
    return [s for s in out if s]


def prose_ok(line, min_words=2, min_alpha=0.70):
    """True for a line that reads like natural-language text, not code/markup/tables/URLs."""
    if not line or _url.search(line):
        return False
    words = line.split()
    if len(words) < min_words:
        return False
    nonspace = sum(1 for c in line if not c.isspace())
    alpha = sum(1 for c in line if c.isalpha())
    if alpha < min_alpha * nonspace:
        return False
    # markup / code: tags, braces, backslashes, shell and C punctuation, long dotted/underscored tokens
    if re.search(r"</?[a-zA-Z][^>]*>|[{}\\|]|;\s*$|==|!=|&&|\|\||->|::|\$\(|\bdef |#include|^\s*[#$%>]", line):
        return False
    codeish = sum(1 for w in words if re.search(r"[_/=<>\[\]()@#*~^]", w))
    if codeish > 0.2 * len(words):
        return False
    upper = sum(1 for c in line if c.isupper())
    if len(words) >= 4 and upper > 0.5 * alpha:  # SHOUTING, headers, tables of names
        return False
    return True


class Writer:
    """Collects documents (lists of lines) and prints them separated by blank lines."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.first = True

    def doc(self, lines):
        clean = []
        for ln in lines:
            ln = norm_ws(ln)
            if ln:
                clean.extend(split_long(ln))
        if not clean:
            return
        if not self.first:
            self.out.write("\n")
        self.first = False
        self.out.write("\n".join(clean))
        self.out.write("\n")


# --------------------------------------------------------------------------------------------
# WordNet: one document per synset: "lemma, lemma: gloss." then each example sentence.

def cmd_wordnet(args):
    d = args[0]
    w = Writer()
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(d, "data." + pos), "rb") as f:
            for raw in f:
                if raw.startswith(b"  "):  # licence header
                    continue
                line = decode(raw)
                head, sep, gloss = line.partition("|")
                if not sep:
                    continue
                fields = head.split()
                n = int(fields[3], 16)
                lemmas = []
                for i in range(n):
                    lem = re.sub(r"\(\w+\)$", "", fields[4 + 2 * i]).replace("_", " ")
                    if lem.lower() not in (x.lower() for x in lemmas):
                        lemmas.append(lem)
                gloss = gloss.strip()
                # examples are the trailing '"..."' items separated by '; '
                m = re.search(r';\s*"', gloss)
                definition, examples = (gloss[: m.start()], gloss[m.start() + 1:]) if m else (gloss, "")
                definition = norm_ws(definition).rstrip(";")
                out = []
                if definition:
                    if not definition.endswith((".", "!", "?")):
                        definition += "."
                    out.append(f"{', '.join(lemmas)}: {definition}")
                for ex in re.findall(r'"([^"]+)"', examples):
                    ex = norm_ws(ex)
                    if len(ex.split()) >= 3 and prose_ok(ex, 3):
                        out.append(ex)
                w.doc(out)


# --------------------------------------------------------------------------------------------
# dictd databases (GCIDE, Devil's Dictionary)

_b64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def b64num(s):
    n = 0
    for c in s:
        n = n * 64 + _b64[c]
    return n


def dict_entries(dz, index):
    with open(dz, "rb") as f:
        data = gzip.decompress(f.read())
    spans = {}
    with open(index, "rb") as f:
        for raw in f:
            parts = raw.rstrip(b"\n").split(b"\t")
            if len(parts) < 3 or parts[0].startswith((b"00-", b"00database")):
                continue
            spans[(b64num(parts[1].decode()), b64num(parts[2].decode()))] = True
    for off, ln in sorted(spans):
        yield decode(data[off: off + ln])


_accent_mark = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", ",": "\u0327"}
_gcide_sym = {"ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "deg": "°", "sect": "§", "frac12": "½",
              "frac14": "¼", "frac34": "¾", "pound": "£", "cent": "¢", "ll": "ll"}


def gcide_chars(s):
    def acc(m):
        mark, letter = m.group(1), m.group(2)
        if mark in _accent_mark:
            return unicodedata.normalize("NFC", letter + _accent_mark[mark])
        return letter  # macrons, breves, dots: pronunciation marks -> plain letter

    s = re.sub(r"\[([='`^\"~,.\-])([A-Za-z])\]", acc, s)
    s = re.sub(r"\[([A-Za-z])\^\]", r"\1", s)
    s = re.sub(r"\[(ae|AE|oe|OE|deg|sect|frac12|frac14|frac34|pound|cent)\]", lambda m: _gcide_sym[m.group(1)], s)
    return s


def strip_brackets(s):
    prev = None
    while prev != s:
        prev = s
        s = re.sub(r"\[[^\[\]]*\]", " ", s)
    return s


_tag_line = re.compile(r"^\s*\[(?:[^\[\]]*(?:Webster|WordNet|PJC|Suppl\.|Century|Chambers|Wikipedia)|(?:AS|RDH|RH|GG|RP|MW|JC|DOE)\b)[^\[\]]*\](?:\s+\S+)?\s*$")
_gcide_head = re.compile(r"^\S")
_pos = re.compile(r"^\s*(?:,\s*)?(?:(?:[a-z]{1,5}\.|&|or|pl\.?|sing\.?|;)\s*,?\s*)+")


def gcide_clean(text, head):
    s = gcide_chars(norm_ws(text))
    word = ""
    if head:
        m = re.match(r"^.{0,200}\\[^\\]*\\", s)  # headword(s) + pronunciation(s)
        if m:
            w = re.match(r"^([^\\,\[{]+?)\s*\\", s)
            word = w.group(1).replace("||", "").strip() if w else ""
            s = s[m.end():]
    s = re.sub(r"\\[^\\]*\\", " ", s)  # any other pronunciation
    s = re.sub(r"\s*\([^()]*\w\"\w[^()]*\)", "", s)  # respelled pronunciation: (gas"ez)
    s = strip_brackets(s)
    s = norm_ws(s)
    if head:
        s = re.sub(r"^\((?=[^)]*[\"'?`\-])[^)]*\)\s*", "", s)  # (?; 277), (-a "g'ld)
        s = re.sub(r"^\([^)]*\)\s*[,.]?", "", s)  # (gas), n.
        s = _pos.sub("", s)
        s = re.sub(r"^(?:\((?:[A-Z][A-Za-z. &]*)\)\s*)+", "", s)  # (Law), (Biol.)
    # sense numbers and domain labels: "1. (a) (Eng. Law) To diminish"
    s = re.sub(r"^(?:(?:\d+\.|\([a-z]\)|[a-z]\))\s+|\((?:[A-Z][A-Za-z. &]*)\)\s*)+", "", s)
    s = re.sub(r"^Note:\s*", "", s)
    s = re.sub(r"([.!?])\s+(?:AS|PJC|RDH|RH|GG|RP)$", r"\1", s)  # editors' initials
    s = re.sub(r"\s*--\s*[A-Z][^-]*$", "", s)  # attribution: --Milton. / --John xv. 8.
    s = re.sub(r"\s*\bSee(?: also| under)? \{[^}]*\}(?:,? (?:and |or )?\{[^}]*\})*\.?", "", s)
    s = s.replace("{", "").replace("}", "").replace("||", "")
    s = norm_ws(s.replace(" ,", ",").replace(" .", ".").replace(" ;", ";"))
    if word and s and s[0].isupper() and re.fullmatch(r"[A-Za-z][A-Za-z' .-]*", word):
        s = f"{word}: {s}"
    return s


def cmd_gcide(args):
    w = Writer()
    for entry in dict_entries(args[0], args[1]):
        paras, cur, first_line = [], [], True
        head_para = True
        for line in entry.split("\n"):
            if _tag_line.match(line):
                if cur:
                    paras.append((cur, line.strip(), head_para))
                    head_para = False
                cur = []
                continue
            if not line.strip():
                if cur:
                    paras.append((cur, "", head_para))
                    head_para = False
                cur = []
                continue
            if _gcide_head.match(line) and not first_line and cur == [] and head_para is False:
                head_para = True  # a second headword inside the same entry block
            cur.append(line)
            first_line = False
        if cur:
            paras.append((cur, "", head_para))
        out = []
        for lines, tag, head in paras:
            if "WordNet" in tag:  # the WordNet glosses come from wordnet-base
                continue
            text = " ".join(lines)
            stripped = text.strip()
            if stripped.startswith(("Syn", "--", "Usage", "Pl.", "Pron.")):
                continue
            s = gcide_clean(text, head and _gcide_head.match(lines[0]) is not None)
            if not s or not (s[0].isupper() or s[0] in "\"'‘“("):
                continue
            if "\\" in s or "*" in s or len(s.split()) < 2 or not prose_ok(s, 2):
                continue
            out.append(s)
        w.doc(out)


def cmd_devil(args):
    dz = args[0]
    index = re.sub(r"\.dict\.dz$", ".index", dz)
    w = Writer()
    for entry in dict_entries(dz, index):
        out, cur, verse = [], [], False
        for line in entry.split("\n") + [""]:
            if not line.strip():
                if cur:
                    out.extend(cur if verse else [" ".join(cur)])
                cur, verse = [], False
                continue
            if line.startswith("    "):  # indented verse, keep its lines
                if cur and not verse:
                    out.append(" ".join(cur))
                    cur = []
                verse = True
                t = line.strip()
                if re.fullmatch(r"[A-Z][A-Za-z.]*\.?(?: [A-Z][A-Za-z.]*)*", t) and len(t) < 30:
                    continue  # signature such as "G.J." or "Barney Stims"
                cur.append(t)
            else:
                if verse and cur:
                    out.extend(cur)
                    cur = []
                verse = False
                cur.append(line.strip())
        clean = []
        for i, s in enumerate(out):
            s = s.replace("{", "").replace("}", "")
            if i == 0:
                m = re.match(r"^([A-Z][A-Z' -]*),\s*(?:(?:[a-z]{1,5}\.|&)\s*)+", s)
                if m:
                    s = m.group(1).strip().capitalize() + ": " + s[m.end():]
                s = strip_brackets(s)
            s = norm_ws(s)
            if prose_ok(s, 1):
                clean.append(s)
        w.doc(clean)


# --------------------------------------------------------------------------------------------
# fortunes: one document per cookie; prose paragraphs joined, short (verse/dialogue) lines kept.

FORTUNE_SKIP = {"ascii-art", "translate-me"}  # drawings; Latin and other languages


def paragraph_lines(lines):
    """Group hard-wrapped lines into paragraphs; keep verse/dialogue lines separate."""
    out, block = [], []

    def flush():
        if not block:
            return
        short = all(len(b) < 50 for b in block)
        if len(block) > 1 and short:
            out.extend(b.strip() for b in block)
        else:
            out.append(" ".join(b.strip() for b in block))
        block.clear()

    for ln in lines:
        if not ln.strip():
            flush()
            continue
        if block and ((ln[:1] in ("\t", " ") and not ln.lstrip()[:1].islower())
                      or re.match(r"^\s*(<\w+>|\w+:\s|[A-Z][a-z]+:|\*\s)", ln)):
            # indented line starts a new paragraph (prose) or is a verse/dialogue line
            flush()
        block.append(ln)
    flush()
    return out


def cmd_fortunes(args):
    d = args[0]
    w = Writer()
    names = sorted(n for n in os.listdir(d)
                   if os.path.isfile(os.path.join(d, n)) and not n.endswith((".dat", ".u8"))
                   and n not in FORTUNE_SKIP)
    for name in names:
        text = read_text(os.path.join(d, name))
        for cookie in re.split(r"^%\s*$", text, flags=re.M):
            lines = cookie.strip("\n").split("\n")
            # drop the attribution ("-- Author") and everything after it
            for i, ln in enumerate(lines):
                if re.match(r"^\s+--\s*\S", ln) or re.match(r"^\s*-- [A-Z]", ln):
                    lines = lines[:i]
                    break
            paras = [norm_ws(p) for p in paragraph_lines(lines)]
            paras = [p for p in paras if p]
            if not paras:
                continue
            good = [p for p in paras if prose_ok(p, 1)]
            if len(good) < 0.6 * len(paras):  # mostly art, code or tables
                continue
            w.doc(good)


# --------------------------------------------------------------------------------------------
# King James Bible (stdin from the `bible` program): one document per chapter, one verse per line.

def cmd_bible(args):
    w = Writer()
    chapter = []
    for raw in sys.stdin.buffer:
        line = decode(raw).rstrip("\n")
        m = re.match(r"^\s+\d+\s+(.*)$", line)
        if m:
            chapter.append(m.group(1))
        elif line.strip() and chapter and not re.match(r"^[1-3]?\s?[A-Z][A-Za-z ]+ \d+$", line.strip()):
            chapter[-1] += " " + line.strip()  # wrapped verse continuation
        elif re.match(r"^[1-3]?\s?[A-Z][A-Za-z ]+ \d+$", line.strip()):
            w.doc(chapter)
            chapter = []
    w.doc(chapter)


# --------------------------------------------------------------------------------------------
# HTML manuals: prose paragraphs only (no pre/code blocks, tables, navigation, headings).

class ProseHTML(html.parser.HTMLParser):
    BLOCK = {"p", "div", "li", "dd", "dt", "ul", "ol", "dl", "blockquote", "br", "hr", "tr", "td",
             "th", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "body", "section"}
    SKIP_TAGS = {"pre", "script", "style", "table", "head", "title", "h1", "h2", "h3", "h4", "h5", "h6",
                 "dt"}
    SKIP_CLASS = {"docnav", "header", "titlepage", "indexterm", "toc", "navfooter", "navheader",
                  "contents", "shortcontents", "title", "index", "example", "screen", "programlisting",
                  "table", "informaltable", "footnotes", "legalnotice", "copyright", "author", "menu",
                  "nav-panel", "printindex", "index-entry-id"}
    VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, skipping)
        self.buf = []
        self.docs = [[]]
        self.code_words = 0

    def skipping(self):
        return bool(self.stack) and self.stack[-1][1]

    def flush(self):
        t = norm_ws("".join(self.buf))
        self.buf = []
        if t:
            self.docs[-1].append(t)

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCK:
            self.flush()
        if tag in ("h1", "h2", "h3", "h4") and self.docs[-1]:
            self.docs.append([])
        if tag in self.VOID:
            return
        cls = set((dict(attrs).get("class") or "").split())
        skip = self.skipping() or tag in self.SKIP_TAGS or bool(cls & self.SKIP_CLASS)
        self.stack.append((tag, skip))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        if tag in self.BLOCK:
            self.flush()

    def handle_data(self, data):
        if not self.skipping():
            self.buf.append(data)


def cmd_html(args):
    files = []
    for a in args:
        if os.path.isdir(a):
            files += sorted(os.path.join(a, n) for n in os.listdir(a) if n.endswith(".html"))
        else:
            files.append(a)
    w = Writer()
    seen = set()
    for path in files:
        p = ProseHTML()
        p.feed(read_text(path))
        p.close()
        p.flush()
        for doc in p.docs:
            good = []
            for t in doc:
                t = norm_ws(html.unescape(t))
                # a paragraph must be a sentence: enough words, sentence punctuation at the end
                if len(t.split()) < 6 or not re.search(r"[.!?:)\"”’']$", t) or t.endswith(":"):
                    continue
                if not prose_ok(t, 6, 0.72) or t in seen:
                    continue
                seen.add(t)
                good.append(t)
            w.doc(good)


# --------------------------------------------------------------------------------------------
# ../shared/data text

def speaker_name(s):
    """'KING RICHARD III' -> 'King Richard III', 'DUCHESS OF YORK' -> 'Duchess of York'."""
    words = []
    for i, w in enumerate(s.split()):
        if re.fullmatch(r"[IVX]+", w.upper()) and len(w) > 1 or w.upper() == "I" and i > 0:
            words.append(w.upper())
        elif i > 0 and w.lower() in ("of", "and", "the", "to", "in", "on", "at"):
            words.append(w.lower())
        else:
            words.append(w[:1].upper() + w[1:].lower())
    return " ".join(words)


def cmd_shakespeare(args):
    """One line per speech ("Speaker: text"); a document per 40 speeches (no scene markup exists)."""
    text = read_text(args[0])
    w = Writer()
    doc = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [l.strip() for l in block.split("\n") if l.strip()]
        if not lines:
            continue
        if lines[0].endswith(":") and len(lines) == 1:
            continue  # a speaker with no lines
        if lines[0].endswith(":"):
            doc.append(f"{speaker_name(lines[0][:-1])}: {' '.join(lines[1:])}")
        else:
            doc.append(" ".join(lines))
        if len(doc) == 40:
            w.doc(doc)
            doc = []
    w.doc(doc)


def cmd_tinystories(args):
    text = read_text(args[0])
    w = Writer()
    for story in text.split("<|endoftext|>"):
        w.doc([l for l in story.split("\n") if l.strip()])


def read_tsv(path, header):
    rows = []
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for ln in lines[1 if header else 0:]:
        rows.append(ln.rstrip("\r").split("\t"))
    return rows


def sst2_sentences(rows):
    """SST-2 train holds every phrase of each parse tree; keep only phrases that are not a
    contiguous word span of a longer phrase, i.e. (nearly) whole sentences."""
    phrases = []
    seen = set()
    for r in rows:
        p = norm_ws(r[0])
        if p and p not in seen:
            seen.add(p)
            phrases.append(p)
    order = sorted(range(len(phrases)), key=lambda i: (-len(phrases[i].split()), i))
    spans = set()
    keep = set()
    for i in order:
        toks = tuple(phrases[i].split())
        if toks in spans:
            continue
        keep.add(i)
        n = len(toks)
        for a in range(n):
            for b in range(a + 1, n + 1):
                spans.add(toks[a:b])
    return [phrases[i] for i in range(len(phrases)) if i in keep]


def cmd_glue(args):
    d = os.path.join(args[0], "glue")
    cola_all = "--cola-all" in args[1:]
    w = Writer()
    seen = set()

    def emit(lines):
        lines = [norm_ws(l) for l in lines if norm_ws(l)]
        key = "\n".join(lines)
        if lines and key not in seen:
            seen.add(key)
            w.doc(lines)

    # CoLA (source, label, orig-label, sentence); label 1 = acceptable
    for r in read_tsv(os.path.join(d, "CoLA/cola_public_raw/in_domain_train.tsv"), False):
        if len(r) >= 4 and (cola_all or r[1] == "1"):
            emit([r[3]])
    # SST-2 (sentence, label) phrases -> maximal phrases
    for s in sst2_sentences(read_tsv(os.path.join(d, "SST-2/train.tsv"), True)):
        emit([s])
    # MRPC (Quality, #1 ID, #2 ID, #1 String, #2 String)
    for r in read_tsv(os.path.join(d, "MRPC/train.tsv"), True):
        if len(r) >= 5:
            emit([r[3], r[4]])
    # RTE, HF layout (sentence1, sentence2, label, idx)
    for r in read_tsv(os.path.join(d, "RTE/train.tsv"), True):
        if len(r) >= 2:
            emit([r[0], r[1]])
    # STS-B (index genre filename year old_index source1 source2 sentence1 sentence2 score)
    for r in read_tsv(os.path.join(d, "STS-B/train.tsv"), True):
        if len(r) >= 9:
            emit([r[7], r[8]])


# --------------------------------------------------------------------------------------------
# dev-set safety net

def dev_sentences(d):
    """Every sentence field of every GLUE dev file present under DATA_DIR/glue."""
    g = os.path.join(d, "glue")
    # (path relative to glue/, header?, sentence columns); unknown dev files fall back to all
    # text-looking columns so that nothing slips through.
    known = {
        "CoLA/dev.tsv": (False, [3]),
        "CoLA/cola_public_raw/in_domain_dev.tsv": (False, [3]),
        "CoLA/cola_public_raw/out_of_domain_dev.tsv": (False, [3]),
        "MRPC/dev.tsv": (True, [3, 4]),
        "RTE/dev.tsv": (True, [1, 2]),
        "RTE/dev_hf.tsv": (True, [0, 1]),
        "SST-2/dev.tsv": (True, [0]),
        "STS-B/dev.tsv": (True, [7, 8]),
        "WNLI/dev.tsv": (True, [1, 2]),
    }
    files = []
    for root, dirs, names in os.walk(g):
        dirs.sort()
        for n in sorted(names):
            if n.endswith(".tsv") and "dev" in n:
                files.append(os.path.relpath(os.path.join(root, n), g))
    keys, per_file = set(), {}
    for rel in sorted(files):
        header, cols = known.get(rel, (False, None))
        rows = read_tsv(os.path.join(g, rel), header)
        k = set()
        for r in rows:
            use = cols if cols is not None else [i for i, c in enumerate(r) if len(c.split()) >= 3]
            for c in use:
                if c < len(r) and norm_ws(r[c]):
                    k.add(dev_key(r[c]))
        per_file[rel] = len(k)
        keys |= k
    return keys, per_file


_word = re.compile(r"\w+")


def overlap_index(dev_texts, min_len=6, span=13):
    """Token sequences to look for inside corpus lines: every dev sentence of min_len..span words
    whole, and every span-word window of longer ones; keyed by their first min_len words."""
    index = {}
    for t in sorted(dev_texts):
        toks = tuple(_word.findall(t.lower()))
        if len(toks) < min_len:
            continue
        cands = [toks] if len(toks) <= span else [toks[i:i + span] for i in range(len(toks) - span + 1)]
        for c in cands:
            index.setdefault(c[:min_len], set()).add(c)
    return index


def contains_dev(line, index, min_len=6):
    toks = tuple(_word.findall(line.lower()))
    for i in range(len(toks) - min_len + 1):
        cands = index.get(toks[i:i + min_len])
        if cands:
            for c in cands:
                if toks[i:i + len(c)] == c:
                    return True
    return False


def cmd_devfilter(args):
    """Remove lines equal to a GLUE dev sentence (whitespace-normalised, lowercased), in place.
    Prints per dev file its number of distinct sentences, then per corpus file the lines removed
    and (not removed, for information) the remaining lines that contain a whole dev sentence of
    6+ words or share a 13-word span with one."""
    d, files = args[0], args[1:]
    keys, per_file = dev_sentences(d)
    for rel, n in per_file.items():
        print(f"dev\t{rel}\t{n}")
    print(f"dev\tdistinct-total\t{len(keys)}")
    index = overlap_index(keys)
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        removed, near, examples = 0, 0, []
        kept = []
        for ln in lines:
            if ln and dev_key(ln) in keys:
                removed += 1
                continue
            if ln and contains_dev(ln, index):
                near += 1
                if len(examples) < 3:
                    examples.append(ln[:160])
            kept.append(ln)
        # re-normalise document separators: no leading/trailing/double blank lines
        out, blank = [], False
        for ln in kept:
            if ln == "":
                blank = bool(out)
                continue
            if blank:
                out.append("")
            blank = False
            out.append(ln)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            if out:
                f.write("\n".join(out) + "\n")
        os.replace(tmp, path)
        print(f"removed\t{os.path.basename(path)}\t{removed}\t{near}")
        for e in examples:
            print(f"near\t{os.path.basename(path)}\t{e}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    fn = globals().get("cmd_" + cmd)
    if fn is None:
        sys.exit(f"pretraining_corpus_filter.py: unknown command {cmd!r}\n{__doc__}")
    sys.stdout.reconfigure(encoding="utf-8", newline="\n")
    fn(sys.argv[2:])


if __name__ == "__main__":
    main()
