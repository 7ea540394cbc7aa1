#!/usr/bin/env bash
# Assembles an English pretraining corpus for a small BERT-style masked LM.
#
#   bash scripts/pretraining-corpus.sh OUT_DIR
#
# Sources (train-side text only; no evaluation split ever enters):
#   Debian 12 packages, installed here if missing (apt-get, like scripts/setup.sh):
#     wordnet-base     WordNet 3.0 glosses and example sentences        -> wordnet.txt
#     dict-gcide       GCIDE (Webster 1913 + additions): definitions, quotations, notes
#                      (its WordNet-derived glosses are skipped: wordnet.txt has them) -> gcide.txt
#     dict-devil       Ambrose Bierce, The Devil's Dictionary            -> devil.txt
#     fortunes         fortune cookies (fortunes-min comes with it; the offensive 'off'
#                      set is not installed and would be skipped)       -> fortunes.txt
#     bible-kjv        King James Bible, one verse a line, one chapter a document -> bible-kjv.txt
#     debian-handbook  The Debian Administrator's Handbook, en-US, prose paragraphs -> debian-handbook.txt
#     gnu-standards    GNU Coding Standards + Information for Maintainers, prose    -> gnu-standards.txt
#   ../shared/data (see ../shared/data/SOURCES.md):
#     tinyshakespeare/input.txt                                          -> tinyshakespeare.txt
#     tinystories/calib.txt (never eval.txt)                             -> tinystories.txt
#     GLUE train splits: CoLA in_domain_train (acceptable sentences only; set
#     COLA_ALL=1 for all), SST-2 train (maximal phrases only: the rest are sub-phrases
#     of them), MRPC, RTE, STS-B train pairs                              -> glue-train.txt
#   Never used: wikitext-2 (test/valid), ptb (valid), GLUE dev*.tsv, tinystories/eval.txt.
#   Safety net: every output line equal (whitespace-normalised, lowercased) to a sentence of
#   a GLUE dev file is removed and the count reported.
#
# Output: OUT_DIR/<source>.txt, UTF-8, one sentence or paragraph per line (< 2000 chars), a
# blank line between documents; OUT_DIR/SUMMARY.tsv and OUT_DIR/MANIFEST.tsv (package versions,
# sha256 of every file). Same packages + same shared data => byte-identical files. Built in a
# temporary directory beside OUT_DIR and renamed into place at the end; an existing OUT_DIR is
# replaced only if it holds a previous run's MANIFEST.tsv.
set -euo pipefail

die() { echo "pretraining-corpus: error: $*" >&2; exit 1; }

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bash $0 OUT_DIR" >&2
  exit 2
fi
out_arg=$1
script_dir=$(cd "$(dirname "$0")" && pwd)
helper="$script_dir/pretraining_corpus_filter.py"
py=/usr/bin/python3
shared="$script_dir/../../shared"
data="$shared/data"

[ -f "$helper" ] || die "helper $helper is missing"
[ -x "$py" ] || die "$py not found (install python3: bash scripts/setup.sh)"
[ -d "$shared" ] || die "shared data directory $shared not found (expected ../shared beside the repository root)"
[ -f "$data/SOURCES.md" ] || die "$data/SOURCES.md not found: ../shared/data is missing or incomplete"
required=(
  tinyshakespeare/input.txt
  tinystories/calib.txt
  glue/CoLA/cola_public_raw/in_domain_train.tsv
  glue/SST-2/train.tsv
  glue/MRPC/train.tsv
  glue/RTE/train.tsv
  glue/STS-B/train.tsv
)
for f in "${required[@]}"; do
  [ -s "$data/$f" ] || die "required input $data/$f is missing or empty"
done
ls "$data"/glue/*/dev*.tsv >/dev/null 2>&1 || die "no GLUE dev files under $data/glue: the dev-overlap safety net needs them"

export LC_ALL=C.UTF-8 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

# --- output directory ---------------------------------------------------------------------------
out_parent=$(dirname "$out_arg")
mkdir -p "$out_parent" || die "cannot create $out_parent"
out=$(cd "$out_parent" && pwd)/$(basename "$out_arg")
if [ -e "$out" ] && { [ ! -d "$out" ] || { [ -n "$(ls -A "$out")" ] && [ ! -f "$out/MANIFEST.tsv" ]; }; }; then
  die "$out exists and is not a previous corpus (no MANIFEST.tsv); refusing to replace it"
fi

# --- packages --------------------------------------------------------------------------------
packages=(wordnet-base dict-gcide dict-devil fortunes bible-kjv debian-handbook gnu-standards)
bash "$(dirname "$0")/setup.sh" "${packages[@]}" || die "installing ${packages[*]} failed"

# --- work directory (same filesystem as OUT_DIR, so the final rename is atomic) ---------------
work=$(mktemp -d "$out_parent/.pretraining-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP
stage="$work/corpus"
mkdir -p "$stage" "$work/deb"

# Data root of an installed package: / normally; if dpkg path-excludes dropped its files (slim
# images exclude /usr/share/doc), the same version's .deb is downloaded and unpacked instead.
pkg_root() { # PKG PATH_INSIDE
  local pkg=$1 path=$2 ver
  if [ -e "$path" ]; then echo ""; return; fi
  ver=$(dpkg-query -W -f='${Version}' "$pkg")
  echo "pretraining-corpus: $path missing (dpkg path-exclude?); unpacking $pkg $ver from its .deb" >&2
  (cd "$work/deb" && apt-get download -qq "$pkg=$ver" >/dev/null 2>&1) || die "cannot download $pkg=$ver to read $path"
  mkdir -p "$work/deb/$pkg"
  dpkg-deb -x "$work/deb/${pkg}_"*.deb "$work/deb/$pkg"
  [ -e "$work/deb/$pkg$path" ] || die "$pkg $ver has no $path"
  echo "$work/deb/$pkg"
}

run() { # NAME COMMAND...  -> $stage/NAME.txt
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$stage/$name.txt" || die "extracting $name failed"
  [ -s "$stage/$name.txt" ] || die "extracting $name produced no text"
  echo "pretraining-corpus: $name ($((SECONDS - t0)) s)" >&2
}

wn=$(pkg_root wordnet-base /usr/share/wordnet/data.noun)/usr/share/wordnet
gc=$(pkg_root dict-gcide /usr/share/dictd/gcide.dict.dz)/usr/share/dictd
dv=$(pkg_root dict-devil /usr/share/dictd/devil.dict.dz)/usr/share/dictd
fo=$(pkg_root fortunes /usr/share/games/fortunes/computers)/usr/share/games/fortunes
fm=$(pkg_root fortunes-min /usr/share/games/fortunes/fortunes)/usr/share/games/fortunes
hb=$(pkg_root debian-handbook /usr/share/doc/debian-handbook/html/en-US/index.html)/usr/share/doc/debian-handbook/html/en-US
gs=$(pkg_root gnu-standards /usr/share/doc/gnu-standards/standards.html)/usr/share/doc/gnu-standards
command -v bible >/dev/null || die "the bible program (package bible-kjv) is not on PATH"

run wordnet "$py" "$helper" wordnet "$wn"
run gcide "$py" "$helper" gcide "$gc/gcide.dict.dz" "$gc/gcide.index"
run devil "$py" "$helper" devil "$dv/devil.dict.dz"
if [ "$fo" != "$fm" ]; then # both packages unpacked from .debs: merge into one directory
  mkdir -p "$work/fortunes"
  cp -L "$fo"/* "$fm"/* "$work/fortunes/" 2>/dev/null || true # dangling .u8 links are fine
  fo="$work/fortunes"
fi
run fortunes "$py" "$helper" fortunes "$fo"
bible_text() { # the whole KJV, unwrapped; checked so that a failing `bible` is not silent
  local f="$work/bible.raw"
  bible -l0 gen1:1-rev22:21 >"$f" || die "bible -l0 gen1:1-rev22:21 failed"
  "$py" "$helper" bible <"$f"
}
run bible-kjv bible_text
run debian-handbook "$py" "$helper" html "$hb"
run gnu-standards "$py" "$helper" html "$gs/standards.html" "$gs/maintain.html"
run tinyshakespeare "$py" "$helper" shakespeare "$data/tinyshakespeare/input.txt"
run tinystories "$py" "$helper" tinystories "$data/tinystories/calib.txt"
cola=()
[ "${COLA_ALL:-0}" = 1 ] && cola=(--cola-all)
run glue-train "$py" "$helper" glue "$data" "${cola[@]}"

# --- safety net: drop lines equal to a GLUE dev sentence ----------------------------------------
files=(wordnet gcide devil fortunes bible-kjv debian-handbook gnu-standards tinyshakespeare tinystories glue-train)
paths=()
for f in "${files[@]}"; do paths+=("$stage/$f.txt"); done
"$py" "$helper" devfilter "$data" "${paths[@]}" >"$work/devfilter.tsv" || die "dev-overlap filter failed"
echo
echo "GLUE dev sentences checked (distinct, whitespace-normalised, lowercased):"
awk -F'\t' '$1=="dev" {printf "  %-44s %6d\n", $2, $3}' "$work/devfilter.tsv"
echo "Lines removed because they equal a GLUE dev sentence; 'contain' = lines kept that contain a"
echo "whole dev sentence (6+ words) or share a 13-word span with one (informational, not removed):"
awk -F'\t' '$1=="removed" {printf "  %-22s removed %6d   contain %5d\n", $2, $3, $4; t+=$3; n+=$4}
            END {printf "  %-22s removed %6d   contain %5d\n", "total", t, n}' "$work/devfilter.tsv"
awk -F'\t' '$1=="near" {printf "    e.g. %s: %s\n", $2, $3}' "$work/devfilter.tsv" | head -n 6

# --- checks, summary, manifest -------------------------------------------------------------------
"$py" - "${paths[@]}" <<'EOF' || die "output check failed"
import sys
for p in sys.argv[1:]:
    with open(p, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")  # raises on invalid UTF-8
    lines = text.split("\n")
    assert text.endswith("\n") and not text.startswith("\n"), p
    assert "\n\n\n" not in text, p
    assert max(len(l) for l in lines) <= 2000, p
    assert "\t" not in text and "\r" not in text, p
EOF

summary="$work/summary.tsv"
{
  printf 'source\tdocuments\tlines\twords\tbytes\n'
  for f in "${files[@]}"; do
    p="$stage/$f.txt"
    printf '%s\t%s\t%s\t%s\t%s\n' "$f" \
      "$(awk 'NF==0 {d++} END {print d+1}' "$p")" \
      "$(grep -c . "$p")" \
      "$(wc -w <"$p")" \
      "$(wc -c <"$p")"
  done
} >"$summary"
awk -F'\t' '{print} NR>1 {d+=$2; l+=$3; w+=$4; b+=$5} END {printf "total\t%d\t%d\t%d\t%d\n", d, l, w, b}' \
  "$summary" >"$stage/SUMMARY.tsv"

{
  printf '# pretraining corpus built by scripts/pretraining-corpus.sh\n'
  dpkg-query -W -f='package\t${Package}=${Version}\n' "${packages[@]}" fortunes-min bible-kjv-text | sort
  for f in "${files[@]}"; do
    printf 'sha256\t%s\t%s.txt\n' "$(sha256sum <"$stage/$f.txt" | cut -d' ' -f1)" "$f"
  done
} >"$stage/MANIFEST.tsv"

# --- into place ------------------------------------------------------------------------------
if [ -e "$out" ]; then
  mv "$out" "$work/previous"
fi
mv "$stage" "$out"

echo
column -t -s $'\t' -R 2,3,4,5 "$out/SUMMARY.tsv" 2>/dev/null || cat "$out/SUMMARY.tsv"
echo
echo "pretraining-corpus: wrote $out (concatenate with: awk 'FNR==1 && NR>1 {print \"\"} 1' $out/*.txt)"
