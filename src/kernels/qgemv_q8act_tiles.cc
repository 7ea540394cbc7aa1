// The activations' tile layout (qgemv_q8act_tiles.h): a transpose of each tile's 16 × 8 words.
// Baseline x86-64; it costs a copy of the codes, against the product's cost of a copy per row.
#include "kernels/qgemv_q8act_tiles.h"

#include <cstring>

namespace tquant::q8act {

void tile_tokens(const Q8Activations& xq, TokenTiles& a) {
  const int64_t nb = xq.blocks();
  a.tokens = xq.tokens;
  a.pack = pack_for(nb);
  a.packs = (a.tokens + a.pack - 1) / a.pack;
  a.tiles = (nb + kTileBlocks - 1) / kTileBlocks;
  const int64_t lanes = kTileBlocks / a.pack;  // a token's
  const int64_t groups = (a.packs + kTokenGroup - 1) / kTokenGroup, slots = groups * a.tiles * kTokenGroup;
  // All zero first: the padding stays so.
  a.codes.assign(static_cast<size_t>(slots * kTileVectors), Vec64{});
  a.d.assign(static_cast<size_t>(slots * kTileBlocks), 0.f);
  a.sum.assign(static_cast<size_t>(slots * kTileBlocks), 0);
#pragma omp parallel for schedule(static) if (a.tokens * nb >= 4096)
  for (int64_t t = 0; t < a.tokens; ++t) {
    const int64_t q = t / a.pack, first = (t % a.pack) * lanes;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t tile = (q / kTokenGroup) * a.tiles + b / kTileBlocks, u = q % kTokenGroup;
      const int64_t lane = first + b % kTileBlocks;
      const int8_t* src = xq.q.data() + (t * nb + b) * 32;
      Vec64* dst = a.codes.data() + tile * kTileVectors * kTokenGroup + u;
      for (int k = 0; k < kTileVectors; ++k) std::memcpy(dst[k * kTokenGroup].b + 4 * lane, src + 4 * k, 4);
      const int64_t at = (tile * kTokenGroup + u) * kTileBlocks + lane;
      a.d[at] = xq.d[t * nb + b];
      a.sum[at] = xq.sum[t * nb + b];
    }
  }
}

}  // namespace tquant::q8act
