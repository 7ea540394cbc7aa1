// Tokenizer::from_tokenizer_json: builds the pipeline that a tokenizer.json describes.
#include "core/error.h"
#include "tokenize/json_view.h"
#include "tokenize/pipeline.h"
#include "tokenize/special_ids.h"
#include "tokenize/tokenizer.h"

namespace tquant {

namespace {

std::vector<tok::AddedToken> read_added_tokens(const tok::JsonView& list) {
  std::vector<tok::AddedToken> tokens;
  for (size_t i = 0; i < list.size(); ++i) {
    const tok::JsonView t = list.at(i);
    tok::AddedToken a;
    a.content = t.at("content").as_string();
    a.single_word = t.bool_or("single_word", false);
    a.lstrip = t.bool_or("lstrip", false);
    a.rstrip = t.bool_or("rstrip", false);
    a.normalized = t.bool_or("normalized", true);
    a.special = t.bool_or("special", false);
    tokens.push_back(std::move(a));
  }
  return tokens;
}

// Padding to a fixed length would change the ids of every encode; batch padding does not touch
// a single encoding.
void check_padding(const tok::JsonView& root) {
  auto padding = root.get("padding");
  if (!padding) return;
  auto strategy = padding->get("strategy");
  if (strategy && strategy->raw().is_object() && strategy->raw().contains("Fixed"))
    strategy->fail_unsupported("Fixed", {"BatchLongest", "null"});
}

}  // namespace

namespace tok {

std::unique_ptr<Pipeline> pipeline_from_json(const nlohmann::json& json, const std::string& where) {
  const JsonView root(json, where, "");
  root.expect_object();

  Components c;
  c.model = make_model(root.at("model"));
  if (root.has("normalizer")) c.normalizer = make_normalizer(root.at("normalizer"));
  if (root.has("pre_tokenizer")) c.pre_tokenizer = make_pre_tokenizer(root.at("pre_tokenizer"));
  if (root.has("post_processor")) c.post_processor = make_post_processor(root.at("post_processor"));
  if (root.has("decoder")) c.decoder = make_decoder(root.at("decoder"));
  if (root.has("added_tokens")) c.added_tokens = read_added_tokens(root.at("added_tokens"));
  if (root.has("truncation")) c.truncation = read_truncation(root.at("truncation"));
  check_padding(root);
  return std::make_unique<Pipeline>(std::move(c));
}

}  // namespace tok

std::unique_ptr<Tokenizer> Tokenizer::from_tokenizer_json(const std::filesystem::path& file) {
  const nlohmann::json json = tok::parse_json_file(file.string());
  auto pipeline = tok::pipeline_from_json(json, file.string());
  const auto names = tok::read_special_token_names(file.parent_path() / "tokenizer_config.json");
  pipeline->set_special_ids(tok::resolve_special_ids(*pipeline, names));
  return pipeline;
}

}  // namespace tquant
