#pragma once
// A bounded, deterministic, uniform random sample of a stream of items (Algorithm R). Each item is
// `width` floats: width 1 samples values (MSE, percentile), width = cols samples whole rows
// (cross-entropy needs complete logit rows for its softmax).
//
// While the stream holds no more than `capacity` items the sample is the whole stream, in order,
// so with little data every estimator is exact. Beyond that each item is kept with probability
// capacity / seen. The generator is a fixed-seed SplitMix64 with an integer-only bounded draw, so
// the sample depends only on the seed and the stream — not on threads, timing or the platform's
// <random> implementation.
#include <cstdint>
#include <vector>

namespace tquant {

class Reservoir {
 public:
  Reservoir(int64_t capacity, int64_t width, uint64_t seed);

  // Offers `items` consecutive items (items * width floats).
  void add(const float* data, int64_t items);

  int64_t width() const { return width_; }
  int64_t capacity() const { return capacity_; }
  int64_t seen() const { return seen_; }                           // items offered so far
  int64_t size() const { return static_cast<int64_t>(data_.size()) / width_; }  // items kept
  bool exact() const { return seen_ <= capacity_; }                // the sample is the stream
  const std::vector<float>& data() const { return data_; }        // size() * width floats

 private:
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n)

  int64_t capacity_, width_, seen_ = 0;
  uint64_t state_;
  std::vector<float> data_;
};

}  // namespace tquant
