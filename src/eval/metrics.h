#pragma once
// The official GLUE dev metrics, computed as scikit-learn / SciPy compute them (the reference the
// GLUE leaderboard and HF `evaluate` use), returned as raw fractions (0.8532, not 85.32).
#include <map>
#include <string>
#include <vector>

#include "eval/glue_data.h"

namespace tquant {

// All functions take predictions and labels of equal, non-zero length and throw tquant::Error
// otherwise. Class-based metrics take class ids stored as floats and reject non-integer or
// negative values.

double accuracy(const std::vector<float>& pred, const std::vector<float>& label);

// F1 of class 1 (sklearn f1_score, average="binary"); 0 when there are no true or predicted
// positives, as sklearn's zero_division default gives. Ids must be 0 or 1.
double f1_binary(const std::vector<float>& pred, const std::vector<float>& label);

// Matthews correlation (sklearn matthews_corrcoef, multiclass form); 0 when either side holds a
// single class, as sklearn returns.
double matthews_corr(const std::vector<float>& pred, const std::vector<float>& label);

// Pearson r (scipy.stats.pearsonr); NaN when either side is constant, as SciPy returns.
double pearson(const std::vector<float>& pred, const std::vector<float>& label);

// Spearman rho (scipy.stats.spearmanr): Pearson r of the ranks, ties given their average rank.
double spearman(const std::vector<float>& pred, const std::vector<float>& label);

struct GlueScore {
  std::map<std::string, double> metrics;  // "accuracy", "f1", "matthews_corr", "pearson", "spearman"
  double score;                           // the task's official number
  std::string score_name;  // a metrics key, or "accuracy_f1_mean" (MRPC), "pearson_spearman_mean" (STS-B)
};

// CoLA: matthews_corr. MRPC: mean of accuracy and f1. STS-B: mean of pearson and spearman.
// SST-2, QNLI, RTE, WNLI: accuracy. `pred` holds class ids, or scores for STS-B.
GlueScore glue_metrics(GlueTask task, const std::vector<float>& pred,
                       const std::vector<float>& label);

}  // namespace tquant
