// tquant pretrain: trains a BERT (masked LM, 15% masking with 80/10/10) or LLaMA (causal LM)
// model from scratch on text files, writing an HF checkpoint folder periodically; --resume
// continues a killed run and ends where the uninterrupted run would have, bit for bit.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "cli_registry.h"
#include "core/error.h"
#include "core/temp_dir.h"
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
  std::string arch = "bert", size = "mini", tokenizer, out;
  std::vector<std::string> data, eval_data;
  int seq_len = 128;
  int batch = 64, micro_batch = 32;
  int64_t steps = 1000;
  double lr = 5e-4, warmup = 0.06, weight_decay = 0.01, clip = 1.0, beta2 = 0.999, eps = 1e-6;
  std::string decay = "linear";
  std::optional<float> dropout;
  float mask_prob = 0.15f;
  uint64_t seed = 0;
  int64_t save_every = 500, eval_every = 0, log_every = 10;
  int eval_sequences = 256;
  bool resume = false;
};

// Everything that determines the run's result: --resume must see the same values.
json options_json(const Options& o) {
  json j;
  j["arch"] = o.arch;
  j["size"] = o.size;
  j["data"] = o.data;
  j["eval-data"] = o.eval_data;
  j["seq-len"] = o.seq_len;
  j["batch"] = o.batch;
  j["micro-batch"] = o.micro_batch;
  j["steps"] = o.steps;
  j["lr"] = o.lr;
  j["warmup"] = o.warmup;
  j["decay"] = o.decay;
  j["weight-decay"] = o.weight_decay;
  j["clip"] = o.clip;
  j["beta2"] = o.beta2;
  j["eps"] = o.eps;
  j["dropout"] = o.dropout ? json(*o.dropout) : json(nullptr);
  j["mask-prob"] = o.mask_prob;
  j["seed"] = o.seed;
  j["eval-every"] = o.eval_every;
  j["eval-sequences"] = o.eval_sequences;
  return j;
}

// One source of batches for both objectives.
struct Stream {
  std::optional<train::MlmBatches> mlm;
  std::optional<train::CausalBatches> causal;
  train::LmBatch batch(int64_t first, int count) const {
    return mlm ? mlm->batch(first, count) : causal->batch(first, count);
  }
  int64_t sequences() const { return mlm ? mlm->sequences() : causal->sequences(); }
};

Stream make_stream(const std::string& arch, const train::TokenCorpus& corpus, const Tokenizer& tok, int seq_len,
                   float mask_prob, uint64_t seed) {
  Stream s;
  if (arch == "bert") {
    train::MlmOptions m;
    m.seq_len = seq_len;
    m.mask_prob = mask_prob;
    m.seed = seed;
    m.pack = true;  // short documents fill whole sequences instead of padding
    s.mlm.emplace(corpus, tok, m);
  } else {
    train::CausalOptions c;
    c.seq_len = seq_len;
    c.seed = seed;
    s.causal.emplace(corpus, tok, c);
  }
  return s;
}

std::vector<fs::path> paths(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

int run(const Options& o) {
  if (o.batch % o.micro_batch != 0) fail("--batch {} must be a multiple of --micro-batch {}", o.batch, o.micro_batch);
  if (o.seq_len < 4) fail("--seq-len {} is too short", o.seq_len);
  train::check_training_output(o.out, o.resume);
  const json options = options_json(o);

  json state;
  if (o.resume) {
    state = train::read_trainer_state(o.out);
    train::check_same_options(state.value("options", json::object()), options, o.out);
    if (state.value("completed", false)) {
      fmt::print("{}: the run already finished ({} steps); nothing to resume\n", o.out, state["step"].get<int64_t>());
      return 0;
    }
  } else {
    // Step 0: a freshly initialised model, written like any checkpoint and loaded back, so that
    // training always starts from what a loader sees.
    const auto tok = Tokenizer::from_dir(o.tokenizer);
    const json config = train::preset_config(o.arch, o.size, *tok, o.seq_len);
    // parse_config validates a config.json file; the preset is checked the same way.
    TempDir probe(TempDir::path_beside(fs::path(o.out).string() + ".config"));
    {
      std::ofstream f(probe.path() / "config.json");
      f << config.dump(2);
    }
    const ModelConfig parsed = parse_config(probe.path() / "config.json");
    state = {{"command", "pretrain"}, {"step", 0}, {"completed", false}, {"options", options},
             {"tokenizer", fs::absolute(o.tokenizer).string()}, {"log", json::array()}, {"eval", json::array()},
             {"tokens_seen", 0}, {"train_seconds", 0.0}};
    train::write_training_folder(o.out, config, train::initial_tensors(parsed, config.value("initializer_range", 0.02f), o.seed),
                                 o.tokenizer, state, nullptr, nullptr);
  }

  Model model = Model::load(o.out);
  const json config = train::read_config_json(o.out);
  const auto tok = Tokenizer::from_dir(o.out);
  train::TrainableModel tm(model);

  const auto t_tok = std::chrono::steady_clock::now();
  const train::TokenCorpus corpus = train::tokenize_corpus(*tok, paths(o.data));
  const Stream stream = make_stream(o.arch, corpus, *tok, o.seq_len, o.mask_prob, o.seed);
  std::optional<Stream> eval_stream;
  std::vector<train::LmBatch> eval_batches;
  if (!o.eval_data.empty()) {
    const train::TokenCorpus eval_corpus = train::tokenize_corpus(*tok, paths(o.eval_data));
    eval_stream = make_stream(o.arch, eval_corpus, *tok, o.seq_len, o.mask_prob, o.seed + 1);
    const int64_t n = std::min<int64_t>(o.eval_sequences, eval_stream->sequences());
    for (int64_t first = 0; first < n; first += o.micro_batch)
      eval_batches.push_back(eval_stream->batch(first, static_cast<int>(std::min<int64_t>(o.micro_batch, n - first))));
  }
  fmt::print("pretrain: {} {} ({} parameters), {} training tokens in {} sequences of ≤{} tokens (tokenized in {:.1f} s)\n",
             config["architectures"][0].get<std::string>(), o.size, tm.parameter_count(), corpus.ids.size(),
             stream.sequences(), o.seq_len,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t_tok).count());

  train::LoopOptions lo;
  lo.total_steps = o.steps;
  lo.schedule = {static_cast<float>(o.lr), train::warmup_steps(o.warmup, o.steps), o.steps, train::parse_decay(o.decay)};
  lo.adamw.weight_decay = static_cast<float>(o.weight_decay);
  lo.adamw.beta2 = static_cast<float>(o.beta2);
  lo.adamw.eps = static_cast<float>(o.eps);
  lo.clip = o.clip;
  lo.dropout = train::dropout_from_config(config, o.dropout);
  lo.seed = o.seed;
  lo.log_every = o.log_every;
  lo.what = "pretrain";
  train::TrainingLoop loop(tm, lo);

  const int64_t start = state["step"].get<int64_t>();
  if (start > 0) {
    train::restore_optimizer(o.out, tm.parameters(), start, loop.optimizer());
    fmt::print("pretrain: resuming at step {}\n", start);
  }
  const int micro_count = o.batch / o.micro_batch;
  auto batches = [&](int64_t step) {
    std::vector<train::TrainBatch> out;
    for (int i = 0; i < micro_count; ++i) {
      train::LmBatch b = stream.batch(step * o.batch + int64_t{i} * o.micro_batch, o.micro_batch);
      out.push_back({std::move(b.batch), std::move(b.labels), {}});
    }
    return out;
  };
  auto evaluate = [&] {
    train::LossSum s;
    for (const train::LmBatch& b : eval_batches) {
      train::Targets t;
      t.tokens = &b.labels;
      s += tm.evaluate(b.batch, t);
    }
    return s;
  };

  train::LossSum window;
  int64_t tokens_seen = state["tokens_seen"].get<int64_t>();
  double train_seconds = state["train_seconds"].get<double>();
  auto save = [&](int64_t step, bool final) {
    state["step"] = step;
    state["completed"] = final;
    state["tokens_seen"] = tokens_seen;
    state["train_seconds"] = train_seconds;
    train::write_training_folder(o.out, config, train::parameter_tensors(tm.parameters()), o.out, state,
                                 final ? nullptr : &loop.optimizer(), &tm.parameters());
  };
  loop.run(start, batches, [&](const train::StepLog& log) {
    tokens_seen += log.tokens;
    train_seconds += log.seconds;
    window += log.sums;
    if (log.step % o.log_every == 0 || log.step == o.steps) {
      state["log"].push_back({{"step", log.step},
                              {"loss", window.mean()},
                              {"accuracy", window.accuracy()},
                              {"lr", log.lr},
                              {"grad_norm", log.grad_norm},
                              {"tokens_seen", tokens_seen},
                              {"seconds", train_seconds}});
      window = {};
    }
    if (!eval_batches.empty() && ((o.eval_every > 0 && log.step % o.eval_every == 0) || log.step == o.steps)) {
      const train::LossSum e = evaluate();
      fmt::print("pretrain eval step {}: loss {:.4f} | accuracy {:.4f} | {} targets\n", log.step, e.mean(),
                 e.accuracy(), e.count);
      state["eval"].push_back({{"step", log.step}, {"loss", e.mean()}, {"accuracy", e.accuracy()}, {"targets", e.count}});
    }
    if (log.step == o.steps) {
      save(log.step, true);
    } else if (o.save_every > 0 && log.step % o.save_every == 0) {
      save(log.step, false);
    }
  });
  fmt::print("pretrain: done, {} steps, {} tokens in {} ({:.0f} tokens/s); model in {}\n", o.steps, tokens_seen,
             train::format_duration(train_seconds), tokens_seen / std::max(train_seconds, 1e-9), o.out);
  return 0;
}

const bool registered = register_command(
    "pretrain", "Pretrain a BERT (masked LM) or LLaMA (causal LM) model from scratch", [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--arch", o->arch, "bert (masked LM) or llama (causal LM)")->check(CLI::IsMember({"bert", "llama"}));
      app.add_option("--size", o->size, "tiny, mini, small, medium, or a JSON file of config.json fields");
      app.add_option("--data", o->data, "Training text files (a blank line ends a document)")->required()->expected(1, -1);
      app.add_option("--tokenizer", o->tokenizer, "Tokenizer folder (tokenizer.json), e.g. from train-tokenizer");
      app.add_option("--out", o->out, "Output folder: the checkpoint, rewritten every --save-every steps")->required();
      app.add_option("--eval-data", o->eval_data, "Held-out text for the evaluation loss")->expected(1, -1);
      app.add_option("--seq-len", o->seq_len, "Tokens per sequence (with [CLS]/[SEP] for BERT)");
      app.add_option("--batch", o->batch, "Sequences per optimizer step");
      app.add_option("--micro-batch", o->micro_batch, "Sequences per forward/backward (gradient accumulation)");
      app.add_option("--steps", o->steps, "Optimizer steps")->check(CLI::PositiveNumber);
      app.add_option("--lr", o->lr, "Peak learning rate");
      app.add_option("--warmup", o->warmup, "Warm-up: a fraction of the steps (< 1) or a step count");
      app.add_option("--decay", o->decay, "linear, cosine or constant after warm-up");
      app.add_option("--weight-decay", o->weight_decay, "AdamW decoupled weight decay");
      app.add_option("--clip", o->clip, "Max global gradient norm (0: off)");
      app.add_option("--beta2", o->beta2, "AdamW beta2");
      app.add_option("--eps", o->eps, "AdamW epsilon");
      app.add_option("--dropout", o->dropout, "Dropout for every site (default: config.json's)");
      app.add_option("--mask-prob", o->mask_prob, "Masked-LM masking rate");
      app.add_option("--seed", o->seed, "Seed for initialisation, data order, masking and dropout");
      app.add_option("--save-every", o->save_every, "Checkpoint every N steps (0: only at the end)");
      app.add_option("--eval-every", o->eval_every, "Evaluate on --eval-data every N steps");
      app.add_option("--eval-sequences", o->eval_sequences, "Sequences of --eval-data to evaluate");
      app.add_option("--log-every", o->log_every, "Progress line every N steps");
      app.add_flag("--resume", o->resume, "Continue the run in --out from its last checkpoint");
      app.callback([o] {
        if (!o->resume && o->tokenizer.empty()) throw CLI::ValidationError("--tokenizer is required (except with --resume)");
      });
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
