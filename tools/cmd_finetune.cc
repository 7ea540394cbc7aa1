// tquant finetune: fine-tunes a BERT encoder (a BertForMaskedLM from `tquant pretrain`, or a
// sequence-classification model) on a GLUE task, reporting the dev metric after every epoch;
// --seeds runs several seeds and reports the median, as Bondarenko et al. (METHODS.md §2) do.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "cli_registry.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/glue_data.h"
#include "eval/glue_eval.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/lm_batches.h"
#include "train/model_init.h"
#include "train/run_support.h"
#include "train/training_loop.h"

namespace tquant::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct Options {
  std::string model, task, train, dev, out;
  int epochs = 3, batch = 32, micro_batch = 0, max_length = 128;
  double lr = 1e-4, warmup = 0.1, weight_decay = 0.01, clip = 1.0;
  std::string decay = "linear";
  std::optional<float> dropout;
  std::vector<uint64_t> seeds{0};
  int64_t log_every = 20;
  bool resume = false;
};

json options_json(const Options& o, uint64_t seed) {
  return {{"model", fs::absolute(o.model).string()}, {"glue-task", o.task}, {"train", o.train}, {"dev", o.dev},
          {"epochs", o.epochs}, {"batch", o.batch}, {"micro-batch", o.micro_batch}, {"max-length", o.max_length},
          {"lr", o.lr}, {"warmup", o.warmup}, {"weight-decay", o.weight_decay}, {"clip", o.clip},
          {"decay", o.decay}, {"dropout", o.dropout ? json(*o.dropout) : json(nullptr)}, {"seed", seed}};
}

// The pretrained encoder with a fresh classification head (HF's BertForSequenceClassification
// layout), as config.json and tensors; an existing classifier with the right labels is kept.
std::pair<json, std::vector<TensorToWrite>> classifier_model(const fs::path& dir, const GlueDataset& data,
                                                              uint64_t seed) {
  json config = train::read_config_json(dir);
  const ModelConfig c = parse_config(dir / "config.json");
  if (c.arch != Arch::Bert) fail("{}: fine-tuning on GLUE needs a BERT encoder, this is {}", dir.string(), c.architecture);
  const Checkpoint ckpt = Checkpoint::open(dir);
  const bool keep_head = c.head == Head::SequenceClassification && c.num_labels == data.num_labels;
  std::vector<TensorToWrite> tensors;
  for (const std::string& name : ckpt.names()) {
    if (ckpt.stored_name(name) != name) continue;  // aliases (tied weights) are stored once
    std::string out = name;
    if (name.starts_with("embeddings.") || name.starts_with("encoder.")) out = "bert." + name;
    if (!out.starts_with("bert.")) {
      if (!keep_head || (!out.starts_with("classifier."))) continue;  // MLM head, old classifier
    }
    if (out.starts_with("bert.pooler.") && !keep_head) continue;
    if (out.ends_with(".position_ids")) continue;
    tensors.push_back(f32_tensor(out, ckpt.load_f32(name)));
  }
  if (!keep_head) {
    config["architectures"] = {"BertForSequenceClassification"};
    config["num_labels"] = data.num_labels;
    json id2label = json::object(), label2id = json::object();
    for (int i = 0; i < data.num_labels; ++i) {
      id2label[std::to_string(i)] = fmt::format("LABEL_{}", i);
      label2id[fmt::format("LABEL_{}", i)] = i;
    }
    config["id2label"] = id2label;
    config["label2id"] = label2id;
    config["problem_type"] = data.is_regression ? "regression" : "single_label_classification";
    ModelConfig head = c;
    head.num_labels = data.num_labels;
    for (TensorToWrite& t : train::initial_classifier_tensors(head, config.value("initializer_range", 0.02f), seed))
      tensors.push_back(std::move(t));
  }
  return {config, tensors};
}

struct SeedResult {
  uint64_t seed;
  json epochs = json::array();
  double final_score = 0;
  std::string score_name;
  double seconds = 0;
  int64_t tokens = 0;
};

SeedResult finetune_one(const Options& o, uint64_t seed, const fs::path& out, const GlueDataset& train_set,
                        const GlueDataset& dev_set) {
  train::check_training_output(out, o.resume && fs::exists(out / train::kTrainerStateFile));
  const json options = options_json(o, seed);
  const int64_t N = static_cast<int64_t>(train_set.examples.size());
  const int64_t steps_per_epoch = (N + o.batch - 1) / o.batch;
  const int64_t total = steps_per_epoch * o.epochs;

  json state;
  if (o.resume && fs::exists(out / train::kTrainerStateFile)) {
    state = train::read_trainer_state(out);
    train::check_same_options(state.value("options", json::object()), options, out);
  } else {
    auto [config, tensors] = classifier_model(o.model, train_set, seed);
    state = {{"command", "finetune"}, {"step", 0}, {"completed", false}, {"options", options},
             {"log", json::array()}, {"eval", json::array()}, {"tokens_seen", 0}, {"train_seconds", 0.0}};
    train::write_training_folder(out, config, tensors, o.model, state, nullptr, nullptr);
  }
  SeedResult r;
  r.seed = seed;
  if (state.value("completed", false)) {
    fmt::print("finetune seed {}: already finished\n", seed);
    r.epochs = state["eval"];
    r.final_score = r.epochs.back()["score"].get<double>();
    r.score_name = r.epochs.back()["score_name"].get<std::string>();
    r.seconds = state["train_seconds"].get<double>();
    r.tokens = state["tokens_seen"].get<int64_t>();
    return r;
  }

  Model model = Model::load(out);
  const json config = train::read_config_json(out);
  const auto tok = Tokenizer::from_dir(out);
  train::TrainableModel tm(model);

  train::LoopOptions lo;
  lo.total_steps = total;
  lo.schedule = {static_cast<float>(o.lr), train::warmup_steps(o.warmup, total), total, train::parse_decay(o.decay)};
  lo.adamw.weight_decay = static_cast<float>(o.weight_decay);
  lo.clip = o.clip;
  lo.dropout = train::dropout_from_config(config, o.dropout);
  lo.seed = seed;
  lo.log_every = o.log_every;
  lo.show_accuracy = !train_set.is_regression;
  const std::string what = fmt::format("finetune {} seed {}", glue_task_name(train_set.task), seed);
  lo.what = what.c_str();
  train::TrainingLoop loop(tm, lo);
  const int64_t start = state["step"].get<int64_t>();
  if (start > 0) train::restore_optimizer(out, tm.parameters(), start, loop.optimizer());

  const train::EpochOrder order(N, seed);
  const int micro = o.micro_batch > 0 ? o.micro_batch : o.batch;
  auto batches = [&](int64_t step) {
    const int64_t epoch = step / steps_per_epoch, first = (step % steps_per_epoch) * o.batch;
    const int count = static_cast<int>(std::min<int64_t>(o.batch, N - first));
    const std::vector<int64_t> items = order.items(epoch * N + first, count);
    std::vector<train::TrainBatch> out_batches;
    for (int m0 = 0; m0 < count; m0 += micro) {
      std::vector<size_t> which;
      std::vector<float> labels;
      for (int i = m0; i < std::min(count, m0 + micro); ++i) {
        which.push_back(static_cast<size_t>(items[i]));
        labels.push_back(train_set.examples[items[i]].label);
      }
      out_batches.push_back({glue_batch(*tok, train_set, which, o.max_length), {}, std::move(labels)});
    }
    return out_batches;
  };

  int64_t tokens_seen = state["tokens_seen"].get<int64_t>();
  double train_seconds = state["train_seconds"].get<double>();
  train::LossSum window;
  loop.run(start, batches, [&](const train::StepLog& log) {
    tokens_seen += log.tokens;
    train_seconds += log.seconds;
    window += log.sums;
    if (log.step % o.log_every == 0 || log.step == total) {
      state["log"].push_back({{"step", log.step}, {"loss", window.mean()}, {"lr", log.lr}, {"grad_norm", log.grad_norm}});
      window = {};
    }
    if (log.step % steps_per_epoch != 0) return;
    const int64_t epoch = log.step / steps_per_epoch;
    GlueEvalOptions eo;
    eo.max_length = o.max_length;
    const GlueEvalResult dev = evaluate_glue(model, *tok, dev_set, eo);
    std::string detail;
    for (const auto& [k, v] : dev.score.metrics) detail += fmt::format(" {} {:.4f}", k, v);
    fmt::print("{}: epoch {}/{} dev {} {:.4f} ({})\n", what, epoch, o.epochs, dev.score.score_name, dev.score.score,
               detail.substr(1));
    std::fflush(stdout);
    state["eval"].push_back({{"epoch", epoch}, {"step", log.step}, {"score_name", dev.score.score_name},
                             {"score", dev.score.score}, {"metrics", dev.score.metrics}});
    state["step"] = log.step;
    state["completed"] = log.step == total;
    state["tokens_seen"] = tokens_seen;
    state["train_seconds"] = train_seconds;
    const bool final = log.step == total;
    train::write_training_folder(out, config, train::parameter_tensors(tm.parameters()), out, state,
                                 final ? nullptr : &loop.optimizer(), &tm.parameters());
  });
  r.epochs = state["eval"];
  r.final_score = r.epochs.back()["score"].get<double>();
  r.score_name = r.epochs.back()["score_name"].get<std::string>();
  r.seconds = train_seconds;
  r.tokens = tokens_seen;
  return r;
}

int run(const Options& o) {
  const GlueTask task = parse_glue_task(o.task);
  const GlueDataset train_set = read_glue_tsv(task, o.train);
  const GlueDataset dev_set = read_glue_tsv(task, o.dev);
  if (train_set.examples.empty()) fail("{}: no training examples", o.train);
  std::error_code ec;
  if (!o.resume && fs::exists(o.out, ec) && !(fs::is_directory(o.out) && fs::is_empty(o.out)))
    fail("{}: exists and is not empty; choose another --out (or pass --resume)", o.out);
  fs::create_directories(o.out);

  std::vector<SeedResult> results;
  for (uint64_t seed : o.seeds) {
    const fs::path out = o.seeds.size() == 1 ? fs::path(o.out) / "model" : fs::path(o.out) / fmt::format("seed-{}", seed);
    results.push_back(finetune_one(o, seed, out, train_set, dev_set));
  }
  std::vector<double> finals, best;
  json seeds = json::array();
  for (const SeedResult& r : results) {
    finals.push_back(r.final_score);
    double b = -1e300;
    for (const auto& e : r.epochs) b = std::max(b, e["score"].get<double>());
    best.push_back(b);
    seeds.push_back({{"seed", r.seed}, {"epochs", r.epochs}, {"final", r.final_score}, {"train_seconds", r.seconds},
                     {"tokens", r.tokens}, {"tokens_per_second", r.tokens / std::max(r.seconds, 1e-9)}});
  }
  const std::string name = results.front().score_name;
  json summary = {{"task", glue_task_name(task)}, {"score_name", name}, {"median_final", train::median(finals)},
                  {"median_best_epoch", train::median(best)}, {"seeds", seeds}, {"dev", o.dev}, {"train", o.train}};
  write_text_atomically(fs::path(o.out) / "finetune_summary.json", summary.dump(2) + "\n");
  fmt::print("finetune {}: dev {} median over {} seed(s): {:.4f} after the last epoch (best epoch: {:.4f}); summary in {}\n",
             glue_task_name(task), name, results.size(), train::median(finals), train::median(best),
             (fs::path(o.out) / "finetune_summary.json").string());
  return 0;
}

const bool registered = register_command(
    "finetune", "Fine-tune a BERT encoder on a GLUE task, reporting the dev metric per epoch", [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Pretrained BERT folder (e.g. from tquant pretrain)")->required();
      app.add_option("--glue-task", o->task, "sst2, mrpc, rte, stsb, cola, qnli or wnli")->required();
      app.add_option("--train", o->train, "GLUE train TSV")->required();
      app.add_option("--dev", o->dev, "GLUE dev TSV, scored after every epoch")->required();
      app.add_option("--out", o->out, "Output folder: model/ (or seed-N/ per seed) and finetune_summary.json")->required();
      app.add_option("--epochs", o->epochs, "Epochs")->check(CLI::PositiveNumber);
      app.add_option("--batch", o->batch, "Examples per optimizer step")->check(CLI::PositiveNumber);
      app.add_option("--micro-batch", o->micro_batch, "Examples per forward/backward (default: --batch)");
      app.add_option("--max-length", o->max_length, "Tokens per example, longest-first truncation");
      app.add_option("--lr", o->lr, "Peak learning rate");
      app.add_option("--warmup", o->warmup, "Warm-up: a fraction of the steps (< 1) or a step count");
      app.add_option("--decay", o->decay, "linear, cosine or constant after warm-up");
      app.add_option("--weight-decay", o->weight_decay, "AdamW decoupled weight decay");
      app.add_option("--clip", o->clip, "Max global gradient norm (0: off)");
      app.add_option("--dropout", o->dropout, "Dropout for every site (default: config.json's)");
      app.add_option("--seeds", o->seeds, "Seeds (comma-separated); the median is reported")->delimiter(',');
      app.add_option("--log-every", o->log_every, "Progress line every N steps");
      app.add_flag("--resume", o->resume, "Continue the runs in --out from their last epoch checkpoints");
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
