#include "quant/reservoir.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tquant {

namespace {
constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

// The seed is hashed into the starting state: SplitMix64 streams started from seeds k and k + 1
// would otherwise be shifted copies of each other (the state advances by kGamma).
Reservoir::Reservoir(int64_t capacity, int64_t width, uint64_t seed)
    : capacity_(capacity), width_(width), state_(mix(seed + kGamma)) {
  if (capacity < 1) fail("reservoir: capacity {} must be at least 1", capacity);
  if (width < 1) fail("reservoir: item width {} must be at least 1", width);
}

uint64_t Reservoir::next() { return mix(state_ += kGamma); }

// Lemire's multiply-shift: the bias is below n / 2^64, far beneath anything measurable here.
uint64_t Reservoir::below(uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

void Reservoir::add(const float* data, int64_t items) {
  // Fill phase: take items as they come until the reservoir is full.
  const int64_t take = std::clamp<int64_t>(capacity_ - seen_, 0, items);
  data_.insert(data_.end(), data, data + take * width_);
  seen_ += take;
  for (int64_t i = take; i < items; ++i) {
    const uint64_t j = below(static_cast<uint64_t>(seen_) + 1);  // item number seen_ (0-based)
    ++seen_;
    if (j < static_cast<uint64_t>(capacity_))
      std::memcpy(data_.data() + j * width_, data + i * width_, width_ * sizeof(float));
  }
}

}  // namespace tquant
