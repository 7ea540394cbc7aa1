#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace tquant {

namespace {

void check_sizes(const char* metric, const std::vector<float>& pred,
                 const std::vector<float>& label) {
  if (pred.size() != label.size())
    fail("{}: {} predictions but {} labels", metric, pred.size(), label.size());
  if (pred.empty()) fail("{}: no examples to score", metric);
}

// Class ids arrive as floats; anything not a small non-negative integer is a caller bug
// (e.g. logits passed where argmax ids were meant) and would silently count as wrong.
std::vector<int> class_ids(const char* metric, const char* which, const std::vector<float>& v) {
  std::vector<int> ids(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const float x = v[i];
    if (!(x >= 0.0f) || x > 1e6f || x != std::floor(x))
      fail("{}: {} [{}] = {} is not a class id (a non-negative integer)", metric, which, i, x);
    ids[i] = static_cast<int>(x);
  }
  return ids;
}

std::vector<double> average_ranks(const std::vector<float>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = avg;
    i = j + 1;
  }
  return rank;
}

double pearson_of(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
  // Rounding can push |r| a hair past 1; SciPy clips the same way.
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

void check_finite(const char* metric, const char* which, const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) fail("{}: {} [{}] = {} is not finite", metric, which, i, v[i]);
}

}  // namespace

double accuracy(const std::vector<float>& pred, const std::vector<float>& label) {
  check_sizes("accuracy", pred, label);
  const std::vector<int> p = class_ids("accuracy", "prediction", pred);
  const std::vector<int> l = class_ids("accuracy", "label", label);
  size_t correct = 0;
  for (size_t i = 0; i < p.size(); ++i) correct += p[i] == l[i];
  return static_cast<double>(correct) / static_cast<double>(p.size());
}

double f1_binary(const std::vector<float>& pred, const std::vector<float>& label) {
  check_sizes("f1", pred, label);
  const std::vector<int> p = class_ids("f1", "prediction", pred);
  const std::vector<int> l = class_ids("f1", "label", label);
  size_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] > 1 || l[i] > 1)
      fail("f1: example {} has class {} / {}; binary F1 takes ids 0 and 1", i, p[i], l[i]);
    tp += p[i] == 1 && l[i] == 1;
    fp += p[i] == 1 && l[i] == 0;
    fn += p[i] == 0 && l[i] == 1;
  }
  if (tp == 0) return 0.0;  // also covers 0/0: sklearn's zero_division default
  return 2.0 * tp / static_cast<double>(2 * tp + fp + fn);
}

double matthews_corr(const std::vector<float>& pred, const std::vector<float>& label) {
  check_sizes("matthews_corr", pred, label);
  const std::vector<int> p = class_ids("matthews_corr", "prediction", pred);
  const std::vector<int> l = class_ids("matthews_corr", "label", label);
  const int k = std::max(*std::max_element(p.begin(), p.end()),
                         *std::max_element(l.begin(), l.end())) + 1;
  // sklearn's multiclass form (Gorodkin 2004) from per-class totals; equals the 2x2 formula.
  std::vector<double> pred_count(k, 0.0), true_count(k, 0.0);
  double correct = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    pred_count[p[i]] += 1;
    true_count[l[i]] += 1;
    correct += p[i] == l[i];
  }
  const double s = static_cast<double>(p.size());
  double pt = 0, pp = 0, tt = 0;
  for (int c = 0; c < k; ++c) {
    pt += pred_count[c] * true_count[c];
    pp += pred_count[c] * pred_count[c];
    tt += true_count[c] * true_count[c];
  }
  const double denom = (s * s - pp) * (s * s - tt);
  if (denom == 0) return 0.0;
  return (correct * s - pt) / std::sqrt(denom);
}

double pearson(const std::vector<float>& pred, const std::vector<float>& label) {
  check_sizes("pearson", pred, label);
  check_finite("pearson", "prediction", pred);
  check_finite("pearson", "label", label);
  return pearson_of(std::vector<double>(pred.begin(), pred.end()),
                    std::vector<double>(label.begin(), label.end()));
}

double spearman(const std::vector<float>& pred, const std::vector<float>& label) {
  check_sizes("spearman", pred, label);
  check_finite("spearman", "prediction", pred);
  check_finite("spearman", "label", label);
  return pearson_of(average_ranks(pred), average_ranks(label));
}

GlueScore glue_metrics(GlueTask task, const std::vector<float>& pred,
                       const std::vector<float>& label) {
  check_sizes("glue_metrics", pred, label);
  // Accuracy alone would just count an id the task does not have (e.g. 2 for a binary task)
  // as wrong; it means the caller mixed up tasks or heads.
  if (!glue_task_is_regression(task)) {
    const int n = glue_task_num_labels(task);
    for (size_t i = 0; i < pred.size(); ++i)
      if (pred[i] >= n || label[i] >= n)
        fail("glue_metrics: {} example {} has prediction {} / label {}; the task has ids 0..{}",
             glue_task_name(task), i, pred[i], label[i], n - 1);
  }
  GlueScore out;
  switch (task) {
    case GlueTask::COLA:
      out.metrics["matthews_corr"] = matthews_corr(pred, label);
      out.score_name = "matthews_corr";
      out.score = out.metrics["matthews_corr"];
      break;
    case GlueTask::MRPC:
      out.metrics["accuracy"] = accuracy(pred, label);
      out.metrics["f1"] = f1_binary(pred, label);
      out.score_name = "accuracy_f1_mean";
      out.score = (out.metrics["accuracy"] + out.metrics["f1"]) / 2.0;
      break;
    case GlueTask::STSB:
      out.metrics["pearson"] = pearson(pred, label);
      out.metrics["spearman"] = spearman(pred, label);
      out.score_name = "pearson_spearman_mean";
      out.score = (out.metrics["pearson"] + out.metrics["spearman"]) / 2.0;
      break;
    case GlueTask::SST2:
    case GlueTask::QNLI:
    case GlueTask::RTE:
    case GlueTask::WNLI:
      out.metrics["accuracy"] = accuracy(pred, label);
      out.score_name = "accuracy";
      out.score = out.metrics["accuracy"];
      break;
  }
  if (out.score_name.empty())
    fail("glue_metrics: GLUE task id {} is not known", static_cast<int>(task));
  return out;
}

}  // namespace tquant
