#pragma once
// The one switch from a PackedMatrix's layout to the decoder type a SIMD kernel was written for,
// shared by the packed GEMV/GEMM files (qgemv_*.cc, qgemv_q8act_*.cc).
//
// Each of those files defines `template <QFormat, int Bits> struct Decode` (its specializations in
// an unnamed namespace) inside its own `#pragma GCC target` region and passes a generic lambda
// that runs its kernel. The decoders' internal linkage makes every instantiation of
// with_decoder private to its file, so the linker can never hand one level's copy to another;
// the lambda and everything it calls are compiled under the file's target options, so the hot
// loops inline their intrinsics as before (this function only picks the loop).
#include "kernels/qblock_formats.h"

namespace tquant::qgemv {

// Calls run(Decode<format, bits>{}) for w's layout and returns true, or returns false when the
// level has no decoder for it (tquant codes whose width is not among PackedBits).
template <template <QFormat, int> class Decode, int... PackedBits, class Run>
bool with_decoder(const PackedMatrix& w, Run&& run) {
  switch (w.format) {
    case QFormat::Q4_0: run(Decode<QFormat::Q4_0, 4>{}); return true;
    case QFormat::Q4_1: run(Decode<QFormat::Q4_1, 4>{}); return true;
    case QFormat::Q8_0: run(Decode<QFormat::Q8_0, 8>{}); return true;
    case QFormat::Packed: return ((w.bits == PackedBits && (run(Decode<QFormat::Packed, PackedBits>{}), true)) || ...);
  }
  return false;
}

}  // namespace tquant::qgemv
