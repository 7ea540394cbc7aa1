#include "tokenize/post_processors.h"

#include <map>

#include "core/error.h"
#include "tokenize/json_view.h"

namespace tquant::tok {

namespace {

void append(Encoding& to, const Encoding& from) {
  to.ids.insert(to.ids.end(), from.ids.begin(), from.ids.end());
  to.type_ids.insert(to.type_ids.end(), from.type_ids.begin(), from.type_ids.end());
}

void append_special(Encoding& to, int32_t id, int32_t type_id) {
  to.ids.push_back(id);
  to.type_ids.push_back(type_id);
}

struct TemplatePiece {
  bool is_sequence;
  int sequence;            // 0 for $A, 1 for $B
  std::vector<int32_t> ids;  // of the special token
  int32_t type_id;
};

class Template : public PostProcessor {
 public:
  Template(std::vector<TemplatePiece> single, std::vector<TemplatePiece> pair)
      : single_(std::move(single)), pair_(std::move(pair)) {}

  size_t added_tokens(bool is_pair) const override {
    size_t n = 0;
    for (const auto& p : is_pair ? pair_ : single_)
      if (!p.is_sequence) n += p.ids.size();
    return n;
  }

  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override {
    const auto& pieces = encodings.size() == 2 ? pair_ : single_;
    Encoding merged;
    for (const auto& p : pieces) {
      if (p.is_sequence) {
        if (static_cast<size_t>(p.sequence) >= encodings.size()) continue;
        const Encoding& e = encodings[p.sequence];
        merged.ids.insert(merged.ids.end(), e.ids.begin(), e.ids.end());
        merged.type_ids.insert(merged.type_ids.end(), e.ids.size(), p.type_id);
      } else if (add_special_tokens) {
        for (int32_t id : p.ids) append_special(merged, id, p.type_id);
      }
    }
    encodings.assign(1, std::move(merged));
  }

  int32_t leading_special_id() const override {
    if (single_.empty() || single_.front().is_sequence || single_.front().ids.empty()) return -1;
    return single_.front().ids.front();
  }
  int32_t trailing_special_id() const override {
    if (single_.empty() || single_.back().is_sequence || single_.back().ids.empty()) return -1;
    return single_.back().ids.back();
  }

 private:
  std::vector<TemplatePiece> single_, pair_;
};

class BertProcessing : public PostProcessor {
 public:
  BertProcessing(int32_t cls, int32_t sep) : cls_(cls), sep_(sep) {}
  size_t added_tokens(bool is_pair) const override { return is_pair ? 3 : 2; }
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    Encoding merged;
    append_special(merged, cls_, 0);
    append(merged, encodings[0]);
    append_special(merged, sep_, 0);
    if (encodings.size() > 1) {
      append(merged, encodings[1]);
      append_special(merged, sep_, 1);
    }
    encodings.assign(1, std::move(merged));
  }
  int32_t leading_special_id() const override { return cls_; }
  int32_t trailing_special_id() const override { return sep_; }

 private:
  int32_t cls_, sep_;
};

// RoBERTa gives every token type id 0, with or without special tokens.
class RobertaProcessing : public PostProcessor {
 public:
  RobertaProcessing(int32_t cls, int32_t sep) : cls_(cls), sep_(sep) {}
  size_t added_tokens(bool is_pair) const override { return is_pair ? 4 : 2; }
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override {
    for (auto& e : encodings) e.type_ids.assign(e.ids.size(), 0);
    if (!add_special_tokens) return;
    Encoding merged;
    append_special(merged, cls_, 0);
    append(merged, encodings[0]);
    append_special(merged, sep_, 0);
    if (encodings.size() > 1) {
      append_special(merged, sep_, 0);
      append(merged, encodings[1]);
      append_special(merged, sep_, 0);
    }
    encodings.assign(1, std::move(merged));
  }
  int32_t leading_special_id() const override { return cls_; }
  int32_t trailing_special_id() const override { return sep_; }

 private:
  int32_t cls_, sep_;
};

// Only trims offsets in HF; ids and type ids pass through.
class ByteLevelProcessing : public PostProcessor {
 public:
  size_t added_tokens(bool) const override { return 0; }
  void process(std::vector<Encoding>&, bool) const override {}
  int32_t leading_special_id() const override { return -1; }
  int32_t trailing_special_id() const override { return -1; }
};

class Sequence : public PostProcessor {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  size_t added_tokens(bool is_pair) const override {
    size_t n = 0;
    for (const auto& p : parts_) n += p->added_tokens(is_pair);
    return n;
  }
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override {
    for (const auto& p : parts_) p->process(encodings, add_special_tokens);
  }
  int32_t leading_special_id() const override {
    for (const auto& p : parts_)
      if (p->leading_special_id() >= 0) return p->leading_special_id();
    return -1;
  }
  int32_t trailing_special_id() const override {
    for (const auto& p : parts_)
      if (p->trailing_special_id() >= 0) return p->trailing_special_id();
    return -1;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

// ["[CLS]", 101]
int32_t read_token_pair(const JsonView& v) {
  if (!v.raw().is_array() || v.raw().size() != 2) v.fail_here("expected [token, id]");
  v.at(size_t{0}).as_string();
  const int64_t id = v.at(size_t{1}).as_int();
  if (id < 0 || id > INT32_MAX) v.at(size_t{1}).fail_here("id out of range");
  return static_cast<int32_t>(id);
}

std::vector<TemplatePiece> read_template(const JsonView& list, const std::map<std::string, std::vector<int32_t>>& specials) {
  if (!list.raw().is_array()) list.fail_here("expected a list of {\"SpecialToken\": ...} / {\"Sequence\": ...} pieces");
  std::vector<TemplatePiece> pieces;
  for (size_t i = 0; i < list.size(); ++i) {
    const JsonView item = list.at(i);
    item.expect_object();
    TemplatePiece p{};
    if (auto seq = item.get("Sequence")) {
      p.is_sequence = true;
      const std::string id = seq->at("id").as_string();
      if (id != "A" && id != "B") seq->at("id").fail_unsupported(id, {"A", "B"});
      p.sequence = id == "A" ? 0 : 1;
      p.type_id = static_cast<int32_t>(seq->int_or("type_id", 0));
    } else if (auto sp = item.get("SpecialToken")) {
      p.is_sequence = false;
      const std::string id = sp->at("id").as_string();
      auto it = specials.find(id);
      if (it == specials.end()) sp->at("id").fail_here(fmt::format("\"{}\" is not listed in special_tokens", id));
      p.ids = it->second;
      p.type_id = static_cast<int32_t>(sp->int_or("type_id", 0));
    } else {
      item.fail_here("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
    pieces.push_back(std::move(p));
  }
  return pieces;
}

std::unique_ptr<PostProcessor> make_template(const JsonView& json) {
  std::map<std::string, std::vector<int32_t>> specials;
  if (auto st = json.get("special_tokens")) {
    st->expect_object();
    for (auto it = st->raw().begin(); it != st->raw().end(); ++it) {
      const JsonView entry(it.value(), st->file(), st->path() + "." + it.key());
      const JsonView ids = entry.at("ids");
      std::vector<int32_t> v;
      for (size_t i = 0; i < ids.size(); ++i) v.push_back(static_cast<int32_t>(ids.at(i).as_int()));
      specials[it.key()] = std::move(v);
    }
  }
  return std::make_unique<Template>(read_template(json.at("single"), specials), read_template(json.at("pair"), specials));
}

}  // namespace

std::unique_ptr<PostProcessor> make_bert_template(int32_t cls_id, int32_t sep_id) {
  std::vector<TemplatePiece> single = {{false, 0, {cls_id}, 0}, {true, 0, {}, 0}, {false, 0, {sep_id}, 0}};
  std::vector<TemplatePiece> pair = single;
  pair.push_back({true, 1, {}, 1});
  pair.push_back({false, 0, {sep_id}, 1});
  return std::make_unique<Template>(std::move(single), std::move(pair));
}

std::unique_ptr<PostProcessor> make_post_processor(const JsonView& json) {
  if (json.is_null()) return nullptr;
  const std::string type = json.type_tag();
  if (type == "TemplateProcessing") return make_template(json);
  if (type == "BertProcessing") return std::make_unique<BertProcessing>(read_token_pair(json.at("cls")), read_token_pair(json.at("sep")));
  if (type == "RobertaProcessing")
    return std::make_unique<RobertaProcessing>(read_token_pair(json.at("cls")), read_token_pair(json.at("sep")));
  if (type == "ByteLevel") return std::make_unique<ByteLevelProcessing>();
  if (type == "Sequence") {
    const JsonView list = json.at("processors");
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto p = make_post_processor(list.at(i))) parts.push_back(std::move(p));
    return std::make_unique<Sequence>(std::move(parts));
  }
  json.at("type").fail_unsupported(type, {"TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel", "Sequence"});
}

}  // namespace tquant::tok
