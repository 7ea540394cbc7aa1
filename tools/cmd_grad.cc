// tquant grad: one forward and backward pass of the training engine on a given batch, writing
// the loss and every parameter's gradient. It exists so that the backward passes can be checked
// against an independent reference (tests/oracle/test_train_grad.py) and to inspect gradients.
#include <fmt/format.h>

#include "cli_registry.h"
#include "core/error.h"
#include "io/batch_json.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "train/trainable.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, batch_json, out;
};

int run(const Options& o) {
  Model model = Model::load(o.model);
  const nlohmann::json j = read_json_file(o.batch_json);
  const Batch batch = batch_from_json(j, o.batch_json);
  std::vector<int32_t> tokens;
  std::vector<float> sequences;
  if (j.contains("labels")) {
    for (const auto& row : int_rows(j["labels"], o.batch_json, "labels")) tokens.insert(tokens.end(), row.begin(), row.end());
  } else if (j.contains("sequence_labels")) {
    if (!j["sequence_labels"].is_array()) fail("{}: \"sequence_labels\" must be a list of numbers", o.batch_json);
    for (const auto& v : j["sequence_labels"]) {
      if (!v.is_number()) fail("{}: \"sequence_labels\" holds {}", o.batch_json, v.dump());
      sequences.push_back(v.get<float>());
    }
  } else {
    fail("{}: give \"labels\" (per position) or \"sequence_labels\"", o.batch_json);
  }
  train::Targets targets;
  if (!tokens.empty()) targets.tokens = &tokens;
  if (!sequences.empty()) targets.sequences = &sequences;

  train::TrainableModel tm(model);
  tm.zero_grad();
  // The first pass counts the targets so that the gradient is that of the mean loss.
  const train::LossSum count = tm.evaluate(batch, targets);
  if (count.count == 0) fail("{}: the batch has no targets", o.batch_json);
  const train::LossSum loss = tm.accumulate(batch, targets, 1.f / static_cast<float>(count.count), {}, 0);
  std::vector<TensorToWrite> out;
  Tensor l({1});
  l[0] = static_cast<float>(loss.mean());
  out.push_back(f32_tensor("loss", l));
  for (const train::Parameter& p : tm.parameters()) out.push_back(f32_tensor(p.name, p.grad));
  write_safetensors(o.out, out, {{"loss_f64", fmt::format("{:.17g}", loss.mean())}});
  fmt::print("loss {:.6f} over {} targets; {} gradients written to {}\n", loss.mean(), loss.count,
             tm.parameters().size(), o.out);
  return 0;
}

const bool registered = register_command(
    "grad", "Compute the training loss and every parameter's gradient on one batch", [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Model folder")->required();
      app.add_option("--batch-json", o->batch_json,
                     "JSON with input_ids [, token_type_ids, attention_mask] and labels or sequence_labels")
          ->required();
      app.add_option("--out", o->out, "Output .safetensors (\"loss\" and one gradient per parameter)")->required();
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
