#include "tokenize/train_merges.h"

#include <algorithm>
#include <queue>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "tokenize/unicode.h"

namespace tquant::tok {
namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
int32_t key_left(uint64_t k) { return static_cast<int32_t>(k >> 32); }
int32_t key_right(uint64_t k) { return static_cast<int32_t>(k & 0xffffffffu); }

std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    unicode::next_code_point(s, i);
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

struct Entry {
  int64_t count;
  uint64_t key;
};

}  // namespace

MergeTrainerResult train_merges(const std::map<std::string, uint64_t>& word_counts, const MergeTrainerOptions& options) {
  MergeTrainerResult result;
  std::vector<std::string>& vocab = result.vocab;
  std::unordered_map<std::string, int32_t> ids;
  auto add = [&](const std::string& token) -> int32_t {
    auto [it, inserted] = ids.emplace(token, static_cast<int32_t>(vocab.size()));
    if (inserted) vocab.push_back(token);
    return it->second;
  };
  for (const std::string& s : options.special_tokens) {
    if (ids.count(s)) fail("special token \"{}\" is given twice", s);
    add(s);
  }

  // Alphabet: code points sorted by value (UTF-8 byte order is code point order).
  std::set<std::string> alphabet(options.initial_alphabet.begin(), options.initial_alphabet.end());
  std::set<std::string> continuing;
  std::vector<std::vector<std::string>> word_chars;
  word_chars.reserve(word_counts.size());
  for (const auto& [word, count] : word_counts) {
    word_chars.push_back(code_points(word));
    const auto& chars = word_chars.back();
    for (size_t i = 0; i < chars.size(); ++i) {
      alphabet.insert(chars[i]);
      if (i > 0 && !options.continuing_subword_prefix.empty()) continuing.insert(options.continuing_subword_prefix + chars[i]);
    }
  }
  for (const std::string& c : alphabet) add(c);
  for (const std::string& c : continuing) add(c);
  result.initial_size = vocab.size();
  if (options.vocab_size < vocab.size())
    fail("vocab size {} is smaller than the {} special tokens plus the {} alphabet symbols of the data ({} in all)",
         options.vocab_size, options.special_tokens.size(), vocab.size() - options.special_tokens.size(), vocab.size());

  // Words as symbol ids, in sorted word order.
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  words.reserve(word_counts.size());
  {
    size_t w = 0;
    for (const auto& [word, count] : word_counts) {
      std::vector<int32_t> symbols;
      const auto& chars = word_chars[w++];
      for (size_t i = 0; i < chars.size(); ++i)
        symbols.push_back(ids.at(i > 0 ? options.continuing_subword_prefix + chars[i] : chars[i]));
      words.push_back(std::move(symbols));
      counts.push_back(static_cast<int64_t>(count));
    }
  }
  word_chars.clear();

  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  for (uint32_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = pair_key(s[i], s[i + 1]);
      pair_counts[k] += counts[w];
      auto& list = where[k];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }

  // Most frequent first; ties: smaller (left, right) strings first.
  auto lower_priority = [&vocab](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    const std::string& xl = vocab[key_left(x.key)];
    const std::string& yl = vocab[key_left(y.key)];
    if (xl != yl) return xl > yl;
    return vocab[key_right(x.key)] > vocab[key_right(y.key)];
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(lower_priority)> queue(lower_priority);
  {
    std::vector<uint64_t> keys;
    keys.reserve(pair_counts.size());
    for (const auto& [k, c] : pair_counts) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    for (uint64_t k : keys) queue.push({pair_counts[k], k});
  }

  const std::string& prefix = options.continuing_subword_prefix;
  std::vector<uint64_t> changed;
  while (vocab.size() < options.vocab_size && !queue.empty()) {
    const Entry top = queue.top();
    queue.pop();
    auto it = pair_counts.find(top.key);
    if (it == pair_counts.end() || it->second != top.count || top.count <= 0) continue;  // stale
    if (static_cast<uint64_t>(top.count) < options.min_frequency) break;

    const int32_t a = key_left(top.key), b = key_right(top.key);
    std::string right = vocab[b];
    if (!prefix.empty() && right.compare(0, prefix.size(), prefix) == 0) right.erase(0, prefix.size());
    result.merges.emplace_back(vocab[a], vocab[b]);
    const int32_t merged = add(vocab[a] + right);

    std::vector<uint32_t> targets = std::move(where[top.key]);
    where.erase(top.key);
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    changed.clear();
    for (uint32_t w : targets) {
      std::vector<int32_t>& s = words[w];
      bool found = false;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == a && s[i + 1] == b) { found = true; break; }
      if (!found) continue;
      const int64_t c = counts[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        pair_counts[k] -= c;
        changed.push_back(k);
      }
      std::vector<int32_t> next;
      next.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(merged);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      s = std::move(next);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pair_key(s[i], s[i + 1]);
        pair_counts[k] += c;
        changed.push_back(k);
        if (s[i] == merged || s[i + 1] == merged) {
          auto& list = where[k];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (uint64_t k : changed) {
      auto pc = pair_counts.find(k);
      if (pc->second <= 0) {
        pair_counts.erase(pc);
      } else {
        queue.push({pc->second, k});
      }
    }
  }
  return result;
}

}  // namespace tquant::tok

#include "core/atomic_file.h"
#include "core/text_file.h"

namespace tquant::tok {

void for_each_training_line(const std::vector<std::filesystem::path>& files,
                            const std::function<void(std::string_view)>& line) {
  if (files.empty()) fail("no data files given");
  for (const auto& file : files) {
    if (!std::filesystem::exists(file)) fail("{}: data file not found", file.string());
    const std::string text = read_text_file(file, "data file");
    if (auto bad = unicode::find_invalid_utf8(text)) fail("{}: data file is not valid UTF-8 (byte {})", file.string(), *bad);
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      end = end == std::string::npos ? text.size() : end + 1;
      line(std::string_view(text).substr(start, end - start));
      start = end;
    }
  }
}

void write_tokenizer_folder(const std::filesystem::path& out_dir, const TrainedFiles& files) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_dir, ec)) {
    if (!fs::is_directory(out_dir)) fail("{}: output exists and is not a folder", out_dir.string());
    if (!fs::is_empty(out_dir)) fail("{}: output folder exists and is not empty; choose another --out", out_dir.string());
  }
  write_directory_atomically(out_dir, [&](const fs::path& tmp) {
    for (const auto& [name, content] : files.files) write_text_atomically(tmp / name, content);
  });
}

std::string dump_json(const nlohmann::ordered_json& j) {
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::strict) + "\n";
}

}  // namespace tquant::tok
