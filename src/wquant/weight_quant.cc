#include "wquant/weight_quant.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/half.h"

namespace tquant::wq {

void check_format(const WeightFormat& f, int64_t cols, const char* where) {
  if (f.bits < kMinWeightBits || f.bits > kMaxWeightBits)
    fail("{}: weight bits {} are outside {}..{}", where, f.bits, kMinWeightBits, kMaxWeightBits);
  if (f.group < 0) fail("{}: group size {} is negative", where, f.group);
  if (f.group > 0 && cols % f.group != 0)
    fail("{}: group size {} does not divide the {} input columns", where, f.group, cols);
}

namespace {

bool is_fp16_value(float v) { return std::isfinite(v) && f16_to_f32(f32_to_f16(v)) == v; }

}  // namespace

float fp16_scale(float s) {
  const float r = f16_to_f32(f32_to_f16(s));
  if (r == 0.f && s > 0.f) return 0x1p-24f;  // the smallest positive binary16 (subnormal)
  return r;
}

bool fit_fp16_offset(float& s, float z) {
  if (z == 0.f) return is_fp16_value(s) && s > 0.f;
  auto qualifies = [&](uint16_t h) {
    const float v = f16_to_f32(h);
    return v > 0.f && std::isfinite(v) && is_fp16_value(v * z);
  };
  const uint16_t h0 = f32_to_f16(s);
  if (h0 == 0 || h0 >= 0x7c00u) return false;
  // Positive binary16 bit patterns are ordered like their values; step outwards from s. The
  // spacing halves below a power of two, so the nearest by value is not always the nearest by
  // pattern: keep going while a farther pattern could still be nearer (each step moves at least
  // half the spacing above s; within 64 steps at most one power of two is crossed).
  const float v0 = f16_to_f32(h0);
  if (qualifies(h0)) {
    s = v0;
    return true;
  }
  const float min_step = (f16_to_f32(static_cast<uint16_t>(h0 + 1)) - v0) / 2;
  bool found = false;
  float best = 0.f, best_dist = 0.f;
  for (int k = 1; k <= 64; ++k) {
    if (found && static_cast<float>(k) * min_step > best_dist) break;
    for (const int h : {h0 - k, h0 + k}) {
      if (h < 1 || h > 0x7bff || !qualifies(static_cast<uint16_t>(h))) continue;
      const float v = f16_to_f32(static_cast<uint16_t>(h)), dist = std::fabs(v - s);
      if (!found || dist < best_dist || (dist == best_dist && v < best)) {  // ties: the smaller scale
        best = v;
        best_dist = dist;
      }
      found = true;
    }
  }
  if (found) s = best;
  return found;
}

bool is_fp16_grid_point(const WeightFormat& f, float s, float z) {
  if (!f.fp16) return true;
  if (!is_fp16_value(s) || !(s > 0.f)) return false;
  return f.symmetric || z == 0.f || is_fp16_value(s * z);
}

Tensor QuantizedWeight::dequantize() const {
  const int64_t R = grid.rows, C = grid.cols;
  Tensor w = Tensor::uninitialized({R, C});
  float* out = w.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t g = grid.index(r, c);
      float v = grid.scale[g] * (static_cast<float>(codes[r * C + c]) - grid.zero[g]);
      if (!zeta.empty()) v *= zeta[c];
      out[r * C + c] = v;
    }
  return w;
}

int64_t Objective::heads() const {
  return std::max<int64_t>({static_cast<int64_t>(H.size()), static_cast<int64_t>(G.size()), 1});
}

// sum_h tr(G_h dW_h H_h dW_h^T) = sum_h <G_h dW_h, dW_h H_h>, in double for the reported totals.
double Objective::evaluate(const Tensor& W, const Tensor& W_hat) const {
  const int64_t R = W.dim(0), C = W.dim(1), nh = heads(), rh = R / nh;
  if (H.empty()) fail("objective has no H");
  if (R % nh != 0) fail("objective: {} rows do not split into {} heads", R, nh);
  std::vector<float> dW(static_cast<size_t>(R * C));
  for (int64_t i = 0; i < R * C; ++i) dW[i] = W_hat[i] - W[i];
  std::vector<float> dWH(static_cast<size_t>(rh * C)), GdW(static_cast<size_t>(rh * C));
  double total = 0;
  for (int64_t h = 0; h < nh; ++h) {
    const float* d = dW.data() + h * rh * C;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rh, C, C, 1.f, d, C, H_of(h).data(), C, 0.f, dWH.data(), C);
    const float* left = d;
    if (!G.empty()) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rh, C, rh, 1.f, G[h].data(), rh, d, C, 0.f, GdW.data(), C);
      left = GdW.data();
    }
    double s = 0;
    for (int64_t i = 0; i < rh * C; ++i) s += static_cast<double>(left[i]) * dWH[i];
    total += s;
  }
  return total;
}

}  // namespace tquant::wq
