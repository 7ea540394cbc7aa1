#include "tokenize/merge_table.h"

#include <utility>

namespace tquant::tok {

void MergeTable::grow() {
  const size_t capacity = keys_.empty() ? 64 : keys_.size() * 2;
  std::vector<uint64_t> old_keys(capacity, kEmpty);
  std::vector<MergeInfo> old_values(capacity);
  std::swap(old_keys, keys_);
  std::swap(old_values, values_);
  mask_ = capacity - 1;
  shift_ = 64 - __builtin_ctzll(capacity);
  for (size_t i = 0; i < old_keys.size(); ++i) {
    if (old_keys[i] == kEmpty) continue;
    size_t j = slot(old_keys[i]);
    while (keys_[j] != kEmpty) j = (j + 1) & mask_;
    keys_[j] = old_keys[i];
    values_[j] = old_values[i];
  }
}

void MergeTable::insert(int32_t left, int32_t right, MergeInfo info) {
  if ((size_ + 1) * 2 > keys_.size()) grow();
  const uint64_t key = pack(left, right);
  size_t i = slot(key);
  while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
  if (keys_[i] == kEmpty) ++size_;
  keys_[i] = key;
  values_[i] = info;
}

}  // namespace tquant::tok
