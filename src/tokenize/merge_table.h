#pragma once
// (left id, right id) -> (rank, merged id), as an open-addressing hash table: BPE probes it
// once per adjacent pair, millions of times for a large file.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tquant::tok {

struct MergeInfo {
  uint32_t rank;
  int32_t new_id;
};

class MergeTable {
 public:
  // Re-inserting a pair overwrites it (the later merge wins, as in HF's HashMap::collect).
  void insert(int32_t left, int32_t right, MergeInfo info);
  const MergeInfo* find(int32_t left, int32_t right) const {
    if (size_ == 0) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }
  void grow();

  std::vector<uint64_t> keys_;
  std::vector<MergeInfo> values_;
  size_t size_ = 0;
  size_t mask_ = 0;
  int shift_ = 64;
};

}  // namespace tquant::tok
