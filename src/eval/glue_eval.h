#pragma once
// Scores a sequence-classification model on a GLUE split: max length 128 with longest-first
// truncation (METHODS.md §2), argmax for classification, the raw output for STS-B regression.
#include "eval/glue_data.h"
#include "eval/metrics.h"
#include "model/hooks.h"
#include "model/model.h"
#include "tokenize/tokenizer.h"

namespace tquant {

struct GlueEvalOptions {
  int max_length = 128;
  int batch = 32;
};

struct GlueEvalResult {
  GlueScore score;
  std::vector<float> predictions;
  int64_t examples = 0;
  int64_t tokens = 0;
  double seconds = 0;
};

// Tokenizes the listed examples into one right-padded batch (with token types).
Batch glue_batch(const Tokenizer& tokenizer, const GlueDataset& data, const std::vector<size_t>& examples,
                 int max_length);

GlueEvalResult evaluate_glue(const Model& model, const Tokenizer& tokenizer, const GlueDataset& data,
                             const GlueEvalOptions& options = {}, const Hooks* hooks = nullptr);

}  // namespace tquant
