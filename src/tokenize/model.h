#pragma once
// The model of tokenizer.json ("model" field): turns one pre-tokenized word into token ids.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tquant::tok {

class JsonView;

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `word` to `out`. Safe to call from several threads at once.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // nullptr when no token has this id.
  virtual const std::string* id_to_token(int32_t id) const = 0;
  // Number of entries in the vocabulary (HF's get_vocab_size).
  virtual size_t vocab_size() const = 0;
  // One past the largest id in the vocabulary.
  virtual int32_t id_bound() const = 0;
  // The unknown token, if the model has one.
  virtual std::optional<std::string> unk_token() const = 0;
};

// "BPE" or "WordPiece"; anything else fails naming the file, the field and the value.
std::unique_ptr<Model> make_model(const JsonView& json);

}  // namespace tquant::tok
