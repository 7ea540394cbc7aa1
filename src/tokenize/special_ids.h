#pragma once
// bos/eos/unk/pad ids: the tokens that tokenizer_config.json names, else what the tokenizer
// itself suggests (the post-processor's first and last special tokens, the model's unk_token,
// conventional names such as </s> or [PAD]), else -1.
#include <filesystem>
#include <optional>
#include <string>

#include "tokenize/pipeline.h"

namespace tquant::tok {

struct SpecialTokenNames {
  std::optional<std::string> bos, eos, unk, pad, cls, sep, mask;
};

// Names from tokenizer_config.json (`bos_token` etc. as strings or {"content": ...}); all
// empty when the file does not exist.
SpecialTokenNames read_special_token_names(const std::filesystem::path& config_file);

SpecialIds resolve_special_ids(const Pipeline& tokenizer, const SpecialTokenNames& names);

}  // namespace tquant::tok
