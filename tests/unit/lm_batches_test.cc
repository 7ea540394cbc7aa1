// Language-model training batches (train/lm_batches.h): corpus tokenization, masked-LM chunking
// and masking statistics, causal windows, per-epoch shuffling, determinism and errors.
#include "train/lm_batches.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/temp_dir.h"
#include "expect_error.h"
#include "test_paths.h"
#include "tokenize/tokenizer.h"
#include "tokenize/train_wordpiece.h"

namespace tquant::train {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

// A fixed pseudo-random text: lines of words from a small vocabulary, documents of 1-5 lines
// separated by blank, whitespace-only or CRLF-blank lines, some lines ending in CRLF.
std::string make_text(int documents, uint64_t seed) {
  static const char* kWords[] = {"the",  "cat",   "dog",   "sat",    "on",     "mat",   "log",  "ran",
                                 "big",  "small", "red",   "blue",   "happy",  "tree",  "house", "bird",
                                 "sang", "with",  "friend", "ball",  "park",   "sun",   "moon", "night",
                                 "day",  "jumped", "over", "under",  "quietly", "garden", "lily", "tom"};
  uint64_t s = seed;
  auto next = [&](uint64_t n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (s >> 33) % n;
  };
  static const char* kSeparators[] = {"\n", "   \t\n", "\r\n", "\n\n"};
  std::string text;
  for (int d = 0; d < documents; ++d) {
    const int lines = 1 + static_cast<int>(next(5));
    for (int l = 0; l < lines; ++l) {
      const int words = 2 + static_cast<int>(next(14));
      for (int w = 0; w < words; ++w) text += std::string(w ? " " : "") + kWords[next(std::size(kWords))];
      text += next(3) ? ".\n" : ".\r\n";
    }
    text += kSeparators[next(std::size(kSeparators))];
  }
  return text;
}

// Everything the tests share, built once per process in a folder of its own (ctest may run the
// tests as parallel processes).
struct Fixture {
  TempDir dir;
  std::unique_ptr<Tokenizer> wordpiece;  // [PAD] [UNK] [CLS] [SEP] [MASK] + trained vocabulary
  std::unique_ptr<Tokenizer> no_mask;    // the same without [MASK]

  static fs::path fresh_path() {
    const fs::path p = testing::scratch("lm_batches") / ("run-" + std::to_string(getpid()));
    fs::remove_all(p);
    return p;
  }

  Fixture() : dir(fresh_path()) {
    const fs::path data = write("tokenizer-train.txt", make_text(200, 7));
    auto train = [&](const std::string& name, std::vector<std::string> specials) {
      tok::WordPieceTrainerOptions o;
      o.vocab_size = 120;
      o.min_frequency = 1;
      o.lowercase = true;
      o.special_tokens = std::move(specials);
      tok::WordPieceTrainer t(o);
      t.feed_files({data});
      t.train();
      tok::write_tokenizer_folder(dir.path() / name, t.files());
      return Tokenizer::from_dir(dir.path() / name);
    };
    wordpiece = train("wp", {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"});
    no_mask = train("wp-no-mask", {"[PAD]", "[UNK]", "[CLS]", "[SEP]"});
  }

  fs::path write(const std::string& name, const std::string& text) const {
    const fs::path p = dir.path() / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

const Tokenizer& wp() { return *fixture().wordpiece; }
int32_t id_of(const char* token) { return wp().token_to_id(token).value(); }

// The corpus the spec describes, computed independently: lines split on '\n' with a trailing '\r'
// removed, blank lines and file ends closing documents, empty documents dropped.
std::vector<Ids> expected_documents(const Tokenizer& tokenizer, const std::vector<std::string>& texts) {
  std::vector<Ids> docs;
  Ids doc;
  auto close = [&] {
    if (!doc.empty()) docs.push_back(doc);
    doc.clear();
  };
  for (const std::string& text : texts) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t\r\v\f") == std::string::npos) {
        close();
        continue;
      }
      const Ids ids = tokenizer.encode(line, false).ids;
      doc.insert(doc.end(), ids.begin(), ids.end());
    }
    close();
  }
  return docs;
}

std::vector<Ids> documents_of(const TokenCorpus& c) {
  std::vector<Ids> docs;
  for (int64_t d = 0; d < c.documents(); ++d)
    docs.emplace_back(c.ids.begin() + c.doc_starts[d], c.ids.begin() + c.doc_starts[d + 1]);
  return docs;
}

// A corpus of `documents` generated documents (one file), and its documents as the spec defines them.
TokenCorpus make_corpus(int documents, uint64_t seed, std::vector<Ids>* docs = nullptr) {
  const std::string text = make_text(documents, seed);
  const fs::path file = fixture().write("corpus-" + std::to_string(documents) + "-" + std::to_string(seed) + ".txt", text);
  if (docs) *docs = expected_documents(wp(), {text});
  return tokenize_corpus(wp(), {file});
}

// Row i of a batch: its valid ids and labels, and the original sequence rebuilt from them.
struct Row {
  Ids ids, labels, original;
};
Row row(const LmBatch& b, int i) {
  const int T = b.batch.seq, len = b.batch.lengths.at(i);
  Row r;
  r.ids.assign(b.batch.ids.begin() + i * T, b.batch.ids.begin() + i * T + len);
  r.labels.assign(b.labels.begin() + i * T, b.labels.begin() + i * T + len);
  for (int k = 0; k < len; ++k) r.original.push_back(r.labels[k] != kIgnoreLabel ? r.labels[k] : r.ids[k]);
  return r;
}

// ---------------------------------------------------------------------------------------------
// tokenize_corpus

TEST(LmBatchesCorpus, BlankLinesAndFileEndsSplitDocuments) {
  const Fixture& f = fixture();
  const fs::path a = f.write("split-a.txt", "The cat sat.\nThe dog ran\n\n   \t\nA big tree.\r\nA small bird\r\n\r\n\n");
  const fs::path b = f.write("split-b.txt", "\nthe sun\nthe moon");  // no final newline
  const TokenCorpus c = tokenize_corpus(wp(), {a, b});
  auto enc = [](const char* s) { return wp().encode(s, false).ids; };
  auto cat = [](Ids x, const Ids& y) {
    x.insert(x.end(), y.begin(), y.end());
    return x;
  };
  const std::vector<Ids> expected = {cat(enc("The cat sat."), enc("The dog ran")),
                                     cat(enc("A big tree."), enc("A small bird")),
                                     cat(enc("the sun"), enc("the moon"))};
  ASSERT_EQ(c.documents(), 3);
  EXPECT_EQ(documents_of(c), expected);
  EXPECT_EQ(c.doc_starts.front(), 0);
  EXPECT_EQ(c.doc_starts.back(), static_cast<int64_t>(c.ids.size()));
  for (const Ids& d : expected) EXPECT_GE(d.size(), 4u);  // multi-token lines, so order matters
}

TEST(LmBatchesCorpus, MatchesLineByLineEncodingAcrossBlocks) {
  // More lines than one encoding block (16384), with documents spanning block boundaries.
  std::vector<Ids> docs;
  const TokenCorpus c = make_corpus(7000, 3, &docs);
  ASSERT_GT(docs.size(), 5000u);
  EXPECT_EQ(documents_of(c), docs);
}

TEST(LmBatchesCorpus, ThreadCountDoesNotChangeTheResult) {
  const fs::path file = fixture().write("threads.txt", make_text(3000, 11));
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const TokenCorpus one = tokenize_corpus(wp(), {file});
  omp_set_num_threads(4);
  const TokenCorpus four = tokenize_corpus(wp(), {file});
  omp_set_num_threads(saved);
  EXPECT_EQ(one.ids, four.ids);
  EXPECT_EQ(one.doc_starts, four.doc_starts);
  EXPECT_GT(one.documents(), 1000);
}

TEST(LmBatchesCorpus, ClearErrors) {
  const fs::path missing = fixture().dir.path() / "no-such-file.txt";
  testing::expect_error([&] { tokenize_corpus(wp(), {missing}); }, {missing.string(), "training text"});
  const fs::path blank = fixture().write("blank.txt", "\n   \n\r\n\t\n");
  testing::expect_error([&] { tokenize_corpus(wp(), {blank}); }, {blank.string(), "no tokens"});
  testing::expect_error([&] { tokenize_corpus(wp(), {}); }, {"no training text"});
}

// ---------------------------------------------------------------------------------------------
// MlmBatches

TEST(LmBatchesMlm, EveryEpochVisitsEveryChunkOnceWithinItsDocument) {
  std::vector<Ids> docs;
  const TokenCorpus corpus = make_corpus(150, 5, &docs);
  MlmOptions o;
  o.seq_len = 12;
  o.seed = 42;
  const MlmBatches mlm(corpus, wp(), o);

  // The chunks as the spec defines them: each document cut into pieces of at most seq_len - 2.
  std::vector<Ids> chunks;
  for (const Ids& d : docs)
    for (size_t s = 0; s < d.size(); s += o.seq_len - 2)
      chunks.emplace_back(d.begin() + s, d.begin() + std::min(d.size(), s + o.seq_len - 2));
  ASSERT_EQ(mlm.sequences(), static_cast<int64_t>(chunks.size()));
  ASSERT_GT(chunks.size(), 300u);
  std::sort(chunks.begin(), chunks.end());

  const int32_t cls = id_of("[CLS]"), sep = id_of("[SEP]"), pad = id_of("[PAD]");
  std::vector<std::vector<Ids>> epoch_order;
  for (int epoch = 0; epoch < 3; ++epoch) {
    const LmBatch b = mlm.batch(epoch * mlm.sequences(), static_cast<int>(mlm.sequences()));
    ASSERT_EQ(b.batch.batch, mlm.sequences());
    ASSERT_EQ(b.batch.lengths.size(), static_cast<size_t>(mlm.sequences()));
    const int T = b.batch.seq;
    EXPECT_EQ(T, *std::max_element(b.batch.lengths.begin(), b.batch.lengths.end()));
    EXPECT_EQ(T, o.seq_len);  // some chunk is full length
    ASSERT_EQ(b.batch.ids.size(), static_cast<size_t>(b.batch.batch) * T);
    ASSERT_EQ(b.labels.size(), b.batch.ids.size());
    EXPECT_EQ(b.batch.type_ids, Ids(b.batch.ids.size(), 0));

    std::vector<Ids> seen;
    for (int i = 0; i < b.batch.batch; ++i) {
      const Row r = row(b, i);
      const int len = b.batch.lengths[i];
      ASSERT_GE(len, 3);
      ASSERT_LE(len, o.seq_len);
      EXPECT_EQ(r.ids.front(), cls);
      EXPECT_EQ(r.ids.back(), sep);
      EXPECT_EQ(r.labels.front(), kIgnoreLabel);
      EXPECT_EQ(r.labels.back(), kIgnoreLabel);
      for (int k = len; k < T; ++k) {
        EXPECT_EQ(b.batch.ids[i * T + k], pad);
        EXPECT_EQ(b.labels[i * T + k], kIgnoreLabel);
      }
      seen.emplace_back(r.original.begin() + 1, r.original.end() - 1);
    }
    epoch_order.push_back(seen);
    // The rebuilt sequences are exactly the corpus chunks: none crosses a document, none is
    // missing or repeated, and the labels hold the original ids.
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, chunks) << "epoch " << epoch;
  }
  EXPECT_NE(epoch_order[0], epoch_order[1]);  // a fresh order every epoch
  EXPECT_NE(epoch_order[1], epoch_order[2]);
}

// Packing: chunks are built greedily from the same pieces, joined by [SEP] while they fit, so
// the epoch's sequences, split at [SEP], are exactly the pieces in document order, and [SEP] is
// never a target.
TEST(LmBatchesMlm, PackingJoinsWholePiecesWithSeparators) {
  std::vector<Ids> docs;
  const TokenCorpus corpus = make_corpus(150, 5, &docs);
  MlmOptions o;
  o.seq_len = 200;
  o.seed = 42;
  o.pack = true;
  const MlmBatches mlm(corpus, wp(), o);
  const int32_t sep = id_of("[SEP]");
  const int max_chunk = o.seq_len - 2;
  std::vector<Ids> pieces;
  for (const Ids& d : docs)
    for (size_t s = 0; s < d.size(); s += max_chunk)
      pieces.emplace_back(d.begin() + s, d.begin() + std::min(d.size(), s + max_chunk));
  // The greedy packing, restated.
  std::vector<std::vector<Ids>> expected;
  int fill = 0;
  for (const Ids& p : pieces) {
    const int n = static_cast<int>(p.size());
    if (!expected.empty() && fill > 0 && fill + 1 + n <= max_chunk) {
      expected.back().push_back(p);
      fill += 1 + n;
    } else {
      expected.push_back({p});
      fill = n;
    }
  }
  ASSERT_EQ(mlm.sequences(), static_cast<int64_t>(expected.size()));
  ASSERT_LT(expected.size(), pieces.size() / 2);  // packing does pack

  const LmBatch b = mlm.batch(0, static_cast<int>(mlm.sequences()));
  std::vector<std::vector<Ids>> seen;
  for (int i = 0; i < b.batch.batch; ++i) {
    const Row r = row(b, i);
    std::vector<Ids> parts(1);
    for (size_t k = 1; k + 1 < r.ids.size(); ++k) {
      if (r.original[k] == sep) {
        EXPECT_EQ(r.labels[k], kIgnoreLabel) << "a [SEP] is a target";
        EXPECT_EQ(r.ids[k], sep) << "a [SEP] was replaced";
        parts.emplace_back();
      } else {
        parts.back().push_back(r.original[k]);
      }
    }
    seen.push_back(parts);
  }
  std::sort(seen.begin(), seen.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected);
}

// Counts over several epochs: the masked fraction against its exact expectation (mask_prob per
// position plus the forced position of sequences that drew none), and the replacement split.
void check_masking_statistics(const MlmOptions& o) {
  SCOPED_TRACE(::testing::Message() << "mask_prob " << o.mask_prob << " mask_token " << o.mask_token
                                  << " random_token " << o.random_token);
  const TokenCorpus corpus = make_corpus(400, 9);
  const MlmBatches mlm(corpus, wp(), o);
  const int32_t mask = id_of("[MASK]");
  const std::vector<int32_t> specials = {id_of("[PAD]"), id_of("[UNK]"), id_of("[CLS]"), id_of("[SEP]"), mask};
  double positions = 0, expected_masked = 0;
  int64_t masked = 0, as_mask = 0, unchanged = 0, random = 0;
  const int64_t total = 3 * mlm.sequences();
  for (int64_t first = 0; first < total; first += 64) {
    const int n = static_cast<int>(std::min<int64_t>(64, total - first));
    const LmBatch b = mlm.batch(first, n);
    int64_t batch_targets = 0;
    for (int i = 0; i < n; ++i) {
      const Row r = row(b, i);
      const int inner = b.batch.lengths[i] - 2;
      positions += inner;
      expected_masked += inner * o.mask_prob + std::pow(1.0 - o.mask_prob, inner);
      int targets = 0;
      for (size_t k = 0; k < r.ids.size(); ++k) {
        if (r.labels[k] == kIgnoreLabel) continue;
        ++targets;
        EXPECT_EQ(std::count(specials.begin(), specials.end(), r.labels[k]), 0) << "a special token as target";
        if (r.ids[k] == mask) ++as_mask;
        else if (r.ids[k] == r.labels[k]) ++unchanged;
        else {
          ++random;
          EXPECT_EQ(std::count(specials.begin(), specials.end(), r.ids[k]), 0) << "random special " << r.ids[k];
          EXPECT_LT(r.ids[k], wp().vocab_size());
        }
      }
      EXPECT_GE(targets, 1) << "sequence " << first + i << " has no target";
      masked += targets;
      batch_targets += targets;
    }
    EXPECT_EQ(b.target_count(), batch_targets);
  }
  ASSERT_GT(masked, 5000);
  const double fraction = masked / positions, expected = expected_masked / positions;
  const double sd = std::sqrt(o.mask_prob * (1 - o.mask_prob) / positions);
  EXPECT_NEAR(fraction, expected, 4 * sd + 1e-3);
  // A random draw equal to the original counts as unchanged: about 1 in the ~115 ordinary ids.
  const double pool = wp().vocab_size() - 5;
  const double m = static_cast<double>(masked);
  const double p_random = o.random_token * (1 - 1 / pool), p_unchanged = 1 - o.mask_token - p_random;
  auto tol = [&](double p) { return 4 * std::sqrt(p * (1 - p) / m) + 1e-3; };
  EXPECT_NEAR(as_mask / m, o.mask_token, tol(o.mask_token));
  EXPECT_NEAR(random / m, p_random, tol(p_random));
  EXPECT_NEAR(unchanged / m, p_unchanged, tol(p_unchanged));
}

TEST(LmBatchesMlm, MaskingFollowsThe80_10_10Rule) {
  MlmOptions o;
  o.seq_len = 32;
  check_masking_statistics(o);
}

TEST(LmBatchesMlm, MaskingFollowsOtherRates) {
  MlmOptions o;
  o.seq_len = 24;
  o.mask_prob = 0.4f;
  o.mask_token = 0.5f;
  o.random_token = 0.3f;
  o.seed = 3;
  check_masking_statistics(o);
}

TEST(LmBatchesMlm, RandomReplacementsAreOrdinaryTokensDrawnUniformly) {
  // Every position chosen and every choice replaced by a random token.
  const TokenCorpus corpus = make_corpus(400, 9);
  MlmOptions o;
  o.seq_len = 32;
  o.mask_prob = 1;
  o.mask_token = 0;
  o.random_token = 1;
  const MlmBatches mlm(corpus, wp(), o);
  const std::vector<int32_t> specials = {id_of("[PAD]"), id_of("[UNK]"), id_of("[CLS]"), id_of("[SEP]"), id_of("[MASK]")};
  std::vector<int64_t> drawn(wp().vocab_size(), 0);
  int64_t draws = 0;
  for (int64_t first = 0; first < 3 * mlm.sequences(); first += 64) {
    const LmBatch b = mlm.batch(first, 64);
    for (int i = 0; i < b.batch.batch; ++i) {
      const Row r = row(b, i);
      for (size_t k = 1; k + 1 < r.ids.size(); ++k) {
        ASSERT_NE(r.labels[k], kIgnoreLabel) << "mask_prob 1 chooses every position";
        ASSERT_GE(r.ids[k], 0);
        ASSERT_LT(r.ids[k], wp().vocab_size());
        ++drawn[r.ids[k]];
        ++draws;
      }
    }
  }
  for (int32_t s : specials) EXPECT_EQ(drawn[s], 0) << wp().id_to_token(s) << " drawn as a random token";
  const double expected = static_cast<double>(draws) / (wp().vocab_size() - specials.size());
  ASSERT_GT(expected, 200);
  for (int32_t id = 0; id < wp().vocab_size(); ++id) {
    if (std::count(specials.begin(), specials.end(), id)) continue;
    EXPECT_NEAR(drawn[id], expected, 5 * std::sqrt(expected)) << wp().id_to_token(id);
  }
}

TEST(LmBatchesMlm, EverySequenceHasATargetEvenAtATinyRate) {
  const TokenCorpus corpus = make_corpus(150, 5);
  MlmOptions o;
  o.seq_len = 16;
  o.mask_prob = 1e-4f;
  const MlmBatches mlm(corpus, wp(), o);
  const LmBatch b = mlm.batch(0, static_cast<int>(mlm.sequences()));
  int exactly_one = 0;
  for (int i = 0; i < b.batch.batch; ++i) {
    const Row r = row(b, i);
    const auto targets = std::count_if(r.labels.begin(), r.labels.end(), [](int32_t l) { return l != kIgnoreLabel; });
    EXPECT_GE(targets, 1);
    exactly_one += targets == 1;
  }
  EXPECT_GT(exactly_one, b.batch.batch * 9 / 10);
  EXPECT_GE(b.target_count(), b.batch.batch);
}

TEST(LmBatchesMlm, DeterministicAndSeedDependent) {
  const TokenCorpus corpus = make_corpus(150, 5);
  MlmOptions o;
  o.seq_len = 16;
  o.seed = 7;
  const MlmBatches a(corpus, wp(), o), b(corpus, wp(), o);
  o.seed = 8;
  const MlmBatches c(corpus, wp(), o);
  for (int64_t first : {int64_t{0}, int64_t{37}, 5 * a.sequences() + 3}) {
    const LmBatch x = a.batch(first, 16), y = b.batch(first, 16), z = c.batch(first, 16);
    EXPECT_EQ(x.batch.ids, y.batch.ids);
    EXPECT_EQ(x.labels, y.labels);
    EXPECT_EQ(x.batch.lengths, y.batch.lengths);
    EXPECT_NE(x.batch.ids, z.batch.ids);
    EXPECT_NE(x.labels, z.labels);
  }
  // The same sequences asked for again (after other epochs were cached) are unchanged.
  const LmBatch again = a.batch(37, 16), first = b.batch(37, 16);
  EXPECT_EQ(again.batch.ids, first.batch.ids);
  EXPECT_EQ(again.labels, first.labels);
}

TEST(LmBatchesMlm, ABatchIsItsSingleSequencesPadded) {
  const TokenCorpus corpus = make_corpus(150, 5);
  MlmOptions o;
  o.seq_len = 16;
  o.seed = 1;
  const MlmBatches mlm(corpus, wp(), o);
  const int32_t pad = id_of("[PAD]");
  for (int64_t first : {int64_t{0}, mlm.sequences() - 3, 2 * mlm.sequences() + 10}) {  // one spans an epoch end
    const int n = 9;
    const LmBatch b = mlm.batch(first, n);
    ASSERT_EQ(b.batch.batch, n);
    for (int i = 0; i < n; ++i) {
      const LmBatch s = mlm.batch(first + i, 1);
      ASSERT_EQ(s.batch.lengths, Ids{s.batch.seq});
      const Row r = row(b, i);
      EXPECT_EQ(r.ids, s.batch.ids) << "sequence " << first + i;
      EXPECT_EQ(r.labels, s.labels) << "sequence " << first + i;
      for (int k = b.batch.lengths[i]; k < b.batch.seq; ++k) EXPECT_EQ(b.batch.ids[i * b.batch.seq + k], pad);
    }
  }
}

TEST(LmBatchesMlm, ClearErrors) {
  const TokenCorpus corpus = make_corpus(20, 5);
  testing::expect_error([&] { MlmBatches m(corpus, *fixture().no_mask, MlmOptions{}); }, {"[MASK]"});
  MlmOptions o;
  o.seq_len = 2;
  testing::expect_error([&] { MlmBatches m(corpus, wp(), o); }, {"seq_len 2"});
  o = MlmOptions{};
  o.mask_prob = 0;
  testing::expect_error([&] { MlmBatches m(corpus, wp(), o); }, {"mask_prob"});
  o = MlmOptions{};
  o.mask_token = 0.95f;
  testing::expect_error([&] { MlmBatches m(corpus, wp(), o); }, {"mask_token", "random_token"});
  const MlmBatches mlm(corpus, wp(), MlmOptions{});
  testing::expect_error([&] { mlm.batch(0, 0); }, {"batch size 0"});
  testing::expect_error([&] { mlm.batch(-1, 1); }, {"negative"});
}

// ---------------------------------------------------------------------------------------------
// CausalBatches

// The joined stream [BOS] doc [EOS] ..., each special only where the tokenizer has it.
Ids joined(const Tokenizer& t, const std::vector<Ids>& docs) {
  Ids s;
  for (const Ids& d : docs) {
    if (t.bos_id() >= 0) s.push_back(t.bos_id());
    s.insert(s.end(), d.begin(), d.end());
    if (t.eos_id() >= 0) s.push_back(t.eos_id());
  }
  return s;
}

void check_causal_epochs(const Tokenizer& t, const TokenCorpus& corpus, const std::vector<Ids>& docs, int seq_len) {
  CausalOptions o;
  o.seq_len = seq_len;
  o.seed = 5;
  const CausalBatches causal(corpus, t, o);
  const Ids stream = joined(t, docs);
  const int64_t W = seq_len + 1;
  ASSERT_EQ(causal.sequences(), static_cast<int64_t>(stream.size()) / W);
  ASSERT_GT(causal.sequences(), 20);
  std::map<Ids, int> windows;  // window contents -> how often expected
  for (int64_t w = 0; w < causal.sequences(); ++w) ++windows[Ids(stream.begin() + w * W, stream.begin() + (w + 1) * W)];

  std::vector<Ids> orders;
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::map<Ids, int> seen;
    Ids order;
    for (int64_t first = epoch * causal.sequences(); first < (epoch + 1) * causal.sequences(); first += 8) {
      const int n = static_cast<int>(std::min<int64_t>(8, (epoch + 1) * causal.sequences() - first));
      const LmBatch b = causal.batch(first, n);
      ASSERT_EQ(b.batch.batch, n);
      ASSERT_EQ(b.batch.seq, seq_len);
      EXPECT_EQ(b.batch.lengths, Ids(n, seq_len));
      EXPECT_TRUE(b.batch.type_ids.empty() || b.batch.type_ids == Ids(b.batch.ids.size(), 0));
      EXPECT_EQ(b.target_count(), int64_t{n} * seq_len);
      for (int i = 0; i < n; ++i) {
        Ids window(b.batch.ids.begin() + i * seq_len, b.batch.ids.begin() + (i + 1) * seq_len);
        for (int k = 0; k + 1 < seq_len; ++k) EXPECT_EQ(b.labels[i * seq_len + k], window[k + 1]);
        window.push_back(b.labels[(i + 1) * seq_len - 1]);
        ++seen[window];
        order.push_back(window.front());
      }
    }
    EXPECT_EQ(seen, windows) << "epoch " << epoch;
    orders.push_back(order);
  }
  EXPECT_NE(orders[0], orders[1]);
}

TEST(LmBatchesCausal, WindowsOfTheJoinedDocumentsWithShiftedLabels) {
  // WordPiece: BOS and EOS resolve to [CLS] and [SEP].
  std::vector<Ids> docs;
  const TokenCorpus corpus = make_corpus(150, 5, &docs);
  ASSERT_GE(wp().bos_id(), 0);
  ASSERT_GE(wp().eos_id(), 0);
  check_causal_epochs(wp(), corpus, docs, 16);
}

TEST(LmBatchesCausal, RealTinyStoriesTokenizer) {
  const fs::path dir = testing::default_model();
  if (!fs::exists(dir / "tokenizer.json")) GTEST_SKIP() << "no " << dir;
  const auto t = Tokenizer::from_dir(dir);
  ASSERT_GE(t->bos_id(), 0);  // <|start_story|> and <|end_story|>: both joined in
  ASSERT_GE(t->eos_id(), 0);
  const std::string text = make_text(120, 21);
  const fs::path file = fixture().write("tinystories.txt", text);
  const TokenCorpus corpus = tokenize_corpus(*t, {file});
  const std::vector<Ids> docs = expected_documents(*t, {text});
  ASSERT_EQ(documents_of(corpus), docs);
  check_causal_epochs(*t, corpus, docs, 32);
}

TEST(LmBatchesCausal, DeterministicAndSeedDependent) {
  const TokenCorpus corpus = make_corpus(150, 5);
  CausalOptions o;
  o.seq_len = 16;
  o.seed = 1;
  const CausalBatches a(corpus, wp(), o), b(corpus, wp(), o);
  o.seed = 2;
  const CausalBatches c(corpus, wp(), o);
  const LmBatch x = a.batch(3, 12), y = b.batch(3, 12), z = c.batch(3, 12);
  EXPECT_EQ(x.batch.ids, y.batch.ids);
  EXPECT_EQ(x.labels, y.labels);
  EXPECT_NE(x.batch.ids, z.batch.ids);
  for (int i = 0; i < 12; ++i) {
    const LmBatch s = a.batch(3 + i, 1);
    EXPECT_TRUE(std::equal(s.batch.ids.begin(), s.batch.ids.end(), x.batch.ids.begin() + i * 16));
  }
}

TEST(LmBatchesCausal, ShortCorpusFails) {
  const TokenCorpus corpus = tokenize_corpus(wp(), {fixture().write("short.txt", "the cat sat on the mat.\n")});
  CausalOptions o;
  o.seq_len = 64;
  testing::expect_error([&] { CausalBatches c(corpus, wp(), o); }, {"fewer than", "seq_len 64"});
  o.seq_len = static_cast<int>(corpus.ids.size()) + 1;  // exactly one window: [CLS] text [SEP]
  const CausalBatches one(corpus, wp(), o);
  EXPECT_EQ(one.sequences(), 1);
}

}  // namespace
}  // namespace tquant::train
