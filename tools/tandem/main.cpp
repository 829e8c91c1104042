// tandem: ONNX -> DLA/GPU plan -> engine, from the command line.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "command.h"
#include "tandem/types.h"

namespace tandem::cli {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}
}  // namespace tandem::cli

int main(int argc, char** argv) {
  using namespace tandem::cli;
  CLI::App app{"tandem: ONNX engine builder and runtime for GPU + DLA systems"};
  app.set_version_flag("--version", std::string("tandem ") + TANDEM_VERSION);
  app.require_subcommand(1);
  auto& cmds = registry();
  std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (auto& c : cmds) {
    runners.emplace_back(nullptr, nullptr);
    auto before = app.get_subcommands({}).size();
    runners.back().second = c.setup(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) runners.back().first = subs.back();
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help/version with code 0; bad arguments get one line and exit 2.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "tandem: error: %s\n", e.what());
    return 2;
  }
  try {
    for (auto& [sub, run] : runners)
      if (sub && sub->parsed()) return run();
  } catch (const tandem::Error& e) {
    std::fprintf(stderr, "tandem: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
