#include "eval/glue_eval.h"

#include <chrono>

#include "core/error.h"

namespace tquant {

Batch glue_batch(const Tokenizer& tokenizer, const GlueDataset& data, const std::vector<size_t>& examples,
                 int max_length) {
  const int32_t pad = tokenizer.pad_id() >= 0 ? tokenizer.pad_id() : 0;
  std::vector<Encoding> enc(examples.size());
  Batch batch;
  batch.batch = static_cast<int>(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const GlueExample& ex = data.examples.at(examples[i]);
    enc[i] = data.is_pair ? tokenizer.encode_pair(ex.a, ex.b, true, max_length) : tokenizer.encode(ex.a, true, max_length);
    if (enc[i].ids.empty()) fail("{}: example {} tokenizes to nothing", data.file.string(), examples[i] + 1);
    batch.seq = std::max(batch.seq, static_cast<int>(enc[i].ids.size()));
  }
  batch.ids.assign(int64_t{batch.batch} * batch.seq, pad);
  batch.type_ids.assign(batch.ids.size(), 0);
  for (size_t i = 0; i < examples.size(); ++i) {
    std::copy(enc[i].ids.begin(), enc[i].ids.end(), batch.ids.begin() + i * batch.seq);
    if (!enc[i].type_ids.empty())
      std::copy(enc[i].type_ids.begin(), enc[i].type_ids.end(), batch.type_ids.begin() + i * batch.seq);
    batch.lengths.push_back(static_cast<int>(enc[i].ids.size()));
  }
  return batch;
}

GlueEvalResult evaluate_glue(const Model& model, const Tokenizer& tokenizer, const GlueDataset& data,
                             const GlueEvalOptions& o, const Hooks* hooks) {
  const ModelConfig& c = model.config();
  if (c.head != Head::SequenceClassification)
    fail("{}: GLUE evaluation needs a sequence-classification model, this is {}", model.dir().string(),
         c.architecture);
  if (c.num_labels != data.num_labels)
    fail("{}: the model has {} labels but {} ({}) needs {}", model.dir().string(), c.num_labels,
         glue_task_name(data.task), data.file.string(), data.num_labels);
  if (data.examples.empty()) fail("{}: no examples", data.file.string());
  GlueEvalResult r;
  const auto start = std::chrono::steady_clock::now();
  for (size_t first = 0; first < data.examples.size(); first += o.batch) {
    const size_t count = std::min<size_t>(o.batch, data.examples.size() - first);
    std::vector<size_t> which(count);
    for (size_t i = 0; i < count; ++i) which[i] = first + i;
    const Batch batch = glue_batch(tokenizer, data, which, o.max_length);
    for (int len : batch.lengths) r.tokens += len;
    const Tensor logits = model.forward(batch, hooks);
    for (size_t i = 0; i < count; ++i) {
      const float* l = logits.data() + i * c.num_labels;
      if (c.regression) {
        r.predictions.push_back(l[0]);
      } else {
        int best = 0;
        for (int k = 1; k < c.num_labels; ++k)
          if (l[k] > l[best]) best = k;
        r.predictions.push_back(static_cast<float>(best));
      }
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.examples = static_cast<int64_t>(data.examples.size());
  std::vector<float> labels;
  for (const auto& ex : data.examples) labels.push_back(ex.label);
  r.score = glue_metrics(data.task, r.predictions, labels);
  return r;
}

}  // namespace tquant
