#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "test_paths.h"

namespace tquant {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test, so files from one test never satisfy another.
fs::path test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path dir = testing::scratch("safetensors") / info->name();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Raw file bytes assembled by hand (not by write_safetensors, which must not be its own oracle).
std::string raw_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class T>
std::string le_bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// Spaces after the JSON so the data area starts 8-byte aligned, as real writers do.
std::string padded(std::string header) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

// The message of the tquant::Error that `f` throws, or a test failure if it throws none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a tquant::Error";
  return "";
}

void expect_contains(const std::string& message, std::initializer_list<std::string> parts) {
  for (const std::string& part : parts)
    EXPECT_NE(message.find(part), std::string::npos)
        << "message lacks \"" << part << "\":\n  " << message;
}

// Writes a bad file and checks that opening it fails with all of `parts` in the message.
void expect_open_error(const std::string& file_name, const std::string& bytes,
                       std::initializer_list<std::string> parts) {
  const fs::path path = test_dir() / file_name;
  write_bytes(path, bytes);
  const std::string message = error_of([&] { SafetensorsFile f(path); });
  expect_contains(message, {path.string()});
  expect_contains(message, parts);
}

// How many of this process's memory mappings are of `path` with the given permissions.
int mappings_of(const fs::path& path, const std::string& perms) {
  std::ifstream maps("/proc/self/maps");
  const std::string file = fs::canonical(path).string();
  int count = 0;
  for (std::string line; std::getline(maps, line);)
    if (line.find(perms) != std::string::npos && line.size() >= file.size() &&
        line.compare(line.size() - file.size(), file.size(), file) == 0)
      ++count;
  return count;
}

Tensor tensor_of(Shape shape, std::initializer_list<float> values) {
  Tensor t(std::move(shape));
  int64_t i = 0;
  for (float v : values) t[i++] = v;
  EXPECT_EQ(i, t.numel());
  return t;
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(Safetensors, F32RoundTripIsBitExactWithMetadataAndPaddedHeader) {
  const fs::path path = test_dir() / "f32.safetensors";
  const Tensor a = tensor_of({2, 3}, {1.5f, -0.0f, 0x1p-149f, 3.4e38f, -7.25f, 1e-30f});
  const Tensor b = tensor_of({1}, {42.0f});
  write_safetensors(path, {f32_tensor("a.weight", a), f32_tensor("b", b)},
                    {{"format", "pt"}, {"note", "x"}});

  // The layout, checked on the bytes: 8-aligned header padded with spaces, then a then b.
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 7 * 4);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, a.data(), 24), 0);
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n + 24, b.data(), 4), 0);

  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a.weight");  // sorted by offset
  EXPECT_EQ(f.tensors()[1].begin, 24u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "x");
  const Tensor got = f.load_f32("a.weight");
  EXPECT_EQ(got.shape(), (Shape{2, 3}));
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(a[i])) << i;
  EXPECT_EQ(f.load_f32("b")[0], 42.0f);
}

TEST(Safetensors, HalfRoundTripIsCorrectlyRounded) {
  const fs::path path = test_dir() / "half.safetensors";
  const Tensor x = tensor_of({5}, {1.0f, -2.5f, 65504.0f, 6.0e-8f, 1e-40f});
  write_safetensors(path, {f16_tensor("h", x), bf16_tensor("b", x)});
  SafetensorsFile f(path);

  auto halves = [&](const std::string& name) {
    std::vector<uint16_t> v(5);
    std::memcpy(v.data(), f.raw(*f.find(name)).data(), 10);
    return v;
  };
  // Hand-computed: 6e-8 is one F16 subnormal step (2^-24); 1e-40 underflows F16 to +0;
  // BF16 keeps F32's exponent, so 65504 rounds to 65536, 6e-8 = 1.0066 * 2^-24 to
  // (1 + 1/128) * 2^-24 and 1e-40 to 2^-133.
  EXPECT_EQ(halves("h"), (std::vector<uint16_t>{0x3c00, 0xc100, 0x7bff, 0x0001, 0x0000}));
  EXPECT_EQ(halves("b"), (std::vector<uint16_t>{0x3f80, 0xc020, 0x4780, 0x3381, 0x0001}));

  const Tensor h = f.load_f32("h");
  EXPECT_EQ(f.find("h")->dtype, DType::F16);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_EQ(h[3], 0x1p-24f);
  EXPECT_EQ(h[4], 0.0f);
  const Tensor b = f.load_f32("b");
  EXPECT_EQ(b[1], -2.5f);
  EXPECT_EQ(b[2], 65536.0f);
  EXPECT_EQ(b[3], 0x1.02p-24f);
  EXPECT_EQ(b[4], 0x1p-133f);
}

TEST(Safetensors, F64IsNarrowedAndIntegersAreRawOnly) {
  const fs::path path = test_dir() / "mixed.safetensors";
  const std::string header = "{" + entry("d", "F64", "[3]", 0, 24) + "," +
                             entry("i", "I32", "[2]", 24, 32) + "}";
  write_bytes(path, raw_file(header, le_bytes<double>({0.1, -3.0, 1e-300}) +
                                         le_bytes<int32_t>({7, -9})));
  SafetensorsFile f(path);
  const Tensor d = f.load_f32("d");
  EXPECT_EQ(d[0], 0.1f);
  EXPECT_EQ(d[1], -3.0f);
  EXPECT_EQ(d[2], 0.0f);
  const auto raw = f.raw(*f.find("i"));
  int32_t ints[2];
  std::memcpy(ints, raw.data(), 8);
  EXPECT_EQ(ints[1], -9);
  const std::string message = error_of([&] { f.load_f32("i"); });
  expect_contains(message, {path.string(), "\"i\"", "I32", "raw()"});
}

TEST(Safetensors, F32ViewsAreCopyOnWriteAndPrivatePerLoad) {
  const fs::path path = test_dir() / "big.safetensors";
  Tensor big({64, 64});  // 16 KiB: large enough to be mapped rather than copied
  for (int64_t i = 0; i < big.numel(); ++i) big[i] = static_cast<float>(i) * 0.5f;
  write_safetensors(path, {f32_tensor("w", big)});
  const std::string before = read_bytes(path);

  SafetensorsFile f(path);
  Tensor first = f.load_f32("w");
  // Zero-copy: the tensor lives in a private writable mapping of the file, not a heap copy.
  EXPECT_GE(mappings_of(path, " rw-p "), 1);
  EXPECT_EQ(first[100], 50.0f);
  first[100] = -1.0f;  // must neither reach the file nor a later load
  const Tensor second = f.load_f32("w");
  EXPECT_EQ(second[100], 50.0f);
  EXPECT_EQ(first[100], -1.0f);
  EXPECT_EQ(read_bytes(path), before);
}

TEST(Safetensors, MisalignedF32IsCopiedWithCorrectValues) {
  const fs::path path = test_dir() / "misaligned.safetensors";
  // A 2-byte F16 tensor first puts the F32 data at an odd multiple of 2.
  const std::string header = padded("{" + entry("h", "F16", "[1]", 0, 2) + "," +
                                    entry("w", "F32", "[2000]", 2, 8002) + "}");
  std::string data = le_bytes<uint16_t>({0x3c00});
  for (int i = 0; i < 2000; ++i) data += le_bytes<float>({static_cast<float>(i) - 0.25f});
  write_bytes(path, raw_file(header, data));
  SafetensorsFile f(path);
  const Tensor w = f.load_f32("w");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data()) % alignof(float), 0u);
  EXPECT_EQ(w[0], -0.25f);
  EXPECT_EQ(w[1999], 1998.75f);
}

// ---------------------------------------------------------------------------------------------
// The real default model

TEST(Safetensors, DefaultModelLoads) {
  const fs::path dir = fs::path(TQUANT_SHARED_DIR) / "models" / "tinystories-656k";
  const Checkpoint ckpt = Checkpoint::open(dir);
  // 20 stored tensors plus the tied embedding, which safetensors records as an alias.
  EXPECT_EQ(ckpt.files().at(0)->tensors().size(), 20u);
  EXPECT_EQ(ckpt.names().size(), 21u);
  EXPECT_EQ(ckpt.info("lm_head.weight").shape, (Shape{2048, 128}));
  EXPECT_EQ(ckpt.info("model.layers.1.self_attn.k_proj.weight").shape, (Shape{64, 128}));
  EXPECT_EQ(ckpt.info("model.layers.0.mlp.down_proj.weight").shape, (Shape{128, 384}));
  EXPECT_EQ(ckpt.info("model.norm.weight").dtype, DType::F32);
  EXPECT_EQ(ckpt.metadata().at("format"), "pt");
  EXPECT_EQ(ckpt.metadata().at("model.embed_tokens.weight"), "lm_head.weight");
  EXPECT_TRUE(ckpt.has("model.embed_tokens.weight"));
  EXPECT_FALSE(ckpt.has("format"));
  EXPECT_EQ(ckpt.stored_name("model.embed_tokens.weight"), "lm_head.weight");
  EXPECT_EQ(ckpt.stored_name("lm_head.weight"), "lm_head.weight");
  EXPECT_EQ(ckpt.info("model.embed_tokens.weight").shape, (Shape{2048, 128}));
  EXPECT_EQ(ckpt.load_f32("model.embed_tokens.weight")[0], -0.68359375f);

  // Reference values read with Python's struct module from the same file.
  const Tensor lm_head = ckpt.load_f32("lm_head.weight");
  EXPECT_EQ(lm_head[0], -0.68359375f);
  EXPECT_EQ(lm_head[lm_head.numel() - 1], -0.421875f);
  double sum = 0;
  for (int64_t i = 0; i < lm_head.numel(); ++i) sum += lm_head[i];
  EXPECT_NEAR(sum, 2512.834466814995, 1e-9);
  EXPECT_EQ(ckpt.load_f32("model.norm.weight")[1], 0.69921875f);
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

void write_two_shards(const fs::path& dir) {
  write_safetensors(dir / "model-00001-of-00002.safetensors",
                    {f32_tensor("a", tensor_of({2}, {1.0f, 2.0f}))}, {{"format", "pt"}});
  write_safetensors(dir / "model-00002-of-00002.safetensors",
                    {f32_tensor("b", tensor_of({1, 2}, {3.0f, 4.0f})),
                     bf16_tensor("c", tensor_of({1}, {-0.5f}))});
}

const char* kTwoShardIndex = R"({"metadata": {"total_size": 18}, "weight_map": {
  "a": "model-00001-of-00002.safetensors",
  "b": "model-00002-of-00002.safetensors",
  "c": "model-00002-of-00002.safetensors"}})";

TEST(Checkpoint, ShardedCheckpointLoads) {
  const fs::path dir = test_dir();
  write_two_shards(dir);
  write_bytes(dir / "model.safetensors.index.json", kTwoShardIndex);
  const Checkpoint ckpt = Checkpoint::open(dir);
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ckpt.files().size(), 2u);
  EXPECT_EQ(ckpt.load_f32("a")[1], 2.0f);
  EXPECT_EQ(ckpt.load_f32("b").shape(), (Shape{1, 2}));
  EXPECT_EQ(ckpt.load_f32("b")[1], 4.0f);
  EXPECT_EQ(ckpt.info("c").dtype, DType::BF16);
  EXPECT_EQ(ckpt.load_f32("c")[0], -0.5f);
  EXPECT_EQ(ckpt.metadata().at("format"), "pt");
}

TEST(Checkpoint, MissingShardIsNamed) {
  const fs::path dir = test_dir();
  write_two_shards(dir);
  fs::remove(dir / "model-00002-of-00002.safetensors");
  write_bytes(dir / "model.safetensors.index.json", kTwoShardIndex);
  const std::string message = error_of([&] { Checkpoint::open(dir); });
  expect_contains(message, {"model.safetensors.index.json", "model-00002-of-00002.safetensors",
                            "missing", "\"b\""});
}

TEST(Checkpoint, TensorNotInItsNamedShard) {
  const fs::path dir = test_dir();
  write_two_shards(dir);
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": {
    "a": "model-00002-of-00002.safetensors",
    "b": "model-00002-of-00002.safetensors",
    "c": "model-00002-of-00002.safetensors"}})");
  const std::string message = error_of([&] { Checkpoint::open(dir); });
  expect_contains(message, {"\"a\"", "model-00002-of-00002.safetensors", "does not contain it"});
}

TEST(Checkpoint, TensorInTwoShards) {
  const fs::path dir = test_dir();
  write_two_shards(dir);
  write_safetensors(dir / "model-00002-of-00002.safetensors",
                    {f32_tensor("a", tensor_of({1}, {9.0f})),
                     f32_tensor("b", tensor_of({1, 2}, {3.0f, 4.0f})),
                     bf16_tensor("c", tensor_of({1}, {-0.5f}))});
  write_bytes(dir / "model.safetensors.index.json", kTwoShardIndex);
  const std::string message = error_of([&] { Checkpoint::open(dir); });
  expect_contains(message, {"\"a\"", "two shards", "model-00001-of-00002.safetensors",
                            "model-00002-of-00002.safetensors"});
}

TEST(Checkpoint, ShardNameMayNotLeaveTheFolder) {
  const fs::path dir = test_dir();
  write_bytes(dir / "model.safetensors.index.json",
              R"({"weight_map": {"a": "../elsewhere.safetensors"}})");
  const std::string message = error_of([&] { Checkpoint::open(dir); });
  expect_contains(message, {"\"a\"", "../elsewhere.safetensors", "inside the model folder"});
}

TEST(Checkpoint, PickleOnlyFolderIsRefused) {
  const fs::path dir = test_dir();
  write_bytes(dir / "pytorch_model.bin", "not really a pickle");
  write_bytes(dir / "config.json", "{}");
  const std::string message = error_of([&] { Checkpoint::open(dir); });
  expect_contains(message, {dir.string(), "pytorch_model.bin", "pickle", "arbitrary code",
                            "save_pretrained", "safe_serialization=True", "save_file"});
}

TEST(Checkpoint, EmptyFolderSaysWhatWasLookedFor) {
  const fs::path dir = test_dir();
  const std::string message = error_of([&] { Checkpoint::open(dir); });
  expect_contains(message, {dir.string(), "model.safetensors", "model.safetensors.index.json",
                            "no weights"});
}

TEST(Checkpoint, MissingTensorNamesTensorAndFolder) {
  const fs::path dir = test_dir();
  write_safetensors(dir / "model.safetensors", {f32_tensor("a", tensor_of({1}, {1.0f}))});
  const Checkpoint ckpt = Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.has("a"));
  const std::string message = error_of([&] { ckpt.load_f32("model.nope.weight"); });
  expect_contains(message, {"\"model.nope.weight\"", dir.string()});
  expect_contains(error_of([&] { ckpt.info("zzz"); }), {"\"zzz\"", dir.string()});
}

// ---------------------------------------------------------------------------------------------
// Bad files: each one its own message, naming the file and (where there is one) the tensor.

const std::string kW24 = le_bytes<float>({1, 2, 3, 4, 5, 6});  // 24 bytes of data

TEST(SafetensorsErrors, ShorterThanEightBytes) {
  expect_open_error("short.safetensors", std::string("\x10\0\0", 3), {"too short", "3 bytes"});
}

TEST(SafetensorsErrors, TruncatedData) {
  const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "," +
                             entry("b", "F32", "[4]", 8, 24) + "}";
  std::string bytes = raw_file(header, kW24);
  bytes.resize(bytes.size() - 4);
  expect_open_error("truncated.safetensors", bytes, {"truncated", "\"b\"", "[8, 24]", "20 bytes"});
}

TEST(SafetensorsErrors, HeaderLengthPastTheEnd) {
  std::string bytes = raw_file("{}", "");
  const uint64_t n = 1000;
  std::memcpy(bytes.data(), &n, 8);
  expect_open_error("past_end.safetensors", bytes, {"header length 1000", "past the end"});
}

TEST(SafetensorsErrors, AbsurdHeaderLength) {
  std::string bytes = raw_file("{}", "");
  const uint64_t n = 1ull << 62;
  std::memcpy(bytes.data(), &n, 8);
  expect_open_error("huge.safetensors", bytes, {"absurdly large"});
}

TEST(SafetensorsErrors, MalformedJson) {
  expect_open_error("malformed.safetensors", raw_file(R"({"w": {"dtype": "F32",)", ""),
                    {"not valid JSON"});
}

TEST(SafetensorsErrors, HeaderNotAnObject) {
  expect_open_error("array.safetensors", raw_file("[1, 2]", ""), {"header is a JSON array"});
}

TEST(SafetensorsErrors, EntryNotAnObject) {
  expect_open_error("entry.safetensors", raw_file(R"({"w": 5})", ""),
                    {"\"w\"", "entry is a number"});
}

TEST(SafetensorsErrors, MissingField) {
  expect_open_error("nodtype.safetensors",
                    raw_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", kW24.substr(0, 4)),
                    {"\"w\"", "no \"dtype\""});
}

TEST(SafetensorsErrors, WronglyTypedOffsets) {
  expect_open_error(
      "offsets.safetensors",
      raw_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})", kW24.substr(0, 4)),
      {"\"w\"", "\"data_offsets\" must be [begin, end]"});
}

TEST(SafetensorsErrors, UnknownDtype) {
  expect_open_error("dtype.safetensors", raw_file("{" + entry("w", "F12", "[6]", 0, 24) + "}", kW24),
                    {"\"w\"", "unknown dtype \"F12\"", "known: BOOL", "BF16", "F64"});
}

TEST(SafetensorsErrors, NegativeDimension) {
  expect_open_error("negative.safetensors",
                    raw_file("{" + entry("w", "F32", "[-2, 3]", 0, 24) + "}", kW24),
                    {"\"w\"", "negative dimension -2"});
}

TEST(SafetensorsErrors, OverflowingShape) {
  expect_open_error("overflow.safetensors",
                    raw_file("{" + entry("w", "F32", "[4611686018427387904, 8]", 0, 24) + "}", kW24),
                    {"\"w\"", "overflows"});
}

TEST(SafetensorsErrors, ShapeDoesNotMatchByteRange) {
  expect_open_error("mismatch.safetensors",
                    raw_file("{" + entry("w", "F32", "[2, 3]", 0, 20) + "}", kW24.substr(0, 20)),
                    {"\"w\"", "needs 24 bytes", "span 20 bytes"});
}

TEST(SafetensorsErrors, BeginAfterEnd) {
  expect_open_error("reversed.safetensors",
                    raw_file("{" + entry("w", "F32", "[2]", 16, 8) + "}", kW24),
                    {"\"w\"", "begin > end"});
}

TEST(SafetensorsErrors, OverlappingOffsets) {
  const std::string header = "{" + entry("a", "F32", "[4]", 0, 16) + "," +
                             entry("b", "F32", "[4]", 8, 24) + "}";
  expect_open_error("overlap.safetensors", raw_file(header, kW24),
                    {"\"b\"", "overlap tensor \"a\"", "[8, 24]"});
}

TEST(SafetensorsErrors, OutOfRangeOffsets) {
  expect_open_error("range.safetensors",
                    raw_file("{" + entry("w", "F32", "[4]", 64, 80) + "}", kW24.substr(0, 16)),
                    {"\"w\"", "[64, 80]", "outside the data area", "16 bytes"});
}

TEST(SafetensorsErrors, GapBetweenTensors) {
  const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "," +
                             entry("b", "F32", "[2]", 16, 24) + "}";
  expect_open_error("gap.safetensors", raw_file(header, kW24),
                    {"\"b\"", "8 unused bytes after tensor \"a\""});
}

TEST(SafetensorsErrors, TrailingBytesNotCovered) {
  expect_open_error("trailing.safetensors",
                    raw_file("{" + entry("w", "F32", "[2]", 0, 8) + "}", kW24.substr(0, 16)),
                    {"last 8 bytes of the data area belong to no tensor"});
}

TEST(SafetensorsErrors, DuplicateTensorNames) {
  const std::string header = "{" + entry("w", "F32", "[2]", 0, 8) + "," +
                             entry("w", "F32", "[2]", 8, 16) + "}";
  expect_open_error("dup.safetensors", raw_file(header, kW24.substr(0, 16)),
                    {"duplicate key \"w\"", "twice"});
}

TEST(SafetensorsErrors, DuplicateFieldInsideAnEntry) {
  const std::string header =
      R"({"w": {"dtype": "F32", "dtype": "F16", "shape": [2], "data_offsets": [0, 8]}})";
  expect_open_error("dupfield.safetensors", raw_file(header, kW24.substr(0, 8)),
                    {"duplicate key \"dtype\"", "inside \"w\""});
}

TEST(SafetensorsErrors, MetadataMustMapStringsToStrings) {
  expect_open_error("meta.safetensors", raw_file(R"({"__metadata__": {"format": 1}})", ""),
                    {"__metadata__", "\"format\" is a number"});
}

void expect_load_error(const std::string& file_name, const std::string& bytes,
                       const std::string& tensor, std::initializer_list<std::string> parts) {
  const fs::path path = test_dir() / file_name;
  write_bytes(path, bytes);
  SafetensorsFile f(path);  // the header is fine; the values are not
  const std::string message = error_of([&] { f.load_f32(tensor); });
  expect_contains(message, {path.string(), "\"" + tensor + "\""});
  expect_contains(message, parts);
}

TEST(SafetensorsErrors, NaNWeights) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_load_error("nan.safetensors",
                    raw_file("{" + entry("w", "F32", "[2, 2]", 0, 16) + "}",
                             le_bytes<float>({1, 2, nan, 4})),
                    "w", {"NaN at flat index 2"});
}

TEST(SafetensorsErrors, InfWeights) {
  const float inf = std::numeric_limits<float>::infinity();
  expect_load_error("inf.safetensors",
                    raw_file("{" + entry("w", "F32", "[3]", 0, 12) + "}", le_bytes<float>({1, -inf, 3})),
                    "w", {"-Inf at flat index 1"});
}

TEST(SafetensorsErrors, NaNInALargeMappedTensor) {
  std::vector<float> values(5000, 0.5f);
  values[4321] = std::numeric_limits<float>::quiet_NaN();
  std::string data(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  expect_load_error("nan_big.safetensors",
                    raw_file(padded("{" + entry("big", "F32", "[5000]", 0, 20000) + "}"), data), "big",
                    {"NaN at flat index 4321"});
}

TEST(SafetensorsErrors, InfInHalfWeights) {
  expect_load_error("inf_f16.safetensors",
                    raw_file("{" + entry("h", "F16", "[2]", 0, 4) + "}",
                             le_bytes<uint16_t>({0x3c00, 0x7c00})),
                    "h", {"F16", "+Inf at flat index 1"});
  expect_load_error("nan_bf16.safetensors",
                    raw_file("{" + entry("b", "BF16", "[1]", 0, 2) + "}", le_bytes<uint16_t>({0xffc1})),
                    "b", {"BF16", "NaN at flat index 0"});
}

TEST(SafetensorsErrors, F64BeyondFloatRange) {
  expect_load_error("f64.safetensors",
                    raw_file("{" + entry("d", "F64", "[2]", 0, 16) + "}", le_bytes<double>({1.0, 1e300})),
                    "d", {"flat index 1", "beyond the float32 range"});
}

TEST(SafetensorsWrite, RefusesInconsistentInput) {
  const fs::path path = test_dir() / "bad.safetensors";
  TensorToWrite t{"w", DType::F16, {3}, std::vector<std::byte>(4)};
  expect_contains(error_of([&] { write_safetensors(path, {t}); }),
                  {path.string(), "\"w\"", "4 bytes given", "needs 6"});
  const TensorToWrite ok = f32_tensor("w", tensor_of({1}, {1.0f}));
  expect_contains(error_of([&] { write_safetensors(path, {ok, ok}); }), {"\"w\"", "twice"});
  EXPECT_FALSE(fs::exists(path));  // nothing half-written is left behind
}

}  // namespace
}  // namespace tquant
