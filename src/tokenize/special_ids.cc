#include "tokenize/special_ids.h"

#include <initializer_list>

#include "core/error.h"
#include "tokenize/json_view.h"

namespace tquant::tok {

namespace {

std::optional<std::string> read_name(const JsonView& config, const char* key) {
  auto v = config.get(key);
  if (!v) return std::nullopt;
  if (v->raw().is_string()) return v->as_string();
  if (v->raw().is_object()) return v->at("content").as_string();
  v->fail_here("expected a string or an object with \"content\"");
}

}  // namespace

SpecialTokenNames read_special_token_names(const std::filesystem::path& config_file) {
  SpecialTokenNames names;
  if (!std::filesystem::exists(config_file)) return names;
  const nlohmann::json json = parse_json_file(config_file.string());
  const JsonView config(json, config_file.string(), "");
  config.expect_object();
  names.bos = read_name(config, "bos_token");
  names.eos = read_name(config, "eos_token");
  names.unk = read_name(config, "unk_token");
  names.pad = read_name(config, "pad_token");
  names.cls = read_name(config, "cls_token");
  names.sep = read_name(config, "sep_token");
  names.mask = read_name(config, "mask_token");
  return names;
}

SpecialIds resolve_special_ids(const Pipeline& tokenizer, const SpecialTokenNames& names) {
  auto id_of = [&](const std::optional<std::string>& name) -> int32_t {
    if (!name) return -1;
    auto id = tokenizer.token_to_id(*name);
    return id ? *id : -1;
  };
  auto first_known = [&](std::initializer_list<const char*> candidates) -> int32_t {
    for (const char* c : candidates)
      if (auto id = tokenizer.token_to_id(c)) return *id;
    return -1;
  };
  auto pick = [](std::initializer_list<int32_t> ids) {
    for (int32_t id : ids)
      if (id >= 0) return id;
    return -1;
  };
  const PostProcessor* post = tokenizer.post_processor();
  SpecialIds ids;
  ids.bos = pick({id_of(names.bos), id_of(names.cls), post ? post->leading_special_id() : -1,
                  first_known({"<s>", "<|begin_of_text|>", "<bos>", "[CLS]", "<|endoftext|>"})});
  ids.eos = pick({id_of(names.eos), id_of(names.sep), post ? post->trailing_special_id() : -1,
                  first_known({"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "[SEP]"})});
  ids.unk = pick({id_of(names.unk), id_of(tokenizer.model().unk_token()), first_known({"<unk>", "[UNK]"})});
  ids.pad = pick({id_of(names.pad), first_known({"[PAD]", "<pad>", "<|pad|>"})});
  return ids;
}

}  // namespace tquant::tok
