#include "train/training_loop.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "core/counter_rng.h"
#include "core/error.h"
#include "train/lm_batches.h"

namespace tquant::train {

Targets TrainBatch::targets() const {
  Targets t;
  if (!token_labels.empty()) t.tokens = &token_labels;
  if (!sequence_labels.empty()) t.sequences = &sequence_labels;
  return t;
}

int64_t TrainBatch::target_count() const {
  if (!sequence_labels.empty()) return static_cast<int64_t>(sequence_labels.size());
  int64_t n = 0;
  for (int32_t l : token_labels) n += l != kIgnoreLabel;
  return n;
}

int64_t TrainBatch::tokens() const {
  if (batch.lengths.empty()) return int64_t{batch.batch} * batch.seq;
  int64_t n = 0;
  for (int32_t l : batch.lengths) n += l;
  return n;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(std::llround(s));
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

TrainingLoop::TrainingLoop(TrainableModel& model, LoopOptions options)
    : model_(model), o_(options), adamw_(model.parameters(), options.adamw) {}

void TrainingLoop::run(int64_t start, const std::function<std::vector<TrainBatch>(int64_t)>& batches,
                       const std::function<void(const StepLog&)>& after_step) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  int64_t tokens_total = 0;
  double window_loss = 0;
  int64_t window_count = 0, window_correct = 0;
  for (int64_t step = start; step < o_.total_steps; ++step) {
    const auto ts = clock::now();
    const std::vector<TrainBatch> micro = batches(step);
    int64_t targets = 0, tokens = 0;
    for (const TrainBatch& b : micro) {
      targets += b.target_count();
      tokens += b.tokens();
    }
    if (targets == 0) fail("{}: step {} has no training targets", o_.what, step + 1);
    model_.zero_grad();
    LossSum loss;
    const float scale = 1.f / static_cast<float>(targets);
    for (size_t i = 0; i < micro.size(); ++i)
      loss += model_.accumulate(micro[i].batch, micro[i].targets(), scale, o_.dropout, stream_key(o_.seed, step, i));
    if (!std::isfinite(loss.loss))
      fail("{}: the loss became {} at step {}; lower the learning rate", o_.what, loss.loss, step + 1);
    const double norm = clip_grad_norm(model_.parameters(), o_.clip);
    const float lr = o_.schedule.lr_at(step);
    adamw_.step(lr);

    tokens_total += tokens;
    const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    StepLog log;
    log.step = step + 1;
    log.sums = loss;
    log.lr = lr;
    log.grad_norm = norm;
    log.tokens = tokens;
    log.seconds = std::chrono::duration<double>(clock::now() - ts).count();
    log.tokens_per_second = tokens_total / std::max(elapsed, 1e-9);

    window_loss += loss.loss;
    window_count += loss.count;
    window_correct += loss.correct;
    if (o_.log_every > 0 && (log.step % o_.log_every == 0 || log.step == o_.total_steps)) {
      const double per_step = elapsed / static_cast<double>(step + 1 - start);
      const std::string acc = o_.show_accuracy ? fmt::format(" | acc {:.3f}", static_cast<double>(window_correct) /
                                                                                 std::max<int64_t>(1, window_count))
                                               : std::string();
      fmt::print("{} step {}/{} | loss {:.4f}{} | lr {:.2e} | |g| {:.3f} | {:.0f} tok/s | {} elapsed, {} left\n",
                 o_.what, log.step, o_.total_steps, window_loss / std::max<int64_t>(1, window_count), acc, lr, norm,
                 log.tokens_per_second, format_duration(elapsed),
                 format_duration(per_step * static_cast<double>(o_.total_steps - step - 1)));
      std::fflush(stdout);
      window_loss = 0;
      window_count = window_correct = 0;
    }
    after_step(log);
  }
}

}  // namespace tquant::train
