// tquant: one command-line program; the subcommands live in cmd_*.cc.
#include <fmt/format.h>

#include <cstdio>
#include <vector>

#include "cli_registry.h"
#include "core/error.h"
#include "core/threads.h"

namespace tquant::cli {
namespace {

struct Command {
  const char* name;
  const char* description;
  Setup setup;
};

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace

bool register_command(const char* name, const char* description, Setup setup) {
  registry().push_back({name, description, std::move(setup)});
  return true;
}

}  // namespace tquant::cli

int main(int argc, char** argv) {
  CLI::App app{"tquant: post-training quantization of transformer models"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "Worker threads (default: all cores)");

  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (auto& command : tquant::cli::registry()) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    runners.emplace_back(sub, command.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    tquant::set_num_threads(threads);
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const tquant::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "tquant: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "tquant: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
