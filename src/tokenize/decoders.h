#pragma once
// Decoders of tokenizer.json ("decoder" field): token strings back to text. Each works on the
// whole list of token strings (HF's decode_chain); the result is their concatenation.
#include <memory>
#include <string>
#include <vector>

namespace tquant::tok {

class JsonView;

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// BERT's: "##" joins a piece to the previous one, other pieces get a space; cleanup undoes the
// spaces before punctuation and in contractions.
std::unique_ptr<Decoder> make_wordpiece_decoder(std::string prefix, bool cleanup);

// Null JSON gives nullptr; unknown types fail naming the file, field and value.
std::unique_ptr<Decoder> make_decoder(const JsonView& json);

}  // namespace tquant::tok
