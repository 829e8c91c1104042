// tandem: ONNX -> DLA/GPU plan -> engine, from the command line.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "command.h"
#include "tandem/types.h"

namespace tandem::cli {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}
}  // namespace tandem::cli

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string nearest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& n : names) {
    const size_t d = edit_distance(word, n);
    if (d < best_d) best_d = d, best = n;
  }
  return best;
}

// For a parse error: the first word the command line does not know, with the nearest option (or
// command) name: "unknown option --stratgy (did you mean --strategy?)". "" when there is none.
std::string typo_hint(CLI::App& app, int argc, char** argv) {
  CLI::App* cur = &app;
  for (int i = 1; i < argc; ++i) {
    std::string tok = argv[i];
    if (tok == "--") break;
    if (tok.size() > 1 && tok[0] == '-') {
      const std::string name = tok.substr(0, tok.find('='));
      std::vector<std::string> names;
      bool known = false;
      for (const CLI::Option* o : cur->get_options()) {
        for (const auto& l : o->get_lnames()) {
          names.push_back("--" + l);
          known |= name == "--" + l;
        }
        for (const auto& sn : o->get_snames()) {
          names.push_back("-" + sn);
          known |= name == "-" + sn;
        }
      }
      if (known) continue;
      if (name.size() == 2 || name.rfind("--", 0) != 0) continue;  // short flags may be grouped
      const std::string n = nearest(name, names);
      return "unknown option " + name + (n.empty() ? "" : " (did you mean " + n + "?)");
    }
    CLI::App* sub = nullptr;
    try {
      sub = cur->get_subcommand(tok);
    } catch (const CLI::OptionNotFound&) {
    }
    if (sub) {
      cur = sub;
      continue;
    }
    if (cur->get_require_subcommand_min() > 0 && !cur->get_subcommands({}).empty()) {
      std::vector<std::string> names;
      for (const CLI::App* c : cur->get_subcommands({})) names.push_back(c->get_name());
      const std::string n = nearest(tok, names);
      return "unknown command '" + tok + "'" + (n.empty() ? "" : " (did you mean " + n + "?)");
    }
  }
  return "";
}

}  // namespace

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
  // Every command's --help points at its option groups (names, units, defaults) in docs/cli.md.
  const std::string groups = "Option groups, their units and defaults: docs/cli.md#commands";
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->footer(groups);
    for (CLI::App* leaf : sub->get_subcommands({})) leaf->footer(groups);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help/version with code 0; bad arguments get one line and exit 2.
    if (e.get_exit_code() == 0) return app.exit(e);
    const std::string hint = dynamic_cast<const CLI::ExtrasError*>(&e) || dynamic_cast<const CLI::RequiredError*>(&e)
                                 ? typo_hint(app, argc, argv) : "";
    std::fprintf(stderr, "tandem: error: %s\n", hint.empty() ? e.what() : hint.c_str());
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
