#include "ptq/token_clipping_fine.h"

#include <cmath>

#include "core/error.h"
#include "train/lm_batches.h"
#include "train/optimizer.h"
#include "train/quant_graph.h"
#include "train/trainable.h"

namespace tquant {
namespace {

// What the head is scored on: every valid position for LM heads (the FP logits of those rows, in
// order), the sequence's logits for classification heads.
struct Teacher {
  std::vector<int32_t> rows;   // LM heads: a label at each valid position (its own id: any in-vocabulary value marks a row)
  std::vector<float> logits;
  train::Targets targets() const {
    train::Targets t;
    t.teacher_logits = &logits;
    if (!rows.empty()) t.tokens = &rows;
    return t;
  }
};

Teacher teacher_of(const Model& model, const Batch& batch) {
  Teacher t;
  const Tensor fp = model.forward(batch);
  const ModelConfig& c = model.config();
  if (c.head == Head::SequenceClassification) {
    t.logits.assign(fp.data(), fp.data() + fp.numel());
    return t;
  }
  if (c.head == Head::None) fail("{}: a bare encoder has no logits to match", model.dir().string());
  const int64_t V = fp.cols();
  t.rows.assign(int64_t{batch.batch} * batch.seq, train::kIgnoreLabel);
  for (int b = 0; b < batch.batch; ++b) {
    const int len = batch.lengths.empty() ? batch.seq : batch.lengths[b];
    for (int i = 0; i < len; ++i) {
      const int64_t r = int64_t{b} * batch.seq + i;
      t.rows[r] = batch.ids[r];
      t.logits.insert(t.logits.end(), fp.data() + r * V, fp.data() + (r + 1) * V);
    }
  }
  return t;
}

}  // namespace

TokenClippingFineResult token_wise_clipping_fine(Model& model, const Calibration& coarse,
                                                 const std::vector<Batch>& batches,
                                                 const TokenClippingFineOptions& o) {
  if (batches.empty()) fail("token-wise clipping (fine): no calibration batches");
  if (o.epochs < 1 || !(o.lr > 0)) fail("token-wise clipping (fine): needs epochs >= 1 and lr > 0");
  std::vector<Teacher> teachers;
  for (const Batch& b : batches) teachers.push_back(teacher_of(model, b));

  train::QuantGraph graph(model, coarse.points, {}, true, false);
  train::TrainableModel tm(model);
  tm.set_quant_graph(&graph);
  train::AdamWOptions ao;
  ao.weight_decay = 0.f;
  train::AdamW adam(graph.parameters(), ao);
  const int64_t total = int64_t{o.epochs} * static_cast<int64_t>(batches.size());
  const train::Schedule schedule{static_cast<float>(o.lr), 0, total, train::Decay::Cosine};

  auto mse_all = [&] {
    double sum = 0;
    int64_t n = 0;
    for (size_t i = 0; i < batches.size(); ++i) {
      const train::LossSum l = tm.evaluate(batches[i], teachers[i].targets());
      sum += l.loss;
      n += l.count;
    }
    return sum / n;
  };
  TokenClippingFineResult r;
  r.mse_before = mse_all();
  int64_t step = 0;
  for (int e = 0; e < o.epochs; ++e) {
    double sum = 0;
    int64_t n = 0;
    for (size_t i = 0; i < batches.size(); ++i, ++step) {
      graph.zero_grad();
      const float count = static_cast<float>(teachers[i].logits.size());
      const train::LossSum l = tm.accumulate(batches[i], teachers[i].targets(), 1.f / count, {}, 0);
      if (!std::isfinite(l.loss)) fail("token-wise clipping (fine): the logit error became {}", l.loss);
      adam.step(schedule.lr_at(step));
      graph.constrain();
      sum += l.loss;
      n += l.count;
    }
    r.epoch_mse.push_back(sum / n);
  }
  r.mse_after = mse_all();
  r.calibration = coarse;
  r.calibration.points = graph.activation_params();
  return r;
}

}  // namespace tquant
