#include "quant/recipe.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "model/point_names.h"
#include "quant/model_size.h"
#include "train_test_models.h"

namespace tquant {
namespace {

using json = nlohmann::ordered_json;

std::vector<std::string> known() {
  auto names = documented_recipe_names(4);
  return names;
}

std::string error_of(const json& j) {
  try {
    parse_recipe(j, "r.json", known());
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Recipe, OverridesApplyInFileOrderAndLaterEntriesWin) {
  const json j = json::parse(R"({
    "weights": {"bits": 8},
    "activations": {"bits": 8, "points": ["layers.*.ffn.residual_sum", "layers.*.attn.scores"]},
    "overrides": {"layers.*.ffn.residual_sum": {"bits": 16}, "layers.3.ffn.residual_sum": {"bits": 12},
                  "layers.2.attn.scores": {"enabled": false}, "layers.1.ffn.down_proj": {"bits": 4}}})");
  const Recipe r = parse_recipe(j, "r.json", known());
  EXPECT_EQ(r.activation_spec("layers.0.ffn.residual_sum")->bits, 16);
  EXPECT_EQ(r.activation_spec("layers.3.ffn.residual_sum")->bits, 12);
  EXPECT_EQ(r.activation_spec("layers.0.attn.scores")->bits, 8);
  EXPECT_FALSE(r.activation_spec("layers.2.attn.scores"));
  EXPECT_FALSE(r.activation_spec("layers.0.attn.probs"));  // not listed
  EXPECT_EQ(r.weight_spec("layers.1.ffn.down_proj")->bits, 4);
  EXPECT_EQ(r.weight_spec("layers.0.ffn.down_proj")->bits, 8);
  EXPECT_TRUE(r.weight_spec("layers.0.ffn.down_proj")->symmetric);  // weight default
  EXPECT_EQ(r.weight_spec("layers.0.ffn.down_proj")->granularity, "per_channel");
  EXPECT_FALSE(r.activation_spec("layers.0.ffn.residual_sum")->symmetric);
}

TEST(Recipe, SkippedLinearsStayFloat) {
  const Recipe r = parse_recipe(json::parse(R"({"weights": {"bits": 4, "skip": ["lm_head", "layers.0.*"]}})"),
                                "r.json", known());
  EXPECT_FALSE(r.weight_spec("lm_head"));
  EXPECT_FALSE(r.weight_spec("layers.0.attn.q_proj"));
  EXPECT_EQ(r.weight_spec("layers.1.attn.q_proj")->bits, 4);
}

TEST(Recipe, EmbeddingTablesHaveTheirOwnSpecSkipsAndOverrides) {
  const Recipe r = parse_recipe(json::parse(R"({"weights": {"bits": 4},
    "embeddings": {"bits": 2, "symmetric": false, "skip": ["embed.types"]},
    "overrides": {"embed.positions": {"bits": 8}}})"), "r.json", known());
  EXPECT_EQ(r.embedding_spec("embed.tokens")->bits, 2);
  EXPECT_EQ(r.embedding_spec("embed.tokens")->granularity, "per_channel");  // a scale per row
  EXPECT_FALSE(r.embedding_spec("embed.tokens")->symmetric);
  EXPECT_EQ(r.embedding_spec("embed.positions")->bits, 8);
  EXPECT_FALSE(r.embedding_spec("embed.types"));
  EXPECT_EQ(r.weight_spec("layers.0.attn.q_proj")->bits, 4);
  // without the section the tables stay FP32
  EXPECT_FALSE(parse_recipe(json::parse(R"({"weights": {"bits": 4}})"), "r.json", known()).embedding_spec("embed.tokens"));
  EXPECT_NE(error_of(json::parse(R"({"embeddings": {"bits": 2, "granularity": "per_token"}})"))
                .find("embeddings.granularity \"per_token\" applies to activations only"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"embeddings": {"bits": 2, "skip": ["embed.word"]}})"))
                .find("embeddings.skip pattern \"embed.word\" matches no"),
            std::string::npos);
}

TEST(Recipe, BadRecipesGiveClearErrors) {
  EXPECT_NE(error_of(json::parse(R"({"activations": {"bits": 8, "points": ["layers.*.attn.scroes"]}})"))
                .find("\"layers.*.attn.scroes\" matches no quantization point"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"weights": {"bits": 1}})")).find("weights.bits must be an integer from 2 to 16"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"weights": {"bits": 17}})")).find("from 2 to 16, found 17"), std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"activations": {"granularity": "per_embedding_group", "points": ["embed.out"]}})"))
                .find("sets no \"groups\""),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"weights": {"estimator": "magic"}})")).find("weights.estimator must be one of"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"weights": {"bitz": 8}})")).find("unknown field weights.bitz"), std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"overrides": {"layers.9.ffn.residual_sum": {"bits": 16}}})")).find("matches no"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"activations": {"bits": 8}})")).find("activations.points is missing"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"wieghts": {}})")).find("unknown top-level field \"wieghts\""), std::string::npos);
}

TEST(Recipe, EveryPresetLoads) {
  for (const char* name : {"w8a8", "w8a8-mixed", "w8a8-peg", "w6a6", "w6a6-os", "w4a8"}) {
    const Recipe r = load_recipe(name, known());
    EXPECT_TRUE(r.weights) << name;
    EXPECT_TRUE(r.activation_spec("layers.0.attn.residual_sum")) << name;
  }
  const Recipe mixed = load_recipe("w8a8-mixed", known());
  EXPECT_EQ(mixed.activation_spec("layers.2.ffn.residual_sum")->bits, 16);
  EXPECT_EQ(mixed.activation_spec("layers.2.ffn.down_proj.out")->bits, 16);
  EXPECT_EQ(mixed.activation_spec("layers.2.attn.residual_sum")->bits, 8);
  const Recipe peg = load_recipe("w8a8-peg", known());
  EXPECT_EQ(peg.activation_spec("layers.1.attn.residual_sum")->granularity, "per_embedding_group");
  EXPECT_EQ(peg.activation_spec("layers.1.attn.residual_sum")->groups, 6);
  EXPECT_EQ(peg.activation_spec("layers.1.attn.scores")->granularity, "per_tensor");
  EXPECT_THROW(load_recipe("no-such-preset", known()), Error);
}

}  // namespace
}  // namespace tquant

// Model size under a recipe, against the closed form from the tiny BERT's shapes.
namespace tquant {
namespace {
TEST(ModelSize, CountsPackedCodesScalesAndZeroPointsAndFp32Elsewhere) {
  namespace fs = std::filesystem;
  const fs::path dir = train::testmodels::make_model("size_cls", train::testmodels::bert_config("BertForSequenceClassification", 3));
  Model m = Model::load(dir);
  const ModelConfig& c = m.config();
  const int64_t D = c.hidden, F = c.intermediate, L = c.layers, V = c.vocab_size;
  // embeddings (word, position, type), LN γ/β (embedding + 2 per layer), biases
  const int64_t fp_other = V * D + c.max_positions * D + c.type_vocab_size * D + 2 * D * (1 + 2 * L) +
                           L * (4 * D + F + D) + D + 3;
  const int64_t weights = L * (4 * D * D + 2 * D * F) + D * D + 3 * D;
  const ModelSize fp = model_size(m, nullptr);
  EXPECT_EQ(fp.fp32_bytes, 4 * (fp_other + weights));
  EXPECT_EQ(fp.quantized_bytes, fp.fp32_bytes);
  auto known = documented_recipe_names(c.layers);
  const Recipe r = parse_recipe({{"name", "w4"}, {"weights", {{"bits", 4}, {"granularity", "per_channel"}, {"symmetric", false}}}},
                                "w4.json", known);
  const ModelSize q = model_size(m, &r);
  EXPECT_EQ(q.fp32_bytes, fp.fp32_bytes);
  // every linear quantized: codes at 4 bits, per output row a 4-byte scale and a 1-byte zero point
  const int64_t rows = L * (4 * D + F + D) + D + 3;  // q,k,v,o (D each), up (F), down (D); pooler; classifier
  EXPECT_EQ(q.quantized_bytes, 4 * fp_other + weights / 2 + 5 * rows);

  // plus 2-bit word and position tables, a row per token/position with scale and zero point; the
  // type table skipped
  const Recipe e = parse_recipe(
      {{"name", "w4e2"},
       {"weights", {{"bits", 4}, {"granularity", "per_channel"}, {"symmetric", false}}},
       {"embeddings", {{"bits", 2}, {"granularity", "per_channel"}, {"symmetric", false}, {"skip", {"embed.types"}}}}},
      "w4e2.json", known);
  const ModelSize qe = model_size(m, &e);
  EXPECT_EQ(qe.fp32_bytes, fp.fp32_bytes);
  const int64_t P = c.max_positions;
  const auto two_bit = [](int64_t n) { return (2 * n + 7) / 8; };
  EXPECT_EQ(qe.quantized_bytes, 4 * (fp_other - V * D - P * D) + two_bit(V * D) + two_bit(P * D) + 5 * (V + P) +
                                    weights / 2 + 5 * rows);
}

// A tied LM head: FP32 storage counts once; quantizing only the table unties it, so the table's
// packed codes and the head's FP32 copy are both stored.
TEST(ModelSize, QuantizingOneSideOfATiedPairStoresBoth) {
  const auto dir = train::testmodels::make_model("size_tied", train::testmodels::llama_config(true));
  Model m = Model::load(dir);
  ASSERT_EQ(m.lm_head.weight.data(), m.token_embedding.data());
  const int64_t V = m.config().vocab_size, D = m.config().hidden;
  const ModelSize fp = model_size(m, nullptr);
  const Recipe e = parse_recipe({{"name", "e8"}, {"embeddings", {{"bits", 8}, {"granularity", "per_tensor"}, {"symmetric", true}}}},
                                "e8.json", documented_recipe_names(m.config().layers));
  const ModelSize q = model_size(m, &e);
  EXPECT_EQ(q.fp32_bytes, fp.fp32_bytes);
  EXPECT_EQ(q.quantized_bytes, fp.quantized_bytes + V * D + 4);
}
}  // namespace
}  // namespace tquant
