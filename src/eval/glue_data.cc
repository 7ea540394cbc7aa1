#include "core/text_file.h"
#include "eval/glue_data.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include <fmt/ranges.h>

#include "core/error.h"

namespace tquant {
namespace fs = std::filesystem;

namespace {

struct TaskInfo {
  GlueTask task;
  const char* name;
  bool pair;
  bool regression;
  // Header names each role may go by: original GLUE first, then the HF `datasets` export.
  std::vector<std::string_view> a_cols, b_cols, label_cols;
  std::array<std::string_view, 2> label_names;  // indexed by HF class id
};

const std::vector<TaskInfo>& task_table() {
  static const std::vector<TaskInfo> table = {
      {GlueTask::SST2, "sst2", false, false, {"sentence", "text"}, {}, {"label"},
       {"negative", "positive"}},
      {GlueTask::MRPC, "mrpc", true, false, {"#1 String", "sentence1"}, {"#2 String", "sentence2"},
       {"Quality", "label"}, {"not_equivalent", "equivalent"}},
      {GlueTask::RTE, "rte", true, false, {"sentence1"}, {"sentence2"}, {"label"},
       {"entailment", "not_entailment"}},
      {GlueTask::STSB, "stsb", true, true, {"sentence1"}, {"sentence2"}, {"score", "label"}, {}},
      {GlueTask::QNLI, "qnli", true, false, {"question"}, {"sentence"}, {"label"},
       {"entailment", "not_entailment"}},
      {GlueTask::COLA, "cola", false, false, {"sentence"}, {}, {"label"},
       {"unacceptable", "acceptable"}},
      {GlueTask::WNLI, "wnli", true, false, {"sentence1"}, {"sentence2"}, {"label"},
       {"not_entailment", "entailment"}},
  };
  return table;
}

const TaskInfo& info(GlueTask task) {
  for (const TaskInfo& t : task_table())
    if (t.task == task) return t;
  fail("GLUE task id {} is not a known task", static_cast<int>(task));
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

// Physical lines without their terminator; tolerates CRLF and a missing final newline.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = nl + 1;
  }
  return lines;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string join(const std::vector<std::string_view>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string abbreviate(std::string s) {
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

struct Layout {
  size_t num_cols = 0;
  size_t a = 0, label = 0;
  std::optional<size_t> b;
  size_t first_data_line = 1;  // 0-based index into the physical lines
  // Files exported by HF `datasets` (pandas to_csv) are CSV-quoted; original GLUE files are not
  // and contain unbalanced quotes (MRPC: `"The foodservice ...` opens a quote it never closes).
  bool csv_quoted = false;
};

std::optional<size_t> find_column(const std::vector<std::string_view>& header,
                                  const std::vector<std::string_view>& names) {
  for (std::string_view name : names)
    for (size_t i = 0; i < header.size(); ++i)
      if (trim(header[i]) == name) return i;
  return std::nullopt;
}

std::string expected_columns(const TaskInfo& t) {
  auto alternatives = [](const std::vector<std::string_view>& names) {
    return fmt::format("'{}'", join(names, "' or '"));
  };
  std::vector<std::string> roles = {alternatives(t.a_cols)};
  if (t.pair) roles.push_back(alternatives(t.b_cols));
  roles.push_back(alternatives(t.label_cols));
  return fmt::format("{}", fmt::join(roles, ", "));
}

// The raw CoLA release (and the GLUE CoLA dev/train built from it) has no header: every line is
// source, label 0/1, original mark, sentence.
bool looks_like_raw_cola(const std::vector<std::string_view>& fields) {
  return fields.size() == 4 && (fields[1] == "0" || fields[1] == "1");
}

Layout detect_layout(const TaskInfo& t, const std::vector<std::string_view>& first,
                     const fs::path& file) {
  Layout layout;
  if (t.task == GlueTask::COLA && looks_like_raw_cola(first)) {
    layout.num_cols = 4;
    layout.a = 3;
    layout.label = 1;
    layout.first_data_line = 0;
    return layout;
  }
  const auto a = find_column(first, t.a_cols);
  const auto b = t.pair ? find_column(first, t.b_cols) : std::nullopt;
  const auto label = find_column(first, t.label_cols);
  if (!a || !label || (t.pair && !b)) {
    std::string expected = "a header with columns " + expected_columns(t);
    if (t.task == GlueTask::COLA)
      expected += ", or no header with 4 columns source, label (0/1), original mark, sentence";
    fail("{}: unrecognised header for GLUE {}: found '{}'; expected {}", file.string(), t.name,
         abbreviate(join(first, "<TAB>")), expected);
  }
  layout.num_cols = first.size();
  layout.a = *a;
  layout.b = b;
  layout.label = *label;
  layout.csv_quoted = find_column(first, {"idx"}).has_value();
  return layout;
}

std::string unquote_csv(std::string_view field, const fs::path& file, size_t line_no) {
  if (field.empty() || field.front() != '"') return std::string(field);
  if (field.size() < 2 || field.back() != '"')
    fail("{}:{}: field '{}' opens a CSV quote but does not close it", file.string(), line_no,
         abbreviate(std::string(field)));
  std::string out;
  const std::string_view inner = field.substr(1, field.size() - 2);
  for (size_t i = 0; i < inner.size(); ++i) {
    out += inner[i];
    if (inner[i] == '"') {
      if (i + 1 >= inner.size() || inner[i + 1] != '"')
        fail("{}:{}: field '{}' has a lone quote inside a CSV-quoted field", file.string(),
             line_no, abbreviate(std::string(field)));
      ++i;
    }
  }
  return out;
}

float parse_score(std::string_view token, const fs::path& file, size_t line_no) {
  float value = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (ec != std::errc() || end != token.data() + token.size() || !std::isfinite(value))
    fail("{}:{}: STS-B score '{}' is not a number", file.string(), line_no, token);
  // A score outside 0..5 means a column was picked up wrongly, not a real STS-B rating.
  if (value < 0.0f || value > 5.0f)
    fail("{}:{}: STS-B score {} is outside the range 0..5", file.string(), line_no, token);
  return value;
}

float parse_class(const TaskInfo& t, std::string_view token, const fs::path& file,
                  size_t line_no) {
  for (size_t id = 0; id < t.label_names.size(); ++id)
    if (token == t.label_names[id] || token == std::to_string(id)) return static_cast<float>(id);
  fail("{}:{}: unknown label '{}' for GLUE {}; expected 0, 1, '{}' or '{}'", file.string(),
       line_no, abbreviate(std::string(token)), t.name, t.label_names[0], t.label_names[1]);
}

}  // namespace

GlueTask parse_glue_task(const std::string& name) {
  std::string key;
  for (char c : name)
    if (c != '-' && c != '_') key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<std::string_view> names;
  for (const TaskInfo& t : task_table()) {
    if (key == t.name) return t.task;
    names.push_back(t.name);
  }
  fail("unknown GLUE task '{}'; expected one of {}", name, join(names, ", "));
}

const char* glue_task_name(GlueTask task) { return info(task).name; }
bool glue_task_is_pair(GlueTask task) { return info(task).pair; }
bool glue_task_is_regression(GlueTask task) { return info(task).regression; }
int glue_task_num_labels(GlueTask task) { return info(task).regression ? 1 : 2; }

GlueDataset read_glue_tsv(GlueTask task, const fs::path& file) {
  const TaskInfo& t = info(task);
  const std::string text = read_text_file(file);
  std::string_view body = text;
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);  // MRPC ships with a BOM
  const std::vector<std::string_view> lines = split_lines(body);
  if (lines.empty()) fail("{}: the file is empty", file.string());

  const Layout layout = detect_layout(t, split_tabs(lines[0]), file);

  GlueDataset ds{task, t.pair, t.regression, glue_task_num_labels(task), {}, file};
  ds.examples.reserve(lines.size());
  for (size_t i = layout.first_data_line; i < lines.size(); ++i) {
    const size_t line_no = i + 1;
    const std::vector<std::string_view> fields = split_tabs(lines[i]);
    if (fields.size() != layout.num_cols)
      fail("{}:{}: expected {} tab-separated columns, found {}", file.string(), line_no,
           layout.num_cols, fields.size());
    auto text_of = [&](size_t col) {
      return layout.csv_quoted ? unquote_csv(fields[col], file, line_no)
                               : std::string(fields[col]);
    };
    GlueExample ex;
    ex.a = text_of(layout.a);
    if (layout.b) ex.b = text_of(*layout.b);
    const std::string label = text_of(layout.label);
    const std::string_view token = trim(label);
    ex.label = t.regression ? parse_score(token, file, line_no)
                            : parse_class(t, token, file, line_no);
    ds.examples.push_back(std::move(ex));
  }
  if (ds.examples.empty()) fail("{}: no data rows after the header", file.string());
  return ds;
}

}  // namespace tquant
