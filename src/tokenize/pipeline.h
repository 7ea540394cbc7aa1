#pragma once
// The Tokenizer that HF's TokenizerImpl describes: added-token extraction and normalization,
// pre-tokenization, the model, truncation, the post-processor; and the decoder for decode().
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenize/added_vocabulary.h"
#include "tokenize/decoders.h"
#include "tokenize/model.h"
#include "tokenize/normalizers.h"
#include "tokenize/post_processors.h"
#include "tokenize/pre_tokenizers.h"
#include "tokenize/tokenizer.h"
#include "tokenize/truncation.h"

namespace tquant::tok {

struct Components {
  std::unique_ptr<Model> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  std::vector<AddedToken> added_tokens;
  std::optional<TruncationParams> truncation;
};

struct SpecialIds {
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
};

class Pipeline : public Tokenizer {
 public:
  explicit Pipeline(Components components);

  void set_special_ids(const SpecialIds& ids) { special_ = ids; }
  const PostProcessor* post_processor() const { return c_.post_processor.get(); }
  const Model& model() const { return *c_.model; }

  Encoding encode(std::string_view text, bool add_special_tokens, int max_length) const override;
  Encoding encode_pair(std::string_view a, std::string_view b, bool add_special_tokens, int max_length) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;

  int32_t vocab_size() const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;

  int32_t bos_id() const override { return special_.bos; }
  int32_t eos_id() const override { return special_.eos; }
  int32_t unk_id() const override { return special_.unk; }
  int32_t pad_id() const override { return special_.pad; }

 private:
  Encoding encode_sequence(std::string_view text, int32_t type_id) const;
  Encoding finish(Encoding first, std::optional<Encoding> second, bool add_special_tokens, int max_length) const;

  Components c_;
  AddedVocabulary added_;
  SpecialIds special_;
};

// The tokenizer a parsed tokenizer.json describes, special ids not yet set; `where` names the
// source in error messages (a file, or e.g. a GGUF file's tokenizer.huggingface.json).
std::unique_ptr<Pipeline> pipeline_from_json(const nlohmann::json& json, const std::string& where);

}  // namespace tquant::tok
