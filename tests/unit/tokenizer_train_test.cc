// Training WordPiece and byte-level BPE tokenizers (tokenize/train_*.h): hand-computed merges,
// determinism, and that the written folder loads with Tokenizer::from_dir and round-trips.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "expect_error.h"
#include "test_paths.h"
#include "tokenize/tokenizer.h"
#include "tokenize/train_bpe.h"
#include "tokenize/train_wordpiece.h"

namespace tquant {
namespace {

namespace fs = std::filesystem;
using tok::BpeTrainer;
using tok::BpeTrainerOptions;
using tok::WordPieceTrainer;
using tok::WordPieceTrainerOptions;
using Merges = std::vector<std::pair<std::string, std::string>>;

WordPieceTrainerOptions wp_options(size_t vocab_size, uint64_t min_frequency = 1, bool lowercase = false) {
  WordPieceTrainerOptions o;
  o.vocab_size = vocab_size;
  o.min_frequency = min_frequency;
  o.lowercase = lowercase;
  return o;
}

// A fresh, absent output folder under the test scratch area.
fs::path fresh_out(const std::string& name) {
  const fs::path dir = testing::scratch("tokenizer_train") / name;
  fs::remove_all(dir);
  return dir;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path write_corpus(const std::string& name, const std::string& text) {
  const fs::path p = testing::scratch("tokenizer_train") / name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

std::vector<std::string> first_after(const std::vector<std::string>& vocab, size_t n) {
  return std::vector<std::string>(vocab.begin() + static_cast<long>(n), vocab.end());
}

TEST(TokenizerTrainWordPiece, VocabularyMatchesHandComputedMerges) {
  // Words: "ab" x3, "ac" x1. Specials 0..4, alphabet a b c (5..7), ##b ##c (8, 9); then the
  // pair (a, ##b) (3 times) becomes "ab", then (a, ##c) (once) becomes "ac".
  WordPieceTrainer t(wp_options(12));
  t.feed("ab ab ab ac");
  const auto& r = t.train();
  const std::vector<std::string> expected = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",
                                             "b",     "c",     "##b",   "##c",   "ab",     "ac"};
  EXPECT_EQ(r.vocab, expected);
  EXPECT_EQ(r.initial_size, 10u);
  EXPECT_EQ(r.merges, (Merges{{"a", "##b"}, {"a", "##c"}}));
}

TEST(TokenizerTrainWordPiece, MinFrequencyStopsRareMerges) {
  WordPieceTrainer t(wp_options(12, /*min_frequency=*/2));
  t.feed("ab ab ab ac");
  const auto& r = t.train();
  EXPECT_EQ(r.vocab.size(), 11u);  // (a, ##c) occurs once only
  EXPECT_EQ(r.vocab.back(), "ab");
}

TEST(TokenizerTrainWordPiece, LongerWordsMergeContinuationPieces) {
  // "abcd" x5, "bcd" x2: (##b,##c) 5, (##c,##d) 7, (a,##b) 5, (b,##c) 2. First ##c+##d -> "##cd"
  // (7); then (##b, ##cd) 5 ties with (a, ##b) 5: "##b" < "a", so "##bcd"; then (a, ##bcd) -> "abcd".
  WordPieceTrainer t(wp_options(100));
  for (int i = 0; i < 5; ++i) t.feed("abcd");
  t.feed("bcd bcd");
  const auto& r = t.train();
  EXPECT_EQ(first_after(r.vocab, r.initial_size), (std::vector<std::string>{"##cd", "##bcd", "abcd", "bcd"}));
  EXPECT_EQ(r.merges, (Merges{{"##c", "##d"}, {"##b", "##cd"}, {"a", "##bcd"}, {"b", "##cd"}}));
}

TEST(TokenizerTrainWordPiece, TiesGoToThePairWhoseStringsSortFirst) {
  WordPieceTrainer t(wp_options(12));
  t.feed("zw zw xy xy");
  const auto& r = t.train();
  // Specials, w x y z, ##w ##y, then "xy" (ties with "zw", and "x" < "z").
  EXPECT_EQ(r.vocab.size(), 12u);
  EXPECT_EQ(r.vocab.back(), "xy");
}

const char* kCorpus =
    "The cat sat on the mat.\n"
    "The dog sat on the log.\n"
    "A cat and a dog met on the mat, and the cat ran.\n"
    "Cats and dogs like mats and logs!\n";

TEST(TokenizerTrainWordPiece, IsDeterministic) {
  const fs::path data = write_corpus("det.txt", kCorpus);
  std::string first;
  for (int run = 0; run < 3; ++run) {
    WordPieceTrainer t(wp_options(60, 1, true));
    t.feed_files({data});
    t.train();
    const std::string json = t.files().files.at(0).second;
    if (run == 0) first = json;
    else EXPECT_EQ(json, first);
  }
  const fs::path a = fresh_out("det_a"), b = fresh_out("det_b");
  for (const auto& out : {a, b}) {
    WordPieceTrainer t(wp_options(60, 1, true));
    t.feed_files({data});
    t.train();
    tok::write_tokenizer_folder(out, t.files());
  }
  EXPECT_EQ(read_file(a / "tokenizer.json"), read_file(b / "tokenizer.json"));
}

TEST(TokenizerTrainWordPiece, WrittenFolderLoadsAndRoundTrips) {
  const fs::path data = write_corpus("rt.txt", kCorpus);
  const fs::path out = fresh_out("wordpiece");
  WordPieceTrainer t(wp_options(50, 1, /*lowercase=*/true));
  t.feed_files({data});
  const auto& r = t.train();
  ASSERT_EQ(r.vocab.size(), 50u);  // the corpus has enough pairs to fill it
  tok::write_tokenizer_folder(out, t.files());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;

  const auto tokenizer = Tokenizer::from_dir(out);
  EXPECT_EQ(tokenizer->vocab_size(), 50);
  EXPECT_EQ(tokenizer->pad_id(), 0);
  EXPECT_EQ(tokenizer->unk_id(), 1);
  EXPECT_EQ(tokenizer->token_to_id("[CLS]"), 2);
  EXPECT_EQ(tokenizer->token_to_id("[SEP]"), 3);
  EXPECT_EQ(tokenizer->token_to_id("[MASK]"), 4);
  for (size_t i = 0; i < r.vocab.size(); ++i) EXPECT_EQ(tokenizer->id_to_token(static_cast<int32_t>(i)), r.vocab[i]);

  // encode -> decode gives the lowercased text back (the decoder's cleanup re-attaches . , !).
  const std::vector<std::pair<std::string, std::string>> lines = {
      {"The cat sat on the mat.", "the cat sat on the mat."},
      {"A cat and a dog met on the mat, and the cat ran.", "a cat and a dog met on the mat, and the cat ran."},
      {"Cats and dogs like mats and logs!", "cats and dogs like mats and logs!"}};
  for (const auto& [text, normalized] : lines) {
    const Encoding e = tokenizer->encode(text);
    ASSERT_GE(e.ids.size(), 3u);
    EXPECT_EQ(e.ids.front(), 2);
    EXPECT_EQ(e.ids.back(), 3);
    for (int32_t id : e.ids) EXPECT_NE(id, 1) << "unexpected [UNK] in " << text;
    EXPECT_EQ(tokenizer->decode(e.ids), normalized);
  }
  // A frequent word is one token.
  const Encoding the = tokenizer->encode("the", false);
  ASSERT_EQ(the.ids.size(), 1u);
  EXPECT_EQ(tokenizer->id_to_token(the.ids[0]), "the");
}

TEST(TokenizerTrainWordPiece, PairsGetClsASepBSepWithTokenTypes) {
  const fs::path data = write_corpus("pair.txt", kCorpus);
  const fs::path out = fresh_out("wordpiece_pair");
  WordPieceTrainer t(wp_options(60, 1, true));
  t.feed_files({data});
  t.train();
  tok::write_tokenizer_folder(out, t.files());
  const auto tokenizer = Tokenizer::from_dir(out);
  const Encoding a = tokenizer->encode("the cat", false);
  const Encoding b = tokenizer->encode("the dog", false);
  const Encoding p = tokenizer->encode_pair("the cat", "the dog");
  std::vector<int32_t> ids = {2};
  ids.insert(ids.end(), a.ids.begin(), a.ids.end());
  ids.push_back(3);
  ids.insert(ids.end(), b.ids.begin(), b.ids.end());
  ids.push_back(3);
  EXPECT_EQ(p.ids, ids);
  std::vector<int32_t> types(a.ids.size() + 2, 0);
  types.insert(types.end(), b.ids.size() + 1, 1);
  EXPECT_EQ(p.type_ids, types);
}

TEST(TokenizerTrainWordPiece, ClearErrors) {
  testing::expect_error(
      [] {
        WordPieceTrainer t(wp_options(100));
        t.feed_files({"/nonexistent/corpus.txt"});
      },
      {"/nonexistent/corpus.txt", "not found"});
  testing::expect_error(
      [] {
        WordPieceTrainer t(wp_options(8));
        t.feed("ab ab ac");
        t.train();
      },
      {"vocab size 8", "smaller", "10"});
  const fs::path out = fresh_out("nonempty");
  fs::create_directories(out);
  std::ofstream(out / "keep.txt") << "x";
  testing::expect_error(
      [&] {
        WordPieceTrainer t(wp_options(12));
        t.feed("ab ab ac");
        t.train();
        tok::write_tokenizer_folder(out, t.files());
      },
      {out.string(), "not empty"});
  EXPECT_TRUE(fs::exists(out / "keep.txt"));
}

TEST(TokenizerTrainBpe, ByteLevelMergesMatchHandComputation) {
  // Words: "ab" x1, "Ġab" x2 (GPT-2 regex keeps the space, shown as Ġ). Pairs: (a,b) 3, (Ġ,a) 2.
  // Vocabulary: <|endoftext|>, the 256 byte symbols, then "ab", then "Ġab".
  BpeTrainerOptions o;
  o.vocab_size = 259;
  o.min_frequency = 1;
  BpeTrainer t(o);
  t.feed("ab ab ab");
  const auto& r = t.train();
  EXPECT_EQ(r.initial_size, 257u);
  EXPECT_EQ(r.vocab.size(), 259u);
  EXPECT_EQ(r.vocab[0], "<|endoftext|>");
  EXPECT_EQ(r.vocab[257], "ab");
  EXPECT_EQ(r.vocab[258], "\xC4\xA0" "ab");
  EXPECT_EQ(r.merges, (Merges{{"a", "b"}, {"\xC4\xA0", "ab"}}));
}

TEST(TokenizerTrainBpe, WrittenFolderLoadsAndRoundTripsDeterministically) {
  const fs::path data = write_corpus("bpe.txt", kCorpus);
  std::string first;
  for (int run = 0; run < 2; ++run) {
    const fs::path out = fresh_out("bpe" + std::to_string(run));
    BpeTrainerOptions o;
    o.vocab_size = 270;
    BpeTrainer t(o);
    t.feed_files({data});
    ASSERT_EQ(t.train().vocab.size(), 270u);
    tok::write_tokenizer_folder(out, t.files());
    const std::string json = read_file(out / "tokenizer.json");
    if (run == 0) first = json;
    else EXPECT_EQ(json, first);

    const auto tokenizer = Tokenizer::from_dir(out);
    EXPECT_EQ(tokenizer->vocab_size(), 270);
    EXPECT_EQ(tokenizer->token_to_id("<|endoftext|>"), 0);
    const Encoding e = tokenizer->encode(kCorpus);
    EXPECT_EQ(tokenizer->decode(e.ids), kCorpus);
    EXPECT_LT(e.ids.size(), std::string(kCorpus).size());  // merges did something
    const std::string unseen = "Zebra 42 \xC3\xA9t\xC3\xA9!";  // bytes never seen still round-trip
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(unseen).ids), unseen);
  }
}

TEST(TokenizerTrainBpe, VocabSmallerThanByteAlphabetFails) {
  BpeTrainerOptions o;
  o.vocab_size = 200;
  BpeTrainer t(o);
  t.feed("hello");
  testing::expect_error([&] { t.train(); }, {"vocab size 200", "smaller", "257"});
}

}  // namespace
}  // namespace tquant
