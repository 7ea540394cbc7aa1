#pragma once
// Each subcommand lives in its own tools/cmd_*.cc and registers itself here, so adding a
// command touches no shared file.
#include <CLI/CLI.hpp>

#include <functional>

namespace tquant::cli {

// Declares the subcommand's options on `app` and returns what runs it (its exit code).
using Setup = std::function<std::function<int()>(CLI::App& app)>;

bool register_command(const char* name, const char* description, Setup setup);

}  // namespace tquant::cli
