#pragma once
// Tokenizers as Hugging Face's `tokenizers` library defines them in tokenizer.json:
// BPE (SentencePiece style with byte fallback, and GPT-2 byte level), WordPiece (BERT), plus
// BERT folders that have only vocab.txt. encode() reproduces HF's ids exactly.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tquant {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;  // token_type_ids (segment A = 0, B = 1)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // tokenizer.json if present, otherwise vocab.txt (+ tokenizer_config.json for do_lower_case);
  // for a .gguf file, the tokenizer it embeds (export/gguf_vocab.h).
  static std::unique_ptr<Tokenizer> from_dir(const std::filesystem::path& dir);
  static std::unique_ptr<Tokenizer> from_tokenizer_json(const std::filesystem::path& file);
  static std::unique_ptr<Tokenizer> from_vocab_txt(const std::filesystem::path& file, bool lowercase);

  // add_special_tokens applies the post-processor (e.g. BOS, or [CLS] A [SEP] B [SEP]).
  // max_length > 0 truncates with HF's longest_first strategy, special tokens included.
  virtual Encoding encode(std::string_view text, bool add_special_tokens = true,
                          int max_length = 0) const = 0;
  virtual Encoding encode_pair(std::string_view a, std::string_view b,
                               bool add_special_tokens = true, int max_length = 0) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = true) const = 0;

  // One past the largest id, counting the model's vocabulary and the added tokens.
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // Fails for an id that no token has.
  virtual std::string id_to_token(int32_t id) const = 0;

  // -1 where the tokenizer has no such token.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t unk_id() const = 0;
  virtual int32_t pad_id() const = 0;
};

}  // namespace tquant
