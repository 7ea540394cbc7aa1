#pragma once
// Pre-tokenizers of tokenizer.json ("pre_tokenizer" field): they cut normalized text into the
// "words" that the model tokenizes one at a time (and may rewrite them, e.g. ByteLevel).
#include <memory>
#include <vector>

#include "tokenize/split.h"

namespace tquant::tok {

class JsonView;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece that is not an added token.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// BERT's: split on whitespace (dropped), then isolate each punctuation character.
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();

// Null JSON gives nullptr; unknown types fail naming the file, field and value.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonView& json);

}  // namespace tquant::tok
