#pragma once
// The optimisation loop shared by `tquant pretrain` and `tquant finetune`: per step, the step's
// micro-batches (gradient accumulation; the loss is the mean over all targets of the step),
// gradient clipping, AdamW with the schedule's learning rate, and a progress line.
// Every random choice is keyed by (seed, step), so a run resumed at step s continues exactly
// as the uninterrupted run would have.
#include <cstdint>
#include <functional>
#include <vector>

#include "model/model.h"
#include "train/optimizer.h"
#include "train/trainable.h"

namespace tquant::train {

struct TrainBatch {
  Batch batch;
  std::vector<int32_t> token_labels;   // LM heads
  std::vector<float> sequence_labels;  // classification / regression heads
  Targets targets() const;
  int64_t target_count() const;
  int64_t tokens() const;  // valid positions
};

struct LoopOptions {
  int64_t total_steps = 1;
  Schedule schedule;
  AdamWOptions adamw;
  double clip = 1.0;  // max global gradient norm; 0 = no clipping
  Dropout dropout;
  uint64_t seed = 0;
  int64_t log_every = 10;  // progress line every N steps (and at the last)
  bool show_accuracy = true;  // false for regression, where there is no accuracy
  const char* what = "train";
};

struct StepLog {
  int64_t step = 0;  // 1-based count of optimizer steps done
  LossSum sums;  // over the step's targets
  float lr = 0;
  double grad_norm = 0;
  int64_t tokens = 0;       // in this step
  double seconds = 0;       // of this step
  double tokens_per_second = 0;  // this run's average so far
};

class TrainingLoop {
 public:
  TrainingLoop(TrainableModel& model, LoopOptions options);
  AdamW& optimizer() { return adamw_; }

  // Runs optimizer steps start..total_steps-1 (0-based). batches(step) returns that step's
  // micro-batches. after_step runs after every step (checkpoints, evaluations).
  void run(int64_t start, const std::function<std::vector<TrainBatch>(int64_t)>& batches,
           const std::function<void(const StepLog&)>& after_step);

 private:
  TrainableModel& model_;
  LoopOptions o_;
  AdamW adamw_;
};

// "1h02m", "3m05s", "12s"
std::string format_duration(double seconds);

}  // namespace tquant::train
