#pragma once
// GLUE dev/train TSV files as the benchmark and its mirrors ship them. The layout (original GLUE,
// Hugging Face `datasets` export, raw CoLA without a header) is recognised from the first line,
// and labels are mapped to the Hugging Face class ids, so a model fine-tuned with HF `glue`
// configs scores correctly whichever copy of the data is read.
#include <filesystem>
#include <string>
#include <vector>

namespace tquant {

enum class GlueTask { SST2, MRPC, RTE, STSB, QNLI, COLA, WNLI };

// Accepts "sst2","mrpc","rte","stsb","qnli","cola","wnli" (also "sst-2","sts-b", any case); the
// error lists the accepted names.
GlueTask parse_glue_task(const std::string& name);
const char* glue_task_name(GlueTask task);  // the lower-case name parse_glue_task accepts

bool glue_task_is_pair(GlueTask task);
bool glue_task_is_regression(GlueTask task);  // only STS-B
int glue_task_num_labels(GlueTask task);      // 2, or 1 for STS-B

struct GlueExample {
  std::string a;  // the first (or only) sentence, byte for byte as in the file
  std::string b;  // empty for single-sentence tasks (SST-2, CoLA)
  float label;    // HF class id (see below), or the 0..5 similarity score for STS-B
};

struct GlueDataset {
  GlueTask task;
  bool is_pair;
  bool is_regression;
  int num_labels;
  std::vector<GlueExample> examples;
  std::filesystem::path file;
};

// Class ids follow the HF `glue` dataset:
//   SST-2 0=negative 1=positive; MRPC 0=not_equivalent 1=equivalent; CoLA 0=unacceptable
//   1=acceptable; RTE and QNLI 0=entailment 1=not_entailment; WNLI 0=not_entailment 1=entailment.
// Labels may be given as those ids or as those names (original GLUE RTE/QNLI use the names).
// Throws tquant::Error naming the file and line for a bad header, a wrong column count, an
// unknown label or an unreadable file.
GlueDataset read_glue_tsv(GlueTask task, const std::filesystem::path& file);

}  // namespace tquant
