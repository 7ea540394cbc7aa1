// tquant finetune: fine-tunes a BERT encoder (a BertForMaskedLM from `tquant pretrain`, or a
// sequence-classification model) on a GLUE task, reporting the dev metric after every epoch;
// --seeds runs several seeds and reports the median, as Bondarenko et al. (METHODS.md §2) do.
// tquant qat: the same loop with a recipe's fake quantizers in the graph (quantization-aware
// training, METHODS.md §2): STE for the rounding, LSQ/LSQ+ for the scales and zero points,
// which start from the recipe's weight estimator and from activations calibrated on a few
// training examples. Each run folder holds the latent FP weights and calibration.json (the
// learnt activation and weight quantizers): `tquant eval --recipe R --load-calibration` on it
// reproduces the reported dev score.
#include <fmt/format.h>

#include <cmath>
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
#include "model/point_names.h"
#include "quant/calibration.h"
#include "quant/model_size.h"
#include "quant/recipe.h"
#include "train/checkpoint.h"
#include "train/quant_graph.h"
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
  // qat
  std::string recipe;
  int calib_samples = 16;
  bool qat() const { return !recipe.empty(); }
};

constexpr const char* kCalibrationFile = "calibration.json";

json options_json(const Options& o, uint64_t seed) {
  return {{"model", fs::absolute(o.model).string()}, {"glue-task", o.task}, {"train", o.train}, {"dev", o.dev},
          {"epochs", o.epochs}, {"batch", o.batch}, {"micro-batch", o.micro_batch}, {"max-length", o.max_length},
          {"lr", o.lr}, {"warmup", o.warmup}, {"weight-decay", o.weight_decay}, {"clip", o.clip},
          {"decay", o.decay}, {"dropout", o.dropout ? json(*o.dropout) : json(nullptr)}, {"seed", seed},
          {"recipe", o.recipe}, {"calib-samples", o.qat() ? json(o.calib_samples) : json(nullptr)}};
}

// QAT state: the recipe, the graph and its parameters' place in the optimizer's list.
struct Qat {
  Recipe recipe;
  std::unique_ptr<train::QuantGraph> graph;
  size_t model_params = 0;  // tm.parameters()[0, model_params) are the model's, the rest the quantizers'

  Calibration calibration() const {
    Calibration c;
    c.recipe = recipe.name;
    c.points = graph->activation_params();
    c.weight_params = graph->weight_params();
    return c;
  }
};

// Calibration batches for QAT: `samples` training examples drawn with the seed.
std::vector<Batch> qat_calibration_batches(const Tokenizer& tok, const GlueDataset& data, int samples, int max_length,
                                           uint64_t seed) {
  const train::EpochOrder order(static_cast<int64_t>(data.examples.size()), seed ^ 0x5eedca1bULL);
  const int n = static_cast<int>(std::min<int64_t>(samples, static_cast<int64_t>(data.examples.size())));
  std::vector<size_t> which;
  for (int64_t i : order.items(0, n)) which.push_back(static_cast<size_t>(i));
  return {glue_batch(tok, data, which, max_length)};
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

// An epoch's dev score; NaN (JSON null) when the metric is undefined, e.g. a correlation of
// constant predictions.
double score_of(const json& epoch) {
  return epoch["score"].is_number() ? epoch["score"].get<double>() : std::nan("");
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
    if (o.qat()) {
      const ModelConfig c = parse_config(fs::path(o.model) / "config.json");
      if (c.head != Head::SequenceClassification || c.num_labels != train_set.num_labels)
        fail("{}: qat starts from a model fine-tuned on {} ({} labels); run tquant finetune first", o.model,
             glue_task_name(train_set.task), train_set.num_labels);
    }
    state = {{"command", "finetune"}, {"step", 0}, {"completed", false}, {"options", options},
             {"log", json::array()}, {"eval", json::array()}, {"tokens_seen", 0}, {"train_seconds", 0.0}};
    train::write_training_folder(out, config, tensors, o.model, state, nullptr, nullptr);
  }
  SeedResult r;
  r.seed = seed;
  if (state.value("completed", false)) {
    fmt::print("finetune seed {}: already finished\n", seed);
    r.epochs = state["eval"];
    r.final_score = score_of(r.epochs.back());
    r.score_name = r.epochs.back()["score_name"].get<std::string>();
    r.seconds = state["train_seconds"].get<double>();
    r.tokens = state["tokens_seen"].get<int64_t>();
    return r;
  }

  Model model = Model::load(out);
  const json config = train::read_config_json(out);
  const auto tok = Tokenizer::from_dir(out);
  train::TrainableModel tm(model);
  Qat qat;
  if (o.qat()) {
    qat.recipe = load_recipe(o.recipe, documented_recipe_names(model.config().layers));
    // A resumed run continues from its saved quantizers; a new one calibrates.
    const Calibration init =
        fs::exists(out / kCalibrationFile)
            ? load_calibration(out / kCalibrationFile)
            : train::initial_quantizers(model, qat.recipe,
                                        qat_calibration_batches(*tok, train_set, o.calib_samples, o.max_length, seed));
    qat.graph = std::make_unique<train::QuantGraph>(model, init.points, init.weight_params, true, true);
    tm.set_quant_graph(qat.graph.get());
    qat.model_params = tm.parameters().size();
    for (const train::Parameter& p : qat.graph->parameters()) tm.parameters().push_back(p);
    fmt::print("qat     {}: {} activation quantizers and {} weight quantizers, {} learnable scales/zero points\n",
               qat.recipe.name, init.points.size(), init.weight_params.size(), qat.graph->parameters().size());
  }
  // The folder's model tensors (the quantizers' parameters live in calibration.json).
  auto model_tensors = [&] {
    std::vector<train::Parameter> own(tm.parameters().begin(),
                                      tm.parameters().begin() + (o.qat() ? qat.model_params : tm.parameters().size()));
    return train::parameter_tensors(own);
  };
  auto extra_files = [&] {
    std::vector<std::pair<std::string, std::string>> files;
    if (o.qat()) files.emplace_back(kCalibrationFile, calibration_json(qat.calibration()));
    return files;
  };
  // The dev score of the model as trained: with QAT, the weights quantized with the learnt
  // scales and the learnt activation quantizers, exactly as `tquant eval --load-calibration`.
  auto evaluate_dev = [&] {
    GlueEvalOptions eo;
    eo.max_length = o.max_length;
    if (!o.qat()) return evaluate_glue(model, *tok, dev_set, eo);
    const Calibration c = qat.calibration();
    const train::QuantizedWeightsScope quantized(model, qat.recipe, c.weight_params);
    Hooks hooks;
    hooks.add(std::make_shared<FakeQuantHook>(c));
    return evaluate_glue(model, *tok, dev_set, eo, &hooks);
  };

  train::LoopOptions lo;
  lo.total_steps = total;
  lo.schedule = {static_cast<float>(o.lr), train::warmup_steps(o.warmup, total), total, train::parse_decay(o.decay)};
  lo.adamw.weight_decay = static_cast<float>(o.weight_decay);
  lo.clip = o.clip;
  lo.dropout = train::dropout_from_config(config, o.dropout);
  lo.seed = seed;
  lo.log_every = o.log_every;
  lo.show_accuracy = !train_set.is_regression;
  const std::string what =
      fmt::format("{} {} seed {}", o.qat() ? "qat" : "finetune", glue_task_name(train_set.task), seed);
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
    if (qat.graph) qat.graph->constrain();
    tokens_seen += log.tokens;
    train_seconds += log.seconds;
    window += log.sums;
    if (log.step % o.log_every == 0 || log.step == total) {
      state["log"].push_back({{"step", log.step}, {"loss", window.mean()}, {"lr", log.lr}, {"grad_norm", log.grad_norm}});
      window = {};
    }
    if (log.step % steps_per_epoch != 0) return;
    const int64_t epoch = log.step / steps_per_epoch;
    const GlueEvalResult dev = evaluate_dev();
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
    train::write_training_folder(out, config, model_tensors(), out, state, final ? nullptr : &loop.optimizer(),
                                 &tm.parameters(), extra_files());
  });
  r.epochs = state["eval"];
  r.final_score = score_of(r.epochs.back());
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
    // A constant prediction has no correlation (NaN, stored as null): such epochs never count as best.
    double b = std::nan("");
    for (const auto& e : r.epochs)
      if (std::isfinite(score_of(e)) && !(b >= score_of(e))) b = score_of(e);
    best.push_back(b);
    seeds.push_back({{"seed", r.seed}, {"epochs", r.epochs}, {"final", r.final_score}, {"train_seconds", r.seconds},
                     {"tokens", r.tokens}, {"tokens_per_second", r.tokens / std::max(r.seconds, 1e-9)}});
  }
  const std::string name = results.front().score_name;
  json summary = {{"task", glue_task_name(task)}, {"score_name", name}, {"median_final", train::median(finals)},
                  {"median_best_epoch", train::median(best)}, {"seeds", seeds}, {"dev", o.dev}, {"train", o.train}};
  if (o.qat()) {
    // The size as deployed: the recipe's bits for the quantized weights and tables.
    Model model = Model::load(o.model);
    const Recipe recipe = load_recipe(o.recipe, documented_recipe_names(model.config().layers));
    const ModelSize size = model_size(model, &recipe);
    summary["model_bytes"] = size.quantized_bytes;
    summary["fp32_bytes"] = size.fp32_bytes;
    fmt::print("size    {}\n", describe(size));
  }
  write_text_atomically(fs::path(o.out) / "finetune_summary.json", summary.dump(2) + "\n");
  fmt::print("{} {}: dev {} median over {} seed(s): {:.4f} after the last epoch (best epoch: {:.4f}); summary in {}\n",
             o.qat() ? "qat" : "finetune", glue_task_name(task), name, results.size(), train::median(finals), train::median(best),
             (fs::path(o.out) / "finetune_summary.json").string());
  return 0;
}

// The options both commands share; `qat` changes the defaults to METHODS.md §2's QAT recipe.
void add_training_options(CLI::App& app, Options& o) {
  app.add_option("--glue-task", o.task, "sst2, mrpc, rte, stsb, cola, qnli or wnli")->required();
  app.add_option("--train", o.train, "GLUE train TSV")->required();
  app.add_option("--dev", o.dev, "GLUE dev TSV, scored after every epoch")->required();
  app.add_option("--out", o.out, "Output folder: model/ (or seed-N/ per seed) and finetune_summary.json")->required();
  app.add_option("--epochs", o.epochs, "Epochs")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", o.batch, "Examples per optimizer step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--micro-batch", o.micro_batch, "Examples per forward/backward (default: --batch)");
  app.add_option("--max-length", o.max_length, "Tokens per example, longest-first truncation")->capture_default_str();
  app.add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Warm-up: a fraction of the steps (< 1) or a step count")->capture_default_str();
  app.add_option("--decay", o.decay, "linear, cosine or constant after warm-up")->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app.add_option("--clip", o.clip, "Max global gradient norm (0: off)")->capture_default_str();
  app.add_option("--dropout", o.dropout, "Dropout for every site (default: config.json's)");
  app.add_option("--seeds", o.seeds, "Seeds (comma-separated); the median is reported")->delimiter(',');
  app.add_option("--log-every", o.log_every, "Progress line every N steps");
  app.add_flag("--resume", o.resume, "Continue the runs in --out from their last epoch checkpoints");
}

const bool registered = register_command(
    "finetune", "Fine-tune a BERT encoder on a GLUE task, reporting the dev metric per epoch", [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Pretrained BERT folder (e.g. from tquant pretrain)")->required();
      add_training_options(app, *o);
      return [o] { return run(*o); };
    });

const bool registered_qat = register_command(
    "qat", "Quantization-aware training of a fine-tuned encoder on its GLUE task, with a recipe's quantizers",
    [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      // METHODS.md §2 (the PEG code's RTE W4A8 recipe): lr 5e-5, 6 epochs, batch 8, weight decay 0,
      // dropout 0, ranges from one batch of 16.
      o->lr = 5e-5;
      o->epochs = 6;
      o->batch = 8;
      o->weight_decay = 0;
      o->dropout = 0.f;
      o->warmup = 0;
      app.add_option("--model", o->model, "Model fine-tuned on the task (tquant finetune's output)")->required();
      app.add_option("--recipe", o->recipe, "Quantization recipe: a preset name (recipes/) or a JSON file")->required();
      app.add_option("--calib-samples", o->calib_samples, "Training examples that initialise the activation ranges")
          ->capture_default_str();
      add_training_options(app, *o);
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
