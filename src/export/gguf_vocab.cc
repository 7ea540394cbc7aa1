#include "export/gguf_vocab.h"

#include <map>
#include <optional>
#include <regex>

#include "core/error.h"
#include "core/text_file.h"
#include "export/gguf_reader.h"
#include "tokenize/json_view.h"
#include "tokenize/pipeline.h"

namespace tquant::gguf {

namespace fs = std::filesystem;

namespace {

// gguf.md's token types.
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

const char* const kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space

bool is_prepend_replace(const tok::JsonView& n) {
  if (n.string_or("type", "") != "Sequence" || !n.has("normalizers")) return false;
  const tok::JsonView list = n.at("normalizers");
  if (list.size() != 2) return false;
  const tok::JsonView a = list.at(size_t{0}), b = list.at(size_t{1});
  const bool prepend = a.string_or("type", "") == "Prepend" && a.string_or("prepend", "") == kSpace;
  const bool replace = b.string_or("type", "") == "Replace" && b.string_or("content", "") == kSpace &&
                       b.has("pattern") && b.at("pattern").string_or("String", "") == " ";
  return prepend && replace;
}

bool is_metaspace(const tok::JsonView& p) {
  if (p.string_or("type", "") != "Metaspace" || p.string_or("replacement", "") != kSpace) return false;
  const std::string scheme = p.string_or("prepend_scheme", p.bool_or("add_prefix_space", true) ? "always" : "never");
  return (scheme == "first" || scheme == "always") && !p.bool_or("split", true);
}

// The checks behind "SentencePiece-style": llama.cpp escapes spaces as ▁, adds one in front
// and merges across the whole text (no splitting into words).
void check_sentencepiece_style(const tok::JsonView& root) {
  const tok::JsonView model = root.at("model");
  const std::string type = model.string_or("type", "BPE");
  if (type != "BPE")
    model.fail_here(fmt::format("a {} tokenizer has no GGUF llama mapping (tquant maps SentencePiece-style BPE)", type));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.has(key)) model.at(key).fail_here("SentencePiece-style BPE has no subword prefix or suffix");
  if (model.bool_or("ignore_merges", false))
    model.at("ignore_merges").fail_here("a BPE that looks words up before merging has no GGUF llama mapping");
  const auto normalizer = root.get("normalizer");
  const auto pre = root.get("pre_tokenizer");
  const bool style_a = normalizer && is_prepend_replace(*normalizer) && !pre;
  const bool style_b = !normalizer && pre && is_metaspace(*pre);
  if (!style_a && !style_b)
    root.fail_here(
        "the normalizer and pre-tokenizer are not SentencePiece-style (normalizer Prepend \"▁\" + Replace \" \" -> "
        "\"▁\" without a pre-tokenizer, or a Metaspace pre-tokenizer with split false); GGUF's llama tokenizer "
        "cannot reproduce them (byte-level GPT-2 BPE is not mapped yet)");
}

bool is_byte_token(const std::string& t) {
  static const std::regex re("<0x[0-9A-Fa-f]{2}>");
  return std::regex_match(t, re);
}

}  // namespace

void append_llama_vocab(const fs::path& model_dir, int64_t n_vocab, Metadata& md) {
  const fs::path file = model_dir / "tokenizer.json";
  if (!fs::exists(file))
    fail("{}: no tokenizer.json; the GGUF llama tokenizer is exported from a SentencePiece-style BPE tokenizer.json",
         model_dir.string());
  const std::string text = read_text_file(file, "tokenizer");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", file.string(), e.what());
  }
  const tok::JsonView root(json, file.string(), "");
  root.expect_object();
  check_sentencepiece_style(root);

  std::vector<std::optional<std::string>> tokens(static_cast<size_t>(n_vocab));
  std::vector<int32_t> types(static_cast<size_t>(n_vocab), kNormal);
  std::map<std::string, int64_t> ids;
  auto place = [&](const std::string& token, int64_t id, const tok::JsonView& where) {
    if (id < 0 || id >= n_vocab)
      where.fail_here(fmt::format("token \"{}\" has id {}, outside the model's {} embedding rows", token, id, n_vocab));
    if (tokens[id] && *tokens[id] != token)
      where.fail_here(fmt::format("id {} names two tokens, \"{}\" and \"{}\"", id, *tokens[id], token));
    tokens[id] = token;
    ids[token] = id;
  };
  const tok::JsonView vocab = root.at("model").at("vocab");
  vocab.expect_object();
  for (const auto& [token, id] : vocab.raw().items()) {
    if (!id.is_number_integer()) vocab.fail_here(fmt::format("the id of \"{}\" is not an integer", token));
    place(token, id.get<int64_t>(), vocab);
  }
  if (const auto added = root.get("added_tokens")) {
    for (size_t i = 0; i < added->size(); ++i) {
      const tok::JsonView a = added->at(i);
      const std::string content = a.at("content").as_string();
      place(content, a.at("id").as_int(), a);
      types[a.at("id").as_int()] = a.bool_or("special", false) ? kControl : kUserDefined;
    }
  }

  // Scores: merge rank order, the inverse of SentencePiece's "higher score merges first".
  const tok::JsonView merges = root.at("model").at("merges");
  const int64_t n_merges = static_cast<int64_t>(merges.size());
  std::vector<float> scores(static_cast<size_t>(n_vocab), -static_cast<float>(n_merges));
  std::vector<bool> scored(static_cast<size_t>(n_vocab), false);
  for (int64_t r = 0; r < n_merges; ++r) {
    const tok::JsonView m = merges.at(static_cast<size_t>(r));
    std::string merged;
    if (m.raw().is_string()) {
      const std::string s = m.as_string();
      const size_t space = s.find(' ');
      if (space == std::string::npos) m.fail_here("a merge must be two tokens separated by a space");
      merged = s.substr(0, space) + s.substr(space + 1);
    } else if (m.raw().is_array() && m.raw().size() == 2) {
      merged = m.at(size_t{0}).as_string() + m.at(size_t{1}).as_string();
    } else {
      m.fail_here("expected a \"left right\" string or a [left, right] pair");
    }
    const auto it = ids.find(merged);
    if (it == ids.end()) m.fail_here(fmt::format("the merged token \"{}\" is not in the vocabulary", merged));
    if (!scored[it->second]) {
      scores[it->second] = r == 0 ? 0.f : -static_cast<float>(r);
      scored[it->second] = true;
    }
  }

  const auto tokenizer = Tokenizer::from_dir(model_dir);
  const int32_t unk = tokenizer->unk_id();
  std::vector<std::string> names(static_cast<size_t>(n_vocab));
  for (int64_t id = 0; id < n_vocab; ++id) {
    if (!tokens[id]) {
      names[id] = fmt::format("[PAD{}]", id);
      types[id] = kUnused;
      continue;
    }
    names[id] = *tokens[id];
    if (types[id] == kNormal && is_byte_token(names[id])) types[id] = kByte;
  }
  if (unk >= 0 && unk < n_vocab) types[unk] = kUnknown;

  md.emplace_back("tokenizer.ggml.model", Value::string("llama"));
  md.emplace_back("tokenizer.ggml.tokens", Value::strings(names));
  md.emplace_back("tokenizer.ggml.scores", Value::f32s(scores));
  md.emplace_back("tokenizer.ggml.token_type", Value::i32s(types));
  auto id_key = [&](const char* key, int32_t id) {
    if (id >= 0 && id < n_vocab) md.emplace_back(key, Value::u32(static_cast<uint32_t>(id)));
  };
  id_key("tokenizer.ggml.bos_token_id", tokenizer->bos_id());
  id_key("tokenizer.ggml.eos_token_id", tokenizer->eos_id());
  id_key("tokenizer.ggml.unknown_token_id", unk);
  id_key("tokenizer.ggml.padding_token_id", tokenizer->pad_id());
  // What the post-processor adds around a single sequence.
  const std::vector<int32_t> probe = tokenizer->encode("a", true).ids;
  const bool add_bos = !probe.empty() && tokenizer->bos_id() >= 0 && probe.front() == tokenizer->bos_id();
  const bool add_eos = !probe.empty() && tokenizer->eos_id() >= 0 && probe.back() == tokenizer->eos_id();
  md.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(add_bos));
  md.emplace_back("tokenizer.ggml.add_eos_token", Value::boolean(add_eos));
  md.emplace_back("tokenizer.ggml.add_space_prefix", Value::boolean(true));
  md.emplace_back("tokenizer.huggingface.json", Value::string(text));
}

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const fs::path& path) {
  const GgufFile file(path);
  const char* key = "tokenizer.huggingface.json";
  const Value* hf = file.find(key);
  if (!hf)
    fail("{}: no {}; tquant tokenizes GGUF models with the Hugging Face tokenizer they embed (tquant export writes "
         "it)", path.string(), key);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(hf->as_string(file.where(key)));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", file.where(key), e.what());
  }
  auto pipeline = tok::pipeline_from_json(json, file.where(key));
  // The embedded tokenizer must be the one whose ids the model was trained on.
  if (const Value* list = file.find("tokenizer.ggml.tokens")) {
    const auto& tokens = list->items(file.where("tokenizer.ggml.tokens"));
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(tokens.size()), pipeline->vocab_size());
    for (int64_t id = 0; id < n; ++id) {
      const std::string& t = tokens[id].as_string(file.where("tokenizer.ggml.tokens"));
      if (pipeline->token_to_id(t) != id)
        fail("{}: token {} is \"{}\", but {} gives that id to another token", file.where("tokenizer.ggml.tokens"), id, t,
             key);
    }
  }
  auto id_of = [&](const char* k) -> int32_t {
    const Value* v = file.find(k);
    return v ? static_cast<int32_t>(std::min<uint64_t>(v->as_uint(file.where(k)), INT32_MAX)) : -1;
  };
  tok::SpecialIds ids;
  ids.bos = id_of("tokenizer.ggml.bos_token_id");
  ids.eos = id_of("tokenizer.ggml.eos_token_id");
  ids.unk = id_of("tokenizer.ggml.unknown_token_id");
  ids.pad = id_of("tokenizer.ggml.padding_token_id");
  pipeline->set_special_ids(ids);
  return pipeline;
}

}  // namespace tquant::gguf
