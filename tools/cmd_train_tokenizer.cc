// tquant train-tokenizer: trains a WordPiece (BERT) or byte-level BPE (GPT-2) tokenizer on text
// files and writes a Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json) that `tquant tokenize --model DIR` and Tokenizer::from_dir read.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <type_traits>

#include "cli_registry.h"
#include "core/error.h"
#include "tokenize/train_bpe.h"
#include "tokenize/train_wordpiece.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string type = "wordpiece";
  size_t vocab_size = 30000;
  std::vector<std::string> data;
  std::string out;
  bool lowercase = false;
  uint64_t min_frequency = 2;
};

int run(const Options& o) {
  namespace fs = std::filesystem;
  // Refuse a used --out before spending time on training.
  std::error_code ec;
  if (fs::exists(o.out, ec) && (!fs::is_directory(o.out) || !fs::is_empty(o.out)))
    fail("{}: --out exists and is not an empty folder", o.out);
  std::vector<fs::path> files(o.data.begin(), o.data.end());
  for (const auto& f : files)
    if (!fs::exists(f)) fail("{}: data file not found", f.string());

  const auto t0 = std::chrono::steady_clock::now();
  tok::TrainedFiles out;
  size_t vocab = 0, words = 0;
  // Both trainers share one interface: options, feed_files, word_counts, train, files.
  auto train = [&](auto opt, auto* kind) {
    using Trainer = std::remove_pointer_t<decltype(kind)>;
    opt.vocab_size = o.vocab_size;
    opt.min_frequency = o.min_frequency;
    opt.lowercase = o.lowercase;
    Trainer trainer(opt);
    trainer.feed_files(files);
    words = trainer.word_counts().size();
    vocab = trainer.train().vocab.size();
    out = trainer.files();
  };
  if (o.type == "wordpiece")
    train(tok::WordPieceTrainerOptions{}, static_cast<tok::WordPieceTrainer*>(nullptr));
  else
    train(tok::BpeTrainerOptions{}, static_cast<tok::BpeTrainer*>(nullptr));
  tok::write_tokenizer_folder(o.out, out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{}: {} tokenizer, vocabulary {} (asked {}), {} distinct words, {:.2f} s\n", o.out, o.type, vocab,
             o.vocab_size, words, seconds);
  return 0;
}

const bool registered = register_command(
    "train-tokenizer", "Train a WordPiece or byte-level BPE tokenizer and write tokenizer.json", [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--type", o->type, "wordpiece (BERT) or bpe (GPT-2 byte level)")
          ->check(CLI::IsMember({"wordpiece", "bpe"}));
      app.add_option("--vocab-size", o->vocab_size, "Vocabulary size, special tokens included")
          ->check(CLI::PositiveNumber);
      app.add_option("--data", o->data, "Training text files (UTF-8)")->required()->expected(1, -1);
      app.add_option("--out", o->out, "Output folder (must not exist, or be empty)")->required();
      app.add_flag("--lowercase", o->lowercase, "Lowercase (and, for WordPiece, strip accents) before training");
      app.add_option("--min-frequency", o->min_frequency, "Never merge a pair seen fewer times than this");
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
