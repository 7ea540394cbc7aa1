#include "eval/logits_file.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/half.h"

namespace tquant {
namespace {

constexpr char kMagic[9] = "TQLOGP01";

uint64_t fnv1a(uint64_t h, int32_t value) {
  const auto* p = reinterpret_cast<const unsigned char*>(&value);
  for (int i = 0; i < 4; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace

void log_softmax(const float* logits, int64_t n, float* out) {
  float mx = logits[0];
  for (int64_t v = 1; v < n; ++v) mx = std::max(mx, logits[v]);
  double sum = 0;
  for (int64_t v = 0; v < n; ++v) sum += std::exp(static_cast<double>(logits[v]) - mx);
  const double lse = std::log(sum) + mx;
  for (int64_t v = 0; v < n; ++v) out[v] = static_cast<float>(logits[v] - lse);
}

std::string scoring_protocol(int ctx, int stride, bool bos) {
  return fmt::format("ctx {}, stride {}{}", ctx, stride, bos ? ", BOS" : "");
}

LogitsWriter::LogitsWriter(std::filesystem::path path, std::string protocol)
    : path_(std::move(path)), protocol_(std::move(protocol)) {
  tmp_ = path_;
  tmp_ += fmt::format(".tmp-{}", getpid());
}

LogitsWriter::~LogitsWriter() {
  if (out_.is_open()) {
    out_.close();
    std::error_code ignored;
    std::filesystem::remove(tmp_, ignored);
  }
}

void LogitsWriter::begin(int64_t scored_tokens, int64_t vocab) {
  expected_ = scored_tokens;
  vocab_ = vocab;
  row_.resize(vocab);
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) fail("{}: cannot create", tmp_.string());
  // The header is rewritten in finish(); reserve a fixed-size slot for it now.
  const std::string blank(256, ' ');
  const uint64_t len = blank.size();
  out_.write(kMagic, 8);
  out_.write(reinterpret_cast<const char*>(&len), 8);
  out_.write(blank.data(), static_cast<std::streamsize>(len));
}

void LogitsWriter::on_token(const float* logits, int64_t vocab, int32_t target) {
  lp_.resize(vocab);
  log_softmax(logits, vocab, lp_.data());
  for (int64_t v = 0; v < vocab; ++v) row_[v] = f32_to_f16(lp_[v]);
  out_.write(reinterpret_cast<const char*>(row_.data()), static_cast<std::streamsize>(2 * vocab));
  hash_ = fnv1a(hash_, target);
  ++written_;
}

void LogitsWriter::finish() {
  if (written_ != expected_) fail("{}: wrote {} of {} tokens", path_.string(), written_, expected_);
  nlohmann::json h = {{"vocab", vocab_},
                      {"tokens", written_},
                      {"targets_fnv1a64", fmt::format("{:016x}", hash_)},
                      {"protocol", protocol_}};
  std::string text = h.dump();
  if (text.size() > 256) fail("{}: header too long", path_.string());
  text.resize(256, ' ');
  out_.seekp(16);
  out_.write(text.data(), 256);
  out_.close();
  if (!out_) fail("{}: write failed (disk full?)", tmp_.string());
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) fail("{}: cannot move the finished file into place: {}", path_.string(), ec.message());
}

KldComparer::KldComparer(std::filesystem::path reference, std::string protocol) : path_(std::move(reference)) {
  in_.open(path_, std::ios::binary);
  if (!in_) fail("{}: cannot open the saved FP logits", path_.string());
  char magic[8];
  uint64_t len = 0;
  if (!in_.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !in_.read(reinterpret_cast<char*>(&len), 8) ||
      len > (1u << 20))
    fail("{}: not a tquant logits file (written by tquant eval --save-logits)", path_.string());
  std::string text(len, '\0');
  if (!in_.read(text.data(), static_cast<std::streamsize>(len))) fail("{}: truncated header", path_.string());
  try {
    const auto h = nlohmann::json::parse(text);
    vocab_ = h.at("vocab").get<int64_t>();
    tokens_ = h.at("tokens").get<int64_t>();
    expected_hash_ = std::stoull(h.at("targets_fnv1a64").get<std::string>(), nullptr, 16);
    const std::string saved = h.at("protocol").get<std::string>();
    // The same tokens scored with another context length would measure the context, not the
    // model.
    if (saved != protocol)
      fail("{}: saved with {}, but this run scores with {}; use the same --ctx, --stride and --bos", path_.string(),
           saved, protocol);
  } catch (const std::exception& e) {
    fail("{}: malformed header: {}", path_.string(), e.what());
  }
  const auto need = 16 + len + static_cast<uint64_t>(tokens_) * vocab_ * 2;
  if (std::filesystem::file_size(path_) != need)
    fail("{}: file size {} does not match its header ({} tokens × {} vocab)", path_.string(),
         std::filesystem::file_size(path_), tokens_, vocab_);
}

void KldComparer::begin(int64_t scored_tokens, int64_t vocab) {
  if (vocab != vocab_)
    fail("{}: saved with vocabulary {}, but this model has {}", path_.string(), vocab_, vocab);
  if (scored_tokens != tokens_)
    fail("{}: saved for {} scored tokens, but this run scores {} (different data, --ctx, --stride, --bos or "
         "--max-tokens?)", path_.string(), tokens_, scored_tokens);
  row_.resize(vocab);
  ref_.resize(vocab);
  kld_.reserve(tokens_);
}

void KldComparer::on_token(const float* logits, int64_t vocab, int32_t target) {
  if (!in_.read(reinterpret_cast<char*>(row_.data()), static_cast<std::streamsize>(2 * vocab)))
    fail("{}: truncated at token {}", path_.string(), seen_);
  // Renormalise the fp16-rounded reference so its rounding errors do not sum to a spurious
  // first-order KL term; what remains is second order (~1e-7).
  double mx = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) mx = std::max(mx, double(ref_[v] = f16_to_f32(row_[v])));
  double z = 0;
  for (int64_t v = 0; v < vocab; ++v) z += std::exp(ref_[v] - mx);
  const double lse = std::log(z) + mx;
  for (int64_t v = 0; v < vocab; ++v) ref_[v] = static_cast<float>(ref_[v] - lse);
  std::vector<float>& lq = lq_;
  lq.resize(vocab);
  log_softmax(logits, vocab, lq.data());
  double kl = 0;
  int64_t arg_p = 0, arg_q = 0;
  for (int64_t v = 0; v < vocab; ++v) {
    const double lp = ref_[v];
    kl += std::exp(lp) * (lp - lq[v]);
    if (ref_[v] > ref_[arg_p]) arg_p = v;
    if (lq[v] > lq[arg_q]) arg_q = v;
  }
  // fp16 storage rounds the reference slightly; a tiny negative KL is that rounding.
  kld_.push_back(std::max(0.0, kl));
  top1_same_ += arg_p == arg_q;
  ref_nll_ -= ref_[target];
  hash_ = fnv1a(hash_, target);
  ++seen_;
}

KldResult KldComparer::finish() {
  if (seen_ != tokens_) fail("{}: compared {} of {} tokens", path_.string(), seen_, tokens_);
  if (hash_ != expected_hash_)
    fail("{}: the saved logits were scored on different target tokens (other data or tokenizer)", path_.string());
  KldResult r;
  r.tokens = seen_;
  double sum = 0;
  for (double x : kld_) sum += x;
  r.mean = sum / seen_;
  double ss = 0;
  for (double x : kld_) ss += (x - r.mean) * (x - r.mean);
  r.stderr_mean = seen_ > 1 ? std::sqrt(ss / (seen_ - 1) / seen_) : 0.0;
  std::vector<double> sorted = kld_;
  std::sort(sorted.begin(), sorted.end());
  // Linear interpolation between order statistics (NumPy's default percentile).
  auto pct = [&](double p) {
    const double pos = p * (sorted.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, sorted.size() - 1);
    return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
  };
  r.p99 = pct(0.99);
  r.median = pct(0.5);
  r.max = sorted.back();
  r.top1_agreement = static_cast<double>(top1_same_) / seen_;
  r.ppl_reference = std::exp(ref_nll_ / seen_);
  return r;
}

}  // namespace tquant
