#include "tokenize/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "test_paths.h"
#include "tokenize/byte_level.h"
#include "tokenize/json_view.h"
#include "tokenize/model.h"
#include "tokenize/regex_pattern.h"

namespace tquant {
namespace {

using Ids = std::vector<int32_t>;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

const Tokenizer& default_tokenizer() {
  static const auto tok = Tokenizer::from_dir(testing::default_model());
  return *tok;
}

// Expects `fn` to throw tquant::Error with every needle in its message.
template <class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// Ids below were worked out by hand from tokenizer.json's merges (normalized text "▁Once▁upon▁a▁time":
// "▁O" is not a merge, so "▁" stays alone; "On"+"ce▁", then "upon▁a▁tim" + "e") and agree with
// tests/oracle/tokenizer_oracle.py.
TEST(DefaultTokenizer, OnceUponATime) {
  EXPECT_EQ(default_tokenizer().encode("Once upon a time").ids, (Ids{1, 80, 147, 201, 282, 57}));
  EXPECT_EQ(default_tokenizer().encode("Once upon a time", false).ids, (Ids{80, 147, 201, 282, 57}));
  EXPECT_EQ(default_tokenizer().encode("The cat sat.", false).ids, (Ids{80, 247, 411, 107, 72, 10}));
}

// The vocabulary has no <0xXX> tokens, so byte fallback fails and unknown characters (é, ü, \r)
// become <unk> (id 0); consecutive ones fuse into one.
TEST(DefaultTokenizer, UnknownCharactersBecomeOneFusedUnk) {
  EXPECT_EQ(default_tokenizer().encode("h\xC3\xA9llo \xC3\xA9\xC3\xBC\r\n").ids, (Ids{1, 141, 0, 113, 139, 0, 3}));
}

// "<unk>" and "<|end_story|>" are normalized added tokens: they match as "▁<unk>" in the
// normalized text, swallowing the space before them, and not at all without it.
TEST(DefaultTokenizer, AddedTokensMatchTheirNormalizedForm) {
  EXPECT_EQ(default_tokenizer().encode("a <unk> b<unk>").ids, (Ids{1, 85, 0, 80, 54, 23, 148, 63, 24}));
  EXPECT_EQ(default_tokenizer().encode("Lily and Tom <|end_story|>").ids, (Ids{1, 80, 669, 380, 2}));
}

TEST(DefaultTokenizer, PairTemplatePutsBosBeforeEachSequence) {
  const Encoding e = default_tokenizer().encode_pair("Hi", "Yo");
  EXPECT_EQ(e.ids, (Ids{1, 80, 1158, 1, 80, 50, 67}));
  EXPECT_EQ(e.type_ids, (Ids{0, 0, 0, 1, 1, 1, 1}));
}

TEST(DefaultTokenizer, TruncationCountsTheBosToken) {
  EXPECT_EQ(default_tokenizer().encode("Once upon a time", true, 3).ids, (Ids{1, 80, 147}));
  EXPECT_EQ(default_tokenizer().encode("Once upon a time", false, 3).ids, (Ids{80, 147, 201}));
}

TEST(DefaultTokenizer, SpecialIdsComeFromTokenizerConfig) {
  const Tokenizer& t = default_tokenizer();
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.unk_id(), 0);
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.vocab_size(), 2048);
  EXPECT_EQ(t.token_to_id("\xE2\x96\x81" "a"), 85);
  EXPECT_EQ(t.id_to_token(85), "\xE2\x96\x81" "a");
  EXPECT_FALSE(t.token_to_id("no such token").has_value());
}

// Decoder: Replace ▁ -> " ", ByteFallback, Fuse, Strip one leading space.
TEST(DefaultTokenizer, DecodeInvertsEncode) {
  const Tokenizer& t = default_tokenizer();
  const std::string text = "Once upon a time, there was a little girl named Lily.\nShe was happy!";
  EXPECT_EQ(t.decode(t.encode(text).ids), text);
  EXPECT_EQ(t.decode({1, 80, 147}, false), "<|start_story|> On");
  EXPECT_EQ(t.decode({1, 80, 147}, true), "On");
}

TEST(DefaultTokenizer, RejectsInvalidUtf8) {
  expect_error([] { default_tokenizer().encode("ab\xFF"); }, {"not valid UTF-8", "byte 2"});
}

// The whole of wiki.test.raw is one "word" for this tokenizer (no pre-tokenizer). Each line ends
// in "\r\n" and "\r" is an <unk> that no merge touches, so the text can also be merged piece by
// piece, cut after every "\r": the one big heap merge must give exactly the concatenation.
TEST(DefaultTokenizer, WholeWikitextFileMatchesPiecewiseMerging) {
  const std::string text = read_file(testing::shared_dir() / "data/wikitext-2/raw/wiki.test.raw");
  ASSERT_GT(text.size(), 1000000u);
  const auto t0 = std::chrono::steady_clock::now();
  const Ids whole = default_tokenizer().encode(text, false).ids;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wiki.test.raw: %zu tokens in %.2f s\n", whole.size(), seconds);
  EXPECT_LT(seconds, 30.0) << "merging is no longer O(n log n)";
  EXPECT_EQ(default_tokenizer().encode(text, false).ids, whole);

  const nlohmann::json json = tok::parse_json_file((testing::default_model() / "tokenizer.json").string());
  const auto model = tok::make_model(tok::JsonView(json, "tokenizer.json", "").at("model"));
  std::string normalized = "\xE2\x96\x81";  // Prepend("▁"), Replace(" " -> "▁")
  for (char c : text) normalized += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
  Ids piecewise;
  size_t start = 0;
  while (start < normalized.size()) {
    size_t end = normalized.find('\r', start);
    end = end == std::string::npos ? normalized.size() : end + 1;
    model->tokenize(std::string_view(normalized).substr(start, end - start), piecewise);
    start = end;
  }
  EXPECT_EQ(whole.size(), 556128u);
  EXPECT_EQ(whole, piecewise);
}

// Hand-worked merge orders: the lowest rank wins wherever it is; equal ranks go leftmost.
TEST(Bpe, MergesByRankThenLeftmost) {
  const nlohmann::json spec = {
      {"type", "BPE"},
      {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}, {"aa", 6}}},
      {"merges", {"b c", "a b", "ab c", "a a"}}};
  const auto model = tok::make_model(tok::JsonView(spec, "inline.json", "model"));
  Ids ids;
  model->tokenize("abc", ids);  // "b c" (rank 0) before "a b" (rank 1): a + bc, then nothing
  EXPECT_EQ(ids, (Ids{0, 4}));
  ids.clear();
  model->tokenize("aaab", ids);  // "a b" first -> a a ab; then "a a" -> aa ab
  EXPECT_EQ(ids, (Ids{6, 3}));
  ids.clear();
  model->tokenize("aaaaa", ids);  // three "a a" pairs of equal rank: leftmost first -> aa aa a
  EXPECT_EQ(ids, (Ids{6, 6, 0}));

  nlohmann::json swapped = spec;
  // [left, right] pairs work too.
  swapped["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "b"}), nlohmann::json::array({"b", "c"}),
                                             nlohmann::json::array({"ab", "c"})});
  const auto model2 = tok::make_model(tok::JsonView(swapped, "inline.json", "model"));
  ids.clear();
  model2->tokenize("abc", ids);  // ab, then ab + c
  EXPECT_EQ(ids, (Ids{5}));
}

TEST(ByteLevelBpe, Gpt2StyleTokenizerJson) {
  nlohmann::json vocab;
  // The 256 byte characters in byte order, so each has its byte value as id; ' ' is "Ġ" (U+0120).
  int next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    std::string s;
    const char32_t cp = printable ? b : next_extra++;
    if (cp < 0x80) {
      s = std::string(1, static_cast<char>(cp));
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = b;
  }
  vocab["he"] = 256;
  vocab["\xC4\xA0t"] = 257;
  vocab["\xC4\xA0the"] = 258;
  vocab["<|endoftext|>"] = 259;
  const nlohmann::json spec = {
      {"added_tokens", {{{"id", 259}, {"content", "<|endoftext|>"}, {"normalized", false}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e", "\xC4\xA0 t", "\xC4\xA0t he"}}}}};
  const auto dir = testing::scratch("tokenizer/gpt2");
  write_file(dir / "tokenizer.json", spec.dump());
  const auto tok = Tokenizer::from_dir(dir);
  // Pieces "the", " the", "<|endoftext|>", "!": t + he; Ġt + he -> Ġthe; the added token; !.
  const Ids ids = tok->encode("the the<|endoftext|>!").ids;
  EXPECT_EQ(ids, (Ids{'t', 256, 258, 259, '!'}));
  EXPECT_EQ(tok->decode(ids), "the the!");
  EXPECT_EQ(tok->decode(ids, false), "the the<|endoftext|>!");
  EXPECT_EQ(tok->bos_id(), 259);
  EXPECT_EQ(tok->eos_id(), 259);
}

// The hand-written GPT-2 splitter and the same regex run by ICU's engine are independent
// implementations; they must cut tricky text identically.
TEST(ByteLevelBpe, HandWrittenGpt2SplitterMatchesTheRegex) {
  const nlohmann::json where = "x";
  const tok::Regex regex(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
                         tok::JsonView(where, "test", "pattern"));
  const std::vector<std::string> texts = {
      "I'm  here!!\n\n x", "a  b ", "   ", "", "they'll've 'S 's'd", "x\t\t\ty \xC2\xA0z", "1234 56.7 ab12cd",
      "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC  \xF0\x9F\x98\x80!", " \r\n  \r\nEnd  ", "''''s  ,, --\x0B\xC2\x85x"};
  for (const auto& t : texts) {
    const auto ours = tok::gpt2_spans(t);
    const auto icu = regex.spans(t);
    ASSERT_EQ(ours.size(), icu.size()) << t;
    for (size_t i = 0; i < ours.size(); ++i) {
      EXPECT_EQ(ours[i].begin, icu[i].begin) << t;
      EXPECT_EQ(ours[i].end, icu[i].end) << t;
      EXPECT_TRUE(icu[i].is_match) << t;
    }
  }
}

const char* kBertVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nhello\n!\n";

TEST(WordPiece, VocabTxtFolderLowercases) {
  const auto dir = testing::scratch("tokenizer/bert-uncased");
  write_file(dir / "vocab.txt", kBertVocab);
  const auto tok = Tokenizer::from_dir(dir);
  // [CLS] un ##aff ##able hello ! [SEP]
  EXPECT_EQ(tok->encode("Unaffable HELLO!").ids, (Ids{2, 5, 6, 7, 8, 9, 3}));
  const Encoding pair = tok->encode_pair("hello", "unaffable [MASK]");
  EXPECT_EQ(pair.ids, (Ids{2, 8, 3, 5, 6, 7, 4, 3}));
  EXPECT_EQ(pair.type_ids, (Ids{0, 0, 0, 1, 1, 1, 1, 1}));
  // longest_first: 8 - 3 specials = 5 tokens left, the longer second sequence gives up 1.
  const Encoding cut = tok->encode_pair("hello", "unaffable [MASK]", true, 7);
  EXPECT_EQ(cut.ids, (Ids{2, 8, 3, 5, 6, 7, 3}));
  EXPECT_EQ(tok->decode(tok->encode("unaffable hello!").ids), "unaffable hello!");
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->eos_id(), 3);
  EXPECT_EQ(tok->unk_id(), 1);
  EXPECT_EQ(tok->pad_id(), 0);
}

TEST(WordPiece, CasedFolderKeepsCaseAndUsesUnk) {
  const auto dir = testing::scratch("tokenizer/bert-cased");
  write_file(dir / "vocab.txt", kBertVocab);
  write_file(dir / "tokenizer_config.json", R"({"do_lower_case": false})");
  const auto tok = Tokenizer::from_dir(dir);
  // "Unaffable": no piece starts with "U" -> the whole word is [UNK].
  EXPECT_EQ(tok->encode("Unaffable hello!").ids, (Ids{2, 1, 8, 9, 3}));
}

TEST(TokenizerErrors, UnsupportedModelTypeNamesFileFieldAndValue) {
  const auto dir = testing::scratch("tokenizer/unigram");
  write_file(dir / "tokenizer.json", R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})");
  expect_error([&] { Tokenizer::from_dir(dir); },
               {(dir / "tokenizer.json").string(), "model.type", "\"Unigram\"", "BPE", "WordPiece"});
}

TEST(TokenizerErrors, UnsupportedPreTokenizerListsTheSupportedOnes) {
  const auto dir = testing::scratch("tokenizer/bad-pre");
  write_file(dir / "tokenizer.json",
             R"({"pre_tokenizer": {"type": "UnicodeScripts"},
                 "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  expect_error([&] { Tokenizer::from_dir(dir); }, {"tokenizer.json", "pre_tokenizer.type", "UnicodeScripts", "Metaspace"});
}

TEST(TokenizerErrors, MalformedJsonNamesTheFile) {
  const auto dir = testing::scratch("tokenizer/malformed");
  write_file(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": )");
  expect_error([&] { Tokenizer::from_dir(dir); }, {(dir / "tokenizer.json").string(), "malformed JSON"});
}

TEST(TokenizerErrors, MergeWithUnknownTokenNamesTheMerge) {
  const auto dir = testing::scratch("tokenizer/bad-merge");
  write_file(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}})");
  expect_error([&] { Tokenizer::from_dir(dir); }, {"model.merges[0]", "\"c\""});
}

TEST(TokenizerErrors, FolderWithoutTokenizer) {
  const auto dir = testing::scratch("tokenizer/empty");
  expect_error([&] { Tokenizer::from_dir(dir); }, {"no tokenizer.json or vocab.txt"});
}

}  // namespace
}  // namespace tquant
