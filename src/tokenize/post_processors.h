#pragma once
// Post-processors of tokenizer.json ("post_processor" field): they add the special tokens
// around the sequences (BOS; [CLS] A [SEP] B [SEP]; <s> A </s></s> B </s>) and set type ids.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenize/tokenizer.h"

namespace tquant::tok {

class JsonView;

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Special tokens added to one sequence or a pair (truncation leaves room for them).
  virtual size_t added_tokens(bool is_pair) const = 0;
  // Rewrites the list of encodings (one per sequence, type ids already 0 for A and 1 for B);
  // the caller concatenates what is left.
  virtual void process(std::vector<Encoding>& encodings, bool add_special_tokens) const = 0;
  // The first special token put before a single sequence, or -1 (a fallback BOS id).
  virtual int32_t leading_special_id() const = 0;
  // The last special token put after a single sequence, or -1 (a fallback EOS id).
  virtual int32_t trailing_special_id() const = 0;
};

// BERT's template "[CLS]:0 $A:0 [SEP]:0" / "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1".
std::unique_ptr<PostProcessor> make_bert_template(int32_t cls_id, int32_t sep_id);

// Null JSON gives nullptr; unknown types fail naming the file, field and value.
std::unique_ptr<PostProcessor> make_post_processor(const JsonView& json);

}  // namespace tquant::tok
