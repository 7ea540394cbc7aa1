#include "core/tensor.h"

#include <malloc.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tquant {

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

// Activation buffers of tens of MB are allocated and freed on every forward pass. glibc would
// return each one to the kernel and fault it back in zeroed on the next pass, which costs more
// than the arithmetic; raising the thresholds once keeps them in the heap for reuse.
void keep_large_buffers_in_heap() {
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)done;
}

std::shared_ptr<void> allocate(const Shape& shape, bool zero, float** data) {
  for (int64_t d : shape)
    if (d < 0) fail("tensor shape {} has a negative dimension", shape_str(shape));
  keep_large_buffers_in_heap();
  const int64_t n = std::max<int64_t>(numel_of(shape), 1);
  std::shared_ptr<float[]> storage(zero ? new float[n]() : new float[n]);
  *data = storage.get();
  return std::shared_ptr<void>(storage, storage.get());
}

}  // namespace

Tensor::Tensor(Shape shape) : shape_(std::move(shape)) { storage_ = allocate(shape_, true, &data_); }

Tensor Tensor::uninitialized(Shape shape) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.storage_ = allocate(t.shape_, false, &t.data_);
  return t;
}

Tensor Tensor::view(float* data, Shape shape, std::shared_ptr<void> keepalive) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.storage_ = std::move(keepalive);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(shape_);
  if (numel() > 0) std::memcpy(t.data_, data_, sizeof(float) * numel());
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (numel_of(shape) != numel())
    fail("cannot reshape {} to {}", shape_str(shape_), shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

}  // namespace tquant
