// Model folders that are wrong in ways only the config/weights combination reveals.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "model/model.h"
#include "test_paths.h"

namespace tquant {
namespace {

namespace fs = std::filesystem;

// A copy of the default model's folder with config.json replaced by `config`.
fs::path folder_with_config(const std::string& name, const std::string& config) {
  const fs::path dir = testing::scratch(name);
  fs::copy_file(testing::default_model() / "model.safetensors", dir / "model.safetensors",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "config.json") << config;
  return dir;
}

std::string load_error(const fs::path& dir) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string default_config_with(const std::string& key, const std::string& value) {
  std::ifstream in(testing::default_model() / "config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = text.find("\"" + key + "\"");
  const auto colon = text.find(':', at);
  const auto first = text.find_first_not_of(" \n", colon + 1);
  const auto end = text[first] == '[' ? text.find(']', first) + 1 : text.find_first_of(",\n}", colon);
  return text.substr(0, colon + 1) + " " + value + text.substr(end);
}

TEST(ModelErrors, ShapeThatDisagreesWithConfigNamesTensorAndBothShapes) {
  const auto msg = load_error(folder_with_config("shape", default_config_with("intermediate_size", "385")));
  EXPECT_NE(msg.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[384, 128]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json implies [385, 128]"), std::string::npos) << msg;
}

TEST(ModelErrors, MalformedConfigNamesTheFile) {
  const auto msg = load_error(folder_with_config("malformed", "{\"architectures\": [\"LlamaForCausalLM\"], "));
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
}

TEST(ModelErrors, WrongFieldTypeNamesTheField) {
  const auto msg = load_error(folder_with_config("type", default_config_with("hidden_size", "\"128\"")));
  EXPECT_NE(msg.find("\"hidden_size\" must be an integer"), std::string::npos) << msg;
}

TEST(ModelErrors, UnsupportedArchitectureListsTheSupportedOnes) {
  const auto msg = load_error(folder_with_config("arch", default_config_with("architectures", "[\"MistralForCausalLM\"]")));
  EXPECT_NE(msg.find("\"MistralForCausalLM\" is not supported"), std::string::npos) << msg;
  for (const char* a : {"LlamaForCausalLM", "BertForSequenceClassification", "OPTForCausalLM", "GPT2LMHeadModel"})
    EXPECT_NE(msg.find(a), std::string::npos) << msg;
}

TEST(ModelErrors, HeadsThatDoNotDivideAreRefused) {
  const auto msg = load_error(folder_with_config("gqa", default_config_with("num_key_value_heads", "3")));
  EXPECT_NE(msg.find("multiple of num_key_value_heads (3)"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tquant
