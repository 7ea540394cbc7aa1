#include "tokenize/bpe.h"

#include <queue>

#include "core/error.h"
#include "tokenize/json_view.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool removed;
};

struct Candidate {
  uint32_t rank;
  uint32_t pos;  // index of the left symbol
  int32_t new_id;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct Later {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

void merge_all(std::vector<Symbol>& symbols, const MergeTable& merges) {
  std::vector<Candidate> storage;
  storage.reserve(symbols.size());
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const MergeInfo* m = merges.find(symbols[i].id, symbols[i + 1].id))
      storage.push_back({m->rank, static_cast<uint32_t>(i), m->new_id});
  std::priority_queue<Candidate, std::vector<Candidate>, Later> queue(Later{}, std::move(storage));

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.removed || left.next < 0) continue;
    const int32_t right_pos = left.next;
    Symbol& right = symbols[right_pos];
    // The entry is stale if either side has changed since it was queued.
    const MergeInfo* m = merges.find(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;

    left.id = top.new_id;
    left.next = right.next;
    right.removed = true;
    if (right.next >= 0) symbols[right.next].prev = static_cast<int32_t>(top.pos);

    if (left.prev >= 0) {
      if (const MergeInfo* p = merges.find(symbols[left.prev].id, left.id))
        queue.push({p->rank, static_cast<uint32_t>(left.prev), p->new_id});
    }
    if (left.next >= 0) {
      if (const MergeInfo* n = merges.find(left.id, symbols[left.next].id))
        queue.push({n->rank, top.pos, n->new_id});
    }
  }
}

}  // namespace

Bpe::Bpe(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
         const JsonView& merges_where)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  const size_t prefix_len = options_.continuing_subword_prefix ? options_.continuing_subword_prefix->size() : 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    auto missing = [&](const std::string& token) {
      fail("{}[{}]: merge \"{} {}\": token \"{}\" is not in model.vocab", merges_where.where(), i, a, b, token);
    };
    const auto a_id = vocab_.find(a);
    if (!a_id) missing(a);
    const auto b_id = vocab_.find(b);
    if (!b_id) missing(b);
    if (b.size() < prefix_len) missing(b);
    const std::string merged = a + b.substr(prefix_len);
    const auto new_id = vocab_.find(merged);
    if (!new_id) missing(merged);
    merges_.insert(*a_id, *b_id, {static_cast<uint32_t>(i), *new_id});
  }
  for (int b = 0; b < 256; ++b) {
    const auto id = vocab_.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = id ? *id : -1;
  }
}

int32_t Bpe::unk_id() const {
  const auto id = vocab_.find(*options_.unk_token);
  if (!id) fail("tokenizer model: unk_token \"{}\" is not in the vocabulary", *options_.unk_token);
  return *id;
}

std::vector<int32_t> Bpe::merge_word(std::string_view word) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({id, n - 1, -1, false});
  };
  const bool affixes = options_.continuing_subword_prefix || options_.end_of_word_suffix;
  std::string buffer;
  int32_t pending_unk = -1;  // an unknown run not yet emitted (fuse_unk extends it)

  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    unicode::next_code_point(word, i);
    std::string_view s = word.substr(start, i - start);
    if (affixes) {
      buffer.clear();
      if (start > 0 && options_.continuing_subword_prefix) buffer += *options_.continuing_subword_prefix;
      buffer += s;
      if (i == word.size() && options_.end_of_word_suffix) buffer += *options_.end_of_word_suffix;
      s = buffer;
    }
    if (const auto id = vocab_.find(s)) {
      if (pending_unk >= 0) add(pending_unk);
      pending_unk = -1;
      add(*id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
      if (all) {
        // HF leaves a pending unknown run in place here and emits it after the bytes.
        for (unsigned char b : s) add(byte_ids_[b]);
        continue;
      }
    }
    if (options_.unk_token) {
      if (pending_unk >= 0 && !options_.fuse_unk) add(pending_unk);
      pending_unk = unk_id();
    }
  }
  if (pending_unk >= 0) add(pending_unk);

  merge_all(symbols, merges_);
  std::vector<int32_t> ids;
  ids.reserve(symbols.size());
  for (const auto& sym : symbols)
    if (!sym.removed) ids.push_back(sym.id);
  return ids;
}

void Bpe::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = vocab_.find(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (cache_.lookup(word, out)) return;
  const std::vector<int32_t> ids = merge_word(word);
  cache_.store(word, ids.data(), ids.size());
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace tquant::tok
