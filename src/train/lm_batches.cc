#include "train/lm_batches.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/counter_rng.h"
#include "core/error.h"
#include "core/text_file.h"

namespace tquant::train {

namespace {

// Separate streams for separate purposes, so e.g. the shuffle and the masking never correlate.
enum class Stream : uint64_t { kShuffle = 1, kMask = 2, kReplace = 3, kFallback = 4 };

// Counter-based (core/counter_rng.h): every draw is a hash of what it is for, so no generator
// state has to be carried from one batch (or thread) to the next.
uint64_t hash(uint64_t seed, Stream stream, uint64_t a, uint64_t b = 0) {
  return counter_bits(stream_key(seed, static_cast<uint64_t>(stream), a), b);
}

// In [0, 1), from the top 53 bits.
double unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// In [0, n): multiply-high. Its bias is below n / 2^64, far beneath anything measurable here.
uint64_t below(uint64_t h, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(h) * n) >> 64);
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos;
}

// Lines are encoded in blocks so the per-line vectors never hold more than one block at a time.
constexpr size_t kLinesPerBlock = 1 << 14;

void check_count(int64_t first, int count) {
  if (first < 0) fail("batch start {} is negative", first);
  if (count < 1) fail("batch size {} must be at least 1", count);
}

}  // namespace

int64_t LmBatch::target_count() const {
  return std::count_if(labels.begin(), labels.end(), [](int32_t l) { return l != kIgnoreLabel; });
}

TokenCorpus tokenize_corpus(const Tokenizer& tokenizer, const std::vector<std::filesystem::path>& files) {
  if (files.empty()) fail("no training text files given");
  TokenCorpus corpus;
  corpus.doc_starts.push_back(0);
  // Closing an empty document is a no-op, which drops it.
  auto end_document = [&] {
    if (static_cast<int64_t>(corpus.ids.size()) > corpus.doc_starts.back())
      corpus.doc_starts.push_back(static_cast<int64_t>(corpus.ids.size()));
  };

  for (const auto& path : files) {
    const std::string text = read_text_file(path, "training text");
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + pos, end - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      lines.push_back(line);
      pos = end + 1;
    }

    for (size_t block = 0; block < lines.size(); block += kLinesPerBlock) {
      const size_t n = std::min(kLinesPerBlock, lines.size() - block);
      std::vector<std::vector<int32_t>> encoded(n);
      // An exception must not leave an OpenMP region; keep the first failing line's message.
      size_t error_line = n;
      std::string error;
#pragma omp parallel for schedule(dynamic, 64)
      for (size_t i = 0; i < n; ++i) {
        const std::string_view line = lines[block + i];
        if (is_blank(line)) continue;
        try {
          encoded[i] = tokenizer.encode(line, /*add_special_tokens=*/false).ids;
        } catch (const std::exception& e) {
#pragma omp critical(tquant_lm_batches_error)
          if (i < error_line) {
            error_line = i;
            error = e.what();
          }
        }
      }
      if (error_line < n) fail("{}: line {}: {}", path.string(), block + error_line + 1, error);

      for (size_t i = 0; i < n; ++i) {
        if (is_blank(lines[block + i])) end_document();
        else corpus.ids.insert(corpus.ids.end(), encoded[i].begin(), encoded[i].end());
      }
    }
    end_document();  // documents never continue into the next file
  }

  if (corpus.ids.empty()) {
    std::string names;
    for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.string();
    fail("the training text ({}) holds no tokens", names);
  }
  return corpus;
}


struct EpochOrder::Cache {
  std::mutex mutex;
  int64_t epoch = -1;
  std::vector<int64_t> order;
};

EpochOrder::EpochOrder(int64_t n, uint64_t seed) : n_(n), seed_(seed), cache_(std::make_shared<Cache>()) {}

std::vector<int64_t> EpochOrder::items(int64_t first, int count) const {
  std::vector<int64_t> out(static_cast<size_t>(count));
  std::lock_guard<std::mutex> lock(cache_->mutex);
  for (int b = 0; b < count; ++b) {
    const int64_t epoch = (first + b) / n_, pos = (first + b) % n_;
    if (cache_->epoch != epoch) {
      auto& order = cache_->order;
      order.resize(static_cast<size_t>(n_));
      for (int64_t i = 0; i < n_; ++i) order[i] = i;
      for (int64_t i = n_ - 1; i > 0; --i) {
        const auto j = below(hash(seed_, Stream::kShuffle, epoch, i), static_cast<uint64_t>(i) + 1);
        std::swap(order[i], order[j]);
      }
      cache_->epoch = epoch;
    }
    out[b] = cache_->order[pos];
  }
  return out;
}


MlmBatches::MlmBatches(const TokenCorpus& corpus, const Tokenizer& tokenizer, MlmOptions options)
    : options_(options), ids_(corpus.ids), order_(0, options.seed) {
  if (options.seq_len < 3)
    fail("masked-LM seq_len {} is too short: a sequence needs [CLS], at least one token and [SEP]",
         options.seq_len);
  if (!(options.mask_prob > 0 && options.mask_prob <= 1))
    fail("masked-LM mask_prob {} is outside (0, 1]", options.mask_prob);
  if (!(options.mask_token >= 0 && options.random_token >= 0 &&
        options.mask_token + options.random_token <= 1 + 1e-6f))
    fail("masked-LM mask_token {} and random_token {} must be non-negative and sum to at most 1",
         options.mask_token, options.random_token);
  if (corpus.documents() < 1) fail("the corpus holds no documents");

  auto require = [&](const char* name) {
    const auto id = tokenizer.token_to_id(name);
    if (!id) fail("the tokenizer has no {} token, which masked-LM batches need", name);
    return *id;
  };
  cls_ = require("[CLS]");
  sep_ = require("[SEP]");
  mask_ = require("[MASK]");
  pad_ = require("[PAD]");
  const int32_t unk = tokenizer.token_to_id("[UNK]").value_or(tokenizer.unk_id());
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id)
    if (id != cls_ && id != sep_ && id != mask_ && id != pad_ && id != unk) random_ids_.push_back(id);
  if (random_ids_.empty()) fail("the tokenizer has no ordinary tokens to draw random replacements from");

  const int32_t max_chunk = options.seq_len - 2;
  if (!options.pack) {
    for (int64_t d = 0; d < corpus.documents(); ++d)
      for (int64_t s = corpus.doc_starts[d]; s < corpus.doc_starts[d + 1]; s += max_chunk)
        chunks_.push_back({s, static_cast<int32_t>(std::min<int64_t>(max_chunk, corpus.doc_starts[d + 1] - s))});
  } else {
    // Pieces of at most max_chunk tokens (a long document is split), appended to the current
    // chunk after a [SEP] while they fit.
    std::vector<int32_t> packed;
    packed.reserve(ids_.size() + ids_.size() / 8);
    Chunk current{0, 0};
    for (int64_t d = 0; d < corpus.documents(); ++d)
      for (int64_t s = corpus.doc_starts[d]; s < corpus.doc_starts[d + 1]; s += max_chunk) {
        const int32_t n = static_cast<int32_t>(std::min<int64_t>(max_chunk, corpus.doc_starts[d + 1] - s));
        if (current.length > 0 && current.length + 1 + n <= max_chunk) {
          packed.push_back(sep_);
          current.length += 1;
        } else if (current.length > 0) {
          chunks_.push_back(current);
          current = {static_cast<int64_t>(packed.size()), 0};
        }
        packed.insert(packed.end(), ids_.begin() + s, ids_.begin() + s + n);
        current.length += n;
      }
    if (current.length > 0) chunks_.push_back(current);
    ids_ = std::move(packed);
  }
  order_ = EpochOrder(static_cast<int64_t>(chunks_.size()), options.seed);
}

int64_t MlmBatches::sequences() const { return static_cast<int64_t>(chunks_.size()); }

// `ids` and `labels` hold the sequence's chunk.length + 2 positions. Every draw depends only on
// (seed, index, position), so a sequence is the same whichever batch it falls in.
void MlmBatches::mask_sequence(int64_t index, const Chunk& chunk, int32_t* ids, int32_t* labels) const {
  const int len = chunk.length;
  ids[0] = cls_;
  labels[0] = kIgnoreLabel;
  for (int k = 1; k <= len; ++k) {
    ids[k] = ids_[chunk.start + k - 1];
    labels[k] = kIgnoreLabel;
  }
  ids[len + 1] = sep_;
  labels[len + 1] = kIgnoreLabel;

  const uint64_t seed = options_.seed;
  auto choose = [&](int k) {
    labels[k] = ids[k];
    const uint64_t h = hash(seed, Stream::kReplace, index, k);
    const double v = unit(h);
    if (v < options_.mask_token) ids[k] = mask_;
    else if (v < options_.mask_token + options_.random_token)
      ids[k] = random_ids_[below(mix64(h), random_ids_.size())];
    // else: left unchanged, but still a target
  };
  bool any = false;
  for (int k = 1; k <= len; ++k)
    if (ids[k] != sep_ && unit(hash(seed, Stream::kMask, index, k)) < options_.mask_prob) {
      choose(k);
      any = true;
    }
  // A sequence without a target would contribute nothing to the loss. (A packed chunk starts
  // with a document's token, so the walk to a non-[SEP] position always ends.)
  if (!any) {
    int k = 1 + static_cast<int>(below(hash(seed, Stream::kFallback, index), len));
    while (ids[k] == sep_) k = k == len ? 1 : k + 1;
    choose(k);
  }
}

LmBatch MlmBatches::batch(int64_t first, int count) const {
  check_count(first, count);
  const std::vector<int64_t> picked = order_.items(first, count);
  int T = 0;
  for (int64_t c : picked) T = std::max(T, chunks_[c].length + 2);

  LmBatch out;
  Batch& b = out.batch;
  b.batch = count;
  b.seq = T;
  b.ids.assign(static_cast<size_t>(count) * T, pad_);
  b.type_ids.assign(b.ids.size(), 0);
  b.lengths.resize(count);
  out.labels.assign(b.ids.size(), kIgnoreLabel);
  for (int i = 0; i < count; ++i) {
    const Chunk& chunk = chunks_[picked[i]];
    b.lengths[i] = chunk.length + 2;
    mask_sequence(first + i, chunk, &b.ids[static_cast<size_t>(i) * T], &out.labels[static_cast<size_t>(i) * T]);
  }
  return out;
}

CausalBatches::CausalBatches(const TokenCorpus& corpus, const Tokenizer& tokenizer, CausalOptions options)
    : options_(options), order_(0, options.seed) {
  if (options.seq_len < 1) fail("causal-LM seq_len {} must be at least 1", options.seq_len);
  const int32_t bos = tokenizer.bos_id(), eos = tokenizer.eos_id();
  for (int64_t d = 0; d < corpus.documents(); ++d) {
    if (bos >= 0) stream_.push_back(bos);
    stream_.insert(stream_.end(), corpus.ids.begin() + corpus.doc_starts[d], corpus.ids.begin() + corpus.doc_starts[d + 1]);
    if (eos >= 0) stream_.push_back(eos);
  }
  const int64_t window = int64_t{options.seq_len} + 1;
  const int64_t windows = static_cast<int64_t>(stream_.size()) / window;
  if (windows == 0)
    fail("the corpus holds {} tokens (with BOS/EOS), fewer than the {} one causal-LM window of seq_len {} needs",
         stream_.size(), window, options.seq_len);
  stream_.resize(static_cast<size_t>(windows * window));  // the partial tail is never visited
  stream_.shrink_to_fit();
  order_ = EpochOrder(windows, options.seed);
}

int64_t CausalBatches::sequences() const { return order_.size(); }

LmBatch CausalBatches::batch(int64_t first, int count) const {
  check_count(first, count);
  const std::vector<int64_t> picked = order_.items(first, count);
  const int T = options_.seq_len;
  LmBatch out;
  Batch& b = out.batch;
  b.batch = count;
  b.seq = T;
  b.ids.resize(static_cast<size_t>(count) * T);
  b.lengths.assign(count, T);  // type_ids stay empty: all zero, which causal models ignore anyway
  out.labels.resize(b.ids.size());
  for (int i = 0; i < count; ++i) {
    const int32_t* w = stream_.data() + picked[i] * (int64_t{T} + 1);
    std::copy(w, w + T, b.ids.begin() + static_cast<int64_t>(i) * T);
    std::copy(w + 1, w + T + 1, out.labels.begin() + static_cast<int64_t>(i) * T);
  }
  return out;
}

}  // namespace tquant::train
