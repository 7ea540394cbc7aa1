#pragma once
// The layout of packed_matmul_q8act's many-token path (more than one token; one token goes
// through the GEMV kernels, which read the blocks where they lie).
//
// Weights and activations alike are cut into tiles of 16 consecutive blocks (the last one padded
// with zero blocks). A tile is 8 vectors of 64 bytes; vector k holds bytes 4k..4k+3 of block j's
// 32 codes in its 32-bit lane j. One vpdpbusd of a weight tile's vector k with an activation
// tile's vector k (or vpmaddubsw + vpmaddwd, 256 bits at a time) adds four of block j's products
// into lane j, so eight of them leave every block's exact integer in its own lane with no
// horizontal sum. Lane j of tile g is block 16g + j, whose partial sum in the definition
// (qgemv_q8act.h) is j: the float part is then one multiply and one fused multiply-add per
// vector, in the definition's own order, and a kernel's accumulator vector is that output's 16
// partial sums.
//
// A padded block (codes, d and Σ q all zero, the weights' scale too) adds fma(+0, +0, acc) to
// its lane, which is acc unchanged: a partial sum is never −0, since it starts at +0 and a fused
// add gives −0 only when both terms are −0. So no lane needs a mask.
//
// Rows of at most 8 blocks (256 columns) would leave most lanes empty: there P = 2 or 4 tokens
// share a tile as a "pack", token p's block j in lane p·L + j (L = 16 / P lanes each), and the
// weight tiles hold their blocks P times over. Lanes L.. of an output stay +0 in the
// definition, and adding +0 changes nothing, so its 16-leaf tree is the tree over its L lanes.
// The kernels take a pack for a token; only their last step, the tree, tells its tokens apart.
//
// The tiles of 4 consecutive packs (of R rows, in RowTiles) are interleaved, vector by vector,
// so that a kernel's register block finds all its operands at fixed offsets from one pointer.
//
// The activations are laid out once per call (qgemv_q8act_tiles.cc); the weights once per row
// slice, inside each SIMD file (qgemv_q8act_gemm.h). Plain structs and one constexpr function:
// the SIMD files include this outside their target regions, and nothing here may be compiled
// under one.
#include <cstdint>
#include <vector>

#include "kernels/qgemv_q8act.h"

namespace tquant::q8act {

constexpr int kTileBlocks = 16;
constexpr int kTileVectors = 8;  // 32 bytes a block / 4 bytes a lane
constexpr int kTokenGroup = 4;   // packs interleaved

struct alignas(64) Vec64 {
  uint8_t b[64];
};

// Tokens per pack for rows of nb blocks: 4, 2, or 1 (no packing) from 9 blocks on.
constexpr int pack_for(int64_t nb) { return nb <= 4 ? 4 : nb <= 8 ? 2 : 1; }

// Every token's activations: 8 vectors of codes a tile, and per lane its block's d and Σ q
// (the padding zero). Pack q (tokens q·pack ..) with G = q / kTokenGroup, u = q % kTokenGroup
// (packs padded to whole groups, tokens to whole packs, with zeros):
//   codes[((G · tiles + tile) · kTileVectors + k) · kTokenGroup + u]
//   d, sum[((G · tiles + tile) · kTokenGroup + u) · kTileBlocks + lane]
struct TokenTiles {
  int64_t tokens = 0, tiles = 0;
  int pack = 1;
  int64_t packs = 0;  // ceil(tokens / pack)
  std::vector<Vec64> codes;
  std::vector<float> d;
  std::vector<int32_t> sum;
};

// Lays xq out into `out`, reusing its storage.
void tile_tokens(const Q8Activations& xq, TokenTiles& out);

}  // namespace tquant::q8act
