#include "wquant/quantized_checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "core/temp_dir.h"
#include "expect_error.h"
#include "io/half.h"
#include "model/model.h"
#include "test_paths.h"
#include "wquant/grid_search.h"
#include "wquant/packing.h"

namespace tquant::wq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// name -> bytes of every file in a folder (flat).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out[e.path().filename().string()] = slurp(e.path());
  return out;
}

fs::path fresh(const std::string& name) {
  const fs::path dir = testing::scratch("quantized_checkpoint") / name;
  fs::remove_all(dir);
  return dir;
}

// Nothing named "<out>.tmp-*" is left beside `out`.
void expect_no_temporaries(const fs::path& out) {
  for (const auto& e : fs::directory_iterator(out.parent_path())) {
    const std::string n = e.path().filename().string();
    EXPECT_NE(n.rfind(out.filename().string() + ".tmp-", 0), 0u) << "left behind: " << e.path();
  }
}

QuantizedWeight rtn(const Tensor& W, WeightFormat f) { return round_to_grid(W, minmax_grid(W, f)); }

WeightFormat fmt_of(int bits, int64_t group, bool sym) {
  WeightFormat f;
  f.bits = bits;
  f.group = group;
  f.symmetric = sym;
  return f;
}

Linear* find_linear(Model& m, const std::string& name) {
  for (Linear* l : m.linears())
    if (l->name == name) return l;
  return nullptr;
}

// Replaces the quantized layers' weights in memory: the reference every loaded model must match.
void replace_weights(Model& m, const std::map<std::string, QuantizedWeight>& q) {
  for (const auto& [name, w] : q) find_linear(m, name)->weight = w.dequantize();
}

void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()), 0) << what;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  float d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

Tensor logits(const Model& m, int vocab) {
  std::vector<int32_t> ids = {1, 5, 17, 3, 9, 2, 11, 4};
  for (int32_t& i : ids) i %= vocab;
  return m.forward(Batch::single(ids));
}

// The default model's quantization: every block linear, in three formats, ζ on two layers.
std::map<std::string, QuantizedWeight> quantize_default(Model& m) {
  std::map<std::string, QuantizedWeight> q;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    Block& b = m.blocks[i];
    for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}) {
      WeightFormat f = fmt_of(4, 32, false);
      if (l == &b.down) f = fmt_of(3, 0, true);
      if (l == &b.v && i == 1) f = fmt_of(2, 64, false);
      QuantizedWeight w = rtn(l->weight, f);
      if (l == &b.q || l == &b.up) {
        w.zeta.resize(l->in());
        for (float& z : w.zeta) z = u(rng);
      }
      q.emplace(l->name, std::move(w));
    }
  }
  return q;
}

// Rewrites a folder's model.safetensors through `edit` (tensors and metadata as stored).
void rewrite(const fs::path& dir, const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  std::vector<TensorToWrite> tensors;
  std::map<std::string, std::string> meta;
  {
    SafetensorsFile f(dir / "model.safetensors");
    meta = f.metadata();
    for (const TensorInfo& t : f.tensors()) {
      const auto raw = f.raw(t);
      tensors.push_back({t.name, t.dtype, t.shape, std::vector<std::byte>(raw.begin(), raw.end())});
    }
  }
  edit(tensors);
  write_safetensors(dir / "model.safetensors", tensors, meta);
}

TensorToWrite& tensor(std::vector<TensorToWrite>& ts, const std::string& name) {
  for (TensorToWrite& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

void copy_folder(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    fs::copy_file(e.path(), to / e.path().filename());
    fs::permissions(to / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
  }
}

json read_json(const fs::path& p) { return json::parse(slurp(p)); }

// ---------------------------------------------------------------------------------------------
// The default LLaMA model
// ---------------------------------------------------------------------------------------------

TEST(QuantizedCheckpoint, DefaultModelRoundTrip) {
  const fs::path in = testing::default_model();
  const auto before = snapshot(in);
  Model m = Model::load(in);
  const auto q = quantize_default(m);
  const json info = {{"method", "rtn"}, {"calibration", {{"samples", 0}}}};
  const fs::path out = fresh("llama");
  write_quantized_checkpoint(m, q, info, out, /*fake=*/false);
  EXPECT_EQ(snapshot(in), before) << "the input folder changed";
  expect_no_temporaries(out);

  // Folder contents: every non-weight file copied byte for byte.
  const auto after = snapshot(out);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
    EXPECT_EQ(after.at(f), before.at(f)) << f;
  EXPECT_EQ(after.size(), before.size());

  // config.json: the input's plus quantization_config.
  const json cfg = read_json(out / "config.json");
  const json in_cfg = read_json(in / "config.json");
  for (const auto& [k, v] : in_cfg.items()) EXPECT_EQ(cfg.at(k), v) << k;
  const json& qc = cfg.at("quantization_config");
  EXPECT_EQ(qc.at("quant_method"), "tquant");
  EXPECT_EQ(qc.at("format_version"), 1);
  EXPECT_EQ(qc.at("bits"), 4);
  EXPECT_EQ(qc.at("group_size"), 32);
  EXPECT_EQ(qc.at("sym"), false);
  EXPECT_EQ(qc.at("method"), "rtn");
  EXPECT_EQ(qc.at("calibration").at("samples"), 0);
  EXPECT_EQ(qc.at("modules").size(), 14u);
  EXPECT_EQ(qc.at("modules").at(0), "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(qc.at("overrides").at("model.layers.0.mlp.down_proj"),
            (json{{"bits", 3}, {"group_size", -1}, {"sym", true}}));
  EXPECT_EQ(qc.at("overrides").at("model.layers.1.self_attn.v_proj"),
            (json{{"bits", 2}, {"group_size", 64}, {"sym", false}}));

  // model.safetensors: packed tensors instead of the quantized weights, the rest as in the input,
  // the tied embedding still an alias of lm_head.weight.
  {
    SafetensorsFile f(out / "model.safetensors");
    EXPECT_EQ(f.find("model.layers.0.self_attn.q_proj.weight"), nullptr);
    const TensorInfo* qw = f.find("model.layers.0.self_attn.q_proj.qweight");
    ASSERT_NE(qw, nullptr);
    EXPECT_EQ(qw->dtype, DType::U8);
    EXPECT_EQ(qw->shape, (Shape{128, 64}));
    EXPECT_EQ(f.find("model.layers.0.self_attn.q_proj.scales")->shape, (Shape{128, 4}));
    EXPECT_EQ(f.find("model.layers.0.self_attn.q_proj.scales")->dtype, DType::F32);
    EXPECT_EQ(f.find("model.layers.0.self_attn.q_proj.zeros")->dtype, DType::U8);
    EXPECT_EQ(f.find("model.layers.0.self_attn.q_proj.zeta")->shape, (Shape{128}));
    EXPECT_EQ(f.find("model.layers.0.self_attn.k_proj.zeta"), nullptr);
    EXPECT_EQ(f.find("model.layers.0.mlp.down_proj.qweight")->shape, (Shape{128, 144}));  // 384 * 3 / 8
    EXPECT_EQ(f.find("model.layers.0.mlp.down_proj.scales")->shape, (Shape{128, 1}));
    EXPECT_EQ(f.find("model.layers.1.self_attn.v_proj.qweight")->shape, (Shape{64, 32}));
    ASSERT_NE(f.find("lm_head.weight"), nullptr);
    EXPECT_EQ(f.find("model.embed_tokens.weight"), nullptr);
    EXPECT_EQ(f.metadata().at("model.embed_tokens.weight"), "lm_head.weight");
    EXPECT_EQ(f.metadata().at("format"), "pt");
    EXPECT_EQ(f.tensors().size(), 14u * 3 + 4 /* zeta */ + 1 + 5 /* norms */);
    // The stored codes are the quantizer's codes, in the documented packing.
    const auto raw = f.raw(*qw);
    const QuantizedWeight& q0 = q.at("layers.0.attn.q_proj");
    EXPECT_EQ(unpack_codes({reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, 128, 128, 4), q0.codes);
  }

  // Loading: weights equal dequantize() bit for bit, everything else unchanged, same logits.
  const Model loaded = Model::load(out);
  Model ref = Model::load(in);
  replace_weights(ref, q);
  for (size_t i = 0; i < ref.blocks.size(); ++i) {
    const Block &a = loaded.blocks[i], &b = ref.blocks[i];
    for (auto [la, lb] : {std::pair{&a.q, &b.q}, {&a.k, &b.k}, {&a.v, &b.v}, {&a.o, &b.o}, {&a.gate, &b.gate},
                          {&a.up, &b.up}, {&a.down, &b.down}}) {
      expect_bitwise_equal(la->weight, q.at(lb->name).dequantize(), lb->name);
      expect_bitwise_equal(la->weight, lb->weight, lb->name);
    }
    expect_bitwise_equal(a.attn_norm.gamma, b.attn_norm.gamma, "attn_norm");
  }
  expect_bitwise_equal(loaded.token_embedding, ref.token_embedding, "embedding");
  EXPECT_EQ(loaded.lm_head.weight.data(), loaded.token_embedding.data()) << "still tied";
  const Tensor y = logits(loaded, 2048), y_ref = logits(ref, 2048), y_fp = logits(Model::load(in), 2048);
  expect_bitwise_equal(y, y_ref, "logits");
  EXPECT_GT(max_abs_diff(y, y_fp), 1e-3f) << "quantization should change the logits";

  // read_quantized_linear gives the quantizer's weight back.
  const Checkpoint ckpt = Checkpoint::open(out);
  const QuantizedWeight back =
      read_quantized_linear(ckpt, "model.layers.0.self_attn.q_proj", fmt_of(4, 32, false), 128, 128);
  EXPECT_EQ(back.codes, q.at("layers.0.attn.q_proj").codes);
  EXPECT_EQ(back.grid.scale, q.at("layers.0.attn.q_proj").grid.scale);
  EXPECT_EQ(back.grid.zero, q.at("layers.0.attn.q_proj").grid.zero);
  EXPECT_EQ(back.zeta, q.at("layers.0.attn.q_proj").zeta);
}

TEST(QuantizedCheckpoint, ChangedNormsAreWrittenFromTheModel) {
  Model m = Model::load(testing::default_model());
  auto q = quantize_default(m);
  // What Z-Fold does: fold a factor into a norm's γ.
  for (int64_t i = 0; i < m.blocks[0].attn_norm.gamma.numel(); ++i) m.blocks[0].attn_norm.gamma[i] *= 1.25f;
  m.final_norm.gamma = m.final_norm.gamma.clone();
  m.final_norm.gamma[3] = 7.f;
  const fs::path out = fresh("llama-norms");
  write_quantized_checkpoint(m, q, json::object(), out, false);
  const Model loaded = Model::load(out);
  expect_bitwise_equal(loaded.blocks[0].attn_norm.gamma, m.blocks[0].attn_norm.gamma, "folded gamma");
  expect_bitwise_equal(loaded.final_norm.gamma, m.final_norm.gamma, "final norm");
  replace_weights(m, q);
  expect_bitwise_equal(logits(loaded, 2048), logits(m, 2048), "logits");
}

TEST(QuantizedCheckpoint, FakeLoadsThroughThePlainPath) {
  const fs::path in = testing::default_model();
  const auto before = snapshot(in);
  Model m = Model::load(in);
  const auto q = quantize_default(m);
  const fs::path out = fresh("llama-fake");
  write_quantized_checkpoint(m, q, {{"method", "rtn"}}, out, /*fake=*/true);
  EXPECT_EQ(snapshot(in), before);
  const json cfg = read_json(out / "config.json");
  EXPECT_FALSE(cfg.contains("quantization_config"));
  EXPECT_EQ(cfg.at("tquant").at("fake_quantized"), true);
  EXPECT_EQ(cfg.at("tquant").at("method"), "rtn");
  EXPECT_EQ(cfg.at("tquant").at("modules").size(), 14u);
  {
    SafetensorsFile f(out / "model.safetensors");
    for (const TensorInfo& t : f.tensors()) {
      EXPECT_EQ(t.dtype, DType::F32) << t.name;
      EXPECT_EQ(t.name.find("qweight"), std::string::npos) << t.name;
    }
    EXPECT_EQ(f.metadata().at("model.embed_tokens.weight"), "lm_head.weight");
  }
  const Model loaded = Model::load(out);
  Model ref = Model::load(in);
  replace_weights(ref, q);
  expect_bitwise_equal(loaded.blocks[1].down.weight, q.at("layers.1.ffn.down_proj").dequantize(), "down");
  expect_bitwise_equal(logits(loaded, 2048), logits(ref, 2048), "logits");
}

TEST(QuantizedCheckpoint, QuantizedTiedHeadUntiesTheEmbedding) {
  Model m = Model::load(testing::default_model());
  std::map<std::string, QuantizedWeight> q;
  q.emplace("lm_head", rtn(m.lm_head.weight, fmt_of(8, 0, false)));
  q.emplace("layers.0.attn.o_proj", rtn(m.blocks[0].o.weight, fmt_of(4, 0, false)));
  for (bool fake : {false, true}) {
    const fs::path out = fresh(fake ? "llama-head-fake" : "llama-head");
    write_quantized_checkpoint(m, q, json::object(), out, fake);
    EXPECT_EQ(read_json(out / "config.json").at("tie_word_embeddings"), false);
    {
      SafetensorsFile f(out / "model.safetensors");
      ASSERT_NE(f.find("model.embed_tokens.weight"), nullptr);
      EXPECT_EQ(f.metadata().count("model.embed_tokens.weight"), 0u) << "stale alias";
      EXPECT_EQ(f.find("lm_head.qweight") != nullptr, !fake);
    }
    const Model loaded = Model::load(out);
    Model ref = Model::load(testing::default_model());
    ref.lm_head.weight = q.at("lm_head").dequantize();
    ref.blocks[0].o.weight = q.at("layers.0.attn.o_proj").dequantize();
    expect_bitwise_equal(loaded.token_embedding, m.token_embedding, "embedding stays FP");
    expect_bitwise_equal(loaded.lm_head.weight, ref.lm_head.weight, "head");
    expect_bitwise_equal(logits(loaded, 2048), logits(ref, 2048), "logits");
  }
}

// A model loaded from a quantized checkpoint can be written again: its packed tensors are
// accounted for, never copied over the new ones.
TEST(QuantizedCheckpoint, RewritingAQuantizedCheckpoint) {
  Model m = Model::load(testing::default_model());
  const auto q = quantize_default(m);
  const fs::path first = fresh("first");
  write_quantized_checkpoint(m, q, json::object(), first, false);
  const Model loaded = Model::load(first);
  const fs::path fake = fresh("first-as-fake");
  write_quantized_checkpoint(loaded, {}, {{"method", "export"}}, fake, true);
  {
    SafetensorsFile f(fake / "model.safetensors");
    for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.name.find("qweight"), std::string::npos) << t.name;
    EXPECT_EQ(f.tensors().size(), 14u + 1 + 5);
  }
  EXPECT_FALSE(read_json(fake / "config.json").contains("quantization_config"));
  expect_bitwise_equal(logits(Model::load(fake), 2048), logits(loaded, 2048), "logits");
  // Re-quantizing one layer of it: the new codes replace the old ones.
  Model again = Model::load(first);
  std::map<std::string, QuantizedWeight> q2;
  q2.emplace("layers.0.attn.o_proj", rtn(again.blocks[0].o.weight, fmt_of(8, 0, true)));
  const fs::path second = fresh("second");
  write_quantized_checkpoint(again, q2, json::object(), second, false);
  const json qc = read_json(second / "config.json").at("quantization_config");
  EXPECT_EQ(qc.at("modules"), json::array({"model.layers.0.self_attn.o_proj"}));
  const Model reloaded = Model::load(second);
  expect_bitwise_equal(reloaded.blocks[0].o.weight, q2.at("layers.0.attn.o_proj").dequantize(), "o_proj");
  expect_bitwise_equal(reloaded.blocks[1].down.weight, loaded.blocks[1].down.weight, "down stays as loaded");
}

// ---------------------------------------------------------------------------------------------
// Loading errors
// ---------------------------------------------------------------------------------------------

class CorruptedCheckpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Model m = Model::load(testing::default_model());
    std::map<std::string, QuantizedWeight> q;
    q.emplace("layers.0.attn.q_proj", rtn(m.blocks[0].q.weight, fmt_of(4, 32, false)));
    q.at("layers.0.attn.q_proj").zeta.assign(128, 1.f);
    q.emplace("layers.0.ffn.down_proj", rtn(m.blocks[0].down.weight, fmt_of(3, 0, true)));
    // The scratch folder is per process (test_paths.h), so suites in other processes never
    // replace this folder while it is being copied.
    good_ = new fs::path(fresh("good"));
    write_quantized_checkpoint(m, q, json::object(), *good_, false);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*good_);
    delete good_;
  }
  // A copy of the good checkpoint with model.safetensors edited.
  fs::path corrupt(const std::string& name, const std::function<void(std::vector<TensorToWrite>&)>& edit) {
    const fs::path dir = fresh(name);
    copy_folder(*good_, dir);
    rewrite(dir, edit);
    return dir;
  }
  fs::path with_config(const std::string& name, const std::function<void(json&)>& edit) {
    const fs::path dir = fresh(name);
    copy_folder(*good_, dir);
    json c = read_json(dir / "config.json");
    edit(c);
    std::ofstream(dir / "config.json") << c.dump(2);
    return dir;
  }
  static fs::path* good_;
};
fs::path* CorruptedCheckpoint::good_ = nullptr;

const std::string kQ = "model.layers.0.self_attn.q_proj";

TEST_F(CorruptedCheckpoint, GoodOneLoads) { EXPECT_NO_THROW(Model::load(*good_)); }

TEST_F(CorruptedCheckpoint, QweightShape) {
  const fs::path dir = corrupt("bad-shape", [](auto& ts) { tensor(ts, kQ + ".qweight").shape = {64, 128}; });
  testing::expect_error([&] { Model::load(dir); }, {"model.safetensors", kQ + ".qweight", "[64, 128]", "[128, 64]"});
}

TEST_F(CorruptedCheckpoint, QweightDtype) {
  const fs::path dir = corrupt("bad-dtype", [](auto& ts) {
    TensorToWrite& t = tensor(ts, kQ + ".qweight");
    t.dtype = DType::I8;
  });
  testing::expect_error([&] { Model::load(dir); }, {kQ + ".qweight", "I8", "U8"});
}

TEST_F(CorruptedCheckpoint, ZeroOutOfRange) {
  const fs::path dir = corrupt("bad-zero", [](auto& ts) { tensor(ts, kQ + ".zeros").bytes[5] = std::byte{16}; });
  testing::expect_error([&] { Model::load(dir); }, {kQ + ".zeros", "zero point 16", "row 1, group 1", "15"});
}

TEST_F(CorruptedCheckpoint, SymmetricZeroMustBeTheMidpoint) {
  const std::string down = "model.layers.0.mlp.down_proj";
  const fs::path dir = corrupt("bad-symzero", [&](auto& ts) { tensor(ts, down + ".zeros").bytes[2] = std::byte{3}; });
  testing::expect_error([&] { Model::load(dir); }, {down + ".zeros", "symmetric", "must be 4"});
}

TEST_F(CorruptedCheckpoint, NanScale) {
  const fs::path dir = corrupt("bad-scale", [](auto& ts) {
    const float nan = std::nanf("");
    std::memcpy(tensor(ts, kQ + ".scales").bytes.data() + 4 * 7, &nan, 4);
  });
  testing::expect_error([&] { Model::load(dir); }, {"model.safetensors", kQ + ".scales", "NaN"});
}

TEST_F(CorruptedCheckpoint, NegativeScale) {
  const fs::path dir = corrupt("neg-scale", [](auto& ts) {
    const float neg = -0.5f;
    std::memcpy(tensor(ts, kQ + ".scales").bytes.data(), &neg, 4);
  });
  testing::expect_error([&] { Model::load(dir); }, {kQ + ".scales", "-0.5", "> 0"});
}

TEST_F(CorruptedCheckpoint, InfZeta) {
  const fs::path dir = corrupt("bad-zeta", [](auto& ts) {
    const float inf = INFINITY;
    std::memcpy(tensor(ts, kQ + ".zeta").bytes.data() + 4 * 9, &inf, 4);
  });
  testing::expect_error([&] { Model::load(dir); }, {kQ + ".zeta", "Inf"});
}

TEST_F(CorruptedCheckpoint, WrongBitWidth) {
  const std::string down = "model.layers.0.mlp.down_proj";
  const fs::path dir = with_config("bad-bits", [&](json& c) { c["quantization_config"]["overrides"][down]["bits"] = 4; });
  testing::expect_error([&] { Model::load(dir); }, {down + ".qweight", "[128, 144]", "[128, 192]"});
}

TEST_F(CorruptedCheckpoint, MissingScales) {
  const fs::path dir = corrupt("no-scales", [](auto& ts) {
    std::erase_if(ts, [](const TensorToWrite& t) { return t.name == kQ + ".scales"; });
  });
  testing::expect_error([&] { Model::load(dir); }, {kQ + ".scales"});
}

TEST_F(CorruptedCheckpoint, QweightWithoutQuantizationConfig) {
  const fs::path dir = with_config("no-qconfig", [](json& c) { c.erase("quantization_config"); });
  testing::expect_error([&] { Model::load(dir); }, {kQ + ".qweight", "quantization_config"});
}

TEST_F(CorruptedCheckpoint, UnlistedAndMissingModules) {
  const fs::path unlisted = with_config("unlisted", [](json& c) {
    auto& mods = c["quantization_config"]["modules"];
    mods.erase(std::remove(mods.begin(), mods.end(), json(kQ)), mods.end());
  });
  testing::expect_error([&] { Model::load(unlisted); }, {kQ + ".qweight", "modules"});
  const fs::path extra = with_config("extra-module", [](json& c) {
    c["quantization_config"]["modules"].push_back("model.layers.1.self_attn.q_proj");
  });
  testing::expect_error([&] { Model::load(extra); }, {"config.json", "model.layers.1.self_attn.q_proj"});
}

TEST_F(CorruptedCheckpoint, ForeignQuantMethodAndVersion) {
  const fs::path gptq = with_config("gptq", [](json& c) {
    c["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 128}};
  });
  testing::expect_error([&] { Model::load(gptq); }, {"config.json", "\"gptq\"", "not support"});
  const fs::path v2 = with_config("v2", [](json& c) { c["quantization_config"]["format_version"] = 2; });
  testing::expect_error([&] { Model::load(v2); }, {"config.json", "format_version 2"});
  const fs::path bits = with_config("bits9", [](json& c) { c["quantization_config"]["bits"] = 9; });
  testing::expect_error([&] { Model::load(bits); }, {"config.json", "bits = 9"});
}

// ---------------------------------------------------------------------------------------------
// Writing: atomicity, refusals, the input untouched
// ---------------------------------------------------------------------------------------------

TEST(QuantizedCheckpointWrite, InvalidQuantizedWeightLeavesNothing) {
  Model m = Model::load(testing::default_model());
  auto q = quantize_default(m);
  const fs::path out = fresh("invalid");
  auto bad_zero = q;
  bad_zero.at("layers.1.ffn.up_proj").grid.zero[3] = 16.f;
  testing::expect_error([&] { write_quantized_checkpoint(m, bad_zero, json::object(), out, false); },
                        {"layers.1.ffn.up_proj", "zero point 16"});
  EXPECT_FALSE(fs::exists(out));
  expect_no_temporaries(out);
  auto bad_code = q;
  bad_code.at("layers.0.attn.k_proj").codes[10] = 16;
  testing::expect_error([&] { write_quantized_checkpoint(m, bad_code, json::object(), out, false); },
                        {"layers.0.attn.k_proj", "code 16"});
  auto bad_scale = q;
  bad_scale.at("layers.0.attn.k_proj").grid.scale[0] = 0.f;
  testing::expect_error([&] { write_quantized_checkpoint(m, bad_scale, json::object(), out, true); },
                        {"layers.0.attn.k_proj", "scale"});
  auto unknown = q;
  unknown.emplace("layers.7.attn.q_proj", q.at("layers.0.attn.q_proj"));
  testing::expect_error([&] { write_quantized_checkpoint(m, unknown, json::object(), out, false); },
                        {"layers.7.attn.q_proj"});
  EXPECT_FALSE(fs::exists(out));
  expect_no_temporaries(out);
}

TEST(QuantizedCheckpointWrite, OutputFolderRules) {
  Model m = Model::load(testing::default_model());
  const auto q = quantize_default(m);
  // Into the input folder, or a folder inside it: refused.
  testing::expect_error([&] { write_quantized_checkpoint(m, q, json::object(), testing::default_model(), false); },
                        {"input"});
  testing::expect_error(
      [&] { write_quantized_checkpoint(m, q, json::object(), testing::default_model() / "q", false); }, {"input"});
  // A foreign non-empty folder: refused and untouched.
  const fs::path foreign = fresh("foreign");
  fs::create_directories(foreign);
  std::ofstream(foreign / "notes.txt") << "mine";
  testing::expect_error([&] { write_quantized_checkpoint(m, q, json::object(), foreign, false); },
                        {foreign.string(), "not empty"});
  EXPECT_EQ(slurp(foreign / "notes.txt"), "mine");
  // An empty folder, then our own earlier output: replaced.
  const fs::path out = fresh("replace");
  fs::create_directories(out);
  write_quantized_checkpoint(m, q, json::object(), out, false);
  std::ofstream(out / "stale.txt") << "from an earlier run";
  write_quantized_checkpoint(m, q, {{"method", "second"}}, out, true);
  EXPECT_FALSE(fs::exists(out / "stale.txt"));
  EXPECT_EQ(read_json(out / "config.json").at("tquant").at("method"), "second");
  expect_no_temporaries(out);
  EXPECT_NO_THROW(Model::load(out));
  // A file where the folder should go: refused.
  const fs::path file = fresh("a-file");
  std::ofstream(file) << "x";
  testing::expect_error([&] { write_quantized_checkpoint(m, q, json::object(), file, false); }, {"not a folder"});
}

TEST(TempDir, RemovedOnScopeExitAndMovedIntoPlace) {
  const fs::path base = fresh("tempdir");
  fs::create_directories(base);
  fs::path p;
  {
    TempDir t(TempDir::path_beside(base / "out"));
    p = t.path();
    EXPECT_EQ(p.filename().string().rfind("out.tmp-", 0), 0u);
    fs::create_directories(p / "a" / "b");
    std::ofstream(p / "a" / "b" / "f") << "x";
  }
  EXPECT_FALSE(fs::exists(p));
  {
    TempDir t(TempDir::path_beside(base / "out"));
    std::ofstream(t.path() / "new") << "1";
    fs::create_directories(base / "out" / "sub");
    std::ofstream(base / "out" / "sub" / "old") << "0";
    t.move_to(base / "out");
    EXPECT_FALSE(t.active());
  }
  EXPECT_TRUE(fs::exists(base / "out" / "new"));
  EXPECT_FALSE(fs::exists(base / "out" / "sub"));
  EXPECT_EQ(std::distance(fs::directory_iterator(base), fs::directory_iterator()), 1);
}

TEST(TempDirDeathTest, SignalRemovesTheFolder) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path base = testing::scratch("quantized_checkpoint") / "signal";
  fs::remove_all(base);
  fs::create_directories(base);
  const fs::path p = base / "work.tmp";
  for (int sig : {SIGTERM, SIGINT}) {
    EXPECT_EXIT(
        {
          TempDir t(p);
          fs::create_directories(p / "x" / "y");
          for (int i = 0; i < 300; ++i) std::ofstream(p / "x" / "y" / std::to_string(i)) << i;
          std::ofstream(p / "top") << "z";
          std::raise(sig);
          std::_Exit(0);  // not reached
        },
        ::testing::KilledBySignal(sig), "");
    EXPECT_FALSE(fs::exists(p)) << "signal " << sig;
  }
}

// ---------------------------------------------------------------------------------------------
// Other families, from tiny checkpoints written here
// ---------------------------------------------------------------------------------------------

struct TinyWriter {
  std::mt19937 rng{11};
  std::vector<TensorToWrite> tensors;
  void add(const std::string& name, Shape shape, float std, float mean = 0.f, DType dtype = DType::F32) {
    Tensor t(shape);
    std::normal_distribution<float> n(mean, std);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = n(rng);
    tensors.push_back(dtype == DType::F16 ? f16_tensor(name, t) : f32_tensor(name, t));
  }
  void write(const fs::path& dir, const json& config, const std::map<std::string, std::string>& meta = {}) {
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << config.dump(2);
    std::ofstream(dir / "tokenizer_config.json") << "{\"model_max_length\": 64}";
    write_safetensors(dir / "model.safetensors", tensors, meta);
  }
};

// GPT2LMHeadModel, tied, "transformer." prefix, with the causal-mask buffer old checkpoints keep.
fs::path tiny_gpt2() {
  const fs::path dir = fresh("gpt2-in");
  const int64_t D = 32, F = 64, V = 50, P = 16;
  TinyWriter w;
  const std::string t = "transformer.";
  w.add(t + "wte.weight", {V, D}, 0.5f);
  w.add(t + "wpe.weight", {P, D}, 0.2f);
  for (int i = 0; i < 2; ++i) {
    const std::string h = t + "h." + std::to_string(i) + ".";
    w.add(h + "ln_1.weight", {D}, 0.1f, 1.f);
    w.add(h + "ln_1.bias", {D}, 0.1f);
    w.add(h + "attn.c_attn.weight", {D, 3 * D}, 0.3f);
    w.add(h + "attn.c_attn.bias", {3 * D}, 0.1f);
    w.add(h + "attn.c_proj.weight", {D, D}, 0.2f);
    w.add(h + "attn.c_proj.bias", {D}, 0.1f);
    w.add(h + "ln_2.weight", {D}, 0.1f, 1.f);
    w.add(h + "ln_2.bias", {D}, 0.1f);
    w.add(h + "mlp.c_fc.weight", {D, F}, 0.2f);
    w.add(h + "mlp.c_fc.bias", {F}, 0.1f);
    w.add(h + "mlp.c_proj.weight", {F, D}, 0.2f);
    w.add(h + "mlp.c_proj.bias", {D}, 0.1f);
    w.add(h + "attn.masked_bias", {}, 1.f);
  }
  w.add(t + "ln_f.weight", {D}, 0.1f, 1.f);
  w.add(t + "ln_f.bias", {D}, 0.1f);
  w.write(dir, {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", V},
                {"n_embd", D}, {"n_layer", 2}, {"n_head", 4}, {"n_positions", P}, {"n_inner", F},
                {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5}},
          {{"format", "pt"}});
  return dir;
}

TEST(QuantizedCheckpointFamilies, Gpt2FusedConv1D) {
  const fs::path in = tiny_gpt2();
  const auto before = snapshot(in);
  Model m = Model::load(in);
  EXPECT_EQ(m.blocks[0].k.source.weight, "transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ(m.blocks[0].k.source.row_offset, 32);
  EXPECT_EQ(m.blocks[0].k.source.fused_rows, 96);
  EXPECT_TRUE(m.blocks[0].k.source.transposed);
  std::map<std::string, QuantizedWeight> q;
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    Block& b = m.blocks[i];
    for (Linear* l : {&b.q, &b.k, &b.v}) q.emplace(l->name, rtn(l->weight, fmt_of(4, 8, false)));
    q.emplace(b.o.name, rtn(b.o.weight, fmt_of(8, 0, false)));
    q.emplace(b.up.name, rtn(b.up.weight, fmt_of(3, 16, true)));
    q.emplace(b.down.name, rtn(b.down.weight, fmt_of(4, 8, false)));
  }
  // One ζ shared by q, k and v (they read the same input), as Z-Fold gives it.
  std::vector<float> zeta(32);
  for (size_t c = 0; c < zeta.size(); ++c) zeta[c] = 0.75f + 0.02f * c;
  for (const char* n : {"layers.1.attn.q_proj", "layers.1.attn.k_proj", "layers.1.attn.v_proj"}) q.at(n).zeta = zeta;
  Model ref = Model::load(in);
  replace_weights(ref, q);

  for (bool fake : {false, true}) {
    const fs::path out = fresh(fake ? "gpt2-fake" : "gpt2-q");
    write_quantized_checkpoint(m, q, {{"method", "rtn"}}, out, fake);
    {
      SafetensorsFile f(out / "model.safetensors");
      const std::string a = "transformer.h.1.attn.c_attn.";
      if (fake) {
        EXPECT_EQ(f.find(a + "weight")->shape, (Shape{32, 96}));  // Conv1D layout again
      } else {
        EXPECT_EQ(f.find(a + "weight"), nullptr);
        EXPECT_EQ(f.find(a + "qweight")->shape, (Shape{96, 16}));  // [out, in] orientation
        EXPECT_EQ(f.find(a + "scales")->shape, (Shape{96, 4}));
        EXPECT_EQ(f.find(a + "zeta")->shape, (Shape{32}));
        EXPECT_EQ(f.find("transformer.h.0.mlp.c_fc.qweight")->shape, (Shape{64, 12}));
      }
      EXPECT_EQ(f.find(a + "bias")->shape, (Shape{96}));
      ASSERT_NE(f.find("transformer.h.0.attn.masked_bias"), nullptr) << "unmapped tensors are copied";
      EXPECT_EQ(f.find("lm_head.weight"), nullptr) << "tied head stays unstored";
    }
    if (!fake) {
      const json qc = read_json(out / "config.json").at("quantization_config");
      EXPECT_EQ(qc.at("modules").at(0), "transformer.h.0.attn.c_attn");
      EXPECT_EQ(qc.at("modules").size(), 8u);
    }
    const Model loaded = Model::load(out);
    for (size_t i = 0; i < 2; ++i) {
      const Block &a = loaded.blocks[i], &b = ref.blocks[i];
      for (auto [la, lb] : {std::pair{&a.q, &b.q}, {&a.k, &b.k}, {&a.v, &b.v}, {&a.o, &b.o}, {&a.up, &b.up},
                            {&a.down, &b.down}}) {
        expect_bitwise_equal(la->weight, lb->weight, lb->name);
        expect_bitwise_equal(la->bias, lb->bias, lb->name + ".bias");
      }
    }
    expect_bitwise_equal(logits(loaded, 50), logits(ref, 50), fake ? "fake logits" : "logits");
  }
  EXPECT_EQ(snapshot(in), before);

  // Part of a fused tensor quantized: refused (it would need a mixed tensor).
  std::map<std::string, QuantizedWeight> partial;
  partial.emplace("layers.0.attn.q_proj", q.at("layers.0.attn.q_proj"));
  testing::expect_error([&] { write_quantized_checkpoint(m, partial, json::object(), fresh("gpt2-partial"), false); },
                        {"c_attn", "all of them or none"});
  // ...but fine for a fake checkpoint.
  EXPECT_NO_THROW(write_quantized_checkpoint(m, partial, json::object(), fresh("gpt2-partial-fake"), true));
  auto mixed = q;
  mixed.at("layers.0.attn.k_proj") = rtn(m.blocks[0].k.weight, fmt_of(3, 8, false));
  testing::expect_error([&] { write_quantized_checkpoint(m, mixed, json::object(), fresh("gpt2-mixed"), false); },
                        {"c_attn", "one format"});
}

// BertForMaskedLM, "bert." prefix, tied decoder not stored, a legacy I64 position_ids buffer, and
// an unused pooler (BertForMaskedLM has none): the head gets quantized, which unties it.
TEST(QuantizedCheckpointFamilies, BertMaskedLM) {
  const fs::path in = fresh("bert-in");
  const int64_t D = 16, F = 32, V = 40, P = 12;
  TinyWriter w;
  const std::string e = "bert.embeddings.";
  w.add(e + "word_embeddings.weight", {V, D}, 0.5f);
  w.add(e + "position_embeddings.weight", {P, D}, 0.3f);
  w.add(e + "token_type_embeddings.weight", {2, D}, 0.5f);
  w.add(e + "LayerNorm.gamma", {D}, 0.1f, 1.f);  // legacy TF names
  w.add(e + "LayerNorm.beta", {D}, 0.1f);
  {
    std::vector<int64_t> ids(P);
    for (int64_t i = 0; i < P; ++i) ids[i] = i;
    TensorToWrite t{e + "position_ids", DType::I64, {1, P}, std::vector<std::byte>(8 * P)};
    std::memcpy(t.bytes.data(), ids.data(), 8 * P);
    w.tensors.push_back(t);
  }
  for (int i = 0; i < 2; ++i) {
    const std::string l = "bert.encoder.layer." + std::to_string(i) + ".";
    for (const char* p : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      w.add(l + p + ".weight", {D, D}, 0.3f);
      w.add(l + p + ".bias", {D}, 0.1f);
    }
    w.add(l + "attention.output.LayerNorm.weight", {D}, 0.1f, 1.f);
    w.add(l + "attention.output.LayerNorm.bias", {D}, 0.1f);
    w.add(l + "intermediate.dense.weight", {F, D}, 0.2f);
    w.add(l + "intermediate.dense.bias", {F}, 0.1f);
    w.add(l + "output.dense.weight", {D, F}, 0.2f);
    w.add(l + "output.dense.bias", {D}, 0.1f);
    w.add(l + "output.LayerNorm.weight", {D}, 0.1f, 1.f);
    w.add(l + "output.LayerNorm.bias", {D}, 0.1f);
  }
  w.add("bert.pooler.dense.weight", {D, D}, 0.3f);
  w.add("bert.pooler.dense.bias", {D}, 0.1f);
  w.add("cls.predictions.transform.dense.weight", {D, D}, 0.2f);
  w.add("cls.predictions.transform.dense.bias", {D}, 0.1f);
  w.add("cls.predictions.transform.LayerNorm.weight", {D}, 0.1f, 1.f);
  w.add("cls.predictions.transform.LayerNorm.bias", {D}, 0.1f);
  w.add("cls.predictions.bias", {V}, 0.5f);
  w.write(in, {{"architectures", {"BertForMaskedLM"}}, {"model_type", "bert"}, {"vocab_size", V}, {"hidden_size", D},
               {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"intermediate_size", F},
               {"max_position_embeddings", P}, {"type_vocab_size", 2}, {"layer_norm_eps", 1e-3},
               {"hidden_act", "gelu"}});
  const auto before = snapshot(in);
  Model m = Model::load(in);
  EXPECT_EQ(m.embedding_norm.source.weight, "bert.embeddings.LayerNorm.gamma");
  std::map<std::string, QuantizedWeight> q;
  for (Linear* l : m.linears()) q.emplace(l->name, rtn(l->weight, fmt_of(4, 8, false)));
  ASSERT_TRUE(q.count("mlm.decoder"));
  Model ref = Model::load(in);
  replace_weights(ref, q);
  for (bool fake : {false, true}) {
    const fs::path out = fresh(fake ? "bert-fake" : "bert-q");
    write_quantized_checkpoint(m, q, json::object(), out, fake);
    EXPECT_EQ(read_json(out / "config.json").at("tie_word_embeddings"), false);
    {
      SafetensorsFile f(out / "model.safetensors");
      EXPECT_EQ(f.find(e + "position_ids")->dtype, DType::I64);
      EXPECT_NE(f.find(e + "LayerNorm.gamma"), nullptr);
      EXPECT_NE(f.find("bert.pooler.dense.weight"), nullptr);
      EXPECT_NE(f.find(fake ? "cls.predictions.decoder.weight" : "cls.predictions.decoder.qweight"), nullptr);
      EXPECT_NE(f.find("bert.embeddings.word_embeddings.weight"), nullptr);
    }
    const Model loaded = Model::load(out);
    expect_bitwise_equal(loaded.mlm_decoder.weight, ref.mlm_decoder.weight, "decoder");
    expect_bitwise_equal(loaded.token_embedding, m.token_embedding, "embedding stays FP");
    expect_bitwise_equal(logits(loaded, V), logits(ref, V), "logits");
  }
  EXPECT_EQ(snapshot(in), before);
}

// OPTForCausalLM stored in F16 with the hub's unprefixed names: untouched tensors keep F16.
TEST(QuantizedCheckpointFamilies, OptF16KeepsItsDtype) {
  const fs::path in = fresh("opt-in");
  const int64_t D = 16, F = 32, V = 30, P = 10;
  TinyWriter w;
  w.add("decoder.embed_tokens.weight", {V, D}, 0.5f, 0.f, DType::F16);
  w.add("decoder.embed_positions.weight", {P + 2, D}, 0.3f, 0.f, DType::F16);
  for (int i = 0; i < 2; ++i) {
    const std::string l = "decoder.layers." + std::to_string(i) + ".";
    for (const char* p : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"}) {
      w.add(l + p + ".weight", {D, D}, 0.3f, 0.f, DType::F16);
      w.add(l + p + ".bias", {D}, 0.1f, 0.f, DType::F16);
    }
    w.add(l + "self_attn_layer_norm.weight", {D}, 0.1f, 1.f, DType::F16);
    w.add(l + "self_attn_layer_norm.bias", {D}, 0.1f, 0.f, DType::F16);
    w.add(l + "fc1.weight", {F, D}, 0.2f, 0.f, DType::F16);
    w.add(l + "fc1.bias", {F}, 0.1f, 0.f, DType::F16);
    w.add(l + "fc2.weight", {D, F}, 0.2f, 0.f, DType::F16);
    w.add(l + "fc2.bias", {D}, 0.1f, 0.f, DType::F16);
    w.add(l + "final_layer_norm.weight", {D}, 0.1f, 1.f, DType::F16);
    w.add(l + "final_layer_norm.bias", {D}, 0.1f, 0.f, DType::F16);
  }
  w.add("decoder.final_layer_norm.weight", {D}, 0.1f, 1.f, DType::F16);
  w.add("decoder.final_layer_norm.bias", {D}, 0.1f, 0.f, DType::F16);
  w.write(in, {{"architectures", {"OPTForCausalLM"}}, {"model_type", "opt"}, {"vocab_size", V}, {"hidden_size", D},
               {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"ffn_dim", F}, {"max_position_embeddings", P},
               {"do_layer_norm_before", true}, {"activation_function", "relu"}, {"torch_dtype", "float16"}});
  Model m = Model::load(in);
  std::map<std::string, QuantizedWeight> q;
  q.emplace("layers.0.ffn.up_proj", rtn(m.blocks[0].up.weight, fmt_of(2, 0, false)));
  q.emplace("layers.1.attn.o_proj", rtn(m.blocks[1].o.weight, fmt_of(4, 8, true)));
  // A norm changed by the quantizer to a value F16 cannot hold: written as F32.
  m.blocks[1].ffn_norm.gamma = m.blocks[1].ffn_norm.gamma.clone();
  m.blocks[1].ffn_norm.gamma[0] = 1.0f + 1e-6f;
  const fs::path out = fresh("opt-q");
  write_quantized_checkpoint(m, q, json::object(), out, false);
  {
    SafetensorsFile f(out / "model.safetensors");
    EXPECT_EQ(f.find("decoder.layers.0.fc2.weight")->dtype, DType::F16);
    EXPECT_EQ(f.find("decoder.embed_tokens.weight")->dtype, DType::F16);
    EXPECT_EQ(f.find("decoder.layers.0.fc1.qweight")->shape, (Shape{32, 4}));
    EXPECT_EQ(f.find("decoder.layers.1.final_layer_norm.weight")->dtype, DType::F32);
    EXPECT_EQ(f.find("decoder.layers.1.self_attn_layer_norm.weight")->dtype, DType::F16);
  }
  const Model loaded = Model::load(out);
  replace_weights(m, q);
  expect_bitwise_equal(loaded.blocks[1].ffn_norm.gamma, m.blocks[1].ffn_norm.gamma, "F32 gamma");
  expect_bitwise_equal(logits(loaded, V), logits(m, V), "logits");
}

}  // namespace
}  // namespace tquant::wq
