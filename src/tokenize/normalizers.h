#pragma once
// Normalizers of tokenizer.json ("normalizer" field): text-to-text rewrites applied before
// pre-tokenization, and to the content of added tokens marked "normalized".
#include <memory>
#include <string>

namespace tquant::tok {

class JsonView;

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// BERT's normalizer; strip_accents unset means "same as lowercase", as in HF.
struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
};
std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options);

// Builds the normalizer described by `json`; null JSON gives nullptr. Unknown types fail
// naming the file, field and value.
std::unique_ptr<Normalizer> make_normalizer(const JsonView& json);

}  // namespace tquant::tok
