// `tandem export <what>`: a second small registry, so that each export lives in its own file.
// A file adds its export with
//   static tandem::cli::RegisterExport reg("qdq", [](CLI::App& exp) {
//     auto* sub = exp.add_subcommand("qdq", "...");  ...;
//     return std::function<int()>([=] { ...; return 0; });
//   });
// cmd_export.cpp makes the `export` subcommand and runs whichever export was parsed.
// (A file may instead find `export` with app.get_subcommand("export") from a command registered
// at an order > 60 and attach a CLI11 callback, as cmd_export_qdq.cpp does.)
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace tandem::cli {

struct ExportCommand {
  std::string name;
  std::function<std::function<int()>(CLI::App& export_app)> setup;
};

std::vector<ExportCommand>& export_registry();

struct RegisterExport {
  RegisterExport(std::string name, std::function<std::function<int()>(CLI::App&)> setup) {
    export_registry().push_back({std::move(name), std::move(setup)});
  }
};

}  // namespace tandem::cli
