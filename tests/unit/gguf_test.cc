// GGUF export: block codecs against closed forms, the file container (write, parse, reject),
// the llama Q/K row permutation, the exact mapping of tquant-quantized weights, fp16 grids, and
// the default model through export and back.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "expect_error.h"
#include "export/gguf_export.h"
#include "export/gguf_format.h"
#include "export/gguf_llama.h"
#include "export/gguf_model.h"
#include "export/gguf_reader.h"
#include "export/gguf_writer.h"
#include "io/half.h"
#include "model/model.h"
#include "test_paths.h"
#include "tokenize/tokenizer.h"
#include "wquant/grid_search.h"
#include "wquant/quantized_checkpoint.h"

namespace tquant::gguf {
namespace {

namespace fs = std::filesystem;

fs::path fresh(const std::string& name) {
  const fs::path p = testing::scratch("gguf") / name;
  fs::remove_all(p);
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spill(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
T read_at(const std::string& bytes, size_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof(T));
  return v;
}

// Nothing but `keep` in the folder: no temporary left behind by a failed or finished write.
void expect_only(const fs::path& dir, const std::set<std::string>& keep) {
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_TRUE(keep.count(e.path().filename().string())) << "left behind: " << e.path();
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

TEST(GgufBlocks, Q4_0LayoutAndValues) {
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>((5 * j + 3) % 16);
  const uint16_t d = f32_to_f16(0.375f);
  uint8_t blk[18];
  encode_q4_0(d, q, blk);
  EXPECT_EQ(block_bytes(TensorType::Q4_0), 18);
  EXPECT_EQ(blk[0] | (blk[1] << 8), d);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(blk[2 + j], q[j] | (q[j + 16] << 4)) << j;  // element j low, j+16 high
  float x[32];
  dequantize_row(TensorType::Q4_0, blk, 32, x);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(x[j], 0.375f * (q[j] - 8)) << j;
  uint8_t back[32];
  unpack_nibbles(blk + 2, back);
  EXPECT_EQ(std::memcmp(back, q, 32), 0);
}

TEST(GgufBlocks, Q4_1AndQ8_0Values) {
  uint8_t q[32];
  int8_t q8[32];
  for (int j = 0; j < 32; ++j) {
    q[j] = static_cast<uint8_t>(15 - j % 16);
    q8[j] = static_cast<int8_t>(j * 8 - 128);
  }
  uint8_t b1[20], b8[34];
  encode_q4_1(f32_to_f16(0.25f), f32_to_f16(-1.5f), q, b1);
  encode_q8_0(f32_to_f16(0.0078125f), q8, b8);
  EXPECT_EQ(read_at<uint16_t>(std::string(reinterpret_cast<char*>(b1), 20), 2), f32_to_f16(-1.5f));  // d, then m
  float x1[32], x8[32];
  dequantize_row(TensorType::Q4_1, b1, 32, x1);
  dequantize_row(TensorType::Q8_0, b8, 32, x8);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(x1[j], 0.25f * q[j] - 1.5f) << j;
    EXPECT_EQ(x8[j], 0.0078125f * q8[j]) << j;
  }
}

// ggml's reference quantizers on blocks whose results follow by hand.
TEST(GgufBlocks, RoundToNearestClosedForms) {
  float x[32];
  uint8_t blk[34];
  float y[32];
  // Q4_0: the extreme is −2, so d = −2/−8 = 0.25 and x/d + 8.5 truncates to j/2 rounded up,
  // capped at 15.
  for (int j = 0; j < 32; ++j) x[j] = (j - 16) * 0.125f;
  quantize_row(TensorType::Q4_0, x, 32, blk);
  EXPECT_EQ(f16_to_f32(read_at<uint16_t>(std::string(reinterpret_cast<char*>(blk), 18), 0)), 0.25f);
  uint8_t q[32];
  unpack_nibbles(blk + 2, q);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[j], std::min(15, (j + 1) / 2)) << j;
  // The same block with its sign flipped: now the extreme +2 gives d = −0.25 (negative scales
  // are how Q4_0 keeps the extreme exactly).
  for (int j = 0; j < 32; ++j) x[j] = -x[j];
  quantize_row(TensorType::Q4_0, x, 32, blk);
  dequantize_row(TensorType::Q4_0, blk, 32, y);
  EXPECT_EQ(f16_to_f32(read_at<uint16_t>(std::string(reinterpret_cast<char*>(blk), 18), 0)), -0.25f);
  EXPECT_EQ(y[0], 2.0f);  // the extreme lands on code 0: −0.25·(0 − 8)
  // Q4_1: 16 levels from −1 in steps of 0.25 are reproduced exactly.
  for (int j = 0; j < 32; ++j) x[j] = -1.f + 0.25f * static_cast<float>((7 * j) % 16);
  quantize_row(TensorType::Q4_1, x, 32, blk);
  dequantize_row(TensorType::Q4_1, blk, 32, y);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
  // Q8_0: amax 127 gives d = 1 and the integers themselves.
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j * 8 - 127);
  quantize_row(TensorType::Q8_0, x, 32, blk);
  dequantize_row(TensorType::Q8_0, blk, 32, y);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
  // An all-zero block: d = 0 and zeros back for every type.
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
    std::fill(x, x + 32, 0.f);
    quantize_row(t, x, 32, blk);
    dequantize_row(t, blk, 32, y);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.f) << type_name(t);
  }
}

// RTN error bounds on random data: half a step inside the range (Q4_0's top code clips to 7·d).
TEST(GgufBlocks, RoundToNearestErrorBounds) {
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> x(32 * 64), y(x.size());
  for (float& v : x) v = n(rng);
  std::vector<uint8_t> buf(4 * x.size());
  for (TensorType t : {TensorType::Q4_1, TensorType::Q8_0, TensorType::F16}) {
    quantize_row(t, x.data(), static_cast<int64_t>(x.size()), buf.data());
    dequantize_row(t, buf.data(), static_cast<int64_t>(x.size()), y.data());
    for (size_t b = 0; b < 64; ++b) {
      float mn = x[b * 32], mx = mn, amax = 0;
      for (int j = 0; j < 32; ++j) {
        mn = std::min(mn, x[b * 32 + j]);
        mx = std::max(mx, x[b * 32 + j]);
        amax = std::max(amax, std::fabs(x[b * 32 + j]));
      }
      const float step = t == TensorType::Q4_1 ? (mx - mn) / 15 : t == TensorType::Q8_0 ? amax / 127 : 0.f;
      for (int j = 0; j < 32; ++j) {
        const float e = std::fabs(y[b * 32 + j] - x[b * 32 + j]);
        const float bound = t == TensorType::F16 ? std::fabs(x[b * 32 + j]) * 0x1p-11f + 0x1p-25f
                                                   : 0.5f * step * 1.01f + 2e-3f * amax;
        EXPECT_LE(e, bound) << type_name(t) << " block " << b << " element " << j;
      }
    }
  }
}

TEST(GgufBlocks, RowBytesNeedWholeBlocks) {
  EXPECT_EQ(row_bytes(TensorType::Q4_0, 64, "t"), 36);
  EXPECT_EQ(row_bytes(TensorType::Q4_1, 32, "t"), 20);
  EXPECT_EQ(row_bytes(TensorType::Q8_0, 96, "t"), 102);
  EXPECT_EQ(row_bytes(TensorType::F16, 7, "t"), 14);
  testing::expect_error([] { row_bytes(TensorType::Q4_0, 48, "tensor blk.0.attn_q.weight"); },
                        {"blk.0.attn_q.weight", "48", "32-element blocks", "q4_0"});
}

// ---------------------------------------------------------------------------------------------
// The file container
// ---------------------------------------------------------------------------------------------

Metadata every_kind_of_value() {
  return {
      {"general.architecture", Value::string("llama")},
      {"test.u8", Value::u8(200)},
      {"test.i8", Value::i8(-100)},
      {"test.u16", Value::u16(60000)},
      {"test.i16", Value::i16(-30000)},
      {"test.u32", Value::u32(4000000000u)},
      {"test.i32", Value::i32(-2000000000)},
      {"test.u64", Value::u64(uint64_t{1} << 60)},
      {"test.i64", Value::i64(-(int64_t{1} << 50))},
      {"test.f32", Value::f32(0.1f)},
      {"test.f64", Value::f64(0.1)},
      {"test.yes", Value::boolean(true)},
      {"test.utf8", Value::string("\xe2\x96\x81tokens and <0x0A>")},
      {"test.strings", Value::strings({"a", "", "\xe2\x96\x81the"})},
      {"test.floats", Value::f32s({-1.5f, 0.f, 3.25f})},
      {"test.ints", Value::i32s({1, -2, 3})},
      {"test.nested", Value::array(ValueType::ARRAY, {Value::i32s({7}), Value::i32s({8, 9})})},
  };
}

std::vector<TensorToWrite> tensors_of_every_type() {
  std::mt19937 rng(9);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<TensorToWrite> out;
  auto add = [&](const std::string& name, TensorType t, Shape shape) {
    const int64_t cols = shape.back(), rows = numel_of(shape) / cols;
    std::vector<float> x(static_cast<size_t>(rows * cols));
    for (float& v : x) v = n(rng);
    std::vector<uint8_t> data(static_cast<size_t>(rows * row_bytes(t, cols, name)));
    quantize_row(t, x.data(), static_cast<int64_t>(x.size()), data.data());
    out.push_back({name, t, shape, std::move(data)});
  };
  add("a.f32", TensorType::F32, {3, 5});
  add("b.f16", TensorType::F16, {2, 7});
  add("c.q4_0", TensorType::Q4_0, {2, 64});
  add("d.q4_1", TensorType::Q4_1, {1, 32});
  add("e.q8_0", TensorType::Q8_0, {3, 32});
  add("f.vector", TensorType::F32, {10});
  return out;
}

TEST(GgufFile, WriteParseRoundTrip) {
  const fs::path dir = fresh("roundtrip");
  fs::create_directories(dir);
  const fs::path path = dir / "t.gguf";
  const Metadata md = every_kind_of_value();
  const auto tensors = tensors_of_every_type();
  write_gguf(path, md, tensors);
  expect_only(dir, {"t.gguf"});

  // The header by hand: magic bytes, version 3, the counts.
  const std::string bytes = slurp(path);
  EXPECT_EQ(bytes.substr(0, 4), "GGUF");
  EXPECT_EQ(read_at<uint32_t>(bytes, 4), 3u);
  EXPECT_EQ(read_at<uint64_t>(bytes, 8), tensors.size());
  EXPECT_EQ(read_at<uint64_t>(bytes, 16), md.size());
  // The first key: length-prefixed "general.architecture", type 8 (string), "llama".
  EXPECT_EQ(read_at<uint64_t>(bytes, 24), 20u);
  EXPECT_EQ(bytes.substr(32, 20), "general.architecture");
  EXPECT_EQ(read_at<uint32_t>(bytes, 52), 8u);
  EXPECT_EQ(read_at<uint64_t>(bytes, 56), 5u);
  EXPECT_EQ(bytes.substr(64, 5), "llama");

  const GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  ASSERT_EQ(f.metadata().size(), md.size());
  for (size_t i = 0; i < md.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, md[i].first);
    EXPECT_TRUE(f.metadata()[i].second == md[i].second) << md[i].first;
  }
  EXPECT_EQ(f.at("test.i8").as_int("i8"), -100);
  EXPECT_EQ(f.at("test.u64").as_uint("u64"), uint64_t{1} << 60);
  EXPECT_EQ(static_cast<float>(f.at("test.f32").as_float("f32")), 0.1f);
  testing::expect_error([&] { f.at("test.i8").as_uint(f.where("test.i8")); }, {"t.gguf: test.i8", "-100"});
  testing::expect_error([&] { f.at("test.missing"); }, {"t.gguf", "test.missing", "missing"});

  ASSERT_EQ(f.tensors().size(), tensors.size());
  uint64_t expected_offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorEntry& e = f.tensors()[i];
    EXPECT_EQ(e.name, tensors[i].name);
    EXPECT_EQ(e.type, tensors[i].type);
    EXPECT_EQ(e.shape, tensors[i].shape);
    EXPECT_EQ(e.ne.front(), static_cast<uint64_t>(tensors[i].shape.back()));  // GGUF lists dimensions reversed
    EXPECT_EQ(e.offset, expected_offset);
    expected_offset += (e.bytes + 31) / 32 * 32;
    const auto data = f.data(e);
    ASSERT_EQ(data.size(), tensors[i].data.size());
    EXPECT_EQ(std::memcmp(data.data(), tensors[i].data.data(), data.size()), 0) << e.name;
    const Tensor t = f.load_f32(e.name);
    std::vector<float> want(static_cast<size_t>(t.numel()));
    const int64_t cols = e.shape.back();
    for (int64_t r = 0; r < t.numel() / cols; ++r)
      dequantize_row(e.type, tensors[i].data.data() + r * row_bytes(e.type, cols, ""), cols, want.data() + r * cols);
    EXPECT_EQ(std::memcmp(t.data(), want.data(), want.size() * 4), 0) << e.name;
  }
  EXPECT_EQ(bytes.size(), f.data_offset() + expected_offset);
}

TEST(GgufFile, CustomAlignment) {
  const fs::path dir = fresh("align");
  fs::create_directories(dir);
  Metadata md = {{"general.alignment", Value::u32(64)}};
  write_gguf(dir / "a.gguf", md, tensors_of_every_type());
  const GgufFile f(dir / "a.gguf");
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  for (const TensorEntry& e : f.tensors()) EXPECT_EQ(e.offset % 64, 0u) << e.name;
}

// A hand-built file with one tensor; `patch` edits the tensor info.
std::string one_tensor_file(uint32_t type, uint64_t dim, uint64_t offset, uint64_t data_bytes, uint32_t version = 3) {
  std::string s;
  auto put = [&](auto v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(uint32_t{0x46554747});
  put(version);
  put(uint64_t{1});
  put(uint64_t{0});
  put(uint64_t{1});
  s += "w";
  put(uint32_t{1});
  put(dim);
  put(type);
  put(offset);
  s.resize((s.size() + 31) / 32 * 32, '\0');
  s.append(data_bytes, '\0');
  return s;
}

TEST(GgufFile, RejectsMalformedFiles) {
  const fs::path dir = fresh("malformed");
  fs::create_directories(dir);
  const fs::path p = dir / "bad.gguf";
  spill(p, one_tensor_file(0, 8, 0, 32));
  EXPECT_NO_THROW(GgufFile{p});
  spill(p, one_tensor_file(12, 256, 0, 144));
  testing::expect_error([&] { GgufFile{p}; }, {"bad.gguf", "tensor \"w\"", "ggml type 12"});
  spill(p, one_tensor_file(0, 8, 4, 64));
  testing::expect_error([&] { GgufFile{p}; }, {"bad.gguf", "\"w\"", "offset 4", "alignment 32"});
  spill(p, one_tensor_file(0, 64, 0, 32));
  testing::expect_error([&] { GgufFile{p}; }, {"bad.gguf", "\"w\"", "past the end"});
  spill(p, one_tensor_file(2, 48, 0, 32));
  testing::expect_error([&] { GgufFile{p}; }, {"bad.gguf", "\"w\"", "48", "q4_0"});
  spill(p, one_tensor_file(0, 8, 0, 32, 1));
  testing::expect_error([&] { GgufFile{p}; }, {"bad.gguf", "version 1"});
  std::string s = one_tensor_file(0, 8, 0, 32);
  s[0] = 'X';
  spill(p, s);
  testing::expect_error([&] { GgufFile{p}; }, {"bad.gguf", "not a GGUF file"});
  spill(p, one_tensor_file(0, 8, 0, 32).substr(0, 40));
  testing::expect_error([&] { GgufFile{p}; }, {"bad.gguf", "truncated"});
  testing::expect_error([&] { GgufFile{dir / "missing.gguf"}; }, {"missing.gguf", "cannot open"});
}

TEST(GgufFile, WriterRejectsBadInputAndLeavesNothing) {
  const fs::path dir = fresh("writer_errors");
  fs::create_directories(dir);
  const fs::path p = dir / "x.gguf";
  auto tensors = tensors_of_every_type();
  auto t = tensors;
  t[0].name = std::string(65, 'n');
  testing::expect_error([&] { write_gguf(p, {}, t); }, {"x.gguf", "1 to 64 bytes"});
  t = tensors;
  t[2].data.pop_back();
  testing::expect_error([&] { write_gguf(p, {}, t); }, {"x.gguf", "c.q4_0", "bytes of data"});
  t = tensors;
  t[2].shape = {3, 48};
  testing::expect_error([&] { write_gguf(p, {}, t); }, {"x.gguf", "c.q4_0", "48", "32-element blocks"});
  testing::expect_error([&] { write_gguf(p, {{"General.Name", Value::string("x")}}, tensors); },
                        {"x.gguf", "General.Name"});
  testing::expect_error([&] { write_gguf(p, {{"a.b", Value::u8(1)}, {"a.b", Value::u8(2)}}, tensors); },
                        {"x.gguf", "a.b", "twice"});
  expect_only(dir, {});
  // An existing file survives a failed write untouched.
  spill(p, "old contents");
  t = tensors;
  t[1].data.clear();
  EXPECT_THROW(write_gguf(p, {}, t), Error);
  EXPECT_EQ(slurp(p), "old contents");
  expect_only(dir, {"x.gguf"});
}

// ---------------------------------------------------------------------------------------------
// llama layout
// ---------------------------------------------------------------------------------------------

TEST(GgufLlama, RopePermutation) {
  EXPECT_EQ(rope_permutation(2, 4), (std::vector<int64_t>{0, 2, 1, 3, 4, 6, 5, 7}));
  // HF rotates i with i + hd/2; after the permutation they are the adjacent rows 2i, 2i + 1.
  const int64_t heads = 8, hd = 16;
  const auto perm = rope_permutation(heads, hd);
  std::vector<int> seen(perm.size(), 0);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < hd / 2; ++i) {
      EXPECT_EQ(perm[h * hd + 2 * i], h * hd + i);
      EXPECT_EQ(perm[h * hd + 2 * i + 1], h * hd + i + hd / 2);
    }
  for (int64_t p : perm) ++seen[p];
  for (int s : seen) EXPECT_EQ(s, 1);
  // Forward then inverse is the identity, for bytes and for tensors.
  std::vector<uint8_t> rows(perm.size() * 3);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint8_t>(i * 7);
  const auto there = permute_rows(rows, perm, false);
  EXPECT_NE(there, rows);
  EXPECT_EQ(permute_rows(there, perm, true), rows);
  Tensor t({heads * hd, 2});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);
  const Tensor u = permute_rows(t, perm, false);
  EXPECT_EQ(u[2 * 2], t[perm[2] * 2]);
  const Tensor back = permute_rows(u, perm, true);
  EXPECT_EQ(std::memcmp(back.data(), t.data(), t.numel() * 4), 0);
  testing::expect_error([] { rope_permutation(2, 5); }, {"5", "even"});
}

// ---------------------------------------------------------------------------------------------
// fp16 grids and the exact mapping
// ---------------------------------------------------------------------------------------------

bool is_f16(float v) { return f16_to_f32(f32_to_f16(v)) == v; }

// fit_fp16_offset against brute force over every positive finite binary16.
TEST(WquantFp16Grid, FitOffsetIsTheNearestQualifyingValue) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-12.f, 2.f);
  for (int trial = 0; trial < 300; ++trial) {
    const float s0 = wq::fp16_scale(std::exp2(u(rng)));
    const float z = static_cast<float>(1 + trial % 15);
    float best = 0, dist = INFINITY;
    for (uint32_t h = 1; h < 0x7c00; ++h) {
      const float v = f16_to_f32(static_cast<uint16_t>(h));
      if (!is_f16(v * z) || std::isinf(v * z)) continue;
      if (std::fabs(v - s0) < dist) {
        dist = std::fabs(v - s0);
        best = v;
      }
    }
    float s = s0;
    ASSERT_TRUE(wq::fit_fp16_offset(s, z)) << s0 << " " << z;
    EXPECT_EQ(std::fabs(s - s0), dist) << "s0 " << s0 << " z " << z << " got " << s << " best " << best;
    EXPECT_TRUE(is_f16(s) && is_f16(s * z));
  }
  EXPECT_EQ(wq::fp16_scale(1e-9f), 0x1p-24f);
  EXPECT_TRUE(std::isinf(wq::fp16_scale(1e6f)));
}

Tensor random_weight(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.f, 0.05f);
  Tensor w({rows, cols});
  for (int64_t i = 0; i < w.numel(); ++i) w[i] = n(rng) + (i % 7 == 0 ? 0.03f : 0.f);
  return w;
}

wq::WeightFormat format(int bits, bool sym, int64_t group, bool fp16) {
  wq::WeightFormat f;
  f.bits = bits;
  f.symmetric = sym;
  f.group = group;
  f.fp16 = fp16;
  return f;
}

TEST(WquantFp16Grid, EveryGridConstructorHonoursIt) {
  const Tensor W = random_weight(24, 128, 1);
  Tensor H({128, 128});
  for (int64_t i = 0; i < 128; ++i) H[i * 128 + i] = 1.f + static_cast<float>(i % 5);
  for (bool sym : {false, true})
    for (int64_t group : {int64_t{0}, int64_t{32}}) {
      const auto f = format(4, sym, group, true);
      for (const wq::WeightGrid& g : {wq::minmax_grid(W, f), wq::search_grid(W, H, f), wq::mse_grid(W, f)})
        for (size_t k = 0; k < g.scale.size(); ++k) {
          EXPECT_TRUE(is_f16(g.scale[k])) << g.scale[k];
          if (!sym) {
            EXPECT_TRUE(is_f16(g.scale[k] * g.zero[k])) << g.scale[k] << " * " << g.zero[k];
          }
        }
      // The fp16 grid is the plain grid up to fp16 rounding of the scale.
      const auto plain = wq::minmax_grid(W, format(4, sym, group, false));
      const auto fp = wq::minmax_grid(W, f);
      for (size_t k = 0; k < fp.scale.size(); ++k) EXPECT_NEAR(fp.scale[k], plain.scale[k], plain.scale[k] * 0x1p-6f);
    }
}

TEST(GgufExact, BlocksDecodeToTheDequantizedWeight) {
  const Tensor W = random_weight(16, 96, 2);
  struct Case {
    TensorType type;
    wq::WeightFormat f;
  };
  for (const Case& c : {Case{TensorType::Q4_0, format(4, true, 32, true)}, Case{TensorType::Q4_1, format(4, false, 32, true)},
                        Case{TensorType::Q8_0, format(8, true, 32, true)}, Case{TensorType::Q4_0, format(4, true, 0, true)},
                        Case{TensorType::Q4_1, format(4, false, 96, true)}}) {
    const wq::QuantizedWeight q = wq::round_to_grid(W, wq::minmax_grid(W, c.f));
    const auto bytes = encode_exact(q, c.type, "w");
    const Tensor want = q.dequantize();
    const int64_t rb = row_bytes(c.type, 96, "w");
    ASSERT_EQ(bytes.size(), static_cast<size_t>(16 * rb));
    std::vector<float> row(96);
    for (int64_t r = 0; r < 16; ++r) {
      dequantize_row(c.type, bytes.data() + r * rb, 96, row.data());
      EXPECT_EQ(std::memcmp(row.data(), want.data() + r * 96, 96 * 4), 0) << type_name(c.type) << " row " << r;
      if (c.type != TensorType::Q8_0) {  // the nibbles are the codes themselves
        uint8_t codes[32];
        unpack_nibbles(bytes.data() + r * rb + (c.type == TensorType::Q4_0 ? 2 : 4), codes);
        EXPECT_EQ(std::memcmp(codes, q.codes.data() + r * 96, 32), 0);
      }
    }
  }
}

TEST(GgufExact, RefusesWhatItCannotMapExactly) {
  const Tensor W = random_weight(8, 64, 3);
  auto quantize = [&](wq::WeightFormat f) { return wq::round_to_grid(W, wq::minmax_grid(W, f)); };
  const auto w3 = quantize(format(3, true, 32, true));
  testing::expect_error([&] { encode_exact(w3, TensorType::Q4_0, "layers.0.q"); },
                        {"layers.0.q", "3-bit symmetric", "q4_0 holds 4-bit symmetric", "--format q4_0"});
  testing::expect_error([&] { encode_exact(quantize(format(4, true, 32, true)), TensorType::Q4_1, "v"); },
                        {"v", "4-bit symmetric", "q4_1 holds 4-bit asymmetric"});
  testing::expect_error([&] { encode_exact(quantize(format(4, false, 32, true)), TensorType::Q8_0, "v"); },
                        {"v", "q8_0 holds 8-bit symmetric"});
  testing::expect_error([&] { encode_exact(quantize(format(4, true, 16, true)), TensorType::Q4_0, "g"); },
                        {"g", "groups of 16", "multiple of 32"});
  testing::expect_error([&] { encode_exact(quantize(format(4, true, 32, false)), TensorType::Q4_0, "s"); },
                        {"s", "scale", "row 0, group 0", "not an fp16 value", "--format q4_0"});
  // An asymmetric fp16 scale whose offset −s·z is not fp16.
  auto q = quantize(format(4, false, 32, true));
  q.grid.scale[0] = f16_to_f32(0x2c01);  // 11 significant bits
  q.grid.zero[0] = 7;
  testing::expect_error([&] { encode_exact(q, TensorType::Q4_1, "o"); }, {"o", "offset", "row 0, group 0", "fp16"});
  auto z = quantize(format(4, true, 32, true));
  z.zeta.assign(64, 1.5f);
  testing::expect_error([&] { encode_exact(z, TensorType::Q4_0, "zf"); }, {"zf", "Z-Fold"});
  const Tensor narrow = random_weight(4, 48, 4);
  const auto n48 = wq::round_to_grid(narrow, wq::minmax_grid(narrow, format(4, true, 16, true)));
  testing::expect_error([&] { encode_exact(n48, TensorType::Q4_0, "n"); }, {"n", "rows of 48", "32-weight blocks"});
}

// ---------------------------------------------------------------------------------------------
// The default model through export and back
// ---------------------------------------------------------------------------------------------

Batch sample_batch() {
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(3 + (i * 37) % 2000);
  return Batch::single(ids);
}

void expect_same_logits(const Model& a, const Model& b) {
  const Batch batch = sample_batch();
  const Tensor x = a.forward(batch), y = b.forward(batch);
  ASSERT_EQ(x.shape(), y.shape());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.numel() * 4), 0) << "logits differ";
}

TEST(GgufModel, DefaultModelF32RoundTripsExactly) {
  const fs::path dir = fresh("default_f32");
  fs::create_directories(dir);
  const fs::path out = dir / "m.gguf";
  const ExportReport r = export_gguf(testing::default_model(), TensorType::F32, out);
  EXPECT_FALSE(r.quantized_source);
  EXPECT_EQ(r.tensors_by_type.at("f32"), 1 + 2 * 9 + 1);  // tied head: no output.weight
  const GgufFile f(out);
  EXPECT_EQ(f.at("general.architecture").as_string(""), "llama");
  EXPECT_EQ(f.at("llama.attention.head_count_kv").as_uint(""), 4u);
  EXPECT_EQ(f.at("tokenizer.ggml.model").as_string(""), "llama");
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f.tensor("blk.1.attn_k.weight").ne, (std::vector<uint64_t>{128, 64}));

  const Model src = Model::load(testing::default_model());
  const Model back = Model::load(out);
  EXPECT_EQ(back.config().heads, src.config().heads);
  EXPECT_EQ(back.config().norm_eps, src.config().norm_eps);
  EXPECT_EQ(back.config().rope_theta, src.config().rope_theta);
  EXPECT_TRUE(back.config().tie_embeddings);
  expect_same_logits(src, back);
  // The stored attn_q rows are HF's rows permuted, not HF's rows.
  const Tensor stored = f.load_f32("blk.0.attn_q.weight");
  EXPECT_NE(std::memcmp(stored.data(), src.blocks[0].q.weight.data(), stored.numel() * 4), 0);

  // The embedded tokenizer reproduces the folder's ids; the scores follow the merge ranks.
  const auto t0 = Tokenizer::from_dir(testing::default_model());
  const auto t1 = Tokenizer::from_dir(out);
  const std::string text = "Once upon a time, a little girl named Lily found a shiny red ball.\nShe smiled!";
  EXPECT_EQ(t0->encode(text, false).ids, t1->encode(text, false).ids);
  EXPECT_EQ(t0->encode(text, true).ids, t1->encode(text, true).ids);
  EXPECT_EQ(t1->bos_id(), 1);
  EXPECT_EQ(t1->eos_id(), 2);
  const auto& scores = f.at("tokenizer.ggml.scores").items("");
  const auto& tokens = f.at("tokenizer.ggml.tokens").items("");
  ASSERT_EQ(tokens.size(), 2048u);
  EXPECT_EQ(tokens[*t0->token_to_id("e\xe2\x96\x81")].as_string(""), "e\xe2\x96\x81");
  EXPECT_EQ(scores[*t0->token_to_id("e\xe2\x96\x81")].as_float(""), 0.0);  // merges[0] is "e ▁"
  EXPECT_EQ(scores[*t0->token_to_id("d\xe2\x96\x81")].as_float(""), -1.0);  // merges[1] is "d ▁"
  EXPECT_TRUE(f.at("tokenizer.ggml.add_bos_token").as_bool(""));
}

TEST(GgufModel, QuantizedCheckpointMapsBlockForBlock) {
  Model m = Model::load(testing::default_model());
  std::map<std::string, wq::QuantizedWeight> q;
  for (Block& b : m.blocks)
    for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}) {
      q[l->name] = wq::round_to_grid(l->weight, wq::minmax_grid(l->weight, format(4, false, 32, true)));
      l->weight = q[l->name].dequantize();
    }
  const fs::path dir = fresh("quantized");
  fs::create_directories(dir);
  wq::write_quantized_checkpoint(m, q, {{"method", "rtn"}}, dir / "ckpt", false);
  const ExportReport r = export_gguf(dir / "ckpt", TensorType::Q4_1, dir / "m.gguf");
  EXPECT_TRUE(r.quantized_source);
  EXPECT_EQ(r.exact, 14);
  EXPECT_EQ(r.rounded, 0);
  EXPECT_EQ(r.tensors_by_type.at("q4_1"), 14);
  const GgufFile f(dir / "m.gguf");
  EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").type, TensorType::Q4_1);
  EXPECT_EQ(f.tensor("token_embd.weight").type, TensorType::F32);  // FP tensors stay exact
  EXPECT_EQ(f.at("general.file_type").as_uint(""), 3u);
  EXPECT_EQ(f.at("general.quantization_version").as_uint(""), 2u);
  expect_same_logits(Model::load(dir / "ckpt"), Model::load(dir / "m.gguf"));

  testing::expect_error([&] { export_gguf(dir / "ckpt", TensorType::Q4_0, dir / "bad.gguf"); },
                        {"model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight", "4-bit asymmetric", "q4_0"});
  testing::expect_error([&] { export_gguf(dir / "ckpt", TensorType::F16, dir / "bad.gguf"); }, {"ckpt", "f16"});
  expect_only(dir, {"ckpt", "m.gguf"});
}

// The checkpoint records the fp16 grid, and both the writer and the loader hold it to it.
TEST(WquantFp16Grid, CheckpointRecordsAndValidatesIt) {
  Model m = Model::load(testing::default_model());
  auto quantize_all = [&](bool fp16) {
    std::map<std::string, wq::QuantizedWeight> q;
    for (Block& b : m.blocks)
      for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down})
        q[l->name] = wq::round_to_grid(l->weight, wq::minmax_grid(l->weight, format(4, true, 32, fp16)));
    return q;
  };
  const fs::path dir = fresh("fp16_checkpoint");
  fs::create_directories(dir);
  wq::write_quantized_checkpoint(m, quantize_all(true), {}, dir / "fp16", false);
  const auto qc = wq::read_quantization_config(dir / "fp16" / "config.json");
  ASSERT_TRUE(qc.has_value());
  EXPECT_TRUE(qc->format.fp16);
  EXPECT_NE(slurp(dir / "fp16" / "config.json").find("\"fp16_grid\": true"), std::string::npos);

  // Writer: an fp16 format whose scale is not fp16.
  auto bad = quantize_all(true);
  bad.begin()->second.grid.scale[0] = 0.1f;
  testing::expect_error([&] { wq::write_quantized_checkpoint(m, bad, {}, dir / "bad", false); },
                        {bad.begin()->first, "fp16 grid", "row 0"});
  EXPECT_FALSE(fs::exists(dir / "bad"));

  // Loader: a plain checkpoint whose config claims fp16_grid.
  wq::write_quantized_checkpoint(m, quantize_all(false), {}, dir / "plain", false);
  EXPECT_EQ(slurp(dir / "plain" / "config.json").find("fp16_grid"), std::string::npos);  // older readers: same keys
  std::string config = slurp(dir / "plain" / "config.json");
  config.replace(config.find("\"sym\": true"), 11, "\"sym\": true, \"fp16_grid\": true");
  spill(dir / "plain" / "config.json", config);
  testing::expect_error([&] { Model::load(dir / "plain"); }, {"scales", "fp16_grid", "row 0, group 0"});
}

}  // namespace
}  // namespace tquant::gguf
