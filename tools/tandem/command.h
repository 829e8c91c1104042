// Subcommand registry: each cmd_*.cpp registers itself, so commands stay in their own files.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace tandem::cli {

struct Command {
  int order;  // position in --help
  std::string name;
  // Adds the subcommand to app; the returned callback runs it and returns the exit code.
  std::function<std::function<int()>(CLI::App& app)> setup;
};

std::vector<Command>& registry();

struct RegisterCommand {
  RegisterCommand(int order, std::string name, std::function<std::function<int()>(CLI::App&)> setup) {
    registry().push_back({order, std::move(name), std::move(setup)});
  }
};

}  // namespace tandem::cli
