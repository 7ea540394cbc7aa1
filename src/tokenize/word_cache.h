#pragma once
// Memoizes word -> ids for models that see the same short words again and again (byte-level
// BPE, WordPiece). Like HF's cache it simply stops accepting entries once full: the results are
// the same either way, only the speed differs.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenize/vocab.h"

namespace tquant::tok {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 256;
  static constexpr size_t kCapacity = 200000;

  bool lookup(std::string_view word, std::vector<int32_t>& out) const {
    if (word.size() >= kMaxWordBytes) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = map_.find(word);
    if (it == map_.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void store(std::string_view word, const int32_t* ids, size_t n) const {
    if (word.size() >= kMaxWordBytes) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (map_.size() >= kCapacity) return;
    map_.try_emplace(std::string(word), ids, ids + n);
  }

 private:
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map_;
};

}  // namespace tquant::tok
