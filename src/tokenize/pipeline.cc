#include "tokenize/pipeline.h"

#include "core/error.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

void require_utf8(std::string_view text, const char* which) {
  if (auto bad = unicode::find_invalid_utf8(text)) fail("tokenizer: {} is not valid UTF-8 (byte {})", which, *bad);
}

}  // namespace

Pipeline::Pipeline(Components components) : c_(std::move(components)) {
  added_.add_tokens(c_.added_tokens, *c_.model, c_.normalizer.get());
}

Encoding Pipeline::encode_sequence(std::string_view text, int32_t type_id) const {
  std::vector<Piece> pieces = added_.extract_and_normalize(text, c_.normalizer.get());
  if (c_.pre_tokenizer) c_.pre_tokenizer->pre_tokenize(pieces);
  Encoding e;
  for (const auto& p : pieces) {
    if (p.added_id >= 0) {
      e.ids.push_back(p.added_id);
    } else {
      c_.model->tokenize(p.text, e.ids);
    }
  }
  e.type_ids.assign(e.ids.size(), type_id);
  return e;
}

Encoding Pipeline::finish(Encoding first, std::optional<Encoding> second, bool add_special_tokens, int max_length) const {
  std::optional<TruncationParams> params = c_.truncation;
  if (max_length > 0) params = TruncationParams{static_cast<size_t>(max_length)};
  if (params) {
    const size_t added = c_.post_processor ? c_.post_processor->added_tokens(second.has_value()) : 0;
    if (add_special_tokens && added > 0) {
      if (params->max_length < added)
        fail("tokenizer: max_length {} leaves no room for the {} special tokens", params->max_length, added);
      params->max_length -= added;
    }
    truncate_encodings(first, second ? &*second : nullptr, *params);
  }
  std::vector<Encoding> encodings;
  encodings.push_back(std::move(first));
  if (second) encodings.push_back(std::move(*second));
  if (c_.post_processor) c_.post_processor->process(encodings, add_special_tokens);
  Encoding out = std::move(encodings[0]);
  for (size_t i = 1; i < encodings.size(); ++i) {
    out.ids.insert(out.ids.end(), encodings[i].ids.begin(), encodings[i].ids.end());
    out.type_ids.insert(out.type_ids.end(), encodings[i].type_ids.begin(), encodings[i].type_ids.end());
  }
  return out;
}

Encoding Pipeline::encode(std::string_view text, bool add_special_tokens, int max_length) const {
  require_utf8(text, "input text");
  return finish(encode_sequence(text, 0), std::nullopt, add_special_tokens, max_length);
}

Encoding Pipeline::encode_pair(std::string_view a, std::string_view b, bool add_special_tokens, int max_length) const {
  require_utf8(a, "first input text");
  require_utf8(b, "second input text");
  return finish(encode_sequence(a, 0), encode_sequence(b, 1), add_special_tokens, max_length);
}

std::string Pipeline::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    std::string token;
    if (const AddedToken* t = added_.token(id)) {
      token = t->content;
    } else if (const std::string* s = c_.model->id_to_token(id)) {
      token = *s;
    } else {
      continue;  // HF drops ids it cannot name
    }
    if (skip_special_tokens && added_.is_special(token)) continue;
    tokens.push_back(std::move(token));
  }
  if (!c_.decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  c_.decoder->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

int32_t Pipeline::vocab_size() const { return std::max(c_.model->id_bound(), added_.id_bound()); }

std::optional<int32_t> Pipeline::token_to_id(std::string_view token) const {
  if (auto id = added_.token_to_id(token)) return id;
  return c_.model->token_to_id(token);
}

std::string Pipeline::id_to_token(int32_t id) const {
  if (const AddedToken* t = added_.token(id)) return t->content;
  if (const std::string* s = c_.model->id_to_token(id)) return *s;
  fail("tokenizer: id {} is not in the vocabulary (size {})", id, vocab_size());
}

}  // namespace tquant::tok
