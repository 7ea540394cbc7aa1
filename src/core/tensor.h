#pragma once
// A dense row-major float32 tensor. It either owns its storage or views memory kept alive by
// someone else (e.g. a copy-on-write mmap of a checkpoint), so loading F32 weights costs no copy.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tquant {

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& shape);
std::string shape_str(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Owned and zero-initialised.
  explicit Tensor(Shape shape);
  // Owned, contents unspecified: for outputs that the caller overwrites completely.
  static Tensor uninitialized(Shape shape);
  // A view of `data`; `keepalive` owns the memory behind it.
  static Tensor view(float* data, Shape shape, std::shared_ptr<void> keepalive);

  bool empty() const { return data_ == nullptr; }
  float* data() { return data_; }
  const float* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return numel_of(shape_); }
  // Last dimension, and the product of all the others: the 2-D view GEMMs use.
  int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

  Tensor clone() const;
  // Same storage, new shape with the same element count.
  Tensor reshaped(Shape shape) const;

 private:
  Shape shape_;
  std::shared_ptr<void> storage_;
  float* data_ = nullptr;
};

}  // namespace tquant
